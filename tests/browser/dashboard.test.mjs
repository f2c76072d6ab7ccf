// The dashboard in headless Chromium against the real flatlink-cloud and flatlinkd (sim
// devices): log in, see the devices, control them and see the gateway's answer, lose and
// regain the gateway and the cloud, and never see or reach another flat.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { waitFor } from '../integration/harness.mjs';
import {
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

const flatA = { id: 'flat-a', name: 'Demo flat', token: 'token-of-flat-a', users: [{ name: 'demo', password: 'demo' }] };
const flatB = { id: 'flat-b', name: 'Flat B', token: 'token-of-flat-b', users: [{ name: 'demo-b', password: 'demo-b' }] };
const devicesA = [
  { id: 'lamp-1', kind: 'lamp', name: 'Lamp', room: 'Living room' },
  { id: 'thermo-1', kind: 'thermometer', name: 'Thermometer', room: 'Living room', interval_ms: 200 },
  { id: 'door-1', kind: 'lock', name: 'Front door', room: 'Hall' },
];
const devicesB = [{ id: 'b-lamp', kind: 'lamp', name: 'Secret lamp of B', room: 'Bedroom' }];
const loginA = { flat: 'flat-a', user: 'demo', password: 'demo' };

// Every frame a page receives over its WebSockets, to prove what never reached it.
function recordFrames(page) {
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
  return frames;
}

const gatewayLink = (page) => page.locator('#gateway-link');
const cloudLink = (page) => page.locator('#cloud-link');

async function expectAttr(locator, name, value, timeout = 5000) {
  await waitFor(async () => (await locator.getAttribute(name)) === value, timeout, {
    message: `${locator} ${name}="${value}" (is "${await locator.getAttribute(name).catch(() => '?')}")`,
  });
}

async function expectText(locator, pattern, timeout = 5000) {
  await waitFor(async () => pattern.test((await locator.textContent()) ?? ''), timeout, {
    message: `${locator} text ${pattern}`,
  });
}

describe('dashboard', () => {
  let port;
  let cloud;
  let gatewayA;
  let gatewayB;
  let browser;
  let page; // flat A, desktop
  let framesA;

  before(async () => {
    port = await freePort();
    cloud = await startCloud({ port, flats: [flatA, flatB] });
    [gatewayA, gatewayB] = await Promise.all([
      startGateway({ port, flat: 'flat-a', gatewayId: 'gw-a', token: flatA.token, devices: devicesA, latencyMs: 300 }),
      startGateway({ port, flat: 'flat-b', gatewayId: 'gw-b', token: flatB.token, devices: devicesB }),
    ]);
    browser = await launchBrowser();
    page = await openPage(browser, `http://127.0.0.1:${port}/`, desktop);
    framesA = recordFrames(page);
  });

  after(async () => {
    await browser?.close();
    for (const proc of [gatewayA, gatewayB, cloud]) if (proc) await stop(proc).catch(() => {});
  });

  test('the login form labels its fields and the page loads nothing from other hosts', async () => {
    for (const label of ['Flat', 'User', 'Password']) assert.equal(await page.getByLabel(label, { exact: true }).count(), 1, label);
    await screenshot(page, 'login-desktop');
    assert.deepEqual(page.problems, []);
  });

  test('logging in shows the devices grouped by room, online, with their state', async () => {
    await login(page, loginA);
    await expectAttr(cloudLink(page), 'data-state', 'open');
    await expectAttr(gatewayLink(page), 'data-state', 'online');
    assert.equal(await page.locator('#flat-name').textContent(), 'Demo flat');
    const rooms = await page.locator('section.room h2').allTextContents();
    assert.deepEqual(rooms, ['Hall', 'Living room']);
    assert.deepEqual(await page.locator('section.room[data-group="room:Living room"] article h3').allTextContents(), [
      'Lamp',
      'Thermometer',
    ]);
    for (const id of ['lamp-1', 'thermo-1', 'door-1']) {
      await expectText(device(page, id).presence, /^online$/);
      await expectText(device(page, id).card.locator('.last time'), /just now|s ago/);
    }
    await expectText(device(page, 'thermo-1').reading('temperature'), /^-?\d+(\.\d+)? °C$/);
    // Every control has an accessible name that says which device it belongs to.
    assert.equal(await page.getByRole('switch', { name: 'Lamp on' }).count(), 1);
    assert.equal(await page.getByRole('slider', { name: 'Lamp brightness' }).count(), 1);
    assert.equal(await page.getByRole('combobox', { name: 'Front door lock' }).count(), 1);
    // The credentials live in memory only.
    const stored = await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]);
    assert.deepEqual(stored, [0, 0, '']);
  });

  test('the thermometer chart draws its history and keeps appending', async () => {
    const chart = device(page, 'thermo-1').chart('temperature');
    await waitFor(async () => Number(await chart.getAttribute('data-points')) >= 3, 5000, { message: 'chart points' });
    const first = Number(await chart.getAttribute('data-points'));
    await waitFor(async () => Number(await chart.getAttribute('data-points')) > first, 5000, { message: 'chart grows' });
    assert.match(await chart.locator('svg').getAttribute('aria-label'), /Thermometer temperature, last/);
    await screenshot(page, 'dashboard-desktop');
  });

  test('toggling the lamp shows pending, then ok, and the switch follows the reported state', async () => {
    const lamp = device(page, 'lamp-1');
    const sw = page.getByRole('switch', { name: 'Lamp on' });
    const before = await sw.getAttribute('aria-checked');
    const wanted = before === 'true' ? 'false' : 'true';
    // Every outcome the control shows, with the switch's state at that moment, recorded in
    // the page: polling from here can miss the 300 ms of "pending" on a loaded machine.
    await lamp.outcome('on').evaluate((el) => {
      const toggle = el.closest('.control').querySelector('[role="switch"]');
      el.seen = [];
      new MutationObserver(() => el.seen.push([el.dataset.outcome, toggle.getAttribute('aria-checked')])).observe(el, {
        attributes: true,
        attributeFilter: ['data-outcome'],
      });
    });
    await sw.click();
    await expectAttr(lamp.outcome('on'), 'data-outcome', 'ok');
    // The sim lamp takes 300 ms: until its result, the switch still shows the old state.
    const seen = await lamp.outcome('on').evaluate((el) => el.seen);
    const pending = seen.find(([outcome]) => outcome === 'pending');
    assert.ok(pending && seen.indexOf(pending) < seen.findIndex(([o]) => o === 'ok'), `pending, then ok: ${JSON.stringify(seen)}`);
    assert.equal(pending[1], before, 'the switch did not pretend');
    await expectAttr(sw, 'aria-checked', wanted);
    assert.match(await lamp.outcome('on').textContent(), /ok/);
    await gatewayA.waitForLine(new RegExp(`device=lamp-1 set \\{"on":${wanted}\\}`), 2000);
    await screenshot(page, `dashboard-lamp-${wanted === 'true' ? 'on' : 'off'}`, { crop: true });
    // And back.
    await sw.click();
    await expectAttr(sw, 'aria-checked', before);
    await expectAttr(lamp.outcome('on'), 'data-outcome', 'ok');
  });

  test('dragging the brightness slider sends one command, on release', async () => {
    const slider = page.getByRole('slider', { name: 'Lamp brightness' });
    const sent = () => gatewayA.lines.filter((l) => /device=lamp-1 set \{"brightness"/.test(l)).length;
    const count = sent();
    const initial = Number(await slider.inputValue());
    const box = await slider.boundingBox();
    const y = box.y + box.height / 2;
    await page.mouse.move(box.x + box.width - 4, y);
    await page.mouse.down();
    for (let i = 1; i <= 8; i++) await page.mouse.move(box.x + box.width * (1 - i * 0.075), y);
    await page.mouse.up();
    const lamp = device(page, 'lamp-1');
    await expectAttr(lamp.outcome('brightness'), 'data-outcome', 'ok');
    // The result can overtake the lamp's new status (seen with the slower sanitizer build):
    // the slider shows the reported value, so wait for it.
    await waitFor(async () => Number(await slider.inputValue()) !== initial, 5000, { message: 'the reported brightness' });
    const value = Number(await slider.inputValue());
    assert.ok(value > 20 && value < 60, `brightness ${value}`);
    assert.equal(sent() - count, 1, 'exactly one brightness command');
    await expectText(lamp.control('brightness').locator('.reading'), new RegExp(`^${value}%$`));
    // The keyboard works too (each key press is a release).
    await slider.focus();
    await page.keyboard.press('ArrowRight');
    await expectAttr(slider, 'aria-valuetext', `${value + 1}%`);
  });

  test('the door lock asks for confirmation and does nothing when cancelled', async () => {
    const door = device(page, 'door-1');
    const select = page.getByRole('combobox', { name: 'Front door lock' });
    assert.equal(await select.inputValue(), 'locked');
    const dialog = page.locator('#confirm-dialog');
    await select.selectOption('unlocked');
    await waitFor(() => dialog.isVisible(), 2000, { message: 'confirmation dialog' });
    assert.match(await dialog.textContent(), /Front door: set lock to unlocked\?/);
    assert.equal(await select.inputValue(), 'locked', 'the select shows the reported state while asking');
    await screenshot(page, 'confirm-lock');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await select.inputValue(), 'locked');
    assert.equal(await door.outcome('lock').getAttribute('data-outcome'), '');
    assert.ok(!gatewayA.lines.some((l) => l.includes('device=door-1 set')), 'no command after cancel');

    // Answer Cancel and ask again in the same task, before the browser's "close" event for
    // the first answer has run: that late event must not answer the second question.
    await select.selectOption('unlocked');
    await waitFor(() => dialog.isVisible(), 2000, { message: 'confirmation dialog' });
    await page.evaluate(() => {
      document.getElementById('confirm-cancel').click();
      const again = document.querySelector('article[data-device="door-1"] select');
      again.value = 'unlocked';
      again.dispatchEvent(new Event('change'));
    });
    await waitFor(() => dialog.isVisible(), 2000, { message: 'confirmation dialog, asked again' });
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await expectAttr(door.outcome('lock'), 'data-outcome', 'ok');
    const doorCommands = gatewayA.lines.filter((l) => l.includes('device=door-1 set'));
    assert.equal(doorCommands.length, 1, `one command, for the confirmed question: ${doorCommands.join(' | ')}`);
    await waitFor(async () => (await select.inputValue()) === 'unlocked', 2000, { message: 'lock unlocked' });
  });

  test('a phone-width screen shows one column without sideways scrolling', async () => {
    const small = await openPage(browser, `http://127.0.0.1:${port}/`, phone);
    await screenshot(small, 'login-phone');
    await login(small, loginA);
    await expectAttr(gatewayLink(small), 'data-state', 'online');
    await waitFor(async () => Number(await device(small, 'thermo-1').chart('temperature').getAttribute('data-points')) >= 2);
    const [scrollWidth, innerWidth] = await small.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scrollWidth <= innerWidth, `page is ${scrollWidth}px wide on a ${innerWidth}px screen`);
    const xs = await small.locator('article.device').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().x));
    assert.equal(new Set(xs).size, 1, 'one column');
    await screenshot(small, 'dashboard-phone');
    assert.deepEqual(small.problems, []);
    await small.context().close();
  });

  test("flat A's login does not open flat B, and flat B's devices never reach a flat-A page", async () => {
    const other = await openPage(browser, `http://127.0.0.1:${port}/`, desktop);
    await login(other, { flat: 'flat-b', user: 'demo', password: 'demo' });
    await expectText(other.getByRole('alert'), /wrong flat, user or password/);
    assert.equal(await other.locator('#flat-view').isVisible(), false);
    assert.equal(await other.locator('article.device').count(), 0);
    await screenshot(other, 'login-refused');
    // Flat B's own user sees flat B, and only it.
    await login(other, { flat: 'flat-b', user: 'demo-b', password: 'demo-b' });
    await expectText(device(other, 'b-lamp').presence, /^online$/);
    await other.getByRole('switch', { name: 'Secret lamp of B on' }).click();
    await expectAttr(device(other, 'b-lamp').outcome('on'), 'data-outcome', 'ok');
    assert.equal(await other.locator('article[data-device="lamp-1"]').count(), 0);
    await other.context().close();

    assert.equal(await page.locator('article[data-device="b-lamp"]').count(), 0);
    const leaked = framesA.filter((f) => f.includes('b-lamp') || f.includes('flat-b') || f.includes('Secret'));
    assert.deepEqual(leaked, []);
  });

  test('the page shows the gateway offline, answers commands offline, and recovers when it returns', async () => {
    await stop(gatewayA);
    await expectAttr(gatewayLink(page), 'data-state', 'offline');
    await expectText(device(page, 'lamp-1').presence, /offline/);
    await expectText(page.locator('#flat-notice'), /gateway is offline/);
    const sw = page.getByRole('switch', { name: 'Lamp on' });
    const state = await sw.getAttribute('aria-checked');
    await sw.click();
    await expectAttr(device(page, 'lamp-1').outcome('on'), 'data-outcome', 'offline');
    assert.match(await device(page, 'lamp-1').outcome('on').textContent(), /offline — the flat's gateway is not connected/);
    assert.equal(await sw.getAttribute('aria-checked'), state, 'the switch did not pretend');
    await screenshot(page, 'gateway-offline');

    gatewayA = await startGateway({
      port,
      flat: 'flat-a',
      gatewayId: 'gw-a',
      token: flatA.token,
      devices: devicesA,
      latencyMs: 300,
      stateDir: gatewayA.stateDir,
    });
    await expectAttr(gatewayLink(page), 'data-state', 'online');
    await expectText(device(page, 'lamp-1').presence, /^online$/);
    await sw.click();
    await expectAttr(device(page, 'lamp-1').outcome('on'), 'data-outcome', 'ok');
  });

  test('after a cloud restart the page reconnects and logs in again by itself', async () => {
    const configFile = cloud.configFile;
    assert.equal(await stop(cloud), 0);
    await expectAttr(cloudLink(page), 'data-state', 'reconnecting');
    await expectAttr(gatewayLink(page), 'data-state', 'unknown');
    await screenshot(page, 'cloud-reconnecting');
    cloud = await startCloud({ port, configFile });
    await expectAttr(cloudLink(page), 'data-state', 'open', 10_000);
    await expectAttr(gatewayLink(page), 'data-state', 'online', 10_000);
    await expectText(device(page, 'lamp-1').presence, /^online$/);
    const sw = page.getByRole('switch', { name: 'Lamp on' });
    const state = await sw.getAttribute('aria-checked');
    await sw.click();
    await expectAttr(sw, 'aria-checked', state === 'true' ? 'false' : 'true');
    await expectAttr(device(page, 'lamp-1').outcome('on'), 'data-outcome', 'ok');
    assert.deepEqual(page.problems.filter((p) => !/WebSocket/.test(p)), []);
  });
});
