// A chart's data over a time range, without the DOM: the ranges the page offers and what each
// asks the cloud's `history` for (docs/protocol.md "history"), a reply made into a series
// (raw points, or rollup buckets with min/max/avg), live values appended to a range that
// ends now, the ticks of the time and value axes, the nearest point, and a state timeline's
// segments. chart.js draws them.

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

// The preset ranges, each ending now. A measured value's chart asks for the resolution named
// here (`auto` for an hour: every raw value, or minutes when a fast device sent more than a
// reply holds); a state timeline always asks `auto`, which gives every change when the raw
// values fit and the rollups' last value per minute or hour otherwise.
export const RANGES = [
  { name: '1h', ms: HOUR, resolution: 'auto' },
  { name: '24h', ms: DAY, resolution: '1m' },
  { name: '7d', ms: 7 * DAY, resolution: '1h' },
  { name: '30d', ms: 30 * DAY, resolution: '1h' },
];
export const DEFAULT_RANGE = '24h';

export function rangeOf(name) {
  return RANGES.find((r) => r.name === name) || RANGES.find((r) => r.name === DEFAULT_RANGE);
}

// The `history` request of one chart. `custom`: { from, to } (ms) for the range 'custom',
// answered at the finest level that fits (`auto`).
export function historyRequest(device, capability, rangeName, { timeline = false, id, custom } = {}) {
  const head = { type: 'history', ...(id ? { id } : {}), device, capability };
  if (rangeName === 'custom' && custom) return { ...head, range: 'custom', from: custom.from, to: custom.to, resolution: 'auto' };
  const range = rangeOf(rangeName);
  return { ...head, range: range.name, resolution: timeline ? 'auto' : range.resolution };
}

// A custom range from two datetime-local fields' values (local time): { from, to } or null
// when either is missing or from is not before to.
export function customRange(fromText, toText) {
  const from = Date.parse(fromText);
  const to = Date.parse(toText);
  if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) return null;
  return { from, to };
}

const BUCKET_MS = { '1m': MINUTE, '1h': HOUR };

// A series: { from, to, span (ms; 0: the recent values, their own span), bucketMs (0: raw),
// endsNow (a preset or the recent values: live values join it; a custom range: they do not),
// points: [[ts, value]] (raw), buckets: [[start, min, max, avg, last, count]] }.
// `numeric`: keep numbers only (a measured value); else every scalar (a timeline).
export function seriesFromReply(msg, { numeric = true, now = Date.now() } = {}) {
  const bucketMs = BUCKET_MS[msg.resolution] || 0;
  const preset = RANGES.find((r) => r.name === msg.range);
  const to = typeof msg.to === 'number' ? msg.to : now;
  const span = preset ? preset.ms : typeof msg.from === 'number' ? to - msg.from : 0;
  const endsNow = Boolean(preset) || !msg.resolution;
  const series = { from: typeof msg.from === 'number' ? msg.from : to - span, to, span, bucketMs, endsNow, points: [], buckets: [] };
  const ok = (v) => (numeric ? typeof v === 'number' : v !== null && typeof v !== 'object');
  if (bucketMs) {
    for (const b of Array.isArray(msg.buckets) ? msg.buckets : []) {
      if (!Array.isArray(b) || typeof b[0] !== 'number') continue;
      if (numeric ? typeof b[3] === 'number' : ok(b[4])) series.buckets.push(b.slice(0, 6));
    }
  } else {
    for (const p of Array.isArray(msg.points) ? msg.points : []) {
      if (Array.isArray(p) && typeof p[0] === 'number' && ok(p[1])) series.points.push([p[0], p[1]]);
    }
  }
  if (!span) {
    // the recent values: from the first to the last
    const list = series.points;
    series.from = list.length ? list[0][0] : to;
    series.to = list.length ? list[list.length - 1][0] : to;
  }
  return series;
}

// The series' values as [ts, value] (a bucket: at its middle, its average; a timeline's bucket:
// at its start, its last value).
export function pointsOf(series, { timeline = false } = {}) {
  if (!series.bucketMs) return series.points;
  return series.buckets.map((b) => (timeline ? [b[0], b[4]] : [b[0] + series.bucketMs / 2, b[3]]));
}

// A live value (an update) joins a series whose range ends now: raw values are appended, a
// rollup's last bucket takes it in (min, max, avg, last, count) or a new bucket starts; the
// range moves on to the value's time and what falls out of it goes. Values older than the
// series' last are left out (time order). Returns whether the series changed.
export function appendLive(series, ts, value, { maxPoints = 0, keepBefore = false } = {}) {
  if (typeof ts !== 'number') return false;
  if (series.bucketMs) {
    const last = series.buckets[series.buckets.length - 1];
    const start = Math.floor(ts / series.bucketMs) * series.bucketMs;
    if (last && start < last[0]) return false;
    const num = typeof value === 'number' ? value : typeof value === 'boolean' ? Number(value) : null;
    if (last && last[0] === start) {
      if (num !== null && typeof last[3] === 'number') {
        last[1] = Math.min(last[1], num);
        last[2] = Math.max(last[2], num);
        last[3] = (last[3] * last[5] + num) / (last[5] + 1);
      }
      last[4] = value;
      last[5] += 1;
    } else {
      series.buckets.push([start, num, num, num, value, 1]);
    }
  } else {
    const last = series.points[series.points.length - 1];
    if (last && ts < last[0]) return false;
    series.points.push([ts, value]);
    if (maxPoints && series.points.length > maxPoints) series.points.splice(0, series.points.length - maxPoints);
  }
  moveTo(series, Math.max(series.to, ts), { keepBefore });
  return true;
}

