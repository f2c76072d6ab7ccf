// The history charts' computations (cloud-server/dashboard/history.js), without a browser:
// what each range asks the cloud, a reply made into a series, live values joining a range
// that ends now (raw and rollups), the time axis's ticks in local time, the value axis's nice
// steps, the nearest point, and a state timeline's segments ("when the door was open").
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  DAY,
  HOUR,
  MINUTE,
  RANGES,
  appendLive,
  customRange,
  durations,
  historyRequest,
  moveTo,
  nearestIndex,
  pointsOf,
  segmentsOf,
  seriesFromReply,
  stateLook,
  timeTicks,
  valueTicks,
} from '../../cloud-server/dashboard/history.js';

const utc = () => 0;
const berlinWinter = () => -60; // Date.getTimezoneOffset: UTC+1
const iso = (list) => list.map((ts) => new Date(ts).toISOString().slice(5, 16));

test('each range asks for itself with its resolution; a timeline asks auto', () => {
  assert.deepEqual(RANGES.map((r) => r.name), ['1h', '24h', '7d', '30d']);
  const asked = RANGES.map((r) => historyRequest('thermo-1', 'temperature', r.name, { id: `h-${r.name}` }));
  assert.deepEqual(
    asked.map((r) => [r.id, r.range, r.resolution]),
    [
      ['h-1h', '1h', 'auto'],
      ['h-24h', '24h', '1m'],
      ['h-7d', '7d', '1h'],
      ['h-30d', '30d', '1h'],
    ],
  );
  assert.equal(asked[0].type, 'history');
  assert.equal(asked[0].from, undefined, 'a preset ends now: no from/to');
  assert.equal(historyRequest('door-1', 'lock', '7d', { timeline: true }).resolution, 'auto');
  assert.equal(historyRequest('door-1', 'lock', 'nonsense').range, '24h', 'unknown: the default');
  const custom = customRange('2026-12-01T10:00', '2026-12-03T10:00');
  assert.equal(custom.to - custom.from, 2 * DAY);
  assert.equal(new Date(custom.from).getHours(), 10, 'the fields are local time');
  assert.deepEqual(historyRequest('thermo-1', 'temperature', 'custom', { custom, id: 'h-1' }), {
    type: 'history',
    id: 'h-1',
    device: 'thermo-1',
    capability: 'temperature',
    range: 'custom',
    from: custom.from,
    to: custom.to,
    resolution: 'auto',
  });
  assert.equal(customRange('2026-12-03T10:00', '2026-12-01T10:00'), null, 'from after to');
  assert.equal(customRange('', '2026-12-01T10:00'), null, 'a field left empty');
});

test('a reply becomes a series: raw points (numbers only for a chart) or buckets, over the range', () => {
  const now = 10 * DAY;
  const raw = seriesFromReply(
    { resolution: 'raw', range: '1h', from: now - HOUR, to: now, points: [[now - 50 * MINUTE, 20], [now - 40 * MINUTE, 'x'], [now - 1, 21]] },
    { numeric: true },
  );
  assert.deepEqual(raw, { from: now - HOUR, to: now, span: HOUR, bucketMs: 0, endsNow: true, points: [[now - 50 * MINUTE, 20], [now - 1, 21]], buckets: [] });
  const timeline = seriesFromReply({ resolution: 'raw', range: '24h', from: now - DAY, to: now, points: [[now - HOUR, 'unlocked']] }, { numeric: false });
  assert.deepEqual(timeline.points, [[now - HOUR, 'unlocked']]);

  const hours = seriesFromReply({
    resolution: '1h',
    range: '7d',
    from: now - 7 * DAY,
    to: now,
    buckets: [
      [now - 3 * DAY, 18, 22, 20, 21, 60],
      [now - 2 * DAY, null, null, null, 'heat', 3], // a string's bucket: no average
    ],
  });
  assert.equal(hours.bucketMs, HOUR);
  assert.equal(hours.span, 7 * DAY);
  assert.deepEqual(hours.buckets, [[now - 3 * DAY, 18, 22, 20, 21, 60]]);
  assert.deepEqual(pointsOf(hours), [[now - 3 * DAY + HOUR / 2, 20]], "a bucket's average at its middle");

  // the recent values (a cloud without a store): from the first to the last
  const recent = seriesFromReply({ points: [[1000, 1], [5000, 2]] });
  assert.deepEqual([recent.from, recent.to, recent.span, recent.endsNow], [1000, 5000, 0, true]);
  // a custom range does not end now: live values stay out of it
  const custom = seriesFromReply({ resolution: '1m', range: 'custom', from: now - 3 * DAY, to: now - 2 * DAY, buckets: [] });
  assert.deepEqual([custom.from, custom.to, custom.span, custom.endsNow], [now - 3 * DAY, now - 2 * DAY, DAY, false]);
});

