// The dashboard page: the login form (a session kept across reloads: POST /session, then
// `resume`), the account menu (name, role, log out here or everywhere), the flat's devices
// as tiles grouped by room (those without one under "Other"; a guest's without controls),
// the event log, the link states, the language switch, wired to the cloud connection;
// registers the service worker (sw.js) that keeps the page's shell for offline starts.
// Entry point of index.html.

import { Connection, cloudUrl, startSession } from './connection.js';
import { DeviceCard, shapeOf } from './device_card.js';
import { EventLog } from './events.js';
import { FlatState, chartedCapabilities } from './flat_state.js';
import { historyRequest } from './history.js';
import { LANGUAGES, catalogue, language, onLanguageChange, setLanguage, t } from './i18n.js';
import { Notifications } from './notifications.js';

const $ = (id) => document.getElementById(id);
const ui = {
  flatName: $('flat-name'),
  links: $('links'),
  cloudLink: $('cloud-link'),
  cloudLinkText: $('cloud-link-text'),
  gatewayLink: $('gateway-link'),
  gatewayLinkText: $('gateway-link-text'),
  account: $('account'),
  accountSummary: $('account-summary'),
  accountUser: $('account-user'),
  accountRole: $('account-role'),
  logout: $('logout'),
  logoutEverywhere: $('logout-everywhere'),
  views: $('views'),
  showDevices: $('show-devices'),
  showEvents: $('show-events'),
  eventsView: $('events-view'),
  showNotify: $('show-notify'),
  notifyView: $('notify-view'),
  lang: $('lang'),
  offlineNotice: $('offline-notice'),
  loginView: $('login-view'),
  loginForm: $('login-form'),
  loginFlat: $('login-flat'),
  loginUser: $('login-user'),
  loginPassword: $('login-password'),
  loginSubmit: $('login-submit'),
  loginError: $('login-error'),
  flatView: $('flat-view'),
  flatNotice: $('flat-notice'),
  rooms: $('rooms'),
  noDevices: $('no-devices'),
  confirmDialog: $('confirm-dialog'),
  confirmText: $('confirm-text'),
};

const state = new FlatState();
const cards = new Map(); // device id -> DeviceCard
const sections = new Map(); // group key -> <section>
let countdown = null;
let lastLink = { state: 'connecting', detail: {} }; // for redrawing in another language
let focusAfterLogin = false; // the next snapshot is a login's: focus its first control
let account = null; // { user, role }: who is logged in (role from the cloud's welcome)
let typedUser = ''; // the user name of a login without a session (no welcome comes)

// The confirmation dialog answers one question at a time. The browser fires "close" as a
// task after the dialog has closed, so a question asked right after the last one was answered
// (before that task ran) would see the old close event: the answer is taken when the dialog
// closes or when the next question is asked, whichever comes first, and a close event that
// finds the dialog open again belongs to an earlier question.
let answerConfirm = null; // resolves the open question's promise
function takeConfirmAnswer() {
  const resolve = answerConfirm;
  answerConfirm = null;
  resolve?.(ui.confirmDialog.returnValue === 'ok');
}
ui.confirmDialog.addEventListener('close', () => {
  if (!ui.confirmDialog.open) takeConfirmAnswer();
});

const controlContext = {
  audio: null, // the page's audio streams (Listen, Hold to talk), once audio.js is loaded
  readOnly: false, // a guest: tiles without controls
  recentEvents: null, // with a store (a welcome came): a tile's details list its recent events
  history: null, // with a store: a tile's charts ask their ranges (askHistory)
  label: null, // an owner (with a store): a tile's "Rename / room" sends device_label (sendLabel)
  send: (device, set, done) => connection.command(device, set, done),
  confirm: (question) =>
    new Promise((resolve) => {
      const dialog = ui.confirmDialog;
      if (dialog.open) dialog.close('cancel'); // not expected: the dialog is modal
      takeConfirmAnswer(); // an answer whose close event has not run yet
      answerConfirm = resolve;
      ui.confirmText.textContent = question;
      dialog.returnValue = '';
      dialog.showModal();
      $('confirm-cancel').focus();
    }),
};

const connection = new Connection(cloudUrl(), {
  link(linkState, detail) {
    audio?.link(linkState);
    if (linkState !== 'open') {
      failAsks(t('conn.notConnected'));
      historyAsks.clear(); // asked again with the next snapshot
    }
    lastLink = { state: linkState, detail };
    showCloudLink(linkState, detail);
  },
  binary: (data) => audio?.binary(data),
  loginFailed(message, { unreachable = false } = {}) {
    showLogin(unreachable && !navigator.onLine ? t('notice.noConnection') : message);
  },
  message: onMessage,
});

