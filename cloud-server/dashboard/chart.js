// A device's history in its detail view, drawn as the page's own small SVG (history.js
// computes, this draws): a measured value as a line with a time axis (ticks in the user's
// locale) and a value axis with the unit, rollups as their average with a min–max band; a
// state (a lock, a contact, a lamp's power) as a timeline of coloured segments. Both take
// range buttons (1 h, 24 h, 7 d, 30 d) when the cloud keeps history in its store, and a
// cursor: the pointer or the keyboard (a slider: arrows, Page Up/Down, Home, End) picks a
// point or segment whose time and value the readout says.

import {
  DEFAULT_RANGE,
  RANGES,
  appendLive,
  durations,
  moveTo,
  nearestIndex,
  pointsOf,
  customRange,
  segmentsOf,
  seriesFromReply,
  stateLook,
  timeTicks,
  valueTicks,
} from './history.js';
import { formatDay, formatNumber, formatSpan, formatTime, formatWhen, t } from './i18n.js';
import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
// Drawn in CSS pixels at the figure's width (measured at each draw, drawn again when it
// changes), so that labels keep their size; 320 while the figure is not shown.
const DEFAULT_WIDTH = 320;
const LINE_HEIGHT = 150;
const TIMELINE_HEIGHT = 46;
const M = { left: 38, right: 8, top: 14, bottom: 18 }; // room for the axes' labels
// Points kept of the recent values (a cloud without a store: 720, an hour at 5 s).
export const MAX_RECENT_POINTS = 720;

