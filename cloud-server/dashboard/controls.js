// Controls generated from a device's writable capabilities: a switch for bool, a slider
// for a bounded int/number, a select for enum, a field with bounds for the rest. A control
// always shows the state the device reported, never the value asked for; each command's
// outcome is shown next to the control that gave it (pending, then ok / rejected / ...).

import { formatNumber } from './chart.js';
import { h } from './dom.js';

const OUTCOME_TEXT = {
  pending: 'pending…',
  ok: 'ok',
  rejected: 'rejected',
  expired: 'expired',
  timeout: 'timeout',
  offline: 'offline',
  device_error: 'device error',
};

// How long an "ok" stays next to its control.
const OK_VISIBLE_MS = 10_000;

let uid = 0;
function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

export function capabilityLabel(cap) {
  const words = cap.name.replace(/[_.:-]+/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function formatValue(cap, value) {
  if (value === undefined) return '–';
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  const unit = cap && cap.unit ? `${cap.unit === '%' ? '' : ' '}${cap.unit}` : '';
  if (typeof value === 'number') return `${formatNumber(value)}${unit}`;
  return `${value}${unit}`;
}

// ctx: { send(device, set, done(outcome, message)), confirm(question) -> Promise<boolean> }
export function createControl(device, cap, ctx) {
  const bounded = typeof cap.min === 'number' && typeof cap.max === 'number';
  if (cap.type === 'bool') return new SwitchControl(device, cap, ctx);
  if (cap.type === 'enum') return new SelectControl(device, cap, ctx);
  if ((cap.type === 'int' || cap.type === 'number') && bounded) return new SliderControl(device, cap, ctx);
  return new FieldControl(device, cap, ctx);
}

class Control {
  constructor(device, cap, ctx) {
    this.deviceId = device.id;
    this.deviceName = device.name;
    this.cap = cap;
    this.ctx = ctx;
    this.id = nextId(`c-${device.id}-${cap.name}`);
    this.value = undefined; // the reported state
    this.commandToken = 0;
    this.root = h('div', { class: 'control', 'data-capability': cap.name, 'data-type': cap.type });
    this.label = h('label', { for: this.id, text: capabilityLabel(cap) });
    this.outcome = h('output', { class: 'outcome', for: this.id, 'aria-live': 'polite', 'data-outcome': '' });
  }

  accessibleName() {
    return `${this.deviceName} ${capabilityLabel(this.cap).toLowerCase()}`;
  }

  // Asks first when the capability wants a person's confirmation, then sends and shows
  // the outcome. The control itself changes only when the device reports.
  async set(value) {
    if (this.cap.confirm) {
      const question = `${this.deviceName}: set ${capabilityLabel(this.cap).toLowerCase()} to ${formatValue(this.cap, value)}?`;
      if (!(await this.ctx.confirm(question))) {
        this.show('', '');
        return;
      }
    }
    const token = ++this.commandToken;
    const what = typeof value === 'boolean' ? `Turn ${value ? 'on' : 'off'}` : `Set ${formatValue(this.cap, value)}`;
    clearTimeout(this.fadeTimer);
    this.show('pending', what);
    this.root.setAttribute('aria-busy', 'true');
    this.ctx.send(this.deviceId, { [this.cap.name]: value }, (outcome, message) => {
      if (token !== this.commandToken) return; // a newer command's outcome is shown
      this.root.removeAttribute('aria-busy');
      this.show(outcome, what, message);
      // A success speaks for itself once the state shows it; a failure stays until the next command.
      if (outcome === 'ok') this.fadeTimer = setTimeout(() => token === this.commandToken && this.show('', ''), OK_VISIBLE_MS);
    });
  }

  show(outcome, what, message = '') {
    this.outcome.dataset.outcome = outcome;
    if (!outcome) {
      this.outcome.textContent = '';
      return;
    }
    const text = OUTCOME_TEXT[outcome] || outcome;
    this.outcome.textContent = `${what}: ${text}${message ? ` — ${message}` : ''}`;
  }
}

class SwitchControl extends Control {
  constructor(device, cap, ctx) {
    super(device, cap, ctx);
    this.button = h('button', {
      type: 'button',
      id: this.id,
      role: 'switch',
      class: 'switch',
      'aria-checked': 'false',
      'aria-label': this.accessibleName(),
    });
    this.button.append(h('span', { class: 'switch-track', 'aria-hidden': 'true' }, h('span', { class: 'switch-thumb' })));
    this.stateText = h('span', { class: 'switch-text', 'aria-hidden': 'true', text: '–' });
    this.button.append(this.stateText);
    this.button.addEventListener('click', () => {
      if (this.value === undefined) return this.set(true);
      return this.set(!this.value);
    });
    this.root.append(this.label, this.button, this.outcome);
  }

  update(value) {
    this.value = typeof value === 'boolean' ? value : undefined;
    this.button.setAttribute('aria-checked', this.value ? 'true' : 'false');
    this.button.dataset.known = this.value === undefined ? 'false' : 'true';
    this.stateText.textContent = this.value === undefined ? 'unknown' : this.value ? 'on' : 'off';
  }
}

class SliderControl extends Control {
  constructor(device, cap, ctx) {
    super(device, cap, ctx);
    const step = cap.type === 'int' ? 1 : (cap.max - cap.min) / 100 || 'any';
    this.input = h('input', {
      type: 'range',
      id: this.id,
      min: cap.min,
      max: cap.max,
      step,
      'aria-label': this.accessibleName(),
    });
    this.reading = h('span', { class: 'reading', 'aria-hidden': 'true', text: '–' });
    this.dragging = false;
    // While the person drags, the thumb follows the hand and the reading shows the
    // target; the command goes on release (change), not on every move.
    this.input.addEventListener('input', () => {
      this.dragging = true;
      this.reading.textContent = `→ ${formatValue(cap, Number(this.input.value))}`;
    });
    this.input.addEventListener('change', () => {
      this.dragging = false;
      const raw = Number(this.input.value);
      const value = cap.type === 'int' ? Math.round(raw) : raw;
      this.render();
      if (value !== this.value) this.set(value);
    });
    this.input.addEventListener('blur', () => {
      this.dragging = false;
      this.render();
    });
    this.root.append(h('div', { class: 'control-head' }, this.label, this.reading), this.input, this.outcome);
  }

  update(value) {
    this.value = typeof value === 'number' ? value : undefined;
    if (!this.dragging) this.render();
  }

  render() {
    if (this.value !== undefined) this.input.value = String(this.value);
    this.input.setAttribute('aria-valuetext', formatValue(this.cap, this.value));
    this.reading.textContent = formatValue(this.cap, this.value);
  }
}

class SelectControl extends Control {
  constructor(device, cap, ctx) {
    super(device, cap, ctx);
    this.select = h('select', { id: this.id, 'aria-label': this.accessibleName() });
    this.unknown = h('option', { value: '', disabled: true, text: 'unknown' });
    this.select.append(this.unknown, ...cap.options.map((o) => h('option', { value: o, text: o })));
    this.select.addEventListener('change', () => {
      const value = this.select.value;
      this.render();
      if (value !== this.value) this.set(value);
    });
    this.root.append(this.label, this.select, this.outcome);
  }

  update(value) {
    this.value = typeof value === 'string' ? value : undefined;
    this.render();
  }

  render() {
    const known = this.value !== undefined && this.cap.options.includes(this.value);
    this.unknown.hidden = known;
    this.select.value = known ? this.value : '';
    this.root.dataset.value = known ? this.value : '';
  }
}

// A number or text field with its bounds, and a Set button.
class FieldControl extends Control {
  constructor(device, cap, ctx) {
    super(device, cap, ctx);
    const numeric = cap.type === 'int' || cap.type === 'number';
    this.form = h('form', { class: 'field' });
    this.input = h('input', {
      id: this.id,
      type: numeric ? 'number' : 'text',
      min: numeric ? cap.min : undefined,
      max: numeric ? cap.max : undefined,
      step: cap.type === 'int' ? 1 : numeric ? 'any' : undefined,
      maxlength: numeric ? undefined : cap.max_length || 256,
      inputmode: cap.type === 'int' ? 'numeric' : numeric ? 'decimal' : undefined,
      required: numeric,
      'aria-label': this.accessibleName(),
    });
    const setButton = h('button', { type: 'submit', class: 'quiet', text: 'Set', 'aria-label': `Set ${this.accessibleName()}` });
    this.form.append(this.input, setButton);
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!this.input.reportValidity()) return;
      const value = numeric ? Number(this.input.value) : this.input.value;
      this.input.blur();
      this.render();
      this.set(value);
    });
    this.input.addEventListener('blur', () => this.render());
    const bounds = numeric && (cap.min !== undefined || cap.max !== undefined)
      ? h('span', { class: 'bounds', text: `${cap.min ?? '…'} to ${cap.max ?? '…'}${cap.unit ? ` ${cap.unit}` : ''}` })
      : '';
    this.root.append(h('div', { class: 'control-head' }, this.label, bounds), this.form, this.outcome);
  }

  update(value) {
    this.value = value;
    if (document.activeElement !== this.input) this.render();
  }

  render() {
    this.input.value = this.value === undefined ? '' : String(this.value);
  }
}
