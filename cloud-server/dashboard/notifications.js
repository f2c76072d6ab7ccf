// The Notifications view: per user (kept in this browser's localStorage, per flat and user),
// which events show a notification while a page of the flat is open (the Notification API;
// permission asked on a button press) — a door unlocked, a device offline, the gateway
// offline, a value crossing a threshold the user sets; and, for an owner, the flat's webhook
// (docs/protocol.md "webhook"), which the cloud calls for every event even when no page is open.

import { h } from './dom.js';
import { formatNumber, t } from './i18n.js';

export const NOTIFY_EVENTS = ['door_unlocked', 'device_offline', 'gateway_offline'];
const DEFAULTS = { door_unlocked: true, device_offline: true, gateway_offline: true, thresholds: [] };

// A lock's state: true unlocked, false locked, undefined neither (`lock` enum or `locked` bool).
export function lockUnlocked(state) {
  if (!state) return undefined;
  if (state.lock === 'unlocked') return true;
  if (state.lock === 'locked') return false;
  if (typeof state.locked === 'boolean') return !state.locked;
  return undefined;
}

// The numeric capabilities a threshold can watch.
function numericCapabilities(device) {
  return (device.capabilities || []).filter((c) => c.type === 'number' || c.type === 'int' || c.type === 'float');
}