// The intercom's code (audio.js) loads only when the flat has a microphone or a speaker:
// a flat without one never fetches it. Once it is there, those devices' tiles are made
// again with their Listen / Hold to talk.
let audio = null; // AudioStreams, once loaded
let audioLoading = false;
const isStreamDevice = (device) =>
  Boolean(device?.capabilities?.some((c) => c.name === 'audio_capture' || c.name === 'audio_playback'));

function loadAudioWhenNeeded() {
  if (audio || audioLoading || ![...state.devices.values()].some(isStreamDevice)) return;
  audioLoading = true;
  import('./audio.js').then(
    ({ AudioStreams }) => {
      audio = new AudioStreams(connection);
      controlContext.audio = audio;
      for (const [id, card] of [...cards]) {
        if (!isStreamDevice(state.devices.get(id))) continue;
        card.dispose();
        card.root.remove();
        cards.delete(id);
      }
      renderDevices();
    },
    (err) => {
      audioLoading = false; // tried again with the next snapshot or device list
      showNotice(t('notice.cloudError', { message: err.message }));
    },
  );
}

// ---- the cloud's messages --------------------------------------------------------------

function onMessage(msg) {
  switch (msg.type) {
    case 'welcome':
      setAccount({ user: msg.user, role: msg.role, flat: msg.flat });
      break;
    case 'events': {
      const pending = asks.get(msg.id);
      asks.delete(msg.id);
      pending?.resolve(msg);
      break;
    }
    case 'snapshot':
      if (!account) setAccount({ user: typedUser, role: undefined, flat: msg.flat }); // a cloud without sessions
      state.applySnapshot(msg);
      eventLog.fillDevices();
      showFlat();
      showGatewayLink();
      renderDevices();
      requestHistories();
      // What the open charts missed (a reconnect, a burst that cost a snapshot) is in the store.
      for (const card of cards.values()) if (card.ranged && card.details.open) card.askHistories();
      if (focusAfterLogin) {
        focusAfterLogin = false;
        focusFirstControl();
      }
      break;
    case 'update': {
      const before = { ...(state.devices.get(msg.device)?.state || {}) };
      const device = state.applyUpdate(msg);
      if (!device) break;
      notifications.update(device, before, msg.state);
      const card = cards.get(device.id);
      if (!card) break;
      card.update(device, state.gatewayOnline, Object.keys(msg.state));
      for (const name of Object.keys(msg.state)) card.drawHistory(name, state.points(device.id, name));
      card.live(msg.state, msg.ts);
      break;
    }
    case 'presence': {
      const wasOnline = state.devices.get(msg.device)?.online;
      const device = state.applyPresence(msg);
      notifications.presence(device, Boolean(msg.online), wasOnline);
      if (device && cards.has(device.id)) cards.get(device.id).update(device, state.gatewayOnline);
      break;
    }
    case 'gateway':
      notifications.gateway(Boolean(msg.online), state.gatewayOnline);
      state.gatewayOnline = Boolean(msg.online);
      state.gatewayResponding = msg.responding !== false;
      showGatewayLink();
      for (const [id, card] of cards) card.update(state.devices.get(id), state.gatewayOnline);
      break;
    case 'devices':
      state.applyDevices(msg);
      eventLog.fillDevices();
      renderDevices();
      requestHistories();
      break;
    case 'history': {
      if (typeof msg.id === 'string' && historyAsks.has(msg.id)) {
        historyChart(msg.id)?.reply(msg);
        break;
      }
      const points = state.applyHistory(msg);
      if (points && cards.has(msg.device)) cards.get(msg.device).drawHistory(msg.capability, points);
      break;
    }
    case 'stream_opened':
    case 'stream_closed':
      audio?.message(msg);
      break;
    case 'webhook':
      notifications.webhookReply(msg);
      break;
    case 'device_label':
      labelAnswered(msg.id, null);
      break;
    case 'error':
      if (typeof msg.id === 'string' && labelAsks.has(msg.id)) {
        labelAnswered(msg.id, msg.message || msg.code);
        break;
      }
      if (['bad_url', 'forbidden', 'unavailable'].includes(msg.code) && notifications.webhookError(msg)) break;
      if (typeof msg.id === 'string' && historyAsks.has(msg.id)) {
        historyChart(msg.id)?.failed(msg.message || msg.code);
        break;
      }
      if (msg.code === 'unavailable' && asks.size) {
        failAsks(t('events.unavailable')); // event requests carry no id in their error
        break;
      }
      showNotice(t('notice.cloudError', { message: msg.message || msg.code }));
      break;
    default:
      break;
  }
}

