// The history in a device's detail view, in headless Chromium against the real
// flatlink-cloud (with its SQLite store) and flatlinkd (sim devices): a range button asks the
// cloud's `history` for that range and resolution, the chart shows a time axis and a value
// axis with the unit; a 7-day range draws the hourly rollups of values stored days ago (seeded
// through a gateway link whose statuses carry old timestamps, as a gateway's outbox replays
// them); the keyboard moves the cursor; the door's state timeline shows the "unlocked"
// segment after the door was unlocked, live and again from the store. A cloud without a store
// keeps the recent values' chart without ranges. axe-core checks each view.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { rawGateway } from '../integration/flatlink.mjs';
import { waitFor } from '../integration/harness.mjs';
import {
  axeViolations,
  desktop,
  device,
  freePort,
  launchBrowser,
  login,
  openPage,
  screenshot,
  startCloud,
  startGateway,
  stop,
} from './fixture.mjs';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const flat = { id: 'flat-a', name: 'Demo flat', token: 'token-of-flat-a', users: [{ name: 'anna', password: 'pw-anna' }] };
const anna = { flat: 'flat-a', user: 'anna', password: 'pw-anna' };
const devices = [
  { id: 'thermo-1', kind: 'thermometer', name: 'Thermometer', room: 'Living room', interval_ms: 500 },
  { id: 'door-1', kind: 'lock', name: 'Front door', room: 'Hall' },
];
// The thermometer as the sim adapter describes it, for the seeding link's hello.
const thermoReport = {
  id: 'thermo-1',
  name: 'Thermometer',
  kind: 'thermometer',
  capabilities: [{ name: 'temperature', type: 'number', writable: false, unit: '°C' }],
  state: {},
  online: true,
};

async function expectAttr(locator, name, value, timeout = 5000) {
  await waitFor(async () => (await locator.getAttribute(name)) === value, timeout, {
    message: `${locator} ${name}="${value}" (is "${await locator.getAttribute(name).catch(() => '?')}")`,
  });
}

const online = (page, timeout = 10_000) => expectAttr(page.locator('#gateway-link'), 'data-state', 'online', timeout);

// The history requests a page sends over its WebSocket (and, in sent.updates, how many
// updates it received).
function recordHistoryRequests(page) {
  const sent = [];
  sent.updates = 0;
  const parse = (f) => {
    try {
      return JSON.parse(String(f.payload));
    } catch {
      return {}; // a binary frame
    }
  };
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => {
      const msg = parse(f);
      if (msg.type === 'history') sent.push(msg);
    });
    ws.on('framereceived', (f) => {
      if (parse(f).type === 'update') sent.updates += 1;
    });
  });
  return sent;
}