export class Notifications {
  // ui: { view, permission, allow, events (fieldset of checkboxes), thresholdDevice,
  //       thresholdCapability, thresholdValue, thresholdAdd, thresholds, webhook (section),
  //       webhookForm, webhookUrl, webhookEvents, webhookRemove, webhookStatus }
  // devices(): id -> device; send(request): false when not connected.
  constructor(ui, { devices, send }) {
    this.ui = ui;
    this.devices = devices;
    this.send = send;
    this.key = '';
    this.prefs = { ...DEFAULTS };
    this.webhookPending = false;
    this.status = null; // the webhook's status line: [key, params] (redrawn in another language)
    ui.allow.addEventListener('click', () => this.askPermission());
    for (const box of ui.events.querySelectorAll('input[type=checkbox]')) {
      box.addEventListener('change', () => {
        this.prefs[box.value] = box.checked;
        this.save();
      });
    }
    ui.thresholdDevice.addEventListener('change', () => this.fillCapabilities());
    ui.thresholdAdd.addEventListener('click', () => this.addThreshold());
    ui.webhookForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.setWebhook();
    });
    ui.webhookRemove.addEventListener('click', () => this.request({ type: 'webhook', action: 'clear' }));
  }

  // Logged in as `user` to `flat` with `role`: that user's choices, and the webhook for an owner.
  start(flat, user, role) {
    const key = `flatlink.notify.${flat}.${user}`;
    if (key !== this.key) {
      this.status = null; // another user's webhook status is not this one's
      this.ui.webhookStatus.textContent = '';
    }
    this.key = key;
    try {
      this.prefs = { ...DEFAULTS, ...JSON.parse(localStorage.getItem(this.key) || '{}') };
    } catch {
      this.prefs = { ...DEFAULTS };
    }
    this.owner = role === 'owner';
    this.ui.webhook.hidden = !this.owner;
    this.render();
  }

  save() {
    if (!this.key) return;
    try {
      localStorage.setItem(this.key, JSON.stringify(this.prefs));
    } catch {
      // storage full or refused: the choice holds for this page only
    }
  }

  // The view opened: what is chosen, and the webhook asked of the cloud (an owner).
  shown() {
    this.render();
    if (this.owner) this.request({ type: 'webhook', action: 'get' });
  }

  // The webhook's status line, kept as a key so that a language switch redraws it.
  setStatus(parts) {
    this.status = parts;
    this.ui.webhookStatus.textContent = parts.map(([key, params]) => t(key, params)).join(' ');
  }

  render() {
    const ui = this.ui;
    if (this.status) this.setStatus(this.status);
    for (const box of ui.events.querySelectorAll('input[type=checkbox]')) box.checked = Boolean(this.prefs[box.value]);
    this.showPermission();
    this.fillDevices();
    ui.thresholds.replaceChildren(
      ...this.prefs.thresholds.map((rule, i) => {
        const device = this.devices().get(rule.device);
        const remove = h('button', { type: 'button', class: 'quiet', text: t('notify.remove') });
        remove.setAttribute('aria-label', t('notify.removeRule', { rule: this.ruleText(rule, device) }));
        remove.addEventListener('click', () => {
          this.prefs.thresholds.splice(i, 1);
          this.save();
          this.render();
        });
        return h('li', {}, h('span', { text: this.ruleText(rule, device) }), ' ', remove);
      }),
    );
  }

  ruleText(rule, device) {
    return t('notify.rule', { device: device?.name || rule.device, capability: rule.capability, value: formatNumber(rule.above) });
  }

  showPermission() {
    const supported = typeof window.Notification === 'function';
    const permission = supported ? Notification.permission : 'unsupported';
    this.ui.permission.textContent = t(`notify.permission.${permission}`);
    this.ui.allow.hidden = !supported || permission === 'granted';
  }

  async askPermission() {
    if (typeof window.Notification !== 'function') return;
    try {
      await Notification.requestPermission();
    } catch {
      // an old callback-style API: the state below says what came of it
    }
    this.showPermission();
  }

  fillDevices() {
    const select = this.ui.thresholdDevice;
    const chosen = select.value;
    const list = [...this.devices().values()].filter((d) => numericCapabilities(d).length).sort((a, b) => a.name.localeCompare(b.name));
    select.replaceChildren(...list.map((d) => h('option', { value: d.id, text: d.name })));
    if (list.some((d) => d.id === chosen)) select.value = chosen;
    this.fillCapabilities();
    this.ui.thresholdAdd.disabled = list.length === 0;
  }

  fillCapabilities() {
    const device = this.devices().get(this.ui.thresholdDevice.value);
    const caps = device ? numericCapabilities(device) : [];
    this.ui.thresholdCapability.replaceChildren(...caps.map((c) => h('option', { value: c.name, text: c.unit ? `${c.name} (${c.unit})` : c.name })));
  }

  addThreshold() {
    const value = Number(this.ui.thresholdValue.value);
    const device = this.ui.thresholdDevice.value;
    const capability = this.ui.thresholdCapability.value;
    if (!device || !capability || this.ui.thresholdValue.value === '' || !Number.isFinite(value)) {
      this.ui.thresholdValue.setAttribute('aria-invalid', 'true');
      this.ui.thresholdValue.focus();
      return;
    }
    this.ui.thresholdValue.removeAttribute('aria-invalid');
    this.prefs.thresholds.push({ device, capability, above: value });
    this.ui.thresholdValue.value = '';
    this.save();
    this.render();
  }

  // ---- events of the flat (app.js calls these with the state before and after) ----

  update(device, before, changed) {
    if (!device) return;
    if (this.prefs.door_unlocked && device.kind === 'lock' && lockUnlocked(changed) === true && lockUnlocked(before) !== true) {
      this.show(t('notify.doorUnlocked', { device: device.name }), `unlocked-${device.id}`);
    }
    for (const rule of this.prefs.thresholds) {
      if (rule.device !== device.id || !(rule.capability in changed)) continue;
      const now = changed[rule.capability];
      const was = before?.[rule.capability];
      if (typeof now === 'number' && now > rule.above && !(typeof was === 'number' && was > rule.above)) {
        this.show(t('notify.above', { device: device.name, capability: rule.capability, value: formatNumber(now), limit: formatNumber(rule.above) }), `above-${device.id}-${rule.capability}`);
      }
    }
  }

  presence(device, online, wasOnline) {
    if (device && !online && wasOnline !== false && this.prefs.device_offline) {
      this.show(t('notify.deviceOffline', { device: device.name }), `offline-${device.id}`);
    }
  }

  gateway(online, wasOnline) {
    if (!online && wasOnline && this.prefs.gateway_offline) this.show(t('notify.gatewayOffline'), 'gateway-offline');
  }

  show(body, tag) {
    if (typeof window.Notification !== 'function' || Notification.permission !== 'granted') return;
    try {
      new Notification(t('notify.title'), { body, tag });
    } catch {
      // Chromium on Android allows notifications only from a service worker
      navigator.serviceWorker?.ready.then((reg) => reg.showNotification(t('notify.title'), { body, tag })).catch(() => {});
    }
  }

  // ---- the flat's webhook (owners) ----

  request(message) {
    if (!this.send(message)) {
      this.setStatus([['conn.notConnected']]);
      return;
    }
    this.webhookPending = true;
    this.setStatus([['notify.webhookBusy']]);
  }

  setWebhook() {
    const events = [...this.ui.webhookEvents.querySelectorAll('input[type=checkbox]')].filter((b) => b.checked).map((b) => b.value);
    this.request({ type: 'webhook', action: 'set', url: this.ui.webhookUrl.value.trim(), events });
  }

  // The cloud's `webhook` answer.
  webhookReply(msg) {
    this.webhookPending = false;
    this.ui.webhookUrl.value = msg.url || '';
    // No webhook yet: every event offered, as the form starts.
    for (const box of this.ui.webhookEvents.querySelectorAll('input[type=checkbox]')) box.checked = msg.url ? (msg.events || []).includes(box.value) : true;
    this.ui.webhookRemove.disabled = !msg.url;
    const status = [[msg.url ? 'notify.webhookSet' : 'notify.webhookNone']];
    if (msg.secret) status.push(['notify.webhookSecret', { secret: msg.secret }]);
    this.setStatus(status);
  }

  // An error while a webhook request waits: true when it was that request's.
  webhookError(msg) {
    if (!this.webhookPending) return false;
    this.webhookPending = false;
    this.setStatus([['notify.webhookRefused', { message: msg.message || msg.code }]]);
    return true;
  }
}
