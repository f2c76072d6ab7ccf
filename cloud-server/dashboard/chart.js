// A small SVG line chart of one capability's recent values ([ts, value] points, time order).
// Hand-written: a polyline, the range and the time span are all it needs to show.

import { formatNumber, formatSpan, t } from './i18n.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 300;
const HEIGHT = 80;
const PAD = 4;

function el(name, attrs = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

export class Chart {
  // label: what is charted, for people and screen readers ("Thermometer temperature").
  constructor(label, unit) {
    this.label = label;
    this.unit = unit || '';
    this.root = document.createElement('figure');
    this.root.className = 'chart';
    this.svg = el('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', role: 'img' });
    this.line = el('polyline', { class: 'chart-line', fill: 'none', 'vector-effect': 'non-scaling-stroke' });
    this.area = el('polygon', { class: 'chart-area' });
    this.svg.append(this.area, this.line);
    this.caption = document.createElement('figcaption');
    this.root.append(this.svg, this.caption);
    this.draw([]);
  }

  draw(points) {
    const unit = this.unit ? ` ${this.unit}` : '';
    if (points.length < 2) {
      this.line.setAttribute('points', '');
      this.area.setAttribute('points', '');
      this.caption.textContent = points.length ? t('chart.collecting') : t('chart.none');
      this.svg.setAttribute('aria-label', `${this.label}: ${this.caption.textContent}`);
      this.root.dataset.points = String(points.length);
      return;
    }
    const t0 = points[0][0];
    const t1 = points[points.length - 1][0];
    let lo = Infinity;
    let hi = -Infinity;
    for (const [, v] of points) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    // A flat line sits in the middle rather than on an edge.
    const span = hi - lo || Math.max(Math.abs(hi) * 0.01, 0.5);
    const mid = (hi + lo) / 2;
    const vlo = hi === lo ? mid - span / 2 : lo;
    const x = (t) => (t1 === t0 ? WIDTH : ((t - t0) / (t1 - t0)) * WIDTH);
    const y = (v) => HEIGHT - PAD - ((v - vlo) / span) * (HEIGHT - 2 * PAD);
    const coords = points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    this.line.setAttribute('points', coords);
    this.area.setAttribute('points', `0,${HEIGHT} ${coords} ${WIDTH},${HEIGHT}`);
    const text = t('chart.last', { span: formatSpan(t1 - t0), lo: formatNumber(lo), hi: formatNumber(hi), unit });
    this.caption.textContent = text;
    this.svg.setAttribute('aria-label', t('chart.aria', { label: this.label, text, now: formatNumber(points[points.length - 1][1]), unit }));
    this.root.dataset.points = String(points.length);
  }
}