// ---- the event log ---------------------------------------------------------------------

let nextAsk = 1;
const asks = new Map(); // events request id -> { resolve, reject }

// Sends an `events` request; resolves with its reply.
function ask(request) {
  return new Promise((resolve, reject) => {
    const id = `ev-${nextAsk++}`;
    if (!connection.request({ ...request, id })) {
      reject(new Error(t('conn.notConnected')));
      return;
    }
    asks.set(id, { resolve, reject });
  });
}

function failAsks(message) {
  for (const { reject } of asks.values()) reject(new Error(message));
  asks.clear();
}

const eventLog = new EventLog(
  {
    view: ui.eventsView,
    device: $('events-device'),
    kind: $('events-kind'),
    list: $('event-list'),
    status: $('events-status'),
    newer: $('events-newer'),
    older: $('events-older'),
  },
  { ask, devices: () => state.devices },
);

function askRecentEvents(card) {
  ask({ type: 'events', device: card.id, limit: 5 }).then(
    (reply) => card.showEvents(reply.events, state.devices),
    (err) => card.showEvents(err.message),
  );
}

const notifications = new Notifications(
  {
    view: ui.notifyView,
    permission: $('notify-permission'),
    allow: $('notify-allow'),
    events: $('notify-events'),
    thresholdDevice: $('threshold-device'),
    thresholdCapability: $('threshold-capability'),
    thresholdValue: $('threshold-value'),
    thresholdAdd: $('threshold-add'),
    thresholds: $('threshold-list'),
    webhook: $('webhook-section'),
    webhookForm: $('webhook-form'),
    webhookUrl: $('webhook-url'),
    webhookEvents: $('webhook-events'),
    webhookRemove: $('webhook-remove'),
    webhookStatus: $('webhook-status'),
  },
  { devices: () => state.devices, send: (message) => connection.request(message) },
);

// view: 'devices', 'events' or 'notify' (false / true: devices / events, as before).
function showView(view) {
  if (view === false) view = 'devices';
  if (view === true) view = 'events';
  ui.flatView.hidden = view !== 'devices';
  ui.eventsView.hidden = view !== 'events';
  ui.notifyView.hidden = view !== 'notify';
  ui.showDevices.setAttribute('aria-pressed', String(view === 'devices'));
  ui.showEvents.setAttribute('aria-pressed', String(view === 'events'));
  ui.showNotify.setAttribute('aria-pressed', String(view === 'notify'));
  if (view === 'events') eventLog.reload();
  if (view === 'notify') notifications.shown();
}
ui.showDevices.addEventListener('click', () => showView('devices'));
ui.showEvents.addEventListener('click', () => showView('events'));
ui.showNotify.addEventListener('click', () => showView('notify'));

// ---- the account -----------------------------------------------------------------------

function setAccount(next) {
  account = next;
  if (state.flat || next.flat) notifications.start(next.flat || state.flat, next.user, next.role);
  ui.accountUser.textContent = next.user;
  ui.accountSummary.setAttribute('aria-label', t('account.label', { user: next.user }));
  ui.accountRole.textContent = next.role ? t(`role.${next.role}`) : '';
  ui.accountRole.parentElement.hidden = !next.role;
  const readOnly = next.role === 'guest';
  const recentEvents = next.role ? askRecentEvents : null; // a role comes only with a store
  const history = next.role ? askHistory : null;
  const label = next.role === 'owner' ? sendLabel : null;
  document.body.dataset.role = next.role || '';
  if (
    readOnly !== controlContext.readOnly ||
    recentEvents !== controlContext.recentEvents ||
    history !== controlContext.history ||
    label !== controlContext.label
  ) {
    controlContext.readOnly = readOnly;
    controlContext.recentEvents = recentEvents;
    controlContext.history = history;
    controlContext.label = label;
    dropCards(); // built again by the snapshot that follows
  }
}

function dropCards() {
  for (const card of cards.values()) {
    card.dispose();
    card.root.remove();
  }
  cards.clear();
  for (const section of sections.values()) section.remove();
  sections.clear();
}