function el(name, attrs = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function text(x, y, content, cls, anchor = 'middle') {
  const node = el('text', { x: x.toFixed(1), y: y.toFixed(1), class: cls, 'text-anchor': anchor });
  node.textContent = content;
  return node;
}

// A tick's label: a time of day (with seconds for steps under a minute), a date for days.
function tickLabel(ts, step) {
  return step >= 24 * 3600_000 ? formatDay(ts) : formatTime(ts, { seconds: step < 60_000 });
}

function unitText(unit) {
  return unit ? `${unit === '%' ? '' : ' '}${unit}` : '';
}

// What both kinds share: the figure, the range buttons, the cursor and its readout.
class HistoryView {
  // opts: { ranged: range buttons and ranged requests; onRange(view): a range was chosen }
  constructor(label, capability, height, opts = {}) {
    this.label = label;
    this.capability = capability;
    this.ranged = Boolean(opts.ranged);
    this.onRange = opts.onRange || (() => {});
    this.range = DEFAULT_RANGE;
    this.series = null;
    this.loaded = false; // a reply for the current range came
    this.pending = null; // the request id waited for
    this.waiting = []; // live values that came while a reply was awaited: [[ts, value]]
    this.cursor = -1; // the item the readout says (-1: the newest)
    this.height = height;
    this.root = h('figure', { class: 'chart', 'data-capability': capability });
    this.width = DEFAULT_WIDTH;
    this.svg = el('svg', { viewBox: `0 0 ${this.width} ${height}`, role: 'img', class: 'chart-svg' });
    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(() => {
        if (this.series && this.measure() !== this.width) this.draw();
      }).observe(this.root);
    }
    this.caption = h('figcaption', {});
    if (this.ranged) {
      this.buttons = new Map();
      const group = h('div', { class: 'ranges', role: 'group', 'aria-label': `${label}: ${t('chart.ranges')}` });
      for (const range of RANGES) {
        const button = h('button', { type: 'button', class: 'range', 'data-range': range.name, 'aria-pressed': String(range.name === this.range), text: t(`range.${range.name}`) });
        button.addEventListener('click', () => this.choose(range.name));
        this.buttons.set(range.name, button);
        group.append(button);
      }
      // A custom range: "Custom" opens two fields (from, to) and "Show".
      const custom = h('button', { type: 'button', class: 'range', 'data-range': 'custom', 'aria-pressed': 'false', 'aria-expanded': 'false', text: t('range.custom') });
      this.buttons.set('custom', custom);
      group.append(custom);
      this.customForm = this.buildCustomForm(label);
      custom.addEventListener('click', () => {
        const open = this.customForm.hidden;
        this.customForm.hidden = !open;
        custom.setAttribute('aria-expanded', String(open));
        if (open) this.customForm.querySelector('input').focus();
      });
      this.root.append(group, this.customForm);
      this.root.dataset.range = this.range;
    }
    // The cursor: a slider over the drawn items, its value said in the readout.
    this.readout = h('div', {
      class: 'readout',
      role: 'slider',
      tabindex: '0',
      'aria-label': t('chart.cursor', { label }),
      'aria-valuemin': '0',
      'aria-valuemax': '0',
      'aria-valuenow': '0',
    });
    this.readout.addEventListener('keydown', (event) => this.key(event));
    this.svg.addEventListener('pointermove', (event) => this.point(event));
    this.svg.addEventListener('pointerdown', (event) => this.point(event));
    this.root.append(this.svg, this.readout, this.caption);
  }

  buildCustomForm(label) {
    const form = h('form', { class: 'custom-range', hidden: true, 'aria-label': t('range.customOf', { label }) });
    const field = (key) => {
      const input = h('input', { type: 'datetime-local', required: true, name: key });
      return [input, h('label', {}, t(`range.${key}`), input)];
    };
    const [fromInput, fromLabel] = field('from');
    const [toInput, toLabel] = field('to');
    const error = h('p', { class: 'custom-error', 'aria-live': 'polite' });
    form.append(fromLabel, toLabel, h('button', { type: 'submit', class: 'range-show', text: t('range.show') }), error);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const range = customRange(fromInput.value, toInput.value);
      if (!range) {
        error.textContent = t('range.customInvalid');
        return;
      }
      error.textContent = '';
      this.custom = range;
      this.choose('custom');
    });
    return form;
  }

  // The range in words for a caption: "last 24 h", or "Dec 1, 2:00 PM to Dec 3, 2:00 PM".
  rangeWords() {
    const s = this.series;
    if (s && !s.endsNow) return t('range.between', { from: formatWhen(s.from), to: formatWhen(s.to) });
    return t('range.last', { range: t(`range.${this.range}`) });
  }

  choose(name) {
    if (!this.ranged) return;
    this.range = name;
    this.root.dataset.range = name;
    for (const [n, button] of this.buttons) button.setAttribute('aria-pressed', String(n === name));
    if (name !== 'custom') {
      this.customForm.hidden = true;
      this.buttons.get('custom').setAttribute('aria-expanded', 'false');
    }
    this.loaded = false;
    this.cursor = -1;
    this.onRange(this);
  }

  // The request for the current range was sent (id), or could not be (error text).
  asked(id) {
    this.pending = id;
    this.waiting = [];
    this.root.dataset.state = 'loading';
    this.root.setAttribute('aria-busy', 'true');
    if (!this.series) this.showText(t('chart.loading'));
  }

  // A reply (a history message for the current range).
  reply(msg) {
    this.pending = null;
    this.loaded = true;
    this.root.removeAttribute('aria-busy');
    this.root.dataset.state = 'ready';
    this.root.dataset.resolution = msg.resolution || 'recent';
    this.series = seriesFromReply(msg, { numeric: this.numeric });
    // values the cloud forwarded after it read the reply's range: after its end
    for (const [ts, value] of this.waiting) {
      if (ts > this.series.to && this.accepts(value)) appendLive(this.series, ts, value, { keepBefore: !this.numeric });
    }
    this.waiting = [];
    this.cursor = -1;
    this.draw();
  }

  failed(message) {
    this.pending = null;
    this.waiting = [];
    this.root.removeAttribute('aria-busy');
    this.root.dataset.state = 'failed';
    this.series = null;
    this.showText(t('chart.failed', { message }));
  }

  // A live value (an update): joins a range that ends now (every preset does), once its reply
  // came; before it, the reply will hold it.
  live(ts, value) {
    if (!this.accepts(value) || typeof ts !== 'number') return;
    if (this.range === 'custom') return; // it does not end now
    if (this.pending) {
      if (this.waiting.length < 5000) this.waiting.push([ts, value]);
      return;
    }
    if (!this.series || !this.loaded || !this.series.endsNow) return;
    const maxPoints = this.series.span ? 0 : MAX_RECENT_POINTS;
    if (!appendLive(this.series, ts, value, { maxPoints, keepBefore: !this.numeric })) return;
    if (this.series.span) moveTo(this.series, Date.now(), { keepBefore: !this.numeric });
    this.draw();
  }

  // A chart takes numbers; a timeline every scalar.
  accepts(value) {
    return this.numeric ? typeof value === 'number' : value !== null && typeof value !== 'object';
  }

  // The clock moves on: a range ending now moves with it.
  tick(now) {
    if (!this.series || !this.series.span || !this.series.endsNow || !this.loaded) return;
    moveTo(this.series, now, { keepBefore: !this.numeric });
    this.draw();
  }

  // The pointer over the drawing picks the nearest item.
  point(event) {
    if (!this.items || !this.items.length) return;
    const box = this.svg.getBoundingClientRect();
    if (!box.width) return;
    const x = ((event.clientX - box.left) / box.width) * this.width;
    this.cursor = this.indexAtX(x);
    this.showCursor();
  }

  key(event) {
    const n = this.items ? this.items.length : 0;
    if (!n) return;
    const at = this.cursor < 0 ? n - 1 : this.cursor;
    const page = Math.max(1, Math.round(n / 10));
    const next = {
      ArrowLeft: at - 1,
      ArrowDown: at - 1,
      ArrowRight: at + 1,
      ArrowUp: at + 1,
      PageDown: at - page,
      PageUp: at + page,
      Home: 0,
      End: n - 1,
    }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    this.cursor = Math.max(0, Math.min(n - 1, next));
    this.showCursor();
  }

  // The figure's width now (the default while it is not shown).
  measure() {
    return Math.round(this.root.clientWidth) || DEFAULT_WIDTH;
  }

  // A drawing starts at the figure's width: returns it.
  startDrawing() {
    this.width = this.measure();
    this.svg.setAttribute('viewBox', `0 0 ${this.width} ${this.height}`);
    return this.width;
  }

  // Only text (loading, failed, nothing yet): the drawing empties.
  showText(content) {
    this.svg.replaceChildren();
    this.items = [];
    this.caption.textContent = content;
    this.svg.setAttribute('aria-label', `${this.label}: ${content}`);
    this.readout.textContent = '';
    this.readout.setAttribute('aria-valuemax', '0');
    this.readout.setAttribute('aria-valuenow', '0');
    this.readout.setAttribute('aria-valuetext', t('chart.noPoint'));
    this.root.dataset.points = '0';
  }

  // The time axis along the bottom of [x0, x1] at y.
  timeAxis(from, to, x, y, maxTicks) {
    const axis = el('g', { class: 'axis axis-x' });
    axis.append(el('line', { x1: M.left, x2: this.width - M.right, y1: y, y2: y, class: 'axis-line' }));
    const plotW = this.width - M.left - M.right;
    let { step, ticks } = timeTicks(from, to, Math.min(maxTicks, Math.max(2, Math.floor(plotW / 64))));
    if (step < 60_000) ({ step, ticks } = timeTicks(from, to, Math.max(2, Math.floor(plotW / 84)))); // times with seconds are wider
    for (const ts of ticks) {
      const px = x(ts);
      axis.append(el('line', { x1: px.toFixed(1), x2: px.toFixed(1), y1: y, y2: y + 3, class: 'tick' }));
      const label = text(Math.min(this.width - M.right - 16, Math.max(M.left + 16, px)), y + 13, tickLabel(ts, step), 'tick-label');
      label.dataset.ts = String(ts);
      axis.append(label);
    }
    this.root.dataset.xTicks = String(ticks.length);
    return axis;
  }

  // The cursor's item in the readout and on the drawing.
  showCursor() {
    const n = this.items.length;
    const i = this.cursor < 0 ? n - 1 : this.cursor;
    this.readout.setAttribute('aria-valuemax', String(Math.max(0, n - 1)));
    this.readout.setAttribute('aria-valuenow', String(Math.max(0, i)));
    const words = n ? this.describe(i) : t('chart.noPoint');
    this.readout.setAttribute('aria-valuetext', words);
    this.readout.textContent = words;
    this.markCursor(i);
  }
}

