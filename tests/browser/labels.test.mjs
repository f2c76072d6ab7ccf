// An owner renames a device and sets its room in the tile's detail view ("Rename / room"),
// in headless Chromium against the real flatlink-cloud (its SQLite store) and flatlinkd: the
// tile regroups under its new room, another browser of the flat sees it at once, it survives
// a cloud restart, an empty field brings the gateway's name back; a member has no such
// control and the cloud refuses the message from one (forbidden); keyboard only; axe-core 0.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';

import { waitFor } from '../integration/harness.mjs';
import { admin, axeViolations, desktop, device, freePort, launchBrowser, login, openPage, phone, screenshot, startCloud, startGateway, stop } from './fixture.mjs';

const flat = { id: 'flat-a', name: 'Demo flat', token: 'token-of-flat-a', users: [{ name: 'anna', password: 'pw-anna' }] };
const devices = [
  { id: 'lamp-1', kind: 'lamp', name: 'Lamp', room: 'Living room' },
  { id: 'door-1', kind: 'lock', name: 'Front door', room: 'Hall' },
];
const anna = { flat: 'flat-a', user: 'anna', password: 'pw-anna' };
const ben = { flat: 'flat-a', user: 'ben', password: 'pw-ben' };

const online = (page, timeout = 10_000) =>
  waitFor(async () => (await page.locator('#gateway-link').getAttribute('data-state')) === 'online', timeout, { message: 'gateway online' });

// The heading of the room a device's tile is under, and the tile's name.
const placeOf = (page, id) =>
  page.locator(`article[data-device="${id}"]`).evaluate((tile) => ({
    room: tile.closest('section.room').querySelector('h2').textContent,
    name: tile.querySelector('h3').textContent,
  }));

async function expectPlace(page, id, want, timeout = 5000) {
  await waitFor(async () => {
    const place = await placeOf(page, id).catch(() => null);
    return place && place.room === want.room && place.name === want.name;
  }, timeout, { message: `${id} shown as ${JSON.stringify(want)} (is ${JSON.stringify(await placeOf(page, id).catch(() => null))})` });
}

// A script's WebSocket login; resolves with a function that sends a message and waits for
// the first answer of one of `types`.
async function wsLogin(port, who) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'flatlink-browser.v1');
  const inbox = [];
  const waiters = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data));
    inbox.push(msg);
    for (const w of [...waiters]) if (w.types.includes(msg.type)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(msg);
    }
  });
  await new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('error', reject);
  });
  const next = (types) => new Promise((resolve) => waiters.push({ types, resolve }));
  const snapshot = next(['snapshot']);
  ws.send(JSON.stringify({ type: 'login', ...who }));
  await snapshot;
  return {
    ws,
    inbox,
    ask: (msg, types) => {
      const answer = next(types);
      ws.send(JSON.stringify(msg));
      return answer;
    },
  };
}

