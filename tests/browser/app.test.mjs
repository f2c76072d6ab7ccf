// The dashboard as an app, in headless Chromium against the real flatlink-cloud and
// flatlinkd: installable (manifest, icons, an active service worker; Chromium's own
// installability check), opening without a network from the worker's cache and saying "no
// connection"; two languages chosen from the browser's and switched on the page, numbers
// in the user's locale; a command's "timeout" gone when the device reports again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';

import { waitFor } from '../integration/harness.mjs';
import {
  axeViolations,
  desktop,
  device,
  freePort,
  launchBrowser,
  launchProfile,
  login,
  openPage,
  phone,
  screenshot,
  startCloud,
  startGateway,
  stop,
} from './fixture.mjs';

const flat = { id: 'flat-a', name: 'Wohnung A', token: 'token-of-flat-a', users: [{ name: 'demo', password: 'demo' }] };
const devices = [
  { id: 'lamp-1', kind: 'lamp', name: 'Lampe', room: 'Wohnzimmer' },
  { id: 'thermo-1', kind: 'thermometer', name: 'Thermometer', room: 'Wohnzimmer', interval_ms: 300, initial: 21.5 },
  { id: 'door-1', kind: 'lock', name: 'Haustür', room: 'Flur' },
];
const loginA = { flat: 'flat-a', user: 'demo', password: 'demo' };

async function expectAttr(locator, name, value, timeout = 5000) {
  await waitFor(async () => (await locator.getAttribute(name)) === value, timeout, {
    message: `${locator} ${name}="${value}" (is "${await locator.getAttribute(name).catch(() => '?')}")`,
  });
}

async function expectText(locator, pattern, timeout = 5000) {
  await waitFor(async () => pattern.test((await locator.textContent()) ?? ''), timeout, {
    message: `${locator} text ${pattern} (is "${await locator.textContent().catch(() => '?')}")`,
  });
}

// Another browser's command, over the protocol (docs/protocol.md): logs in, sends, and
// resolves with its result's outcome.
function commandFromElsewhere(port, { device: id, set }) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'flatlink-browser.v1');
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error('no result for the other browser\'s command'));
    }, 10_000);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'login', ...loginA })));
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      if (msg.type === 'snapshot') ws.send(JSON.stringify({ type: 'command', id: 'other-1', device: id, set }));
      if (msg.type === 'result' && msg.id === 'other-1') {
        clearTimeout(timer);
        ws.close();
        if (msg.outcome === 'ok') resolve(msg.outcome);
        else reject(new Error(`the other browser's command: ${JSON.stringify(msg)}`));
      }
    });
    ws.on('error', reject);
  });
}