test('live values join a range that ends now: raw appended, a bucket updated or started; the range moves on', () => {
  const now = 100 * DAY;
  const raw = seriesFromReply({ resolution: 'raw', range: '1h', from: now - HOUR, to: now, points: [[now - HOUR + 1000, 1], [now - 10, 2]] });
  assert.equal(appendLive(raw, now + 2 * MINUTE, 3), true);
  assert.deepEqual(raw.points, [[now - 10, 2], [now + 2 * MINUTE, 3]], 'the oldest fell out of the hour');
  assert.equal(raw.to, now + 2 * MINUTE);
  assert.equal(raw.from, raw.to - HOUR);
  assert.equal(appendLive(raw, now, 9), false, 'older than the last: left out');

  const start = Math.floor(now / MINUTE) * MINUTE;
  const minutes = seriesFromReply({ resolution: '1m', range: '24h', from: now - DAY, to: now, buckets: [[start, 10, 20, 15, 20, 2]] });
  appendLive(minutes, start + 30_000, 30);
  assert.deepEqual(minutes.buckets, [[start, 10, 30, 20, 30, 3]], 'min, max, average, last and count take it in');
  appendLive(minutes, start + MINUTE + 1, 5);
  assert.deepEqual(minutes.buckets.at(-1), [start + MINUTE, 5, 5, 5, 5, 1], 'the next minute starts a bucket');

  // a timeline keeps the last value before its range: the state at the range's start
  const lock = seriesFromReply({ resolution: 'raw', range: '1h', from: now - HOUR, to: now, points: [[now - HOUR + 1, 'unlocked'], [now - HOUR + 2, 'locked']] }, { numeric: false });
  moveTo(lock, now + 10 * MINUTE, { keepBefore: true });
  assert.deepEqual(lock.points, [[now - HOUR + 2, 'locked']]);
});

test('time ticks: at most the asked number, on whole steps of local time (midnight for days)', () => {
  const now = Date.UTC(2026, 11, 5, 16, 30);
  assert.deepEqual(iso(timeTicks(now - HOUR, now, 5, utc).ticks), ['12-05T15:30', '12-05T15:45', '12-05T16:00', '12-05T16:15', '12-05T16:30']);
  // 24 h in Berlin: every 6 h of local time (18:00, 00:00, 06:00, 12:00 there)
  const day = timeTicks(now - DAY, now, 5, berlinWinter);
  assert.equal(day.step, 6 * HOUR);
  assert.deepEqual(iso(day.ticks), ['12-04T17:00', '12-04T23:00', '12-05T05:00', '12-05T11:00']);
  // 7 days: every other local midnight
  const week = timeTicks(now - 7 * DAY, now, 5, berlinWinter);
  assert.equal(week.step, 2 * DAY);
  for (const ts of week.ticks) assert.equal(new Date(ts + HOUR).getUTCHours(), 0, 'local midnight');
  const month = timeTicks(now - 30 * DAY, now, 5, utc);
  assert.equal(month.step, 7 * DAY);
  assert.ok(month.ticks.length >= 4 && month.ticks.length <= 5);
  for (const { ticks } of [day, week, month]) assert.ok(ticks.every((ts, i) => i === 0 || ts > ticks[i - 1]));
  assert.deepEqual(timeTicks(5, 5).ticks, [], 'an empty range has no ticks');
});

test('value ticks: nice steps around the values, a flat line gets room around it', () => {
  assert.deepEqual(valueTicks(20.3, 22.7), { lo: 20, hi: 23, step: 1, ticks: [20, 21, 22, 23] });
  assert.deepEqual(valueTicks(0.1, 0.35).ticks, [0.1, 0.2, 0.3, 0.4], 'no float noise');
  assert.deepEqual(valueTicks(-3, 1250).ticks, [-500, 0, 500, 1000, 1500]);
  const flat = valueTicks(21, 21);
  assert.ok(flat.lo < 21 && flat.hi > 21);
  assert.ok(valueTicks(40, 41, 4).ticks.length <= 6);
});

test('the nearest point to a time', () => {
  const points = [[10], [20], [40]];
  assert.equal(nearestIndex(points, 0), 0);
  assert.equal(nearestIndex(points, 14), 0);
  assert.equal(nearestIndex(points, 16), 1);
  assert.equal(nearestIndex(points, 31), 2);
  assert.equal(nearestIndex(points, 99), 2);
  assert.equal(nearestIndex([], 5), -1);
});

test('timeline segments: equal neighbours merged, clipped to the range, the last one up to now', () => {
  assert.deepEqual(segmentsOf([[5, 'locked'], [10, 'locked'], [20, 'unlocked'], [30, 'locked']], 0, 40), [
    { from: 5, to: 20, value: 'locked' },
    { from: 20, to: 30, value: 'unlocked' },
    { from: 30, to: 40, value: 'locked' },
  ]);
  assert.deepEqual(segmentsOf([[-5, true], [10, false]], 0, 20), [
    { from: 0, to: 10, value: true },
    { from: 10, to: 20, value: false },
  ]);
  assert.deepEqual(segmentsOf([], 0, 20), []);
  const segments = segmentsOf([[0, 'locked'], [20, 'unlocked'], [25, 'locked'], [30, 'unlocked']], 0, 40);
  assert.deepEqual(durations(segments), [['unlocked', 15], ['locked', 25]].sort((a, b) => b[1] - a[1]));
});

test("a state's look on the timeline: an unlocked door and an open contact alert", () => {
  assert.equal(stateLook({ name: 'lock' }, 'unlocked'), 'alert');
  assert.equal(stateLook({ name: 'lock' }, 'locked'), 'ok');
  assert.equal(stateLook({ name: 'contact' }, false), 'alert', 'Zigbee2MQTT: contact false is open');
  assert.equal(stateLook({ name: 'open' }, true), 'alert');
  assert.equal(stateLook({ name: 'on' }, true), 'on');
  assert.equal(stateLook({ name: 'on' }, false), 'off');
  assert.equal(stateLook({ name: 'mode', options: ['eco', 'heat', 'cool'] }, 'cool'), 'v2');
});
