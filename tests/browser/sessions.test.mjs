// The dashboard's session, account and event log in headless Chromium against the real
// flatlink-cloud (with its SQLite store) and flatlinkd: a login through POST /session stays
// across a reload and a cloud restart; the account menu names the user and role and logs out
// here or everywhere; a guest sees no controls; the event log, newest first, filtered and
// in pages, and a device's recent events in its detail view; a cloud without a store still
// takes the WebSocket login. axe-core checks each new view.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';

import { waitFor } from '../integration/harness.mjs';
import {
  admin,
  axeViolations,
  desktop,
  device,
  freePort,
  launchBrowser,
  login,
  openPage,
  phone,
  screenshot,
  startCloud,
  startGateway,
  stop,
} from './fixture.mjs';

const flat = { id: 'flat-a', name: 'Demo flat', token: 'token-of-flat-a', users: [{ name: 'anna', password: 'pw-anna' }] };
const devices = [
  { id: 'lamp-1', kind: 'lamp', name: 'Lamp', room: 'Living room' },
  { id: 'door-1', kind: 'lock', name: 'Front door', room: 'Hall' },
];
const anna = { flat: 'flat-a', user: 'anna', password: 'pw-anna' };

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

const online = (page, timeout = 10_000) => expectAttr(page.locator('#gateway-link'), 'data-state', 'online', timeout);

// Commands over the protocol from a script's WebSocket login: each waits for its result.
async function commands(port, list) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'flatlink-browser.v1');
  const waiting = new Map();
  let ready;
  const snapshot = new Promise((resolve) => (ready = resolve));
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data));
    if (msg.type === 'snapshot') ready();
    if (msg.type === 'result') waiting.get(msg.id)?.(msg);
  });
  await new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('error', reject);
  });
  ws.send(JSON.stringify({ type: 'login', ...anna }));
  await snapshot;
  for (const [i, { device: id, set }] of list.entries()) {
    const result = await new Promise((resolve) => {
      waiting.set(`s-${i}`, resolve);
      ws.send(JSON.stringify({ type: 'command', id: `s-${i}`, device: id, set }));
    });
    assert.equal(result.outcome, 'ok', JSON.stringify(result));
  }
  ws.close();
}

