// What the browser knows about its flat: the devices as the cloud last described them, the
// gateway's link, and the recent history of the charted capabilities. Pure data, no DOM.

// Points kept per charted capability (the cloud keeps 720 by default: an hour at 5 s).
export const MAX_HISTORY_POINTS = 720;

export function isNumeric(cap) {
  return cap.type === 'int' || cap.type === 'number';
}

// The capabilities drawn as a chart: numbers the device reports but nobody sets (a
// thermometer's temperature). Settable numbers already show their value in their control.
// Stream devices' numbers (frames, dropped, latency) describe their last stream, not a
// quantity over time: shown as readings, not charted.
export function chartedCapabilities(device) {
  const streams = device.capabilities.some((c) => c.name === 'audio_capture' || c.name === 'audio_playback');
  return streams ? [] : device.capabilities.filter((cap) => isNumeric(cap) && !cap.writable);
}

// The capabilities drawn as a state timeline (with the cloud's store): booleans and enums, read
// or set (a lock, a contact, a lamp's power). Not a stream device's.
export function timelineCapabilities(device) {
  const streams = device.capabilities.some((c) => c.name === 'audio_capture' || c.name === 'audio_playback');
  return streams ? [] : device.capabilities.filter((cap) => cap.type === 'bool' || cap.type === 'enum');
}

export class FlatState {
  constructor() {
    this.clear();
  }

  clear() {
    this.flat = '';
    this.name = '';
    this.gatewayOnline = false;
    this.gatewayResponding = true; // false: the link is up but the gateway went silent (frozen)
    this.devices = new Map(); // id -> device object (protocol.md "Device objects")
    this.lastSeq = 0; // highest update seq seen since the latest snapshot
    this.history = new Map(); // "device/capability" -> [[ts, value], ...]
  }

  // A snapshot replaces everything, the seq rule starts afresh.
  applySnapshot(msg) {
    const history = this.history;
    this.clear();
    this.flat = msg.flat;
    this.name = msg.name || msg.flat;
    this.gatewayOnline = Boolean(msg.gateway_online);
    for (const d of msg.devices) this.devices.set(d.id, normalize(d));
    // Keep the points of the same flat's charts until the history reply replaces them.
    for (const [key, points] of history) {
      const [device] = key.split('/');
      if (this.devices.has(device)) this.history.set(key, points);
    }
  }

  // Returns the device that changed, or null when the update is dropped (an old seq, an
  // unknown device).
  applyUpdate(msg) {
    if (typeof msg.seq === 'number') {
      if (msg.seq <= this.lastSeq) return null;
      this.lastSeq = msg.seq;
    }
    const device = this.devices.get(msg.device);
    if (!device) return null;
    Object.assign(device.state, msg.state);
    if (typeof msg.ts === 'number' && (device.last_ts === undefined || msg.ts >= device.last_ts)) device.last_ts = msg.ts;
    for (const [name, value] of Object.entries(msg.state)) {
      if (typeof value === 'number' && this.history.has(`${msg.device}/${name}`)) {
        appendPoint(this.history.get(`${msg.device}/${name}`), [msg.ts, value]);
      }
    }
    return device;
  }

  applyPresence(msg) {
    const device = this.devices.get(msg.device);
    if (!device) return null;
    device.online = Boolean(msg.online);
    return device;
  }

  applyDevices(msg) {
    const old = this.devices;
    this.devices = new Map();
    for (const d of msg.devices) this.devices.set(d.id, normalize(d));
    for (const key of [...this.history.keys()]) {
      if (!this.devices.has(key.split('/')[0])) this.history.delete(key);
    }
    return old;
  }

  // Starts tracking a capability's history (before the cloud's reply comes, updates are
  // kept; the reply then replaces them: it already holds every one sent before it).
  trackHistory(device, capability) {
    const key = `${device}/${capability}`;
    if (!this.history.has(key)) this.history.set(key, []);
  }

  applyHistory(msg) {
    const key = `${msg.device}/${msg.capability}`;
    if (!this.history.has(key)) return null;
    const points = msg.points.filter((p) => Array.isArray(p) && typeof p[1] === 'number').slice(-MAX_HISTORY_POINTS);
    this.history.set(key, points);
    return points;
  }

  points(device, capability) {
    return this.history.get(`${device}/${capability}`) || [];
  }
}

function normalize(d) {
  return {
    id: d.id,
    name: d.name || d.id,
    kind: d.kind || '',
    room: d.room || '',
    capabilities: Array.isArray(d.capabilities) ? d.capabilities : [],
    state: { ...(d.state || {}) },
    online: Boolean(d.online),
    last_ts: typeof d.last_ts === 'number' ? d.last_ts : undefined,
  };
}

function appendPoint(points, point) {
  if (points.length && point[0] < points[points.length - 1][0]) return; // keep time order
  points.push(point);
  if (points.length > MAX_HISTORY_POINTS) points.splice(0, points.length - MAX_HISTORY_POINTS);
}