// ---- an owner's names and rooms -------------------------------------------------------------

let nextLabelAsk = 1;
const labelAsks = new Map(); // device_label request id -> device id

// A tile's "Rename / room" saved: docs/protocol.md "device_label". The cloud then sends every
// page of the flat a `devices` message with the new name and room (the tile is made again,
// under its new room), and this page the answer.
function sendLabel(card, { name, room }) {
  const id = `lb-${nextLabelAsk++}`;
  if (!connection.request({ type: 'device_label', id, device: card.id, name, room })) {
    card.labelAnswered(t('conn.notConnected'));
    return;
  }
  labelAsks.set(id, card.id);
}

// The answer (error: null when saved): shown on the device's tile as it is now, its details
// open and the keyboard back on its "Rename / room".
function labelAnswered(id, error) {
  const device = labelAsks.get(id);
  labelAsks.delete(id);
  const card = device && cards.get(device);
  if (!card) return;
  card.details.open = true;
  card.labelAnswered(error);
  if (!error) card.labelOpen?.focus();
}

// ---- history ------------------------------------------------------------------------------

let nextHistoryAsk = 1;
const historyAsks = new Map(); // history request id -> { device, capability }

// With the store: one chart's range (docs/protocol.md "history"); its reply or error comes
// with the id.
function askHistory(card, chart) {
  const id = `hi-${nextHistoryAsk++}`;
  const request = historyRequest(card.id, chart.capability, chart.range, { timeline: !chart.numeric, id, custom: chart.custom });
  if (!connection.request(request)) {
    chart.failed(t('conn.notConnected'));
    return;
  }
  historyAsks.set(id, { device: card.id, capability: chart.capability });
  chart.asked(id);
}

// The chart a reply is for, if it still waits for that one (not a later range's).
function historyChart(id) {
  const asked = historyAsks.get(id);
  historyAsks.delete(id);
  const chart = cards.get(asked.device)?.historyChart(asked.capability);
  return chart && chart.pending === id ? chart : null;
}

// Without the store: the recent values of every charted capability, as ever.
function requestHistories() {
  if (controlContext.history) return;
  for (const device of state.devices.values()) {
    for (const cap of chartedCapabilities(device)) {
      state.trackHistory(device.id, cap.name);
      connection.request({ type: 'history', device: device.id, capability: cap.name });
    }
  }
}

// ---- devices ---------------------------------------------------------------------------

// A device's room, or "Other" (last) for one without: never its adapter's or kind's name.
function groupOf(device) {
  if (device.room) return { key: `room:${device.room}`, title: device.room, order: 0 };
  return { key: 'other', title: t('flat.other'), order: 1 };
}

// After a login, the keyboard starts on the first tile's first control (not on the
// vanished login button, which would leave focus on the page's body).
function focusFirstControl() {
  const first = ui.rooms.querySelector('article.device');
  const card = first && cards.get(first.dataset.device);
  (card?.firstControl() || ui.accountSummary).focus();
}

// Brings the page in line with state.devices: reuses the card of a device whose
// description did not change (so a control's pending outcome and focus stay).
function renderDevices() {
  loadAudioWhenNeeded();
  const groups = new Map();
  for (const device of state.devices.values()) {
    const g = groupOf(device);
    if (!groups.has(g.key)) groups.set(g.key, { ...g, devices: [] });
    groups.get(g.key).devices.push(device);
  }
  const ordered = [...groups.values()].sort((a, b) => a.order - b.order || a.title.localeCompare(b.title));

  for (const [id, card] of cards) {
    const device = state.devices.get(id);
    if (!device || shapeOf(device) !== card.shape) {
      card.dispose();
      card.root.remove();
      cards.delete(id);
    }
  }
  const wanted = [];
  for (const group of ordered) {
    let section = sections.get(group.key);
    if (!section) {
      section = document.createElement('section');
      section.className = 'room';
      section.dataset.group = group.key;
      const headingId = `group-${sections.size + 1}`;
      section.setAttribute('aria-labelledby', headingId);
      const heading = document.createElement('h2');
      heading.id = headingId;
      heading.textContent = group.title;
      const list = document.createElement('div');
      list.className = 'devices';
      section.append(heading, list);
      sections.set(group.key, section);
    }
    const list = section.querySelector('.devices');
    const nodes = group.devices
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
      .map((device) => {
        let card = cards.get(device.id);
        if (!card) {
          card = new DeviceCard(device, controlContext);
          cards.set(device.id, card);
        }
        card.update(device, state.gatewayOnline);
        for (const cap of chartedCapabilities(device)) card.drawHistory(cap.name, state.points(device.id, cap.name));
        return card.root;
      });
    placeInOrder(list, nodes);
    wanted.push(section);
  }
  for (const [key, section] of sections) {
    if (!wanted.includes(section)) {
      section.remove();
      sections.delete(key);
    }
  }
  placeInOrder(ui.rooms, wanted);
  ui.noDevices.hidden = state.devices.size > 0;
}

