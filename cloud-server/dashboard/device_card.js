// One device on the page, as a tile: an icon for its kind and state, its name, its state in
// colour and words, presence, and its main action over the whole tile (a switch, a lock's
// one-tap button that still asks first, Listen); the rest (other controls, readings, the
// history chart, when it last reported, its recent events) in the tile's detail view. Built
// once from the device's description; update() brings in new state. A guest's tiles
// (ctx.readOnly) have no controls: the states they would set show as readings.

import { Chart, Timeline } from './chart.js';
import { capabilityLabel, createControl, formatValue } from './controls.js';
import { eventItem } from './events.js';
import { chartedCapabilities, timelineCapabilities } from './flat_state.js';
import { formatDateTime, relativeTime, t } from './i18n.js';
import { icon, iconFor } from './icons.js';
import { h } from './dom.js';

export { relativeTime };

// The part of a device's description that decides how its tile is built: when it changes
// (a devices message, a new snapshot), the tile is rebuilt; otherwise only updated.
export function shapeOf(device) {
  return JSON.stringify([device.name, device.kind, device.room, device.capabilities]);
}

// The capability whose control is the tile's main action: the first writable switch
// (a lamp's power), else the first writable two-way enum (a lock). None for a sensor.
export function primaryCapability(device) {
  const writable = device.capabilities.filter((c) => c.writable);
  return (
    writable.find((c) => c.type === 'bool' && c.name === 'on') ||
    writable.find((c) => c.type === 'bool') ||
    writable.find((c) => c.type === 'enum' && Array.isArray(c.options) && c.options.length === 2) ||
    null
  );
}

// Whether a contact's reading means open: {open: true} or, as Zigbee2MQTT says it,
// {contact: false}.
function contactOpen(state) {
  if (typeof state.open === 'boolean') return state.open;
  if (typeof state.contact === 'boolean') return !state.contact;
  return undefined;
}

// How the tile looks: 'offline', 'alert' (unlocked, open), 'on', 'off', or 'plain'; and its
// state in words.
export function lookOf(device, online) {
  const s = device.state;
  let look = 'plain';
  let words = '';
  if (typeof s.lock === 'string') {
    look = s.lock === 'unlocked' ? 'alert' : s.lock === 'locked' ? 'ok' : 'plain';
    words = s.lock === 'locked' ? t('state.locked') : s.lock === 'unlocked' ? t('state.unlocked') : formatValue(undefined, s.lock);
  } else if (contactOpen(s) !== undefined) {
    look = contactOpen(s) ? 'alert' : 'ok';
    words = contactOpen(s) ? t('state.open') : t('state.closed');
  } else if (typeof s.on === 'boolean') {
    look = s.on ? 'on' : 'off';
    words = s.on ? t('state.on') : t('state.off');
    const brightness = device.capabilities.find((c) => c.name === 'brightness');
    if (s.on && brightness && typeof s.brightness === 'number') words += ` · ${formatValue(brightness, s.brightness)}`;
  } else {
    const shown = device.capabilities.find((c) => !c.writable && s[c.name] !== undefined && typeof s[c.name] !== 'object');
    if (shown) words = formatValue(shown, s[shown.name]);
  }
  if (!online) look = 'offline';
  return { look, words: words || t('state.unknown') };
}

