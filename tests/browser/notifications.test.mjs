// The Notifications view in headless Chromium against the real flatlink-cloud (with its SQLite
// store) and flatlinkd: with the permission granted, a door unlocked by the device shows a
// Notification (window.Notification spied on), a device's threshold is kept per user in
// localStorage; an owner sets the flat's webhook in the page, is shown its secret once, and a
// local HTTP receiver gets the door's unlock signed with it. axe-core: 0 violations in the view.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';

import { waitFor } from '../integration/harness.mjs';
import { admin, axeViolations, freePort, launchBrowser, login, screenshot, startCloud, startGateway, stop } from './fixture.mjs';

const flat = { id: 'flat-a', name: 'Demo flat', token: 'token-of-flat-a', users: [{ name: 'anna', password: 'pw-anna' }] };
const devices = [
  { id: 'door-1', kind: 'lock', name: 'Front door', room: 'Hall' },
  { id: 'thermo-1', kind: 'thermometer', name: 'Thermometer', room: 'Hall', interval_ms: 200 },
];
const anna = { flat: 'flat-a', user: 'anna', password: 'pw-anna' };

// One command over the protocol from a script's WebSocket login; resolves with its result.
async function command(port, device, set) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'flatlink-browser.v1');
  let result;
  let snapshot = false;
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data));
    if (msg.type === 'snapshot') snapshot = true;
    if (msg.type === 'result') result = msg;
  });
  await new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('error', reject);
  });
  ws.send(JSON.stringify({ type: 'login', ...anna }));
  await waitFor(() => snapshot, 5000, { message: 'the script\'s snapshot' });
  ws.send(JSON.stringify({ type: 'command', id: 'c-1', device, set }));
  await waitFor(() => result, 5000, { message: 'the command\'s result' });
  ws.close();
  return result;
}

