// One device on the page: its name, presence, readings, controls, charts and when it last
// reported. Built once from the device's description; update() brings in new state.

import { Chart } from './chart.js';
import { capabilityLabel, createControl, formatValue } from './controls.js';
import { chartedCapabilities } from './flat_state.js';
import { h } from './dom.js';

export function relativeTime(ts, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ago`;
  return new Date(ts).toLocaleDateString();
}

// The part of a device's description that decides how its card is built: when it changes
// (a devices message, a new snapshot), the card is rebuilt; otherwise only updated.
export function shapeOf(device) {
  return JSON.stringify([device.name, device.kind, device.room, device.capabilities]);
}

export class DeviceCard {
  // ctx: the controls' context (send, confirm).
  constructor(device, ctx) {
    this.id = device.id;
    this.shape = shapeOf(device);
    const titleId = `dev-${device.id}-title`;
    this.root = h('article', { class: 'device', 'data-device': device.id, 'aria-labelledby': titleId });
    this.presence = h('span', { class: 'presence', 'data-online': 'false', text: 'offline' });
    const heading = h('h3', { id: titleId, text: device.name });
    const kind = h('span', { class: 'kind', text: device.kind });
    this.root.append(h('header', { class: 'device-head' }, h('div', {}, heading, kind), this.presence));

    this.readings = h('dl', { class: 'readings' });
    this.readingValues = new Map(); // state key -> <dd>
    this.root.append(this.readings);

    this.capabilities = new Map(device.capabilities.map((c) => [c.name, c]));
    this.controls = new Map();
    const controls = h('div', { class: 'controls' });
    for (const cap of device.capabilities) {
      if (!cap.writable) continue;
      const control = createControl(device, cap, ctx);
      this.controls.set(cap.name, control);
      controls.append(control.root);
    }
    // A microphone's "Listen" or a speaker's "Hold to talk" (audio.js).
    this.audio = ctx.audio ? ctx.audio.controlFor(device) : null;
    if (this.audio) controls.append(this.audio.root);
    if (this.controls.size || this.audio) this.root.append(controls);

    this.charts = new Map();
    for (const cap of chartedCapabilities(device)) {
      const chart = new Chart(`${device.name} ${capabilityLabel(cap).toLowerCase()}`, cap.unit);
      chart.root.dataset.capability = cap.name;
      this.charts.set(cap.name, chart);
      this.root.append(chart.root);
    }

    this.lastTime = h('time', {});
    this.lastText = h('span', { text: 'never' });
    this.root.append(h('p', { class: 'last' }, 'Last reported: ', this.lastTime));
    this.lastTime.append(this.lastText);
    this.lastTs = undefined;
  }

  update(device, gatewayOnline) {
    const online = device.online && gatewayOnline;
    this.root.dataset.online = String(online);
    this.presence.dataset.online = String(online);
    this.presence.textContent = online ? 'online' : gatewayOnline ? 'offline' : 'offline (gateway)';

    for (const [key, value] of Object.entries(device.state)) {
      const control = this.controls.get(key);
      if (control) continue;
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
    for (const [name, control] of this.controls) control.update(device.state[name]);

    this.lastTs = device.last_ts;
    this.tick();
  }

  // The card leaves the page: a stream it runs ends.
  dispose() {
    if (this.audio) this.audio.stop();
  }

  drawHistory(capability, points) {
    const chart = this.charts.get(capability);
    if (chart) chart.draw(points);
  }

  // Refreshes "last reported" (called every few seconds).
  tick(now = Date.now()) {
    if (this.lastTs === undefined) {
      this.lastTime.removeAttribute('datetime');
      this.lastText.textContent = 'never';
      return;
    }
    const date = new Date(this.lastTs);
    this.lastTime.setAttribute('datetime', date.toISOString());
    this.lastTime.title = date.toLocaleString();
    this.lastText.textContent = relativeTime(this.lastTs, now);
  }
}