export class DeviceCard {
  // ctx: the controls' context (send, confirm, audio, readOnly, recentEvents; label for an
  // owner: sends a device's name and room to the cloud).
  constructor(device, ctx) {
    this.id = device.id;
    this.kind = device.kind;
    this.shape = shapeOf(device);
    const titleId = `dev-${device.id}-title`;
    const stateId = `dev-${device.id}-state`;
    this.root = h('article', {
      class: 'device tile',
      'data-device': device.id,
      'data-kind': device.kind || 'device',
      'aria-labelledby': titleId,
      'aria-describedby': stateId,
    });
    this.iconBox = h('span', { class: 'tile-icon' });
    this.presence = h('span', { class: 'presence', 'data-online': 'false', text: t('presence.offline') });
    this.stateWords = h('p', { class: 'tile-state', id: stateId });
    const heading = h('h3', { id: titleId, text: device.name });
    this.root.append(
      h('div', { class: 'tile-head' }, this.iconBox, h('div', { class: 'tile-title' }, heading, this.stateWords), this.presence),
    );

    this.capabilities = new Map(device.capabilities.map((c) => [c.name, c]));
    this.controls = new Map();
    const primary = primaryCapability(device);
    const main = h('div', { class: 'tile-main' });
    const more = h('div', { class: 'controls' });
    for (const cap of device.capabilities) {
      if (!cap.writable || ctx.readOnly) continue;
      const control = createControl(device, cap, ctx);
      this.controls.set(cap.name, control);
      if (cap === primary && control.action === control.root.querySelector('button[role="switch"]')) {
        main.append(control.root); // the switch itself is the main action
      } else if (cap === primary && control.action) {
        main.append(control.action, control.outcome); // the lock's one-tap button; its select below
        more.append(control.root);
      } else {
        more.append(control.root);
      }
      if (cap === primary) {
        this.mainAction = control.action;
        control.action.classList.add('tile-action');
      }
    }
    // A microphone's "Listen" or a speaker's "Hold to talk" (audio.js): on the tile.
    this.audio = ctx.audio && !ctx.readOnly ? ctx.audio.controlFor(device) : null;
    if (this.audio) main.append(this.audio.root);
    if (main.childElementCount) this.root.append(main);

    // The detail view: a <details> whose summary is the main action of a tile without one.
    this.details = h('details', { class: 'tile-details' });
    this.summary = h('summary', { text: t('tile.details'), 'aria-label': t('tile.detailsOf', { device: device.name }) });
    if (!this.mainAction && !this.audio) {
      this.summary.classList.add('tile-action');
      this.root.dataset.main = 'details';
    }
    const body = h('div', { class: 'tile-body' });
    this.details.append(this.summary, body);

    this.readings = h('dl', { class: 'readings' });
    this.readingValues = new Map(); // state key -> <dd>
    body.append(this.readings);
    if (more.childElementCount) body.append(more);

    // Its history: a chart per measured value; with the cloud's store (ctx.history asks it)
    // range buttons on each and a state timeline per boolean or enum, asked for when the
    // detail view opens and when a range is chosen.
    this.charts = new Map();
    this.ranged = Boolean(ctx.history);
    const ask = (chart) => ctx.history(this, chart);
    for (const cap of chartedCapabilities(device)) {
      const chart = new Chart(`${device.name} ${capabilityLabel(cap).toLowerCase()}`, cap.unit, cap.name, { ranged: this.ranged, onRange: ask });
      this.charts.set(cap.name, chart);
      body.append(chart.root);
    }
    if (this.ranged) {
      for (const cap of timelineCapabilities(device)) {
        const label = `${device.name} ${capabilityLabel(cap).toLowerCase()}`;
        const timeline = new Timeline(label, cap, (value) => formatValue(cap, value), { onRange: ask });
        this.charts.set(cap.name, timeline);
        body.append(timeline.root);
      }
      this.details.addEventListener('toggle', () => {
        if (this.details.open) this.askHistories();
      });
    }

    // An owner names the device and sets its room (kept in the cloud, for every page of the flat).
    if (ctx.label) body.append(this.labelEditor(device, ctx));

    this.lastTime = h('time', {});
    this.lastText = h('span', { text: t('tile.never') });
    body.append(h('p', { class: 'last' }, t('tile.lastReported'), this.lastTime));
    this.lastTime.append(this.lastText);
    this.lastTs = undefined;

    // Its recent events, asked for each time the detail view opens.
    if (ctx.recentEvents) {
      this.events = h('ol', { class: 'event-list recent' });
      body.append(h('div', { class: 'recent-events' }, h('h4', { text: t('events.recent') }), this.events));
      this.details.addEventListener('toggle', () => {
        if (this.details.open) ctx.recentEvents(this);
      });
    }
    this.root.append(this.details);
  }

  // "Rename / room": a button that opens a small form (name, room, Save, Cancel). An empty
  // field asks for the gateway's own name or room back.
  labelEditor(device, ctx) {
    const formId = `dev-${device.id}-label`;
    this.labelOpen = h('button', {
      type: 'button',
      class: 'quiet label-open',
      'aria-expanded': 'false',
      'aria-controls': formId,
      'aria-label': t('label.openOf', { device: device.name }),
      text: t('label.open'),
    });
    const nameInput = h('input', { id: `${formId}-name`, name: 'name', maxlength: '64', autocomplete: 'off', spellcheck: 'false' });
    const roomInput = h('input', { id: `${formId}-room`, name: 'room', maxlength: '64', autocomplete: 'off', spellcheck: 'false' });
    nameInput.value = device.name;
    roomInput.value = device.room || '';
    const cancel = h('button', { type: 'button', class: 'quiet', text: t('label.cancel') });
    const save = h('button', { type: 'submit', text: t('label.save') });
    this.labelStatus = h('p', { class: 'label-status', role: 'status' });
    const form = h(
      'form',
      { id: formId, class: 'label-form', novalidate: true, hidden: true },
      h('label', { for: nameInput.id, text: t('label.name') }),
      nameInput,
      h('label', { for: roomInput.id, text: t('label.room') }),
      roomInput,
      h('p', { class: 'label-hint', text: t('label.hint') }),
      save,
      cancel,
    );
    const show = (open) => {
      form.hidden = !open;
      this.labelOpen.setAttribute('aria-expanded', String(open));
      if (open) nameInput.focus();
    };
    this.labelOpen.addEventListener('click', () => show(form.hidden));
    cancel.addEventListener('click', () => {
      nameInput.value = device.name;
      roomInput.value = device.room || '';
      this.labelStatus.textContent = '';
      show(false);
      this.labelOpen.focus();
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.labelStatus.textContent = t('label.saving');
      ctx.label(this, { name: nameInput.value.trim(), room: roomInput.value.trim() });
    });
    return h('div', { class: 'label-edit' }, this.labelOpen, form, this.labelStatus);
  }