// The range (one that ends now) moves on to `now`; what falls out of it goes (a timeline keeps
// the last value before the range: it says the state at the range's start).
export function moveTo(series, now, { keepBefore = false } = {}) {
  if (!series.span) {
    if (series.points.length) series.from = series.points[0][0];
    series.to = Math.max(series.to, now);
    return;
  }
  series.to = Math.max(series.to, now);
  series.from = series.to - series.span;
  const list = series.bucketMs ? series.buckets : series.points;
  const end = (e) => (series.bucketMs ? e[0] + series.bucketMs : e[0]);
  let drop = 0;
  while (drop < list.length && end(list[drop]) < series.from) drop += 1;
  if (keepBefore && drop > 0) drop -= 1;
  if (drop) list.splice(0, drop);
}

// The index of the point nearest to ts in [[ts, …]] (time order); -1 when there are none.
export function nearestIndex(points, ts) {
  if (!points.length) return -1;
  let lo = 0;
  let hi = points.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < ts) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && ts - points[lo - 1][0] <= points[lo][0] - ts) return lo - 1;
  return lo;
}

// Time-axis steps, finest first; each tick sits on a multiple of its step in local time (a
// day's ticks at midnight).
const TIME_STEPS = [
  1000, 2000, 5000, 10_000, 15_000, 30_000,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR, 6 * HOUR, 8 * HOUR, 12 * HOUR, DAY, 2 * DAY, 3 * DAY, 7 * DAY,
];

// The ticks between from and to: the finest step giving at most maxTicks, aligned in local
// time. offsetMin(ts): the time zone's offset as Date.getTimezoneOffset gives it (minutes
// behind UTC), a parameter for tests.
export function timeTicks(from, to, maxTicks = 5, offsetMin = (ts) => new Date(ts).getTimezoneOffset()) {
  if (!(to > from)) return { step: 0, ticks: [] };
  const step = TIME_STEPS.find((s) => (to - from) / s <= maxTicks) || Math.ceil((to - from) / maxTicks / DAY) * DAY;
  // local "wall clock" ms = ts - offset; a tick is a multiple of the step in it
  const offset = (ts) => offsetMin(ts) * MINUTE;
  const ticks = [];
  for (let k = Math.ceil((from - offset(from)) / step); ; k++) {
    const local = k * step;
    const ts = local + offset(local + offset(from));
    if (ts > to) break;
    if (ts >= from) ticks.push(ts);
  }
  return { step, ticks };
}

// The value axis: a "nice" step (1, 2, 2.5 or 5 times a power of ten), the domain widened to
// whole steps, the ticks in it. A flat line (lo === hi) gets a domain around its value.
export function valueTicks(lo, hi, maxTicks = 4) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { lo: 0, hi: 1, step: 1, ticks: [0, 1] };
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = Math.max(Math.abs(hi) * 0.05, 0.5);
    lo -= pad;
    hi += pad;
  }
  const rough = (hi - lo) / Math.max(1, maxTicks);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough * (1 - 1e-9));
  const first = Math.floor(lo / step + 1e-9) * step;
  const last = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let i = 0; first + i * step <= last + step * 1e-9; i++) ticks.push(round(first + i * step, step));
  return { lo: round(first, step), hi: round(last, step), step, ticks };
}

// A tick's value without float noise (0.30000000000000004 -> 0.3).
function round(v, step) {
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 2);
  return Number(v.toFixed(Math.min(digits, 12)));
}

// A state timeline's segments over [from, to]: [{ from, to, value }] with equal neighbours
// merged; a value before `from` (the state at the start) is clipped to it. Before the first
// known value nothing is said (the caller draws it as unknown).
export function segmentsOf(points, from, to) {
  const segments = [];
  for (let i = 0; i < points.length; i++) {
    const [ts, value] = points[i];
    const start = Math.max(ts, from);
    const end = Math.min(i + 1 < points.length ? points[i + 1][0] : to, to);
    if (end < start || start > to) continue;
    const prev = segments[segments.length - 1];
    if (prev && prev.value === value) prev.to = end;
    else segments.push({ from: start, to: end, value });
  }
  // (a value that came just now is a segment too, however short)
  return segments.filter((s, i) => s.to > s.from || i === segments.length - 1);
}

// The total time of each value in the segments, longest first: [[value, ms]].
export function durations(segments) {
  const total = new Map();
  for (const s of segments) total.set(s.value, (total.get(s.value) || 0) + (s.to - s.from));
  return [...total].sort((a, b) => b[1] - a[1]);
}

// How a state looks on a timeline: 'alert' (unlocked, open), 'ok' (locked, closed), 'on',
// 'off', or 'v0'…'v3' for another enum's options (by their order).
export function stateLook(cap, value) {
  if (cap.name === 'lock') return value === 'unlocked' ? 'alert' : value === 'locked' ? 'ok' : 'v0';
  if (cap.name === 'contact' && typeof value === 'boolean') return value ? 'ok' : 'alert';
  if (cap.name === 'open' && typeof value === 'boolean') return value ? 'alert' : 'ok';
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  const i = Array.isArray(cap.options) ? cap.options.indexOf(value) : -1;
  return `v${Math.max(0, i) % 4}`;
}
