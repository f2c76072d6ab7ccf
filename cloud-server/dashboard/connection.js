// The browser's link to flatlink-cloud (docs/protocol.md, subprotocol flatlink-browser.v1):
// resumes the session of the page's cookie (set by POST /session, see startSession), or, on
// a cloud without sessions, logs in with the credentials it holds in memory only; reconnects
// with backoff and jitter (resuming again, or re-logging in), logs out (this session or
// everywhere), and ends every command it sent in exactly one outcome.

import { t } from './i18n.js';

export const SUBPROTOCOL = 'flatlink-browser.v1';

// Close codes that mean "do not try again with these credentials".
const CLOSE_UNAUTHORIZED = 4003;

// Reconnect delays (ms) by attempt; the last one repeats forever. ±25 % jitter so that
// the browsers of a building do not all come back in the same millisecond.
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000, 15000];
const JITTER = 0.25;

// A command's own guard: the cloud always answers (result or timeout), but a cloud that
// vanishes without closing the socket must not leave a control pending forever.
const COMMAND_GUARD_MS = 25_000;

export function cloudUrl(loc = window.location) {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/`;
}

// POST /session (docs/protocol.md, "Sessions"): the cloud sets the HttpOnly session cookie.
// Resolves with { status, body }: 200 { flat, user, role, expires }; 404 on a cloud without
// sessions (log in over the WebSocket then); 401, 429, 503 refusals; status 0 when the cloud
// cannot be reached.
export async function startSession(flat, user, password) {
  try {
    const res = await fetch('session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ flat, user, password }),
      credentials: 'same-origin',
      cache: 'no-store',
    });
    const body = await res.json().catch(() => ({}));
    return { status: res.status, body };
  } catch {
    return { status: 0, body: {} };
  }
}

// Events (all through the `on` handlers object given to the constructor):
//   link(state, detail)  state: 'connecting' | 'open' | 'reconnecting' | 'closed';
//                        detail: { delayMs, attempt } while reconnecting
//   loginFailed(message) the cloud refused the credentials or the session (first login, a
//                        re-login, a resume); message '' for a page opened without a session
//   message(msg)         every message from the cloud after login (snapshot, update, ...)
//   binary(data)         optional: every binary frame (an ArrayBuffer) after login
export class Connection {
  constructor(url, on) {
    this.url = url;
    this.on = on;
    this.credentials = null; // { flat, user, password }: memory only, gone on logout or reload
    this.session = false; // the link resumes the cookie's session instead of logging in
    this.ws = null;
    this.loggedIn = false; // on the current socket
    this.everLoggedIn = false; // these credentials worked once: reconnect after losses
    this.attempt = 0;
    this.retryTimer = null;
    this.nextId = 1;
    this.pending = new Map(); // command id -> { done, timer }
  }

  login(flat, user, password) {
    this.logout();
    this.credentials = { flat, user, password };
    this.everLoggedIn = false;
    this.open();
  }

  // Opens the link with the session of the page's cookie (after POST /session, or a reload).
  resume() {
    this.logout();
    this.session = true;
    this.everLoggedIn = false;
    this.open();
  }

  // Ends this session (or every session of the user) at the cloud, then closes: resolves once
  // the cloud has closed the link (or after a few seconds without an answer).
  async endSession(everywhere = false) {
    const ws = this.ws;
    if (ws && this.loggedIn) {
      this.credentials = null; // no reconnect when the cloud closes
      this.session = false;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 3000);
        ws.addEventListener('close', () => {
          clearTimeout(timer);
          resolve();
        });
        ws.send(JSON.stringify({ type: 'logout', everywhere }));
      });
    }
    this.logout();
  }

  logout() {
    this.credentials = null;
    this.session = false;
    this.everLoggedIn = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.endPending('offline', t('conn.loggedOut'));
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, 'logout');
    }
    this.loggedIn = false;
  }

  open() {
    this.on.link('connecting', { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch (err) {
      this.lost(null, 1006, String(err));
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    let errorMessage = '';
    ws.onopen = () => {
      if (this.session) {
        ws.send(JSON.stringify({ type: 'resume' })); // the upgrade carried the cookie
        return;
      }
      const { flat, user, password } = this.credentials;
      ws.send(JSON.stringify({ type: 'login', flat, user, password }));
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      if (typeof event.data !== 'string') {
        if (this.loggedIn && this.on.binary) this.on.binary(event.data); // stream frames (audio.js)
        return;
      }
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!msg || typeof msg.type !== 'string') return;
      if (msg.type === 'error') {
        errorMessage = msg.message || msg.code;
        if (msg.code === 'unauthorized' || msg.code === 'session_expired') return; // the close (4003) follows
        if ((msg.code === 'busy' || msg.code === 'unavailable') && !this.loggedIn) {
          ws.close(); // too many logins at once, or the store away: try again later
          return;
        }
      }
      if (msg.type === 'result') {
        this.finish(msg.id, msg.outcome, msg.message || '');
        return;
      }
      const firstSnapshot = msg.type === 'snapshot' && !this.loggedIn;
      if (firstSnapshot) {
        this.loggedIn = true;
        this.everLoggedIn = true;
        this.attempt = 0;
      }
      this.on.message(msg);
      if (firstSnapshot) this.on.link('open', {});
    };
    ws.onclose = (event) => this.lost(ws, event.code, errorMessage || event.reason);
  }

  // One path for every end of a socket: pending commands end, then retry or give up.
  lost(ws, code, reason) {
    if (ws && ws !== this.ws) return; // an old socket (logout, replaced)
    this.ws = null;
    const wasLoggedIn = this.loggedIn;
    this.loggedIn = false;
    this.endPending('offline', t('conn.lost'));
    if (!this.credentials && !this.session) return;
    if (code === CLOSE_UNAUTHORIZED) {
      const session = this.session;
      this.credentials = null;
      this.session = false;
      this.on.link('closed', {});
      // The cloud's own words are English. A page opened without a session just shows the form.
      this.on.loginFailed(!session ? t('login.refused') : this.everLoggedIn ? t('login.sessionEnded') : '');
      return;
    }
    if (!this.everLoggedIn && !wasLoggedIn) {
      // The first login never got through: say so, rather than retrying in the background.
      this.credentials = null;
      this.session = false;
      this.on.link('closed', {});
      this.on.loginFailed(reason ? t('login.closed', { reason }) : t('login.unreachable'), { unreachable: !reason });
      return;
    }
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delayMs = Math.round(base * (1 - JITTER + Math.random() * 2 * JITTER));
    this.attempt += 1;
    this.on.link('reconnecting', { delayMs, attempt: this.attempt, reason });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.credentials || this.session) this.open();
    }, delayMs);
  }

  // Sends a request other than a command (history). False when not logged in.
  request(msg) {
    if (!this.ws || !this.loggedIn) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  // Sends a binary stream frame (audio.js). False when not logged in.
  sendBinary(data) {
    if (!this.ws || !this.loggedIn) return false;
    this.ws.send(data);
    return true;
  }

  // Sends a command; done(outcome, message) is called exactly once.
  command(device, set, done, ttlMs = 10_000) {
    if (!this.ws || !this.loggedIn) {
      done('offline', t('conn.notConnected'));
      return;
    }
    const id = `b-${this.nextId++}`;
    const timer = setTimeout(() => this.finish(id, 'timeout', t('conn.noAnswer')), ttlMs + COMMAND_GUARD_MS);
    this.pending.set(id, { done, timer });
    this.ws.send(JSON.stringify({ type: 'command', id, device, set, ttl_ms: ttlMs }));
  }

  finish(id, outcome, message) {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    entry.done(outcome, message);
  }

  endPending(outcome, message) {
    for (const id of [...this.pending.keys()]) this.finish(id, outcome, message);
  }
}