  // The cloud's answer to this tile's label (ctx.label): saved, or why not.
  labelAnswered(error) {
    if (!this.labelStatus) return;
    this.labelStatus.textContent = error ? t('label.failed', { message: error }) : t('label.saved');
  }

  // The reply to ctx.recentEvents: events newest first (or a message saying why none).
  showEvents(events, devices) {
    if (typeof events === 'string') {
      this.events.replaceChildren(h('li', { class: 'event', text: events }));
      return;
    }
    this.events.replaceChildren(...(events.length ? events.map((e) => eventItem(e, devices)) : [h('li', { class: 'event', text: t('events.none') })]));
  }

  // reported: the state keys of an update message (the device reported again), if any.
  update(device, gatewayOnline, reported = null) {
    const online = device.online && gatewayOnline;
    this.root.dataset.online = String(online);
    this.presence.dataset.online = String(online);
    this.presence.textContent = online ? t('presence.online') : gatewayOnline ? t('presence.offline') : t('presence.gatewayOffline');

    const { look, words } = lookOf(device, online);
    this.root.dataset.look = look;
    this.stateWords.textContent = online ? words : `${t('state.offline')} · ${words}`;
    const iconName = iconFor(device.kind, look);
    if (this.iconBox.firstChild?.dataset?.icon !== iconName) this.iconBox.replaceChildren(icon(iconName));

    for (const [key, value] of Object.entries(device.state)) {
      if (this.controls.has(key)) continue;
      let dd = this.readingValues.get(key);
      if (!dd) {
        const cap = this.capabilities.get(key);
        dd = h('dd', { 'data-key': key });
        this.readings.append(h('dt', { text: cap ? capabilityLabel(cap) : capabilityLabel({ name: key }) }), dd);
        this.readingValues.set(key, dd);
      }
      dd.textContent = formatValue(this.capabilities.get(key), value);
    }
    this.readings.hidden = this.readingValues.size === 0;
    for (const [name, control] of this.controls) {
      control.update(device.state[name]);
      if (reported) control.stateReported();
    }

    this.lastTs = device.last_ts;
    this.tick();
  }

  // The tile leaves the page: a stream it runs ends.
  dispose() {
    if (this.audio) this.audio.stop();
  }

  // The recent values of a chart (a cloud without a store).
  drawHistory(capability, points) {
    const chart = this.charts.get(capability);
    if (chart && !this.ranged) chart.drawRecent(points);
  }

  // With the store: asks every chart's current range again (the detail view opened, or the
  // page got a new snapshot: what it missed meanwhile is in the store).
  askHistories() {
    for (const chart of this.charts.values()) chart.onRange(chart);
  }

  // With the store: an update's values join the charts whose ranges end now.
  live(state, ts) {
    if (!this.ranged) return;
    for (const [name, value] of Object.entries(state)) this.charts.get(name)?.live(ts, value);
  }

  // With the store, the detail view open: ranges that end now move on with the clock.
  tickCharts(now = Date.now()) {
    if (this.ranged && this.details.open) for (const chart of this.charts.values()) chart.tick(now);
  }

  // A history reply or error for one of this tile's charts.
  historyChart(capability) {
    return this.charts.get(capability) || null;
  }

  // The first control a keyboard reaches on this tile.
  firstControl() {
    return this.root.querySelector('button:not(:disabled), summary, select, input');
  }

  // Refreshes "last reported" (called every few seconds).
  tick(now = Date.now()) {
    if (this.lastTs === undefined) {
      this.lastTime.removeAttribute('datetime');
      this.lastText.textContent = t('tile.never');
      return;
    }
    const date = new Date(this.lastTs);
    this.lastTime.setAttribute('datetime', date.toISOString());
    this.lastTime.title = formatDateTime(this.lastTs);
    this.lastText.textContent = relativeTime(this.lastTs, now);
  }
}
