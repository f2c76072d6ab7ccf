// The flat's event log (docs/protocol.md, "events"): one line per event in the user's
// language ("Front door unlocked by anna · 14:02 · ok"), the log view (newest first, filtered
// by device and kind, in pages) and a device's recent events in its tile's detail view.

import { h } from './dom.js';
import { formatValue } from './controls.js';
import { currentLocale, t } from './i18n.js';

export const EVENT_KINDS = ['command', 'presence', 'gateway', 'login', 'login_failed', 'logout', 'member', 'admin'];
export const PAGE_SIZE = 20;

// "14:02" today, "3 Dec, 14:02" on another day, in the user's locale.
export function eventTime(ts, now = Date.now()) {
  const date = new Date(ts);
  const today = new Date(now).toDateString() === date.toDateString();
  const options = today ? { hour: '2-digit', minute: '2-digit' } : { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' };
  return new Intl.DateTimeFormat(currentLocale(), options).format(date);
}

// What a command asked for, in words: "unlocked", "turned on", "set brightness to 40 %".
function commandWords(set, device) {
  return Object.entries(set || {})
    .map(([name, value]) => {
      if (name === 'lock' && (value === 'locked' || value === 'unlocked')) return t(`event.${value}`);
      if (typeof value === 'boolean' && name === 'on') return t(value ? 'event.turnedOn' : 'event.turnedOff');
      const cap = device?.capabilities?.find((c) => c.name === name);
      return t('event.set', { name, value: formatValue(cap, value) });
    })
    .join(', ');
}

// The line of one event: { text, outcome } (outcome only for commands).
// devices: id -> device (for names and units); an unknown device goes by its id.
export function describeEvent(event, devices = new Map()) {
  const device = devices.get(event.device);
  const name = device?.name || event.device || '';
  const d = event.detail || {};
  let text;
  switch (event.kind) {
    case 'command':
      text = t(event.user ? 'event.commandBy' : 'event.command', { device: name, what: commandWords(d.set, device), user: event.user });
      break;
    case 'presence':
      text = t(d.online ? 'event.deviceOnline' : 'event.deviceOffline', { device: name });
      break;
    case 'gateway':
      text = t(d.online ? 'event.gatewayOnline' : 'event.gatewayOffline');
      break;
    case 'login':
      text = t('event.login', { user: event.user });
      break;
    case 'login_failed':
      text = t('event.loginFailed', { user: event.user });
      break;
    case 'logout':
      text = t('event.logout', { user: event.user });
      break;
    case 'member':
      text = t('event.member', { user: event.user, role: d.role || '', by: d.by || '' });
      break;
    case 'admin':
      if (d.label) {
        // An owner's name and room for a device ("" for either: the gateway's).
        text = t('event.label', { device: event.device, name: d.label.name || name, room: d.label.room || device?.room || t('flat.other'), user: event.user || '' });
      } else {
        text = t('event.admin', { what: d.what || '', by: d.by || '' });
      }
      break;
    default:
      text = event.kind;
  }
  return { text, outcome: event.kind === 'command' ? event.outcome || '' : '' };
}

// One <li>: the words, the time (a <time> with its ISO date), the outcome.
export function eventItem(event, devices) {
  const { text, outcome } = describeEvent(event, devices);
  const time = h('time', { datetime: new Date(event.ts).toISOString(), text: eventTime(event.ts) });
  const li = h('li', { class: 'event', 'data-kind': event.kind, 'data-event': event.id }, h('span', { class: 'event-text', text }), ' · ', time);
  if (outcome) {
    li.append(' · ', h('span', { class: 'event-outcome', 'data-outcome': outcome, text: t(`outcome.${outcome}`) }));
  }
  return li;
}

// The log view: filters, a list, paging. ask(request) sends an `events` request and resolves
// with its reply (or rejects with a message); devices() gives the flat's devices now.
export class EventLog {
  constructor(ui, { ask, devices }) {
    this.ui = ui; // { view, device, kind, list, status, newer, older }
    this.ask = ask;
    this.devices = devices;
    this.cursors = [undefined]; // the `before` of each page shown so far (the first: none)
    this.next = undefined;
    this.loading = 0; // the latest load; older answers are dropped
    ui.device.addEventListener('change', () => this.reload());
    ui.kind.addEventListener('change', () => this.reload());
    ui.older.addEventListener('click', () => {
      if (this.next === undefined) return;
      this.cursors.push(this.next);
      this.load();
    });
    ui.newer.addEventListener('click', () => {
      if (this.cursors.length < 2) return;
      this.cursors.pop();
      this.load();
    });
    this.fillKinds();
  }

  fillKinds() {
    const chosen = this.ui.kind.value;
    this.ui.kind.replaceChildren(h('option', { value: '', text: t('events.allKinds') }));
    for (const kind of EVENT_KINDS) this.ui.kind.append(h('option', { value: kind, text: t(`kind.${kind}`) }));
    this.ui.kind.value = chosen;
  }

  // The device filter follows the flat's devices (kept when it still exists).
  fillDevices() {
    const chosen = this.ui.device.value;
    const list = [...this.devices().values()].sort((a, b) => a.name.localeCompare(b.name));
    this.ui.device.replaceChildren(h('option', { value: '', text: t('events.allDevices') }), ...list.map((d) => h('option', { value: d.id, text: d.name })));
    this.ui.device.value = list.some((d) => d.id === chosen) ? chosen : '';
  }

  // Back to the newest page with the filters chosen.
  reload() {
    this.cursors = [undefined];
    this.load();
  }

  async load() {
    const load = ++this.loading;
    const before = this.cursors[this.cursors.length - 1];
    const request = { type: 'events', limit: PAGE_SIZE };
    if (this.ui.device.value) request.device = this.ui.device.value;
    if (this.ui.kind.value) request.kinds = [this.ui.kind.value];
    if (before !== undefined) request.before = before;
    this.ui.status.textContent = t('events.loading');
    this.ui.view.setAttribute('aria-busy', 'true');
    let reply;
    try {
      reply = await this.ask(request);
    } catch (err) {
      if (load !== this.loading) return;
      this.ui.view.removeAttribute('aria-busy');
      this.ui.status.textContent = String(err.message || err);
      return;
    }
    if (load !== this.loading) return;
    this.ui.view.removeAttribute('aria-busy');
    this.next = reply.next;
    const devices = this.devices();
    this.ui.list.replaceChildren(...reply.events.map((e) => eventItem(e, devices)));
    const page = this.cursors.length;
    this.ui.status.textContent = reply.events.length ? t('events.page', { page }) : t('events.none');
    this.ui.older.disabled = reply.next === undefined;
    this.ui.newer.disabled = page < 2;
  }
}