// Makes parent's children exactly `nodes`, moving only what is out of place.
function placeInOrder(parent, nodes) {
  nodes.forEach((node, i) => {
    if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null);
  });
  while (parent.children.length > nodes.length) parent.lastElementChild.remove();
}

// ---- link states -----------------------------------------------------------------------

function showCloudLink(linkState, detail) {
  clearInterval(countdown);
  countdown = null;
  ui.cloudLink.dataset.state = linkState;
  document.body.dataset.link = linkState;
  if (linkState === 'open') {
    ui.cloudLinkText.textContent = t('link.connected');
    ui.flatView.classList.remove('stale');
    hideNotice();
  } else if (linkState === 'connecting') {
    ui.cloudLinkText.textContent = detail.attempt ? t('link.reconnectingAttempt', { attempt: detail.attempt }) : t('link.connecting');
  } else if (linkState === 'reconnecting') {
    const until = Date.now() + detail.delayMs;
    const show = () => {
      const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      ui.cloudLinkText.textContent = navigator.onLine ? t('link.lostIn', { s }) : t('link.noConnection');
    };
    show();
    countdown = setInterval(show, 500);
    ui.flatView.classList.add('stale');
    showNotice(t('notice.cloudLost'));
  } else {
    ui.cloudLinkText.textContent = t('link.notConnected');
  }
  showGatewayLink();
}

function showGatewayLink() {
  const cloudOpen = ui.cloudLink.dataset.state === 'open';
  const known = cloudOpen && state.flat;
  const linkState = !known ? 'unknown' : !state.gatewayOnline ? 'offline' : state.gatewayResponding ? 'online' : 'not-responding';
  ui.gatewayLink.dataset.state = linkState;
  ui.gatewayLinkText.textContent = linkState === 'not-responding' ? t('link.notResponding') : t(`link.${linkState}`);
  if (known && !state.gatewayOnline) {
    showNotice(t('notice.gatewayOffline'));
  } else if (linkState === 'not-responding') {
    showNotice(t('notice.gatewayNotResponding'));
  } else if (cloudOpen) {
    hideNotice();
  }
}

function showNotice(text) {
  ui.flatNotice.textContent = text;
  ui.flatNotice.hidden = false;
}

function hideNotice() {
  ui.flatNotice.hidden = true;
  ui.flatNotice.textContent = '';
}

// ---- views -----------------------------------------------------------------------------

function showFlat() {
  const first = ui.loginView.hidden === false;
  ui.loginView.hidden = true;
  if (first) showView(false);
  ui.views.hidden = false;
  ui.links.hidden = false;
  ui.account.hidden = false;
  ui.flatName.textContent = state.name;
  document.title = `${state.name} · flatlink`;
  ui.loginSubmit.disabled = false;
  ui.loginPassword.value = '';
  ui.loginError.textContent = '';
}

function showLogin(error = '') {
  clearInterval(countdown);
  countdown = null;
  state.clear();
  dropCards();
  failAsks(t('conn.notConnected'));
  account = null;
  controlContext.readOnly = false;
  controlContext.recentEvents = null;
  controlContext.history = null;
  controlContext.label = null;
  labelAsks.clear();
  ui.flatView.hidden = true;
  ui.eventsView.hidden = true;
  ui.notifyView.hidden = true;
  ui.views.hidden = true;
  $('event-list').replaceChildren();
  ui.flatView.classList.remove('stale');
  ui.links.hidden = true;
  ui.account.hidden = true;
  ui.account.open = false;
  ui.loginView.hidden = false;
  ui.flatName.textContent = '';
  document.title = 'flatlink';
  ui.loginSubmit.disabled = false;
  ui.loginSubmit.textContent = t('login.submit');
  ui.loginError.textContent = error;
  hideNotice();
  // (Not while someone types in the form: the page's first resume may be refused meanwhile.)
  if (!ui.loginForm.contains(document.activeElement) || error) (ui.loginFlat.value ? ui.loginPassword : ui.loginFlat).focus();
}