describe('an owner names a device and sets its room', () => {
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
    await admin(cloud, ['user', 'add', 'ben'], 'pw-ben\n');
    await admin(cloud, ['member', 'add', 'flat-a', 'ben', 'member']);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    for (const proc of [gateway, cloud]) if (proc) await stop(proc).catch(() => {});
  });

  test('by keyboard in the detail view: the tile moves to its new room, another browser sees it, a cloud restart keeps it; axe 0', async () => {
    const page = await openPage(browser, base, desktop);
    const other = await openPage(browser, base, phone);
    await login(page, anna);
    await online(page);
    await login(other, anna);
    await online(other);
    await expectPlace(page, 'lamp-1', { room: 'Living room', name: 'Lamp' });

    const lamp = device(page, 'lamp-1');
    await lamp.openDetails();
    const open = lamp.card.getByRole('button', { name: 'Rename / room: Lamp' });
    assert.equal(await open.getAttribute('aria-expanded'), 'false');
    // Keyboard only: focus reaches the button, Enter opens the form with the name field focused.
    await open.focus();
    await page.keyboard.press('Enter');
    assert.equal(await open.getAttribute('aria-expanded'), 'true');
    const name = lamp.card.getByLabel('Name', { exact: true });
    const room = lamp.card.getByLabel('Room', { exact: true });
    assert.equal(await name.evaluate((el) => el === document.activeElement), true, 'the name field has the focus');
    assert.equal(await name.inputValue(), 'Lamp');
    assert.equal(await room.inputValue(), 'Living room');
    assert.deepEqual(await axeViolations(page), [], 'the rename form open');
    await screenshot(page, 'label-form', { crop: true });
    await page.keyboard.press('Control+A');
    await page.keyboard.type('Reading lamp');
    await page.keyboard.press('Tab');
    assert.equal(await room.evaluate((el) => el === document.activeElement), true, 'Tab goes to the room field');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('Study');
    await page.keyboard.press('Enter'); // submits the form
    await expectPlace(page, 'lamp-1', { room: 'Study', name: 'Reading lamp' });
    const status = device(page, 'lamp-1').card.locator('.label-status');
    await waitFor(async () => /Saved/.test(await status.textContent()), 5000, { message: 'saved' });
    assert.equal(
      await device(page, 'lamp-1').card.getByRole('button', { name: 'Rename / room: Reading lamp' }).evaluate((el) => el === document.activeElement),
      true,
      'the keyboard is back on the tile\'s Rename / room',
    );
    // The rooms in order: Hall, Study (the living room is empty now and gone).
    assert.deepEqual(await page.locator('section.room h2').allTextContents(), ['Hall', 'Study']);
    // The other browser of the flat, at once (the same instance sends it a devices message).
    await expectPlace(other, 'lamp-1', { room: 'Study', name: 'Reading lamp' }, 2000);
    assert.deepEqual(await axeViolations(page), [], 'after the rename');
    assert.deepEqual(await axeViolations(other), [], 'the other browser, a phone');

    // The event log says who did it.
    await page.locator('#show-events').click();
    await waitFor(async () => /named "Reading lamp" in Study by anna/.test(await page.locator('#event-list').textContent()), 5000, {
      message: 'the rename in the event log',
    });
    await page.locator('#show-devices').click();

    // A cloud restart: the label comes from the store.
    const configFile = cloud.configFile;
    await stop(cloud);
    cloud = await startCloud({ port, configFile });
    await online(other, 15_000);
    await expectPlace(other, 'lamp-1', { room: 'Study', name: 'Reading lamp' });
    const fresh = await openPage(browser, base, desktop);
    await login(fresh, anna);
    await online(fresh);
    await expectPlace(fresh, 'lamp-1', { room: 'Study', name: 'Reading lamp' });

    // Both fields emptied: the gateway's name and room again, everywhere.
    const again = device(fresh, 'lamp-1');
    await again.openDetails();
    await again.card.getByRole('button', { name: 'Rename / room: Reading lamp' }).click();
    await again.card.getByLabel('Name', { exact: true }).fill('');
    await again.card.getByLabel('Room', { exact: true }).fill('');
    await again.card.getByRole('button', { name: 'Save' }).click();
    await expectPlace(fresh, 'lamp-1', { room: 'Living room', name: 'Lamp' });
    await expectPlace(other, 'lamp-1', { room: 'Living room', name: 'Lamp' });
    for (const p of [page, other, fresh]) {
      assert.deepEqual(p.problems.filter((x) => !/ERR_CONNECTION_REFUSED/.test(x)), []);
      await p.context().close();
    }
  });

  test('a bad name is refused with the cloud\'s reason on the tile, nothing changes', async () => {
    const page = await openPage(browser, base, desktop);
    await login(page, anna);
    await online(page);
    const lamp = device(page, 'lamp-1');
    await lamp.openDetails();
    await lamp.card.getByRole('button', { name: 'Rename / room: Lamp' }).click();
    // (The field takes 64 characters; a script past it gets the cloud's refusal.)
    await lamp.card.getByLabel('Name', { exact: true }).evaluate((input) => {
      input.removeAttribute('maxlength');
      input.value = 'x'.repeat(65);
    });
    await lamp.card.getByRole('button', { name: 'Save' }).click();
    await waitFor(async () => /Not saved: name: at most 64 characters, got 65/.test(await lamp.card.locator('.label-status').textContent()), 5000, {
      message: 'the refusal shown',
    });
    await expectPlace(page, 'lamp-1', { room: 'Living room', name: 'Lamp' });
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('a member has no "Rename / room", and the cloud refuses the message from one (forbidden); an owner\'s for another flat\'s device is unknown', async () => {
    const page = await openPage(browser, base, desktop);
    await login(page, ben);
    await online(page);
    assert.equal(await page.locator('#account-role').textContent(), 'member');
    const lamp = device(page, 'lamp-1');
    await lamp.openDetails();
    assert.equal(await lamp.card.locator('.label-edit').count(), 0, 'no Rename / room for a member');
    assert.deepEqual(await axeViolations(page), [], 'a member\'s details');
    await page.context().close();

    const member = await wsLogin(port, ben);
    const refused = await member.ask({ type: 'device_label', id: 'x-1', device: 'lamp-1', name: 'Mine', room: 'Kitchen' }, ['error', 'device_label']);
    assert.deepEqual({ type: refused.type, code: refused.code, id: refused.id }, { type: 'error', code: 'forbidden', id: 'x-1' });
    member.ws.close();
    const owner = await wsLogin(port, anna);
    const unknown = await owner.ask({ type: 'device_label', id: 'x-2', device: 'lamp-of-flat-b', name: 'X', room: '' }, ['error', 'device_label']);
    assert.equal(unknown.code, 'unknown_device');
    // Nothing changed: a fresh snapshot shows the gateway's name.
    const check = await wsLogin(port, anna);
    const snap = check.inbox.find((m) => m.type === 'snapshot');
    assert.deepEqual(snap.devices.map((d) => [d.id, d.name, d.room]).sort(), [['door-1', 'Front door', 'Hall'], ['lamp-1', 'Lamp', 'Living room']]);
    owner.ws.close();
    check.ws.close();
  });
});