// A measured value over time.
export class Chart extends HistoryView {
  // label: what is charted, for people and screen readers ("Thermometer temperature").
  constructor(label, unit, capability = '', opts = {}) {
    super(label, capability, LINE_HEIGHT, opts);
    this.unit = unit || '';
    this.numeric = true;
    this.root.classList.add('chart-values');
    if (!this.ranged) this.drawRecent([]);
    else this.showText(t('chart.loading'));
  }

  // The recent values (a cloud without a store): [[ts, value]] in time order.
  drawRecent(points) {
    if (this.ranged) return;
    this.loaded = true;
    this.series = seriesFromReply({ points }, { numeric: true });
    this.draw();
  }

  draw() {
    const s = this.series;
    const values = pointsOf(s);
    const unit = unitText(this.unit);
    if (!this.ranged && values.length < 2) {
      this.showText(values.length ? t('chart.collecting') : t('chart.none'));
      this.root.dataset.points = String(values.length);
      return;
    }
    if (!values.length) {
      this.showText(t('chart.empty'));
      return;
    }
    let lo = Infinity;
    let hi = -Infinity;
    if (s.bucketMs) {
      for (const b of s.buckets) {
        lo = Math.min(lo, b[1]);
        hi = Math.max(hi, b[2]);
      }
    } else {
      for (const [, v] of values) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
    const axis = valueTicks(lo, hi, 4);
    const from = s.from;
    const to = s.to > from ? s.to : from + 1;
    const plotW = this.startDrawing() - M.left - M.right;
    const plotH = this.height - M.top - M.bottom;
    const x = (ts) => M.left + ((ts - from) / (to - from)) * plotW;
    const y = (v) => M.top + plotH - ((v - axis.lo) / (axis.hi - axis.lo)) * plotH;
    this.x = x;

    const parts = [];
    // value axis: grid lines and labels, the unit above them
    const yAxis = el('g', { class: 'axis axis-y' });
    for (const v of axis.ticks) {
      yAxis.append(el('line', { x1: M.left, x2: this.width - M.right, y1: y(v).toFixed(1), y2: y(v).toFixed(1), class: 'grid' }));
      yAxis.append(text(M.left - 4, y(v) + 3.5, formatNumber(v), 'tick-label', 'end'));
    }
    if (this.unit) yAxis.append(text(2, 10, this.unit, 'unit', 'start'));
    parts.push(yAxis, this.timeAxis(from, to, x, M.top + plotH, 5));

    // a rollup's band (min to max) and the line (values, or averages), broken where buckets
    // are missing (nothing was reported there)
    const gap = s.bucketMs ? 1.5 * s.bucketMs : Infinity;
    const runs = [];
    let run = [];
    values.forEach(([ts, v], i) => {
      if (i && ts - values[i - 1][0] > gap) {
        runs.push(run);
        run = [];
      }
      run.push(i);
    });
    runs.push(run);
    if (s.bucketMs) {
      const band = el('path', { class: 'chart-band' });
      band.setAttribute(
        'd',
        runs
          .map((r) => {
            const top = r.map((i) => `${x(values[i][0]).toFixed(1)},${y(s.buckets[i][2]).toFixed(1)}`);
            const bottom = r.map((i) => `${x(values[i][0]).toFixed(1)},${y(s.buckets[i][1]).toFixed(1)}`).reverse();
            return `M${top.join('L')}L${bottom.join('L')}Z`;
          })
          .join(''),
      );
      parts.push(band);
    }
    const line = el('path', { class: 'chart-line-path', fill: 'none' });
    line.setAttribute(
      'd',
      runs
        .filter((r) => r.length > 1)
        .map((r) => `M${r.map((i) => `${x(values[i][0]).toFixed(1)},${y(values[i][1]).toFixed(1)}`).join('L')}`)
        .join(''),
    );
    parts.push(line);
    // a value alone (no neighbour within a bucket and a half): a dot, not an invisible line
    for (const r of runs) {
      if (r.length !== 1) continue;
      const [ts, v] = values[r[0]];
      parts.push(el('circle', { class: 'chart-dot', cx: x(ts).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }));
    }
    this.cursorLine = el('line', { class: 'cursor', y1: M.top, y2: M.top + plotH, visibility: 'hidden' });
    this.cursorDot = el('circle', { class: 'cursor-dot', r: 3, visibility: 'hidden' });
    this.y = y;
    parts.push(this.cursorLine, this.cursorDot);
    this.svg.replaceChildren(...parts);

    this.items = values;
    this.root.dataset.points = String(values.length);
    this.root.dataset.from = String(Math.round(from));
    this.root.dataset.to = String(Math.round(to));
    this.root.dataset.first = String(values[0][0]);
    const summary = this.ranged
      ? t('chart.rangeCaption', {
          range: this.rangeWords(),
          lo: formatNumber(lo),
          hi: formatNumber(hi),
          unit,
          resolution: t(`chart.res.${this.root.dataset.resolution === '1m' || this.root.dataset.resolution === '1h' ? this.root.dataset.resolution : 'raw'}`),
        })
      : t('chart.last', { span: formatSpan(to - from), lo: formatNumber(lo), hi: formatNumber(hi), unit });
    this.caption.textContent = summary;
    const now = values[values.length - 1][1];
    this.svg.setAttribute(
      'aria-label',
      this.ranged ? t('chart.rangeAria', { label: this.label, text: summary }) : t('chart.aria', { label: this.label, text: summary, now: formatNumber(now), unit }),
    );
    if (this.cursor >= values.length) this.cursor = -1;
    this.showCursor();
  }

  indexAtX(px) {
    return nearestIndex(this.items, this.series.from + ((px - M.left) / (this.width - M.left - M.right)) * (this.series.to - this.series.from));
  }

  describe(i) {
    const unit = unitText(this.unit);
    const s = this.series;
    if (s.bucketMs) {
      const b = s.buckets[i];
      return t('chart.bucket', {
        when: formatWhen(b[0]),
        avg: `${formatNumber(b[3])}${unit}`,
        min: formatNumber(b[1]),
        max: `${formatNumber(b[2])}${unit}`,
      });
    }
    const [ts, v] = this.items[i];
    return t('chart.point', { when: formatWhen(ts, { seconds: true }), value: `${formatNumber(v)}${unit}` });
  }

  markCursor(i) {
    if (!this.cursorLine) return;
    const shown = this.cursor >= 0 && this.items[i];
    for (const node of [this.cursorLine, this.cursorDot]) node.setAttribute('visibility', shown ? 'visible' : 'hidden');
    if (!shown) return;
    const px = this.x(this.items[i][0]).toFixed(1);
    this.cursorLine.setAttribute('x1', px);
    this.cursorLine.setAttribute('x2', px);
    this.cursorDot.setAttribute('cx', px);
    this.cursorDot.setAttribute('cy', this.y(this.items[i][1]).toFixed(1));
  }
}

// A state over time: a bar of coloured segments ("when the door was open"), the time before
// the first stored value shown as not known.
export class Timeline extends HistoryView {
  // words(value): the value in words (formatValue of its capability)
  constructor(label, cap, words, opts = {}) {
    super(label, cap.name, TIMELINE_HEIGHT, { ...opts, ranged: true });
    this.cap = cap;
    this.words = words;
    this.numeric = false;
    this.root.classList.add('timeline');
    this.legend = h('ul', { class: 'legend' });
    this.root.insertBefore(this.legend, this.caption);
    this.showText(t('chart.loading'));
  }

