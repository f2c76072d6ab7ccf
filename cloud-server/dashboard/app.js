// The dashboard page: the login form, the flat's devices grouped by room (or kind), the
// link states, wired to the cloud connection. Entry point of index.html.

import { AudioStreams } from './audio.js';
import { Connection, cloudUrl } from './connection.js';
import { DeviceCard, shapeOf } from './device_card.js';
import { FlatState, chartedCapabilities } from './flat_state.js';

const $ = (id) => document.getElementById(id);
const ui = {
  flatName: $('flat-name'),
  links: $('links'),
  cloudLink: $('cloud-link'),
  cloudLinkText: $('cloud-link-text'),
  gatewayLink: $('gateway-link'),
  gatewayLinkText: $('gateway-link-text'),
  logout: $('logout'),
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
  audio: null, // set below: the page's audio streams (Listen, Hold to talk)
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
    audio.link(linkState);
    showCloudLink(linkState, detail);
  },
  binary: (data) => audio.binary(data),
  loginFailed(message) {
    showLogin(message);
  },
  message: onMessage,
});

const audio = new AudioStreams(connection);
controlContext.audio = audio;

// ---- the cloud's messages --------------------------------------------------------------

function onMessage(msg) {
  switch (msg.type) {
    case 'snapshot':
      state.applySnapshot(msg);
      showFlat();
      showGatewayLink();
      renderDevices();
      requestHistories();
      break;
    case 'update': {
      const device = state.applyUpdate(msg);
      if (!device) break;
      const card = cards.get(device.id);
      if (!card) break;
      card.update(device, state.gatewayOnline);
      for (const name of Object.keys(msg.state)) card.drawHistory(name, state.points(device.id, name));
      break;
    }
    case 'presence': {
      const device = state.applyPresence(msg);
      if (device && cards.has(device.id)) cards.get(device.id).update(device, state.gatewayOnline);
      break;
    }
    case 'gateway':
      state.gatewayOnline = Boolean(msg.online);
      showGatewayLink();
      for (const [id, card] of cards) card.update(state.devices.get(id), state.gatewayOnline);
      break;
    case 'devices':
      state.applyDevices(msg);
      renderDevices();
      requestHistories();
      break;
    case 'history': {
      const points = state.applyHistory(msg);
      if (points && cards.has(msg.device)) cards.get(msg.device).drawHistory(msg.capability, points);
      break;
    }
    case 'stream_opened':
    case 'stream_closed':
      audio.message(msg);
      break;
    case 'error':
      showNotice(`The cloud said: ${msg.message || msg.code}`);
      break;
    default:
      break;
  }
}

function requestHistories() {
  for (const device of state.devices.values()) {
    for (const cap of chartedCapabilities(device)) {
      state.trackHistory(device.id, cap.name);
      connection.request({ type: 'history', device: device.id, capability: cap.name });
    }
  }
}

// ---- devices ---------------------------------------------------------------------------

function groupOf(device) {
  if (device.room) return { key: `room:${device.room}`, title: device.room, order: 0 };
  const kind = device.kind || 'other';
  return { key: `kind:${kind}`, title: kind.charAt(0).toUpperCase() + kind.slice(1), order: 1 };
}

// Brings the page in line with state.devices: reuses the card of a device whose
// description did not change (so a control's pending outcome and focus stay).
function renderDevices() {
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
    ui.cloudLinkText.textContent = 'connected';
    ui.flatView.classList.remove('stale');
    hideNotice();
  } else if (linkState === 'connecting') {
    ui.cloudLinkText.textContent = detail.attempt ? `reconnecting (attempt ${detail.attempt})…` : 'connecting…';
  } else if (linkState === 'reconnecting') {
    const until = Date.now() + detail.delayMs;
    const show = () => {
      const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      ui.cloudLinkText.textContent = `lost; reconnecting in ${s} s`;
    };
    show();
    countdown = setInterval(show, 500);
    ui.flatView.classList.add('stale');
    showNotice('The connection to the cloud was lost. What you see may be out of date; reconnecting by itself.');
  } else {
    ui.cloudLinkText.textContent = 'not connected';
  }
  showGatewayLink();
}

function showGatewayLink() {
  const cloudOpen = ui.cloudLink.dataset.state === 'open';
  const known = cloudOpen && state.flat;
  const linkState = !known ? 'unknown' : state.gatewayOnline ? 'online' : 'offline';
  ui.gatewayLink.dataset.state = linkState;
  ui.gatewayLinkText.textContent = linkState;
  if (known && !state.gatewayOnline) {
    showNotice("The flat's gateway is offline: devices cannot report or take commands until it is back.");
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
  ui.loginView.hidden = true;
  ui.flatView.hidden = false;
  ui.links.hidden = false;
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
  for (const card of cards.values()) card.root.remove();
  cards.clear();
  for (const section of sections.values()) section.remove();
  sections.clear();
  ui.flatView.hidden = true;
  ui.flatView.classList.remove('stale');
  ui.links.hidden = true;
  ui.loginView.hidden = false;
  ui.flatName.textContent = '';
  document.title = 'flatlink';
  ui.loginSubmit.disabled = false;
  ui.loginSubmit.textContent = 'Log in';
  ui.loginError.textContent = error;
  hideNotice();
  (ui.loginFlat.value ? ui.loginPassword : ui.loginFlat).focus();
}

ui.loginForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const flat = ui.loginFlat.value.trim();
  const user = ui.loginUser.value.trim();
  const password = ui.loginPassword.value;
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(flat)) {
    ui.loginError.textContent = 'The flat id is 1 to 64 letters, digits or _ . : -';
    ui.loginFlat.focus();
    return;
  }
  if (!user) {
    ui.loginError.textContent = 'Enter your user name.';
    ui.loginUser.focus();
    return;
  }
  ui.loginError.textContent = '';
  ui.loginSubmit.disabled = true;
  ui.loginSubmit.textContent = 'Logging in…';
  state.clear();
  connection.login(flat, user, password);
});

ui.logout.addEventListener('click', () => {
  connection.logout();
  showLogin();
});

setInterval(() => {
  const now = Date.now();
  for (const card of cards.values()) card.tick(now);
}, 5000);

ui.loginFlat.focus();
