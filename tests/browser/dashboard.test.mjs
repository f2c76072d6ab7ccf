// The dashboard in headless Chromium against the real flatlink-cloud and flatlinkd (sim
// devices): log in, see the devices as tiles, control them and see the gateway's answer, lose
// and regain the gateway and the cloud, and never see or reach another flat. axe-core checks
// every view on the way.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { waitFor } from '../integration/harness.mjs';
import {
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

const flatA = { id: 'flat-a', name: 'Demo flat', token: 'token-of-flat-a', users: [{ name: 'demo', password: 'demo' }] };
const flatB = { id: 'flat-b', name: 'Flat B', token: 'token-of-flat-b', users: [{ name: 'demo-b', password: 'demo-b' }] };
const devicesA = [
  { id: 'lamp-1', kind: 'lamp', name: 'Lamp', room: 'Living room' },
  { id: 'thermo-1', kind: 'thermometer', name: 'Thermometer', room: 'Living room', interval_ms: 200 },
  { id: 'door-1', kind: 'lock', name: 'Front door', room: 'Hall' },
  { id: 'thermo-2', kind: 'thermometer', name: 'Balcony', interval_ms: 1000 }, // no room: "Other"
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
    assert.deepEqual(await axeViolations(page), [], 'the login view');
    await screenshot(page, 'login-desktop');
    assert.deepEqual(page.problems, []);
  });

  test('logging in shows the devices as tiles grouped by room, online, with their state', async () => {
    await login(page, loginA);
    await expectAttr(cloudLink(page), 'data-state', 'open');
    await expectAttr(gatewayLink(page), 'data-state', 'online');
    assert.equal(await page.locator('#flat-name').textContent(), 'Demo flat');
    // After login the keyboard starts on the page's first control: the first tile's action.
    await waitFor(() => page.evaluate(() => document.activeElement?.closest('article')?.dataset.device === 'door-1'), 2000, {
      message: 'focus on the first tile',
    });
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Front door: unlock');
    // The keyboard reaches every tile's main action and details, in the page's order.
    const reached = [];
    for (let i = 0; i < 5; i++) {
      await page.keyboard.press('Tab');
      reached.push(await page.evaluate(() => document.activeElement.getAttribute('aria-label') || document.activeElement.textContent.trim()));
    }
    assert.deepEqual(reached, [
      'Details of Front door',
      'Lamp power',
      'Details of Lamp',
      'Details of Thermometer',
      'Details of Balcony',
    ]);
    // A device without a room is under "Other" (last), not under its adapter's or kind's name.
    const rooms = await page.locator('section.room h2').allTextContents();
    assert.deepEqual(rooms, ['Hall', 'Living room', 'Other']);
    assert.deepEqual(await page.locator('section.room[data-group="other"] article h3').allTextContents(), ['Balcony']);
    assert.deepEqual(await page.locator('section.room[data-group="room:Living room"] article h3').allTextContents(), [
      'Lamp',
      'Thermometer',
    ]);
    for (const id of ['lamp-1', 'thermo-1', 'door-1']) {
      await expectText(device(page, id).presence, /^online$/);
      await expectText(device(page, id).card.locator('.last time'), /just now|s ago/);
    }
    await expectText(device(page, 'thermo-1').reading('temperature'), /^-?\d+(\.\d+)? °C$/);
    // Each tile says its state in words, with an icon for its kind and state.
    await expectText(device(page, 'door-1').card.locator('.tile-state'), /^Locked$/);
    assert.equal(await device(page, 'door-1').card.getAttribute('data-look'), 'ok');
    assert.equal(await device(page, 'door-1').card.locator('svg.icon').getAttribute('data-icon'), 'lock-locked');
    await expectText(device(page, 'thermo-1').card.locator('.tile-state'), /^-?\d+(\.\d+)? °C$/);
    await expectText(device(page, 'lamp-1').card.locator('.tile-state'), /^Off$/);
    // Every control has an accessible name that says which device it belongs to; the
    // switch's name says what it switches, never a state ("Lamp on" beside "off").
    assert.equal(await page.getByRole('switch', { name: 'Lamp power' }).count(), 1);
    assert.equal(await page.getByRole('switch', { name: /Lamp on/ }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Front door: unlock' }).count(), 1);
    // Brightness and the lock's choice are in the tiles' detail views.
    assert.equal(await page.getByRole('slider', { name: 'Lamp brightness' }).count(), 0);
    await device(page, 'lamp-1').openDetails();
    await device(page, 'door-1').openDetails();
    assert.equal(await page.getByRole('slider', { name: 'Lamp brightness' }).count(), 1);
    assert.equal(await page.getByRole('combobox', { name: 'Front door lock' }).count(), 1);
    // Touch targets are at least 44 px each way.
    const small = await page.locator('article.device button, article.device summary, article.device select, header button, header select').evaluateAll((els) =>
      els
        .filter((e) => e.getClientRects().length)
        .map((e) => [e.getAttribute('aria-label') || e.textContent.trim(), e.getBoundingClientRect()])
        .filter(([, r]) => r.width < 44 || r.height < 44)
        .map(([name, r]) => `${name}: ${Math.round(r.width)}×${Math.round(r.height)}`),
    );
    assert.deepEqual(small, []);
    assert.deepEqual(await axeViolations(page), [], 'the tiles with their details open');
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
    await device(page, 'thermo-1').openDetails();
    await screenshot(page, 'dashboard-desktop');
  });

  test('toggling the lamp shows pending, then ok, and the switch follows the reported state', async () => {
    const lamp = device(page, 'lamp-1');
    const sw = page.getByRole('switch', { name: 'Lamp power' });
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
    // The visible state and the tile's look follow.
    await expectText(lamp.card.locator('.switch-text'), wanted === 'true' ? /^On$/ : /^Off$/);
    await expectAttr(lamp.card, 'data-look', wanted === 'true' ? 'on' : 'off');
    await gatewayA.waitForLine(new RegExp(`device=lamp-1 set \\{"on":${wanted}\\}`), 2000);
    await screenshot(page, `dashboard-lamp-${wanted === 'true' ? 'on' : 'off'}`, { crop: true });
    // And back.
    await sw.click();
    await expectAttr(sw, 'aria-checked', before);
    await expectAttr(lamp.outcome('on'), 'data-outcome', 'ok');
  });

  test("a click anywhere on the lamp's tile toggles it", async () => {
    const lamp = device(page, 'lamp-1');
    const sw = page.getByRole('switch', { name: 'Lamp power' });
    const before = await sw.getAttribute('aria-checked');
    const box = await lamp.card.locator('.tile-head h3').boundingBox();
    await page.mouse.click(box.x + 4, box.y + box.height / 2); // on the name, not on the switch
    await expectAttr(sw, 'aria-checked', before === 'true' ? 'false' : 'true');
    await expectAttr(lamp.outcome('on'), 'data-outcome', 'ok');
  });

  test('dragging the brightness slider sends one command, on release', async () => {
    await device(page, 'lamp-1').openDetails();
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

  test('holding an arrow key on the slider sends the last value once, showing the pending one', async () => {
    const lamp = device(page, 'lamp-1');
    await lamp.openDetails();
    const slider = page.getByRole('slider', { name: 'Lamp brightness' });
    await waitFor(async () => (await lamp.outcome('brightness').getAttribute('data-outcome')) !== 'pending', 5000);
    const sent = () => gatewayA.lines.filter((l) => /device=lamp-1 set \{"brightness"/.test(l));
    const count = sent().length;
    const initial = Number(await slider.inputValue());
    const steps = initial > 50 ? -12 : 12;
    const key = steps > 0 ? 'ArrowRight' : 'ArrowLeft';
    await slider.focus();
    // Held down: the first keydown, then the browser's repeats (repeat = true), one by one.
    for (let i = 0; i < Math.abs(steps); i++) await page.keyboard.down(key);
    const target = initial + steps;
    // While held nothing was sent; the slider and its reading show the value to come.
    assert.equal(sent().length, count, 'no command while the key is held');
    assert.equal(Number(await slider.inputValue()), target);
    assert.equal(await lamp.control('brightness').locator('.reading').textContent(), `→ ${target}%`);
    await page.keyboard.up(key);
    await expectAttr(lamp.outcome('brightness'), 'data-outcome', 'ok');
    await expectAttr(slider, 'aria-valuetext', `${target}%`);
    assert.equal(Number(await slider.inputValue()), target);
    const commands = sent().slice(count);
    assert.equal(commands.length, 1, commands.join(' | '));
    assert.match(commands[0], new RegExp(`"brightness":${target}\\}`));

    // Steps pressed while a command is on its way are not lost: they start from the
    // pending value, and the last one is sent after.
    const before = sent().length;
    await page.keyboard.press(key);
    await page.keyboard.press(key);
    await page.keyboard.press(key);
    const final = target + 3 * Math.sign(steps);
    await expectAttr(slider, 'aria-valuetext', `${final}%`, 8000);
    await expectAttr(lamp.outcome('brightness'), 'data-outcome', 'ok');
    const last = sent().slice(before).at(-1);
    assert.match(last, new RegExp(`"brightness":${final}\\}`), sent().slice(before).join(' | '));
  });

  test("a tap on the door's tile asks first; cancelled, nothing is sent", async () => {
    const door = device(page, 'door-1');
    const dialog = page.locator('#confirm-dialog');
    const box = await door.card.locator('.tile-icon').boundingBox();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await waitFor(() => dialog.isVisible(), 2000, { message: 'confirmation dialog' });
    assert.match(await dialog.textContent(), /Front door: set lock to unlocked\?/);
    assert.deepEqual(await axeViolations(page), [], 'the confirmation dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await door.outcome('lock').getAttribute('data-outcome'), '');
    assert.ok(!gatewayA.lines.some((l) => l.includes('device=door-1 set')), 'no command after cancel');
  });

  test('the door lock asks for confirmation and does nothing when cancelled', async () => {
    const door = device(page, 'door-1');
    await door.openDetails();
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
    // An unlocked door is unmistakable: the alert look, the open padlock, the word.
    await expectAttr(door.card, 'data-look', 'alert');
    assert.equal(await door.card.locator('svg.icon').getAttribute('data-icon'), 'lock-unlocked');
    assert.equal(await door.card.locator('.tile-state').textContent(), 'Unlocked');
    assert.equal(await page.getByRole('button', { name: 'Front door: lock' }).count(), 1);
    await screenshot(page, 'door-unlocked', { crop: true });
  });

  test('a phone-width screen shows one column without sideways scrolling', async () => {
    const small = await openPage(browser, `http://127.0.0.1:${port}/`, phone);
    await screenshot(small, 'login-phone');
    await login(small, loginA);
    await expectAttr(gatewayLink(small), 'data-state', 'online');
    await waitFor(async () => Number(await device(small, 'thermo-1').chart('temperature').getAttribute('data-points')) >= 2);
    const [scrollWidth, innerWidth] = await small.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scrollWidth <= innerWidth, `page is ${scrollWidth}px wide on a ${innerWidth}px screen`);
    // The header is one line: every part of it within one row's height.
    const rows = await small.locator('header.top > *, header.top .top-right > *:not([hidden])').evaluateAll((els) =>
      els.map((e) => e.getBoundingClientRect()).map((r) => [Math.round(r.top), Math.round(r.bottom)]),
    );
    const header = await small.locator('header.top').boundingBox();
    assert.ok(header.height <= 64, `header ${header.height}px high: ${JSON.stringify(rows)}`);
    assert.deepEqual(await axeViolations(small), [], 'the phone view');
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
    await other.getByRole('switch', { name: 'Secret lamp of B power' }).click();
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
    // An offline device is unmistakable: the offline look and icon, "Offline" in its words.
    await expectAttr(device(page, 'lamp-1').card, 'data-look', 'offline');
    assert.equal(await device(page, 'lamp-1').card.locator('svg.icon').getAttribute('data-icon'), 'offline');
    assert.match(await device(page, 'lamp-1').card.locator('.tile-state').textContent(), /^Offline · /);
    assert.deepEqual(await axeViolations(page), [], 'the gateway offline');
    const sw = page.getByRole('switch', { name: 'Lamp power' });
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
    const sw = page.getByRole('switch', { name: 'Lamp power' });
    const state = await sw.getAttribute('aria-checked');
    await sw.click();
    await expectAttr(sw, 'aria-checked', state === 'true' ? 'false' : 'true');
    await expectAttr(device(page, 'lamp-1').outcome('on'), 'data-outcome', 'ok');
    assert.deepEqual(page.problems.filter((p) => !/WebSocket/.test(p)), []);
  });
});