// Width and height of a PNG, from its IHDR chunk.
function pngSize(bytes) {
  const b = Buffer.from(bytes);
  assert.equal(b.subarray(1, 4).toString('latin1'), 'PNG');
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

describe('the dashboard as an app', () => {
  let port;
  let cloud;
  let gateway;
  let browser;
  let base;

  before(async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}/`;
    // A short command timeout: the frozen gateway's command times out within the test.
    cloud = await startCloud({ port, flats: [flat], limits: { command_timeout_ms: 1500 } });
    gateway = await startGateway({ port, flat: 'flat-a', gatewayId: 'gw-a', token: flat.token, devices, latencyMs: 50 });
    browser = await launchBrowser();
  });

  after(async () => {
    if (gateway && gateway.exitCode === null) gateway.kill('SIGCONT');
    await browser?.close();
    for (const proc of [gateway, cloud]) if (proc) await stop(proc).catch(() => {});
  });

  test('the manifest names the app, its colours and its 192 and 512 px PNG icons', async () => {
    const html = await (await fetch(base)).text();
    assert.match(html, /<link rel="manifest" href="manifest.json">/);
    assert.match(html, /<meta name="theme-color" content="#[0-9a-f]{6}"/);
    const manifest = await (await fetch(`${base}manifest.json`)).json();
    assert.equal(manifest.name, 'flatlink');
    assert.equal(manifest.display, 'standalone');
    assert.equal(manifest.start_url, './');
    assert.match(manifest.theme_color, /^#[0-9a-f]{6}$/);
    const sizes = new Set();
    for (const iconEntry of manifest.icons) {
      const r = await fetch(new URL(iconEntry.src, base));
      assert.equal(r.status, 200, iconEntry.src);
      assert.match(r.headers.get('content-type'), /^image\/png/, iconEntry.src);
      const [w, h] = pngSize(await r.arrayBuffer());
      assert.equal(`${w}x${h}`, iconEntry.sizes, iconEntry.src);
      sizes.add(iconEntry.sizes);
    }
    assert.ok(sizes.has('192x192') && sizes.has('512x512'), [...sizes].join(' '));
  });

  test('Chromium finds it installable with an active service worker, which keeps the shell and opens it offline', async () => {
    const profile = await launchProfile(base);
    const configFile = cloud.configFile;
    try {
      await installedAndOffline(profile.page);
    } finally {
      await profile.close();
      if (!cloud) cloud = await startCloud({ port, configFile });
    }
  });

  async function installedAndOffline(page) {
    // ready: a worker is active (activating or activated); then wait for its activation.
    const active = await page.evaluate(async () => {
      const worker = (await navigator.serviceWorker.ready).active;
      if (worker.state !== 'activated') {
        await new Promise((resolve) => worker.addEventListener('statechange', () => worker.state === 'activated' && resolve()));
      }
      return worker.state;
    });
    assert.equal(active, 'activated');
    const cdp = await page.context().newCDPSession(page);
    // Chromium's own check (what makes it offer "Install"), when this Chromium has it.
    const check = await cdp.send('Page.getInstallabilityErrors').catch((err) => ({ unsupported: err.message }));
    if (!check.unsupported) assert.deepEqual(check.installabilityErrors, []);
    await cdp.detach(); // attached, it keeps the offline emulation from the reloaded page
    // Log in: the state comes over the WebSocket, never into the cache.
    await login(page, loginA);
    await expectAttr(page.locator('#gateway-link'), 'data-state', 'online');
    await page.reload(); // now the worker controls the page: it sees the shell's requests
    await waitFor(() => page.evaluate(() => Boolean(navigator.serviceWorker.controller)), 5000, { message: 'a controlled page' });
    await login(page, loginA);
    await expectAttr(page.locator('#gateway-link'), 'data-state', 'online');
    const cached = await page.evaluate(async () => {
      const paths = [];
      for (const key of await caches.keys()) {
        for (const request of await (await caches.open(key)).keys()) paths.push(new URL(request.url).pathname);
      }
      return paths.sort();
    });
    assert.ok(cached.includes('/') && cached.includes('/app.js') && cached.includes('/style.css'), cached.join(' '));
    assert.ok(cached.every((p) => /^\/([a-z_0-9-]+\.(js|css|svg|png|json|html))?$/.test(p)), `only the shell: ${cached.join(' ')}`);

    // The network gone (the device offline, the cloud away too): the page still opens, from
    // the cache, and says so.
    await page.context().setOffline(true);
    await stop(cloud);
    cloud = null;
    await page.reload();
    const seen = () => page.evaluate(() => `${location.href} online=${navigator.onLine} hidden=${document.getElementById('offline-notice')?.hidden}`).catch((e) => e.message);
    await waitFor(() => page.locator('#offline-notice').isVisible(), 5000, { message: 'the no-connection notice' }).catch(async (err) => {
      throw new Error(`${err.message}: ${await seen()}`);
    });
    assert.match(await page.locator('#offline-notice').textContent(), /No connection/);
    assert.equal(await page.locator('#login-flat').isVisible(), true, 'the page itself is there');
    assert.deepEqual(await axeViolations(page), [], 'the offline view');
    await screenshot(page, 'offline');
    await page.context().setOffline(false);
    await waitFor(async () => !(await page.locator('#offline-notice').isVisible()), 5000, { message: 'the notice gone' });
    assert.deepEqual(page.problems, []);
  }

  test("German from the browser's language, numbers in its locale, English by the switch; 0 axe violations, dark too", async () => {
    const page = await openPage(browser, base, phone, { locale: 'de-DE', colorScheme: 'dark' });
    assert.equal(await page.locator('html').getAttribute('lang'), 'de');
    assert.equal(await page.locator('#login-title').textContent(), 'In deine Wohnung einloggen');
    assert.equal(await page.getByLabel('Wohnung', { exact: true }).count(), 1);
    assert.deepEqual(await axeViolations(page), [], 'the login view in German, dark');
    await login(page, loginA);
    await expectAttr(page.locator('#gateway-link'), 'data-state', 'online', 10_000);
    await expectText(device(page, 'lamp-1').card.locator('.tile-state'), /^(Aus|An)/);
    // 21,5 °C: a decimal comma.
    await expectText(device(page, 'thermo-1').card.locator('.tile-state'), /^-?\d+(,\d+)? °C$/);
    await expectText(page.locator('#cloud-link-text'), /^verbunden$/);
    assert.equal(await page.getByRole('switch', { name: 'Lampe strom' }).count(), 1);
    assert.equal(await page.getByRole('button', { name: 'Haustür: entriegeln' }).count(), 1);
    await device(page, 'thermo-1').openDetails();
    await expectText(device(page, 'thermo-1').card.locator('.last time'), /gerade eben|vor \d+/);
    assert.deepEqual(await axeViolations(page), [], 'the tiles in German, dark, on a phone');
    await screenshot(page, 'dashboard-phone-de-dark');

    await page.getByRole('combobox', { name: 'Sprache' }).selectOption('en');
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    await expectText(device(page, 'thermo-1').card.locator('.tile-state'), /^-?\d+(\.\d+)? °C$/);
    await expectText(page.locator('#cloud-link-text'), /^connected$/);
    assert.equal(await page.getByRole('switch', { name: 'Lampe power' }).count(), 1);
    assert.equal(await page.getByRole('combobox', { name: 'Language' }).inputValue(), 'en');
    // The choice is remembered in this browser (the one thing the page stores).
    assert.equal(await page.evaluate(() => localStorage.getItem('flatlink.lang')), 'en');
    await page.reload();
    assert.equal(await page.locator('#login-title').textContent(), 'Log in to your flat');
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test("a command's timeout goes when the device reports again", async () => {
    const page = await openPage(browser, base, desktop);
    await login(page, loginA);
    await expectAttr(page.locator('#gateway-link'), 'data-state', 'online', 10_000);
    const lamp = device(page, 'lamp-1');
    const sw = page.getByRole('switch', { name: 'Lampe power' });
    const before = await sw.getAttribute('aria-checked');
    gateway.kill('SIGSTOP'); // frozen: the link stays up, nothing answers
    try {
      await sw.click();
      // The page's command lives 10 s (its ttl): then the cloud answers "timeout".
      await expectAttr(lamp.outcome('on'), 'data-outcome', 'timeout', 15_000);
      assert.match(await lamp.outcome('on').textContent(), /timeout/);
    } finally {
      gateway.kill('SIGCONT');
    }
    // The gateway is back (the frozen command expired there). The lamp reports again (here:
    // switched from another browser): the control shows it, and the stale "timeout" is gone.
    const wanted = before !== 'true';
    await commandFromElsewhere(port, { device: 'lamp-1', set: { on: wanted } });
    await expectAttr(sw, 'aria-checked', String(wanted));
    await expectAttr(lamp.outcome('on'), 'data-outcome', '');
    assert.equal(await lamp.outcome('on').textContent(), '');
    await page.context().close();
  });
});
