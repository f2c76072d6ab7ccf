// Controls generated from a device's writable capabilities: a switch for bool, a slider
// for a bounded int/number, a select for enum (with a one-tap button for a two-way enum such
// as a lock), a field with bounds for the rest. A control always shows the state the device
// reported, never the value asked for; each command's outcome is shown next to the control
// that gave it (pending, then ok / rejected / ...).

import { formatNumber, has, t } from './i18n.js';
import { h } from './dom.js';

// How long an "ok" stays next to its control.
const OK_VISIBLE_MS = 10_000;
// Outcomes that say "we do not know what happened" or "nothing happened": the device's next
// report of its state says it better, so they go then.
const CLEARED_BY_STATE = new Set(['timeout', 'offline', 'expired']);
// Keys that move a slider by a step: held down, the browser repeats them; one command goes
// when the key is released (the last value), not one per repeat.
const SLIDER_KEYS = new Set(['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'PageUp', 'PageDown', 'Home', 'End']);

let uid = 0;
function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

// "Power" for a lamp's "on" (never "On" beside a switch that shows off), "Brightness", or
// the capability's name in words.
export function capabilityLabel(cap) {
  if (has(`cap.${cap.name}`)) return t(`cap.${cap.name}`);
  const words = cap.name.replace(/[_.:-]+/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// A value in words: on/off, locked, 21.5 °C, 40%.
export function formatValue(cap, value) {
  if (value === undefined) return '–';
  if (typeof value === 'boolean') return value ? t('value.on') : t('value.off');
  const unit = cap && cap.unit ? `${cap.unit === '%' ? '' : ' '}${cap.unit}` : '';
  if (typeof value === 'number') return `${formatNumber(value)}${unit}`;
  if (has(`value.${value}`)) return t(`value.${value}`);
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
    this.action = null; // a one-tap button for the tile's main action, when the control has one
    this.root = h('div', { class: 'control', 'data-capability': cap.name, 'data-type': cap.type });
    this.label = h('label', { for: this.id, text: capabilityLabel(cap) });
    this.outcome = h('output', {
      class: 'outcome',
      for: this.id,
      'aria-live': 'polite',
      'data-outcome': '',
      'data-capability': cap.name,
    });
  }

  accessibleName() {
    return `${this.deviceName} ${capabilityLabel(this.cap).toLowerCase()}`;
  }

  // Asks first when the capability wants a person's confirmation, then sends and shows
  // the outcome. The control itself changes only when the device reports.
  async set(value) {
    if (this.cap.confirm) {
      const question = t('confirm.set', {
        device: this.deviceName,
        capability: capabilityLabel(this.cap).toLowerCase(),
        value: formatValue(this.cap, value),
      });
      if (!(await this.ctx.confirm(question))) {
        this.show('', '');
        this.settled();
        return;
      }
    }
    const token = ++this.commandToken;
    const what = typeof value === 'boolean' ? t('command.turn', { value: formatValue(this.cap, value) }) : t('command.set', { value: formatValue(this.cap, value) });
    clearTimeout(this.fadeTimer);
    this.show('pending', what);
    this.root.setAttribute('aria-busy', 'true');
    this.ctx.send(this.deviceId, { [this.cap.name]: value }, (outcome, message) => {
      if (token !== this.commandToken) return; // a newer command's outcome is shown
      this.root.removeAttribute('aria-busy');
      this.show(outcome, what, message);
      this.settled();
      // A success speaks for itself once the state shows it; a failure stays until the
      // next command, or (timeout, offline, expired) until the device reports again.
      if (outcome === 'ok') this.fadeTimer = setTimeout(() => token === this.commandToken && this.show('', ''), OK_VISIBLE_MS);
    });
  }

  // The last command ended (or was cancelled): a control showing a pending value shows the
  // reported one again.
  settled() {}

  // The device reported its state again (an update message): an outcome that only said
  // "we do not know" gives way to what the device says now.
  stateReported() {
    if (CLEARED_BY_STATE.has(this.outcome.dataset.outcome)) this.show('', '');
  }

  show(outcome, what, message = '') {
    this.outcome.dataset.outcome = outcome;
    if (!outcome) {
      this.outcome.textContent = '';
      return;
    }
    const text = t(`outcome.${outcome}`) === `outcome.${outcome}` ? outcome : t(`outcome.${outcome}`);
    this.outcome.textContent = `${t('outcome.line', { what, outcome: text })}${message ? ` — ${message}` : ''}`;
  }
}

class SwitchControl extends Control {
  constructor(device, cap, ctx) {
    super(device, cap, ctx);
    // Its name says what it switches ("Lamp power"); its state (on/off) is aria-checked and
    // the visible word: the name never contradicts what is shown.
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
    this.action = this.button;
    this.root.append(this.label, this.button, this.outcome);
  }

  update(value) {
    this.value = typeof value === 'boolean' ? value : undefined;
    this.button.setAttribute('aria-checked', this.value ? 'true' : 'false');
    this.button.dataset.known = this.value === undefined ? 'false' : 'true';
    this.stateText.textContent = this.value === undefined ? t('state.unknown') : this.value ? t('state.on') : t('state.off');
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
    // The value asked for and not yet settled (dragged, stepped with keys, or sent and not
    // yet answered): the slider and its reading show it ("→ 45%") rather than jumping back
    // to the reported value, so a next step starts from it and no step is lost.
    this.pending = undefined;
    this.keysDown = 0;
    this.input.addEventListener('input', () => this.ask(Number(this.input.value)));
    // A pointer's release, or one key press: send, unless a key is still held (repeats).
    this.input.addEventListener('change', () => {
      if (this.keysDown === 0) this.commit();
    });
    this.input.addEventListener('keydown', (event) => {
      if (SLIDER_KEYS.has(event.key) && !event.repeat) this.keysDown += 1;
    });
    this.input.addEventListener('keyup', (event) => {
      if (!SLIDER_KEYS.has(event.key) || this.keysDown === 0) return;
      this.keysDown -= 1;
      if (this.keysDown === 0) this.commit();
    });
    this.input.addEventListener('blur', () => {
      if (this.keysDown) {
        this.keysDown = 0;
        this.commit();
      }
    });
    this.root.append(h('div', { class: 'control-head' }, this.label, this.reading), this.input, this.outcome);
  }

  ask(raw) {
    this.pending = this.cap.type === 'int' ? Math.round(raw) : raw;
    this.render();
  }

  // Sends the last value asked for, when it differs from what the device reports.
  commit() {
    if (this.pending === undefined) return;
    if (this.pending === this.value) {
      this.pending = undefined;
      this.render();
      return;
    }
    this.set(this.pending);
  }

  settled() {
    // A newer value asked for while this one was on its way is still to be sent.
    if (this.pending !== undefined && this.keysDown === 0 && this.sent !== undefined && this.pending !== this.sent) {
      this.commit();
      return;
    }
    this.pending = undefined;
    this.sent = undefined;
    this.render();
  }

  set(value) {
    this.sent = value;
    return super.set(value);
  }

  update(value) {
    this.value = typeof value === 'number' ? value : undefined;
    if (this.pending !== undefined && this.pending === this.value && this.keysDown === 0) this.pending = undefined;
    this.render();
  }

  render() {
    if (this.pending !== undefined) {
      if (document.activeElement !== this.input || Number(this.input.value) !== this.pending) this.input.value = String(this.pending);
      const text = `→ ${formatValue(this.cap, this.pending)}`;
      this.input.setAttribute('aria-valuetext', text);
      this.reading.textContent = text;
      this.root.dataset.pending = String(this.pending);
      return;
    }
    delete this.root.dataset.pending;
    if (this.value !== undefined) this.input.value = String(this.value);
    this.input.setAttribute('aria-valuetext', formatValue(this.cap, this.value));
    this.reading.textContent = formatValue(this.cap, this.value);
  }
}

// The words of a two-way enum's one-tap action: "Unlock" for a locked lock.
function actionText(value) {
  if (value === 'locked') return t('action.lock');
  if (value === 'unlocked') return t('action.unlock');
  return t('action.setTo', { value: formatValue(undefined, value) });
}

class SelectControl extends Control {
  constructor(device, cap, ctx) {
    super(device, cap, ctx);
    this.select = h('select', { id: this.id, 'aria-label': this.accessibleName() });
    this.unknown = h('option', { value: '', disabled: true, text: t('state.unknown') });
    this.select.append(this.unknown, ...cap.options.map((o) => h('option', { value: o, text: formatValue(cap, o) })));
    this.select.addEventListener('change', () => {
      const value = this.select.value;
      this.render();
      if (value !== this.value) this.set(value);
    });
    // Two options (locked / unlocked): one tap asks for the other one.
    if (cap.options.length === 2) {
      this.action = h('button', { type: 'button', class: 'enum-action' });
      this.action.addEventListener('click', () => {
        const next = this.other();
        if (next !== undefined) this.set(next);
      });
    }
    this.root.append(this.label, this.select);
    if (!this.action) this.root.append(this.outcome);
    this.render();
  }

  other() {
    const [a, b] = this.cap.options;
    if (this.value === a) return b;
    if (this.value === b) return a;
    return undefined;
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
    if (this.action) {
      const next = this.other();
      this.action.disabled = next === undefined;
      const text = next === undefined ? t('state.unknown') : actionText(next);
      this.action.textContent = text;
      this.action.setAttribute('aria-label', t('action.named', { device: this.deviceName, action: text.toLowerCase() }));
      this.action.dataset.next = next ?? '';
    }
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
    const setButton = h('button', {
      type: 'submit',
      class: 'quiet',
      text: t('command.field'),
      'aria-label': t('command.fieldNamed', { name: this.accessibleName() }),
    });
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
      ? h('span', { class: 'bounds', text: t('bounds', { min: cap.min ?? '…', max: cap.max ?? '…', unit: cap.unit ? ` ${cap.unit}` : '' }) })
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