  draw() {
    const s = this.series;
    const from = s.from;
    const to = s.to > from ? s.to : from + 1;
    const segments = segmentsOf(pointsOf(s, { timeline: true }), from, to);
    const plotW = this.startDrawing() - M.left - M.right;
    const x = (ts) => M.left + ((ts - from) / (to - from)) * plotW;
    this.x = x;
    const top = 4;
    const barH = TIMELINE_HEIGHT - M.bottom - top - 4;
    const parts = [];
    const items = [];
    const knownFrom = segments.length ? segments[0].from : to;
    if (knownFrom > from) {
      items.push({ from, to: knownFrom, value: undefined });
    }
    items.push(...segments);
    for (const [i, seg] of items.entries()) {
      const look = seg.value === undefined ? 'unknown' : stateLook(this.cap, seg.value);
      const rect = el('rect', {
        class: `seg seg-${look}`,
        x: x(seg.from).toFixed(2),
        y: top,
        // a state of seconds in a month stays visible: at least 2 px (drawn over its neighbour)
        width: Math.max(seg.value === undefined ? 0 : 2, x(seg.to) - x(seg.from)).toFixed(2),
        height: barH,
        'data-look': look,
        'data-index': i,
      });
      if (seg.value !== undefined) rect.dataset.value = String(seg.value);
      parts.push(rect);
    }
    parts.push(this.timeAxis(from, to, x, TIMELINE_HEIGHT - M.bottom, 5));
    this.cursorBox = el('rect', { class: 'cursor-box', y: top - 2, height: barH + 4, visibility: 'hidden' });
    parts.push(this.cursorBox);
    this.svg.replaceChildren(...parts);
    this.items = items.map((seg) => [seg.from, seg]);

    // the legend: each value with its colour and its time in the range
    const totals = durations(segments);
    this.legend.replaceChildren(
      ...totals.map(([value, ms]) =>
        h('li', { 'data-look': stateLook(this.cap, value) }, h('span', { class: 'swatch', 'aria-hidden': 'true' }), `${this.words(value)} ${formatSpan(ms)}`),
      ),
    );
    const range = this.rangeWords();
    const parts2 = totals.map(([value, ms]) => t('timeline.part', { value: this.words(value), span: formatSpan(ms) }));
    let summary = parts2.length ? t('timeline.caption', { range, parts: parts2.join(' · ') }) : t('timeline.none');
    if (s.bucketMs) summary += ` · ${t('timeline.mixed', { unit: t(s.bucketMs === 60_000 ? 'unit.minute' : 'unit.hour') })}`;
    this.caption.textContent = summary;
    this.svg.setAttribute('aria-label', `${this.label}: ${summary}`);
    this.root.dataset.points = String(segments.length);
    this.root.dataset.from = String(Math.round(from));
    this.root.dataset.to = String(Math.round(to));
    if (this.cursor >= items.length) this.cursor = -1;
    this.showCursor();
  }

  indexAtX(px) {
    const ts = this.series.from + ((px - M.left) / (this.width - M.left - M.right)) * (this.series.to - this.series.from);
    const i = this.items.findIndex(([, seg]) => ts >= seg.from && ts <= seg.to);
    return i >= 0 ? i : nearestIndex(this.items, ts);
  }

  describe(i) {
    const seg = this.items[i][1];
    return t('timeline.segment', {
      value: seg.value === undefined ? t('timeline.unknown') : this.words(seg.value),
      from: formatWhen(seg.from),
      to: formatWhen(seg.to),
      span: formatSpan(seg.to - seg.from),
    });
  }

  markCursor(i) {
    if (!this.cursorBox) return;
    const shown = this.cursor >= 0 && this.items[i];
    this.cursorBox.setAttribute('visibility', shown ? 'visible' : 'hidden');
    if (!shown) return;
    const seg = this.items[i][1];
    this.cursorBox.setAttribute('x', this.x(seg.from).toFixed(2));
    this.cursorBox.setAttribute('width', Math.max(1, this.x(seg.to) - this.x(seg.from)).toFixed(2));
  }
}
