// The tiles' decisions and the string catalogue (cloud-server/dashboard/device_card.js,
// icons.js, i18n.js), without a browser: which capability is a tile's main action, how a
// state looks (an unlocked door, an open contact, an offline device), the icon for it, and
// a catalogue where every language has every key and every placeholder.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { repoRoot } from '../integration/harness.mjs';
import { lookOf, primaryCapability } from '../../cloud-server/dashboard/device_card.js';
import { iconFor, iconNames } from '../../cloud-server/dashboard/icons.js';
import { LANGUAGES, catalogue, pickLanguage, setLanguage } from '../../cloud-server/dashboard/i18n.js';

setLanguage('en'); // node may say another language: these tests read English words

const dashboardDir = path.join(repoRoot, 'cloud-server', 'dashboard');

const lamp = {
  kind: 'lamp',
  capabilities: [
    { name: 'on', type: 'bool', writable: true },
    { name: 'brightness', type: 'int', writable: true, min: 0, max: 100, unit: '%' },
  ],
};
const lock = { kind: 'lock', capabilities: [{ name: 'lock', type: 'enum', options: ['locked', 'unlocked'], writable: true, confirm: true }] };
const contact = { kind: 'contact', capabilities: [{ name: 'contact', type: 'bool', writable: false }] };
const thermo = { kind: 'thermometer', capabilities: [{ name: 'temperature', type: 'number', writable: false, unit: '°C' }] };

test("a tile's main action: the switch, else a two-way enum, else none (the details)", () => {
  assert.equal(primaryCapability(lamp).name, 'on');
  assert.equal(primaryCapability(lock).name, 'lock');
  assert.equal(primaryCapability(thermo), null);
  assert.equal(primaryCapability(contact), null, 'a read-only bool is a reading');
  const mode = { kind: 'hvac', capabilities: [{ name: 'mode', type: 'enum', options: ['off', 'heat', 'cool'], writable: true }] };
  assert.equal(primaryCapability(mode), null, 'three options need the choice in the details');
});

test('an unlocked door, an open contact and an offline device each look unmistakable', () => {
  assert.deepEqual(lookOf({ ...lock, state: { lock: 'unlocked' } }, true), { look: 'alert', words: 'Unlocked' });
  assert.deepEqual(lookOf({ ...lock, state: { lock: 'locked' } }, true), { look: 'ok', words: 'Locked' });
  // Zigbee2MQTT's contact: true means closed.
  assert.deepEqual(lookOf({ ...contact, state: { contact: false } }, true), { look: 'alert', words: 'Open' });
  assert.deepEqual(lookOf({ ...contact, state: { contact: true } }, true), { look: 'ok', words: 'Closed' });
  assert.deepEqual(lookOf({ kind: 'window', capabilities: [], state: { open: true } }, true), { look: 'alert', words: 'Open' });
  assert.deepEqual(lookOf({ ...lamp, state: { on: true, brightness: 40 } }, true), { look: 'on', words: 'On · 40%' });
  assert.deepEqual(lookOf({ ...lamp, state: { on: false, brightness: 40 } }, true), { look: 'off', words: 'Off' });
  assert.deepEqual(lookOf({ ...thermo, state: { temperature: 21.5 } }, true), { look: 'plain', words: '21.5 °C' });
  assert.equal(lookOf({ ...lock, state: { lock: 'unlocked' } }, false).look, 'offline');
  assert.equal(lookOf({ ...thermo, state: {} }, true).words, 'unknown');
  assert.equal(iconFor('lock', 'alert'), 'lock-unlocked');
  assert.equal(iconFor('lock', 'ok'), 'lock-locked');
  assert.equal(iconFor('contact', 'alert'), 'contact-open');
  assert.equal(iconFor('lamp', 'on'), 'lamp-on');
  assert.equal(iconFor('lamp', 'offline'), 'offline');
  assert.equal(iconFor('toaster', 'plain'), 'device');
  for (const kind of ['lamp', 'lock', 'contact', 'thermometer', 'plug', 'microphone', 'speaker', 'x']) {
    for (const look of ['on', 'off', 'ok', 'alert', 'plain', 'offline']) assert.ok(iconNames().includes(iconFor(kind, look)), `${kind}/${look}`);
  }
});

test('every language has every key, with the same placeholders', () => {
  const all = catalogue();
  const en = all.en;
  const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');
  assert.deepEqual(LANGUAGES, ['en', 'de']);
  for (const lang of LANGUAGES) {
    assert.deepEqual(Object.keys(all[lang]).sort(), Object.keys(en).sort(), lang);
    for (const [key, text] of Object.entries(all[lang])) assert.equal(placeholders(text), placeholders(en[key]), `${lang} ${key}`);
  }
});

test("the language follows the browser's list: the first one known, English otherwise", () => {
  assert.equal(pickLanguage(['de-AT', 'en']), 'de');
  assert.equal(pickLanguage(['fr-FR', 'de']), 'de');
  assert.equal(pickLanguage(['fr-FR']), 'en');
  assert.equal(pickLanguage([]), 'en');
});

test('every key the page uses is in the catalogue, and the HTML carries no inline script, handler or style', () => {
  const keys = new Set(Object.keys(catalogue().en));
  const used = new Set();
  for (const file of readdirSync(dashboardDir)) {
    const text = readFileSync(path.join(dashboardDir, file), 'utf8');
    if (file.endsWith('.js')) for (const m of text.matchAll(/\bt\('([a-zA-Z_.]+)'/g)) used.add(m[1]);
    if (file.endsWith('.html')) {
      for (const m of text.matchAll(/data-i18n(?:-label)?="([^"]+)"/g)) used.add(m[1]);
      // The cloud's CSP (default-src 'self') refuses these.
      assert.doesNotMatch(text, /<script(?![^>]*\bsrc=)[^>]*>/, `${file}: an inline script`);
      assert.doesNotMatch(text, /\son[a-z]+=/i, `${file}: an inline event handler`);
      assert.doesNotMatch(text, /\sstyle=/i, `${file}: a style attribute`);
    }
  }
  const missing = [...used].filter((k) => !keys.has(k));
  assert.deepEqual(missing, []);
  assert.ok(used.size > 50, `${used.size} keys used`);
});
