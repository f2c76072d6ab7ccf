// The Notifications view's rules without a browser (cloud-server/dashboard/notifications.js):
// which changes make a notification — a door turning unlocked (not staying so), a device or
// the gateway going offline, a value crossing a threshold upwards (not staying above) — and
// that nothing is shown without the permission or with the event unchosen.
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';

import { setLanguage } from '../../cloud-server/dashboard/i18n.js';
import { Notifications, lockUnlocked } from '../../cloud-server/dashboard/notifications.js';

const shown = [];
class FakeNotification {
  static permission = 'granted';
  constructor(title, options) {
    shown.push({ title, ...options });
  }
}
globalThis.window = globalThis;
globalThis.Notification = FakeNotification;

const element = () => ({ addEventListener() {}, querySelectorAll: () => [] });
const ui = new Proxy({}, { get: (target, key) => (target[key] ??= element()) });
const door = { id: 'door-1', name: 'Front door', kind: 'lock' };
const thermo = { id: 'thermo-1', name: 'Thermometer', kind: 'thermometer' };

function notifier(prefs = {}) {
  const n = new Notifications(ui, { devices: () => new Map(), send: () => true });
  n.prefs = { door_unlocked: true, device_offline: true, gateway_offline: true, thresholds: [], ...prefs };
  return n;
}

beforeEach(() => {
  shown.length = 0;
  FakeNotification.permission = 'granted';
  setLanguage('en');
});

test('a lock is unlocked by lock: "unlocked" or locked: false', () => {
  assert.equal(lockUnlocked({ lock: 'unlocked' }), true);
  assert.equal(lockUnlocked({ lock: 'locked' }), false);
  assert.equal(lockUnlocked({ locked: false }), true);
  assert.equal(lockUnlocked({ on: true }), undefined);
});

test('a door turning unlocked notifies once; staying unlocked or locking does not', () => {
  const n = notifier();
  n.update(door, { lock: 'locked' }, { lock: 'unlocked' });
  n.update(door, { lock: 'unlocked' }, { lock: 'unlocked' });
  n.update(door, { lock: 'unlocked' }, { lock: 'locked' });
  n.update({ ...door, kind: 'lamp' }, { lock: 'locked' }, { lock: 'unlocked' }); // not a lock
  assert.deepEqual(shown, [{ title: 'flatlink', body: 'Front door unlocked', tag: 'unlocked-door-1' }]);
});

test('a value crossing its threshold upwards notifies; staying above, or below, does not', () => {
  const n = notifier({ thresholds: [{ device: 'thermo-1', capability: 'temperature', above: 25 }] });
  n.update(thermo, { temperature: 24.5 }, { temperature: 25 }); // not above
  n.update(thermo, { temperature: 25 }, { temperature: 25.5 }); // crosses
  n.update(thermo, { temperature: 25.5 }, { temperature: 27 }); // stays above
  n.update(thermo, { temperature: 27 }, { temperature: 20 });
  n.update(thermo, { temperature: 20 }, { humidity: 90 }); // another value
  n.update(thermo, { temperature: 20 }, { temperature: 26 }); // crosses again
  assert.deepEqual(
    shown.map((s) => s.body),
    ['Thermometer: temperature is 25.5 (above 25)', 'Thermometer: temperature is 26 (above 25)'],
  );
});

test('a device or the gateway going offline notifies; an unchosen event or no permission does not', () => {
  const n = notifier({ gateway_offline: false });
  n.presence(thermo, false, true);
  n.presence(thermo, false, false); // was offline already
  n.gateway(false, true); // unchosen
  assert.deepEqual(shown.map((s) => s.body), ['Thermometer is offline']);
  FakeNotification.permission = 'denied';
  n.update(door, { lock: 'locked' }, { lock: 'unlocked' });
  assert.equal(shown.length, 1);
});

test('in German the notifications are German', () => {
  setLanguage('de');
  const n = notifier();
  n.update(door, { lock: 'locked' }, { lock: 'unlocked' });
  n.gateway(false, true);
  assert.deepEqual(shown.map((s) => s.body), ['Front door entriegelt', 'Das Gateway der Wohnung ist offline']);
});