describe('sessions, account and event log', () => {
  let port;
  let cloud;
  let gateway;
  let browser;
  let base;

  before(async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}/`;
    cloud = await startCloud({ port, flats: [flat], store: true });
    gateway = await startGateway({ port, flat: 'flat-a', gatewayId: 'gw-a', token: flat.token, devices });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    for (const proc of [gateway, cloud]) if (proc) await stop(proc).catch(() => {});
  });

  test('a login stays across a reload and a cloud restart; the account menu names the user and role; 0 axe violations', async () => {
    const page = await openPage(browser, base, desktop);
    await login(page, anna);
    await online(page);
    // The session's token is HttpOnly: no script sees it.
    assert.equal(await page.evaluate(() => document.cookie.includes('flatlink_session')), false);
    const cookies = await page.context().cookies();
    assert.ok(cookies.some((c) => c.name === 'flatlink_session' && c.httpOnly && c.sameSite === 'Strict'), JSON.stringify(cookies));
    assert.equal(await page.locator('#account-user').textContent(), 'anna');
    await page.locator('#account-summary').click();
    assert.equal(await page.locator('#account-role').textContent(), 'owner');
    assert.equal(await page.getByRole('button', { name: 'Log out everywhere' }).isVisible(), true);
    assert.deepEqual(await axeViolations(page), [], 'the account menu open');
    await screenshot(page, 'account-menu', { crop: true });
    await page.locator('#account-summary').click();

    await page.reload();
    await online(page);
    assert.equal(await page.locator('#login-view').isHidden(), true, 'no login form after a reload');
    assert.equal(await page.locator('#account-user').textContent(), 'anna');

    const configFile = cloud.configFile;
    await stop(cloud);
    cloud = null;
    await expectAttr(page.locator('#cloud-link'), 'data-state', 'reconnecting');
    cloud = await startCloud({ port, configFile });
    await expectAttr(page.locator('#cloud-link'), 'data-state', 'open', 15_000);
    await online(page, 15_000);
    assert.equal(await page.locator('#login-view').isHidden(), true, 'resumed after the restart, no login form');
    assert.equal(await device(page, 'lamp-1').card.isVisible(), true);
    // Chromium logs the refused reconnects while the cloud was away.
    assert.deepEqual(page.problems.filter((p) => !/ERR_CONNECTION_REFUSED/.test(p)), []);
    await page.context().close();
  });

  test('"Log out" ends this session; "Log out everywhere" ends the other browser\'s too', async () => {
    const here = await openPage(browser, base, desktop);
    const there = await openPage(browser, base, phone);
    for (const page of [here, there]) {
      await login(page, anna);
      await online(page);
    }
    await here.locator('#account-summary').click();
    await here.getByRole('button', { name: 'Log out everywhere' }).click();
    await expectAttr(here.locator('#login-view'), 'hidden', null);
    assert.equal(await here.locator('#login-view').isVisible(), true);
    // The other browser's link is closed (4003) at the store's next poll: its form is back.
    await waitFor(() => there.locator('#login-view').isVisible(), 5000, { message: 'the other browser logged out' });
    await expectText(there.locator('#login-error'), /session has ended/);
    await there.reload();
    await waitFor(async () => !(await there.locator('#login-submit').isDisabled()), 5000, { message: 'the resume refused' });
    assert.equal(await there.locator('#login-view').isVisible(), true, 'the cookie no longer resumes');

    // "Log out": this session only; after a reload the form stays.
    await login(here, anna);
    await online(here);
    await here.locator('#account-summary').click();
    await here.getByRole('button', { name: 'Log out', exact: true }).click();
    await waitFor(() => here.locator('#login-view').isVisible(), 5000, { message: 'logged out' });
    await here.reload();
    await waitFor(async () => !(await here.locator('#login-submit').isDisabled()), 5000, { message: 'the resume refused' });
    assert.equal(await here.locator('#login-view').isVisible(), true);
    assert.deepEqual(here.problems, []);
    assert.deepEqual(there.problems, []);
    await here.context().close();
    await there.context().close();
  });

  test('a guest sees the states but no controls (role from the login answer); 0 axe violations', async () => {
    await admin(cloud, ['user', 'add', 'gina'], 'pw-gina\n');
    await admin(cloud, ['member', 'add', 'flat-a', 'gina', 'guest']);
    const page = await openPage(browser, base, phone);
    // The store's change reaches the running cloud within its poll (200 ms): try until in.
    await waitFor(
      async () => {
        if (await page.locator('#login-submit').isDisabled()) return false;
        if (await page.locator('#flat-view').isVisible()) return true;
        await login(page, { flat: 'flat-a', user: 'gina', password: 'pw-gina' });
        return false;
      },
      5000,
      { intervalMs: 300, message: 'gina logged in' },
    );
    await online(page);
    await expectText(device(page, 'door-1').card.locator('.tile-state'), /Locked|Unlocked/);
    assert.equal(await page.locator('#account-user').textContent(), 'gina');
    assert.equal(await page.locator('#account-role').textContent(), 'guest (watches only)');
    for (const id of ['lamp-1', 'door-1']) {
      const tile = device(page, id);
      await tile.openDetails();
      assert.equal(await tile.card.locator('.control').count(), 0, `${id}: no controls`);
      // (The history's range buttons and fields choose what is shown, not what a device does.)
      const pressable = await tile.card.locator('button, select, input').count();
      const ofHistory = await tile.card.locator('figure.chart').locator('button, select, input').count();
      assert.equal(pressable - ofHistory, 0, `${id}: nothing to press`);
      assert.ok((await tile.card.locator('figure.chart button.range').count()) > 0, `${id}: a guest still sees the history`);
    }
    // The lock's state is still shown, as a reading.
    await expectText(device(page, 'door-1').reading('lock'), /locked|unlocked/);
    assert.equal(await page.getByRole('switch').count(), 0);
    assert.deepEqual(await axeViolations(page), [], 'a guest on a phone');
    await screenshot(page, 'guest-phone', { crop: true });
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('the event log: newest first, "Lamp turned on by anna · HH:MM · ok", filters, pages, and a device\'s recent events; 0 axe violations', async () => {
    // 24 commands of the lamp and one of the door: more than one page (20).
    await commands(port, [
      ...Array.from({ length: 24 }, (_, i) => ({ device: 'lamp-1', set: { on: i % 2 === 0 } })),
      { device: 'door-1', set: { lock: 'unlocked' } },
    ]);
    const page = await openPage(browser, base, desktop);
    await login(page, anna);
    await online(page);
    await page.getByRole('button', { name: 'Event log' }).click();
    assert.equal(await page.getByRole('button', { name: 'Event log' }).getAttribute('aria-pressed'), 'true');
    // Written in batches off the loop: ask again (change the filter) until the door's is in.
    const items = page.locator('#event-list li');
    await page.locator('#events-kind').selectOption('command');
    await waitFor(
      async () => {
        if (/Front door unlocked/.test((await items.first().textContent().catch(() => '')) ?? '')) return true;
        await page.locator('#events-kind').selectOption('');
        await page.locator('#events-kind').selectOption('command');
        return false;
      },
      5000,
      { intervalMs: 300, message: 'the door\'s command first' },
    );
    assert.match(await items.first().textContent(), /^Front door unlocked by anna · \d{1,2}:\d{2}( [AP]M)? · ok$/);
    assert.equal(await items.count(), 20);
    await expectText(page.locator('#events-status'), /page 1/);
    assert.deepEqual(await axeViolations(page), [], 'the event log');
    await screenshot(page, 'event-log', { crop: true });

    // Newest first, page by page: the ids fall across pages.
    const ids = async () => (await items.evaluateAll((lis) => lis.map((li) => Number(li.dataset.event))));
    const first = await ids();
    assert.deepEqual(first, [...first].sort((a, b) => b - a));
    await page.getByRole('button', { name: 'Older' }).click();
    await expectText(page.locator('#events-status'), /page 2/);
    const second = await ids();
    assert.ok(second.length >= 5 && Math.max(...second) < Math.min(...first), `${first} / ${second}`);
    await page.getByRole('button', { name: 'Newer' }).click();
    await expectText(page.locator('#events-status'), /page 1/);
    assert.deepEqual(await ids(), first);

    // By device: the lamp's only.
    await page.locator('#events-device').selectOption('lamp-1');
    await waitFor(async () => /^Lamp turned (on|off) by anna/.test((await items.first().textContent()) ?? ''), 5000, { message: 'the lamp\'s events' });
    assert.ok((await items.allTextContents()).every((text) => text.startsWith('Lamp ')));
    // By kind: logins (anna's, by password and by session).
    await page.locator('#events-device').selectOption('');
    await page.locator('#events-kind').selectOption('login');
    await waitFor(async () => /^anna logged in/.test((await items.first().textContent()) ?? ''), 5000, { message: 'logins' });

    // The door's own recent events, in its detail view.
    await page.getByRole('button', { name: 'Devices' }).click();
    const door = device(page, 'door-1');
    await door.openDetails();
    await expectText(door.card.locator('.recent-events li').first(), /^Front door unlocked by anna · \d{1,2}:\d{2}( [AP]M)? · ok$/);
    assert.deepEqual(await axeViolations(page), [], 'a tile\'s recent events');
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
});

describe('a cloud without a store', () => {
  test('POST /session answers 404: the page logs in over the WebSocket and names the user', async () => {
    const port = await freePort();
    const cloud = await startCloud({ port, flats: [flat] });
    const browser = await launchBrowser();
    try {
      const page = await openPage(browser, `http://127.0.0.1:${port}/`, desktop);
      await login(page, anna);
      await expectAttr(page.locator('#cloud-link'), 'data-state', 'open');
      assert.equal(await page.locator('#account-user').textContent(), 'anna');
      await page.locator('#account-summary').click();
      assert.equal(await page.locator('#account-role').isVisible(), false, 'no role without a store');
      await page.getByRole('button', { name: 'Log out', exact: true }).click();
      await waitFor(() => page.locator('#login-view').isVisible(), 5000, { message: 'logged out' });
      assert.deepEqual(page.problems, []);
    } finally {
      await browser.close();
      await stop(cloud);
    }
  });
});