// A datetime-local field's value for ts (local time, to the minute).
function localField(ts) {
  const d = new Date(ts);
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

async function lastRequest(sent, capability, range) {
  return waitFor(() => sent.findLast((m) => m.capability === capability && m.range === range), 5000, {
    message: `a history request of ${capability} for ${range} (sent: ${JSON.stringify(sent.map((m) => [m.capability, m.range]))})`,
  });
}

describe('history charts with the store', () => {
  let port;
  let cloud;
  let gateway;
  let browser;
  let base;
  const seeded = []; // [ts, value] stored before the page opened: 2 to 6 days old
  const now = Date.now();

  before(async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}/`;
    cloud = await startCloud({ port, flats: [flat], store: true });
    // Older values: a gateway link sends statuses observed 6 to 2 days ago, every 30 minutes
    // (within the store's raw retention of 7 days: stored raw and rolled up per minute and hour).
    const seed = await rawGateway(port, flat.token);
    seed.send({ type: 'hello', gateway: 'gw-seed', version: '0.1.0', devices: [thermoReport], next_seq: 1, dropped: 0 });
    await seed.next('ack');
    const items = [];
    for (let ts = now - 6 * DAY, seq = 1; ts <= now - 2 * DAY; ts += 30 * 60_000, seq++) {
      const value = 15 + (seq % 12) / 2;
      seeded.push([ts, value]);
      items.push({ seq, device: 'thermo-1', state: { temperature: value }, ts });
    }
    seed.send({ type: 'status', items });
    await seed.next('ack', (m) => m.seq >= items.length, 10_000);
    seed.close();
    await seed.waitClosed();
    gateway = await startGateway({ port, flat: 'flat-a', gatewayId: 'gw-a', token: flat.token, devices });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    for (const proc of [gateway, cloud]) if (proc) await stop(proc).catch(() => {});
  });

  test('a range button asks for its range; the chart has a time axis and a value axis with the unit; 7 d draws the values of days ago; the keyboard moves the cursor; 0 axe violations', async () => {
    const page = await openPage(browser, base, desktop);
    const sent = recordHistoryRequests(page);
    await login(page, anna);
    await online(page);
    const thermo = device(page, 'thermo-1');
    const chart = thermo.chart('temperature');
    await thermo.openDetails();

    // 24 h by default, from the minute rollups: the average line with its min-max band
    const day = await lastRequest(sent, 'temperature', '24h');
    assert.deepEqual({ ...day, id: undefined }, { type: 'history', id: undefined, device: 'thermo-1', capability: 'temperature', range: '24h', resolution: '1m' });
    assert.equal(await chart.getAttribute('data-range'), '24h');
    assert.equal(await chart.getByRole('button', { name: '24 h' }).getAttribute('aria-pressed'), 'true');
    await expectAttr(chart, 'data-state', 'ready');
    assert.equal(await chart.getAttribute('data-resolution'), '1m');
    assert.equal(Number(await chart.getAttribute('data-to')) - Number(await chart.getAttribute('data-from')), DAY);
    // (the last minute's values of the sim thermometer, reporting every 500 ms)
    await waitFor(async () => Number(await chart.getAttribute('data-points')) >= 1, 5000, { message: 'a minute of values' });
    // the axes: the unit above the values, values on grid lines, times of day along the bottom
    assert.equal(await chart.locator('.axis-y text.unit').textContent(), '°C');
    const values = await chart.locator('.axis-y text.tick-label').allTextContents();
    assert.ok(values.length >= 2 && values.every((v) => /^-?\d+([.,]\d+)?$/.test(v)), `value ticks ${values}`);
    const times = await chart.locator('.axis-x text.tick-label').allTextContents();
    assert.ok(times.length >= 2 && times.every((v) => /^\d{1,2}:\d{2}( [AP]M)?$/.test(v)), `time ticks ${times}`);
    assert.match(await chart.locator('figcaption').textContent(), /^last 24 h: .+ °C · average per minute/);
    assert.notEqual(await chart.locator('path.chart-band').getAttribute('d'), '');

    // 7 d: hourly rollups; the values stored days ago are drawn
    await chart.getByRole('button', { name: '7 d' }).click();
    const week = await lastRequest(sent, 'temperature', '7d');
    assert.equal(week.resolution, '1h');
    await expectAttr(chart, 'data-resolution', '1h');
    await expectAttr(chart, 'data-state', 'ready');
    assert.equal(await chart.getByRole('button', { name: '7 d' }).getAttribute('aria-pressed'), 'true');
    assert.equal(await chart.getByRole('button', { name: '24 h' }).getAttribute('aria-pressed'), 'false');
    const first = Number(await chart.getAttribute('data-first'));
    const seededHours = new Set(seeded.map(([ts]) => Math.floor(ts / HOUR))).size;
    const drawn = Number(await chart.getAttribute('data-points'));
    assert.ok(first <= now - 6 * DAY + HOUR, `the first bucket drawn is ${((now - first) / DAY).toFixed(2)} days old`);
    assert.ok(drawn >= seededHours && drawn <= seededHours + 2, `${drawn} hourly buckets drawn, ${seededHours} seeded hours (+ the live ones)`);
    // days along the bottom now, not times
    const dates = await chart.locator('.axis-x text.tick-label').allTextContents();
    assert.ok(dates.length >= 2 && dates.every((v) => !v.includes(':')), `date ticks ${dates}`);
    assert.match(await chart.locator('figcaption').textContent(), /^last 7 d: 15–\d+(\.\d+)? °C · average per hour/);
    // the band spans the seeded values' lowest to highest
    const lows = await chart.locator('.axis-y text.tick-label').allTextContents();
    assert.ok(Number(lows[0].replace(',', '.')) <= 15, `the value axis starts at ${lows[0]}`);

    // The cursor by keyboard: End is the newest bucket, Home the oldest (days ago).
    const readout = chart.getByRole('slider', { name: 'Thermometer temperature: point in time' });
    await readout.focus();
    await page.keyboard.press('Home');
    assert.equal(await readout.getAttribute('aria-valuenow'), '0');
    const oldest = await readout.getAttribute('aria-valuetext');
    assert.match(oldest, /: average \d+(\.\d+)? °C, \d+(\.\d+)? to \d+(\.\d+)? °C$/);
    assert.equal(await readout.textContent(), oldest, 'the readout shows what it says');
    await page.keyboard.press('ArrowRight');
    assert.equal(await readout.getAttribute('aria-valuenow'), '1');
    assert.equal(await chart.locator('line.cursor').getAttribute('visibility'), 'visible');
    await page.keyboard.press('End');
    assert.equal(await readout.getAttribute('aria-valuenow'), String(Number(await readout.getAttribute('aria-valuemax'))));
    // the pointer picks the nearest too
    const box = await chart.locator('svg').boundingBox();
    await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2);
    const picked = Number(await readout.getAttribute('aria-valuenow'));
    assert.ok(picked >= 0 && picked < drawn - 1, `the pointer picked ${picked}`);
    assert.deepEqual(await axeViolations(page), [], 'a chart of 7 days open');
    await screenshot(page, 'history-7d', { crop: true });

    // 1 h: every raw value of the last hour; live values keep coming in
    await chart.getByRole('button', { name: '1 h' }).click();
    assert.equal((await lastRequest(sent, 'temperature', '1h')).resolution, 'auto');
    await expectAttr(chart, 'data-resolution', 'raw');
    const hourFirst = Number(await chart.getAttribute('data-first'));
    assert.ok(hourFirst >= Date.now() - HOUR - 5000, 'nothing older than the hour');
    const before = Number(await chart.getAttribute('data-points'));
    await waitFor(async () => Number(await chart.getAttribute('data-points')) > before, 5000, { message: 'live values appended' });
    assert.match(await chart.locator('figcaption').textContent(), /^last 1 h: .+ · every value$/);

    // Custom: from 5 to 3 days ago, asked as such (auto: every raw value there); it does not
    // end now, so live values stay out of it.
    await chart.getByRole('button', { name: 'Custom' }).click();
    assert.equal(await chart.getByRole('button', { name: 'Custom' }).getAttribute('aria-expanded'), 'true');
    const form = chart.locator('form.custom-range');
    await form.getByLabel('From').fill(localField(now - 5 * DAY));
    await form.getByLabel('To').fill(localField(now - 3 * DAY));
    assert.deepEqual(await axeViolations(page), [], 'the custom range form');
    await form.getByRole('button', { name: 'Show' }).click();
    const custom = await lastRequest(sent, 'temperature', 'custom');
    assert.equal(custom.resolution, 'auto');
    assert.ok(Math.abs(custom.from - (now - 5 * DAY)) < 60_000 && Math.abs(custom.to - (now - 3 * DAY)) < 60_000, JSON.stringify(custom));
    await expectAttr(chart, 'data-range', 'custom');
    await expectAttr(chart, 'data-state', 'ready');
    assert.equal(await chart.getAttribute('data-resolution'), 'raw');
    const inCustom = seeded.filter(([ts]) => ts >= custom.from && ts <= custom.to);
    assert.equal(Number(await chart.getAttribute('data-points')), inCustom.length, 'every stored value of those two days');
    assert.equal(Number(await chart.getAttribute('data-first')), inCustom[0][0]);
    assert.match(await chart.locator('figcaption').textContent(), /^.+ to .+: 15–20\.5 °C · every value$/);
    const updates = sent.updates;
    await waitFor(() => sent.updates >= updates + 3, 5000, { message: 'three more live updates' });
    assert.equal(Number(await chart.getAttribute('data-points')), inCustom.length, 'no live value joined a range in the past');
    assert.equal(Number(await chart.getAttribute('data-to')), custom.to);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('the door\'s timeline shows an "unlocked" segment after the door was unlocked, live and from the store; 0 axe violations', async () => {
    const page = await openPage(browser, base, desktop);
    const sent = recordHistoryRequests(page);
    await login(page, anna);
    await online(page);
    const door = device(page, 'door-1');
    await door.openDetails();
    const timeline = door.card.locator('figure.timeline[data-capability="lock"]');
    await lastRequest(sent, 'lock', '24h');
    await expectAttr(timeline, 'data-state', 'ready');
    assert.equal(await timeline.locator('rect.seg[data-value="unlocked"]').count(), 0, 'never unlocked yet');

    await page.getByRole('button', { name: 'Front door: unlock' }).click();
    await page.locator('#confirm-dialog').getByRole('button', { name: 'Confirm' }).click();
    await expectAttr(door.outcome('lock'), 'data-outcome', 'ok');
    // live: the update's value starts a segment, in the alert colour, named in the legend
    const unlocked = timeline.locator('rect.seg[data-value="unlocked"]');
    await waitFor(async () => (await unlocked.count()) === 1, 5000, { message: 'an unlocked segment' });
    assert.equal(await unlocked.getAttribute('data-look'), 'alert');
    assert.match(await timeline.locator('.legend').textContent(), /unlocked \d+ s/);
    assert.match(await timeline.locator('figcaption').textContent(), /^last 24 h: .*unlocked \d+ s/);
    const readout = timeline.getByRole('slider', { name: 'Front door lock: point in time' });
    await readout.focus();
    await page.keyboard.press('End');
    assert.match(await readout.getAttribute('aria-valuetext'), /^unlocked: .+ to .+ \(\d+ s\)$/);
    assert.deepEqual(await axeViolations(page), [], 'a state timeline open');
    await screenshot(page, 'history-timeline', { crop: true });

    // from the store: another range asks again, and the answer holds the unlock
    await timeline.getByRole('button', { name: '1 h' }).click();
    const hour = await lastRequest(sent, 'lock', '1h');
    assert.equal(hour.resolution, 'auto');
    await expectAttr(timeline, 'data-range', '1h');
    await expectAttr(timeline, 'data-state', 'ready');
    assert.equal(await unlocked.count(), 1, 'the stored unlock');
    // before it the store holds nothing of the lock: not known, drawn as such
    assert.equal(await timeline.locator('rect.seg-unknown').count(), 1);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test('the history in German: range buttons, caption and axis labels in the locale', async () => {
    const page = await openPage(browser, base, desktop, { locale: 'de-DE' });
    await login(page, anna);
    await online(page);
    const thermo = device(page, 'thermo-1');
    await thermo.openDetails();
    const chart = thermo.chart('temperature');
    await expectAttr(chart, 'data-state', 'ready');
    assert.equal(await chart.getByRole('button', { name: '24 Std.' }).getAttribute('aria-pressed'), 'true');
    await waitFor(async () => /^letzte 24 Std\.: .+ · Mittel pro Minute/.test(await chart.locator('figcaption').textContent()), 5000, {
      message: 'a German caption',
    });
    const times = await chart.locator('.axis-x text.tick-label').allTextContents();
    assert.ok(times.length >= 2 && times.every((v) => /^\d{1,2}:\d{2}$/.test(v)), `24-hour times: ${times}`);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
});

describe('history without a store', () => {
  test('the recent values as before: a chart with axes and the unit, no range buttons, no timelines', async () => {
    const port = await freePort();
    const cloud = await startCloud({ port, flats: [flat] });
    const gateway = await startGateway({ port, flat: 'flat-a', gatewayId: 'gw-a', token: flat.token, devices });
    const browser = await launchBrowser();
    try {
      const page = await openPage(browser, `http://127.0.0.1:${port}/`, desktop);
      await login(page, anna);
      await online(page);
      const thermo = device(page, 'thermo-1');
      const chart = thermo.chart('temperature');
      await waitFor(async () => Number(await chart.getAttribute('data-points')) >= 3, 5000, { message: 'chart points' });
      await thermo.openDetails();
      assert.equal(await chart.locator('button.range').count(), 0);
      assert.equal(await page.locator('figure.timeline').count(), 0);
      assert.equal(await chart.locator('.axis-y text.unit').textContent(), '°C');
      assert.match(await chart.locator('svg').getAttribute('aria-label'), /^Thermometer temperature, last \d+ s: /);
      assert.deepEqual(await axeViolations(page), []);
      assert.deepEqual(page.problems, []);
    } finally {
      await browser.close();
      for (const proc of [gateway, cloud]) await stop(proc).catch(() => {});
    }
  });
});
