// A frozen gateway (flatlinkd stopped with SIGSTOP: its link's socket stays open, nothing
// comes over it) is shown "not responding" within 10 s, to a page open and to one that logs
// in meanwhile, and "online" again when it goes on (SIGCONT). The cloud pings a silent
// gateway link and tells the flat's browsers (docs/protocol.md, "gateway").
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { waitFor } from '../integration/harness.mjs';
import { axeViolations, desktop, freePort, launchBrowser, login, openPage, screenshot, startCloud, startGateway, stop } from './fixture.mjs';

const flat = { id: 'flat-a', name: 'Demo flat', token: 'token-of-flat-a', users: [{ name: 'demo', password: 'demo' }] };
const devices = [{ id: 'lamp-1', kind: 'lamp', name: 'Lamp', room: 'Living room' }];
const loginA = { flat: 'flat-a', user: 'demo', password: 'demo' };

const gatewayState = (page) => page.locator('#gateway-link').getAttribute('data-state');

describe('a frozen gateway', () => {
  let cloud;
  let gateway;
  let browser;
  let base;

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}/`;
    cloud = await startCloud({ port, flats: [flat] });
    gateway = await startGateway({ port, flat: 'flat-a', gatewayId: 'gw-a', token: flat.token, devices });
    browser = await launchBrowser();
  });

  after(async () => {
    if (gateway && gateway.exitCode === null) gateway.kill('SIGCONT');
    await browser?.close();
    for (const proc of [gateway, cloud]) if (proc) await stop(proc).catch(() => {});
  });

  test('shows "not responding" within 10 s of SIGSTOP, and "online" again after SIGCONT', async () => {
    const page = await openPage(browser, base, desktop);
    await login(page, loginA);
    await waitFor(async () => (await gatewayState(page)) === 'online', 10_000, { message: 'online' });
    const t0 = Date.now();
    gateway.kill('SIGSTOP');
    let late;
    try {
      await waitFor(async () => (await gatewayState(page)) === 'not-responding', 15_000, {
        intervalMs: 50,
        message: 'the gateway shown not responding',
      });
      const ms = Date.now() - t0;
      assert.ok(ms <= 10_000, `shown after ${ms} ms`);
      console.log(`# not responding shown ${ms} ms after SIGSTOP`);
      assert.equal(await page.locator('#gateway-link-text').textContent(), 'not responding');
      assert.match(await page.locator('#flat-notice').textContent(), /not responding/);
      assert.deepEqual(await axeViolations(page), [], 'the not-responding view');
      await screenshot(page, 'gateway-not-responding', { crop: true });
      // A page that logs in now learns it right after its snapshot.
      late = await openPage(browser, base, desktop);
      await login(late, loginA);
      await waitFor(async () => (await gatewayState(late)) === 'not-responding', 5000, { message: 'the late page told' });
    } finally {
      gateway.kill('SIGCONT');
    }
    const t1 = Date.now();
    await waitFor(async () => (await gatewayState(page)) === 'online' && (await gatewayState(late)) === 'online', 10_000, {
      message: 'online again',
    });
    console.log(`# online again ${Date.now() - t1} ms after SIGCONT`);
    assert.equal(await page.locator('#flat-notice').isVisible(), false);
    assert.deepEqual(page.problems, []);
    assert.deepEqual(late.problems, []);
    await page.context().close();
    await late.context().close();
  });
});