ui.loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (ui.loginSubmit.disabled) return;
  const flat = ui.loginFlat.value.trim();
  const user = ui.loginUser.value.trim();
  const password = ui.loginPassword.value;
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(flat)) {
    ui.loginError.textContent = t('login.badFlat');
    ui.loginFlat.focus();
    return;
  }
  if (!user) {
    ui.loginError.textContent = t('login.noUser');
    ui.loginUser.focus();
    return;
  }
  ui.loginError.textContent = '';
  ui.loginSubmit.disabled = true;
  ui.loginSubmit.textContent = t('login.busy');
  state.clear();
  focusAfterLogin = true;
  // A session (its cookie kept by the browser, resumed on a reload); a cloud without
  // sessions (404) gets the login over the WebSocket, as before.
  const answer = await startSession(flat, user, password);
  if (answer.status === 200) {
    connection.resume();
  } else if (answer.status === 404) {
    typedUser = user;
    connection.login(flat, user, password);
  } else {
    focusAfterLogin = false;
    const why = {
      0: navigator.onLine ? t('login.unreachable') : t('notice.noConnection'),
      401: t('login.refused'),
      429: t('login.busyCloud'),
      503: t('login.storeAway'),
    }[answer.status];
    showLogin(why || t('login.closed', { reason: answer.body.error || answer.status }));
  }
});

async function logOut(everywhere) {
  ui.logout.disabled = true;
  ui.logoutEverywhere.disabled = true;
  await connection.endSession(everywhere);
  ui.logout.disabled = false;
  ui.logoutEverywhere.disabled = false;
  showLogin();
}
ui.logout.addEventListener('click', () => logOut(false));
ui.logoutEverywhere.addEventListener('click', () => logOut(true));

setInterval(() => {
  const now = Date.now();
  for (const card of cards.values()) {
    card.tick(now);
    card.tickCharts(now);
  }
}, 5000);

// ---- language ---------------------------------------------------------------------------

// The texts of the page's static parts (data-i18n, data-i18n-label) in the chosen language.
function applyStaticTexts() {
  document.documentElement.lang = language();
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll('[data-i18n-label]')) node.setAttribute('aria-label', t(node.dataset.i18nLabel));
  ui.lang.setAttribute('aria-label', t('lang.label'));
  ui.lang.value = language();
}

for (const code of LANGUAGES) {
  const option = document.createElement('option');
  option.value = code;
  option.lang = code;
  option.textContent = code.toUpperCase(); // short: the header stays one line on a phone
  option.title = catalogue()[code]['lang.name'];
  ui.lang.append(option);
}
ui.lang.addEventListener('change', () => setLanguage(ui.lang.value));

onLanguageChange(() => {
  applyStaticTexts();
  // The tiles are built in one language: build them again (their state is in `state`).
  dropCards();
  eventLog.fillKinds();
  if (account) setAccount(account);
  if (state.flat) {
    eventLog.fillDevices();
    if (!ui.eventsView.hidden) eventLog.load();
    if (!ui.notifyView.hidden) notifications.render();
    renderDevices();
    document.title = `${state.name} · ${t('app.title')}`;
    showCloudLink(lastLink.state, lastLink.detail);
  }
  if (ui.loginSubmit.disabled) ui.loginSubmit.textContent = t('login.busy');
});
applyStaticTexts();

// ---- no connection ------------------------------------------------------------------------

// The device itself has no network: said at once, above everything (the page may have come
// from the service worker's cache).
function showOnline() {
  ui.offlineNotice.hidden = navigator.onLine;
  document.body.dataset.network = navigator.onLine ? 'online' : 'offline';
  if (ui.cloudLink.dataset.state === 'reconnecting' && !navigator.onLine) ui.cloudLinkText.textContent = t('link.noConnection');
}
window.addEventListener('online', showOnline);
window.addEventListener('offline', showOnline);
showOnline();

// The shell (this page's files) cached for a start without network; never the state.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js').catch(() => {
    // no worker (a private window, an old browser): the page works as before
  });
}

// A session kept from before (the cookie is HttpOnly: the page cannot see it, so it asks the
// cloud); without one the cloud refuses the resume and the form stays.
ui.loginSubmit.disabled = true;
ui.loginSubmit.textContent = t('login.busy');
connection.resume();
ui.loginFlat.focus();