describe('notifications', () => {
  let port;
  let cloud;
  let gateway;
  let browser;
  let context;
  let page;
  let hook;
  const received = [];
  before(async () => {
    port = await freePort();
    cloud = await startCloud({ port, flats: [flat], store: true });
    const seen = cloud.lines.filter((l) => /accounts version/.test(l)).length;
    await admin(cloud, ['member', 'role', 'flat-a', 'anna', 'owner']);
    await waitFor(() => cloud.lines.filter((l) => /accounts version/.test(l)).length > seen, 5000);
    gateway = await startGateway({ port, flat: 'flat-a', gatewayId: 'gw-a', token: flat.token, devices });
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.end('ok');
      });
    });
    await new Promise((resolve) => hook.listen(0, '127.0.0.1', resolve));
    browser = await launchBrowser();
    const url = `http://127.0.0.1:${port}/`;
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
    context.setDefaultTimeout(5000);
    await context.grantPermissions(['notifications'], { origin: `http://127.0.0.1:${port}` });
    // Every notification the page makes is recorded (and still made).
    await context.addInitScript(() => {
      const Real = window.Notification;
      window.__notifications = [];
      class Spy extends Real {
        constructor(title, options = {}) {
          window.__notifications.push({ title, body: options.body, tag: options.tag });
          super(title, options);
        }
      }
      window.Notification = Spy;
    });
    page = await context.newPage();
    page.problems = [];
    page.on('pageerror', (err) => page.problems.push(`page error: ${err.message}`));
    await page.goto(url);
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await new Promise((r) => (hook ? hook.close(r) : r()));
    if (gateway) await stop(gateway);
    if (cloud) await stop(cloud);
  });

  test('the view says the permission, keeps the choices per user, and has no axe violations', async () => {
    await login(page, anna);
    await page.locator('#show-notify').click();
    await page.locator('#notify-view').waitFor({ state: 'visible' });
    await waitFor(async () => /allowed on this device/.test(await page.locator('#notify-permission').textContent()), 5000);
    assert.equal(await page.locator('#notify-allow').isHidden(), true, 'no button once allowed');
    // An owner sees the webhook form.
    await page.locator('#webhook-section').waitFor({ state: 'visible' });
    for (const box of ['door_unlocked', 'device_offline', 'gateway_offline']) {
      assert.equal(await page.locator(`#notify-events input[value="${box}"]`).isChecked(), true);
    }
    await page.locator('#notify-events input[value="device_offline"]').uncheck();
    await page.locator('#threshold-device').selectOption('thermo-1');
    await page.locator('#threshold-value').fill('99');
    await page.locator('#threshold-add').click();
    await waitFor(async () => (await page.locator('#threshold-list li').count()) === 1, 3000);
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('flatlink.notify.flat-a.anna')));
    assert.equal(stored.device_offline, false);
    assert.deepEqual(stored.thresholds, [{ device: 'thermo-1', capability: 'temperature', above: 99 }]);
    assert.deepEqual(await axeViolations(page), []);
    await screenshot(page, 'notifications-desktop', { crop: true });
    // German, on a phone's width: the same view, its words German, still 0 violations.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('#lang').selectOption('de');
    await waitFor(async () => (await page.locator('#notify-title').textContent()) === 'Benachrichtigungen', 3000);
    assert.match(await page.locator('#notify-permission').textContent(), /auf diesem Gerät erlaubt/);
    assert.match(await page.locator('#threshold-list li').textContent(), /Thermometer: temperature über 99/);
    assert.equal(await page.locator('#webhook-status').textContent(), 'Kein Webhook gesetzt.');
    // The view's buttons wrap: nothing wider than the phone.
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no horizontal scrolling');
    assert.deepEqual(await axeViolations(page), []);
    await screenshot(page, 'notifications-phone-de');
    await page.locator('#lang').selectOption('en');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test('an owner sets the webhook in the page and sees its secret once; a bad URL is refused', async () => {
    await page.locator('#webhook-url').fill('ftp://127.0.0.1/x');
    await page.locator('#webhook-save').click();
    await waitFor(async () => /Not saved: only http/.test(await page.locator('#webhook-status').textContent()), 5000, {
      message: 'the refusal',
    });
    await page.locator('#webhook-url').fill(`http://127.0.0.1:${hook.address().port}/ha/webhook`);
    await page.locator('#webhook-events input[value="device_offline"]').uncheck();
    await page.locator('#webhook-save').click();
    await waitFor(async () => /signing secret/.test(await page.locator('#webhook-status').textContent()), 5000, {
      message: 'the secret shown',
    });
    assert.equal(await page.locator('#webhook-remove').isDisabled(), false);
    assert.deepEqual(await axeViolations(page), []);
  });

  test('a door unlocked by the device shows a Notification and reaches the webhook with a valid signature', async () => {
    const status = await page.locator('#webhook-status').textContent();
    const secret = status.match(/([0-9a-f]{64})/)[1];
    const t0 = Date.now();
    const result = await command(port, 'door-1', { lock: 'unlocked' });
    assert.equal(result.outcome, 'ok', JSON.stringify(result));
    await waitFor(async () => (await page.evaluate(() => window.__notifications.length)) >= 1, 5000, { message: 'a notification' });
    const shownMs = Date.now() - t0;
    const shown = await page.evaluate(() => window.__notifications);
    assert.deepEqual(shown[0], { title: 'flatlink', body: 'Front door unlocked', tag: 'unlocked-door-1' });
    await waitFor(() => received.length >= 1, 5000, { message: 'the webhook' });
    const hookMs = Date.now() - t0;
    const request = received[0];
    const want = 'sha256=' + createHmac('sha256', secret).update(request.body).digest('hex');
    assert.equal(request.headers['x-flatlink-signature'], want);
    const body = JSON.parse(request.body);
    assert.equal(body.event, 'door_unlocked');
    assert.equal(body.flat, 'flat-a');
    assert.equal(body.name, 'Front door');
    console.log(`# command to notification ${shownMs} ms, to webhook ${hookMs} ms`);
    assert.deepEqual(page.problems, []);
  });

  test('the choices are kept across a reload (the session resumes, localStorage holds them)', async () => {
    await page.reload();
    await page.locator('#show-notify').click();
    await page.locator('#notify-view').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#notify-events input[value="device_offline"]').isChecked(), false);
    assert.equal(await page.locator('#threshold-list li').count(), 1);
    // The webhook is read back from the cloud, without its secret.
    await waitFor(async () => (await page.locator('#webhook-url').inputValue()).includes('/ha/webhook'), 5000);
    assert.doesNotMatch(await page.locator('#webhook-status').textContent(), /[0-9a-f]{64}/);
    assert.equal(await page.locator('#webhook-events input[value="door_unlocked"]').isChecked(), true);
    assert.equal(await page.locator('#webhook-events input[value="device_offline"]').isChecked(), false);
  });

  test('the gateway going offline shows a Notification and reaches the webhook', async () => {
    const before = await page.evaluate(() => window.__notifications.length);
    const hooked = received.length;
    await stop(gateway);
    gateway = null;
    await waitFor(async () => (await page.evaluate(() => window.__notifications.length)) > before, 5000, { message: 'a notification' });
    const last = await page.evaluate(() => window.__notifications.at(-1));
    assert.equal(last.body, "The flat's gateway is offline");
    await waitFor(() => received.length > hooked, 5000, { message: 'the webhook' });
    assert.equal(JSON.parse(received.at(-1).body).event, 'gateway_offline');
  });
});
