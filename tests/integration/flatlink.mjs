// Building blocks for black-box tests of flatlink-cloud and flatlinkd: configs
// for a cloud with several flats, gateways with simulated devices, and WebSocket
// clients that play a browser or a (misbehaving) gateway.
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';

import { binaries, freePort, run, sha256hex, startProcess, stop, tempDir, waitFor } from './harness.mjs';

export const BROWSER_PROTOCOL = 'flatlink-browser.v1';
export const GATEWAY_PROTOCOL = 'flatlink-gateway.v1';

const hashes = new Map();
// The password hash the cloud's own tool makes (cached: PBKDF2 is slow on purpose).
export async function hashPassword(password) {
  if (!hashes.has(password)) {
    const r = await run(binaries.cloud, ['hash-password'], { input: password + '\n' });
    if (r.code !== 0) throw new Error(`hash-password failed: ${r.stderr}`);
    hashes.set(password, r.stdout.trim());
  }
  return hashes.get(password);
}

// Three flats, each with a gateway token and one user, and their users' logins: the
// tests' common cast (cloudConfig takes any such list).
export const flatA = { id: 'flat-a', token: 'token-of-flat-a-0123456789', user: 'alice', password: 'pw-alice' };
export const flatB = { id: 'flat-b', token: 'token-of-flat-b-0123456789', user: 'bob', password: 'pw-bob' };
export const flatC = { id: 'flat-c', token: 'token-of-flat-c-0123456789', user: 'carol', password: 'pw-carol' };
const loginOf = ({ id, user, password }) => ({ flat: id, user, password });
export const loginA = loginOf(flatA);
export const loginB = loginOf(flatB);
export const loginC = loginOf(flatC);

// The metrics listener of each cloud a config was made for, by its public port: /metrics
// is not served on the public port (docs/operations.md, "Security").
const metricsPortOf = new Map();
// For configs written elsewhere (bench/links.mjs): where the metrics of the cloud on `port` are.
export function rememberMetricsPort(port, metricsPort) {
  metricsPortOf.set(port, metricsPort);
}

// flats: [{ id, token, user, password }]
// The backplane's shared key (backplane.shared_key_file, docs/scale-out.md "Security"): cloudConfig gives it
// to every instance whose backplane section names neither a shared_key_file nor "insecure".
export const BACKPLANE_KEY = randomBytes(32).toString('hex');

// A backplane payload as an instance signs it: {"sig":"<HMAC-SHA256 of topic \0 payload>", ...payload's keys}.
export function signBackplane(topic, payload, key = BACKPLANE_KEY) {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const tag = createHmac('sha256', key).update(`${topic}\0${text}`).digest('hex');
  return `{"sig":"${tag}",${text.slice(1)}`;
}

export async function cloudConfig(flats, { port, limits = {}, tls, extra = {} } = {}) {
  const dir = tempDir('flatlink-cloud-');
  const config = {
    listen_address: '127.0.0.1',
    port: port ?? (await freePort()),
    log_level: 'info',
    limits,
    metrics: { listen_address: '127.0.0.1', port: await freePort() },
    flats: [],
    ...extra,
  };
  if (config.backplane && !('shared_key_file' in config.backplane) && !('insecure' in config.backplane)) {
    const keyFile = path.join(dir, 'backplane.key');
    writeFileSync(keyFile, BACKPLANE_KEY + '\n', { mode: 0o600 });
    config.backplane = { ...config.backplane, shared_key_file: keyFile };
  }
  metricsPortOf.set(config.port, config.metrics.port);
  if (tls) config.tls = tls;
  for (const f of flats) {
    config.flats.push({
      id: f.id,
      name: f.name ?? f.id,
      gateway_token_sha256: sha256hex(f.token),
      users: [{ name: f.user, password_hash: await hashPassword(f.password) }],
    });
  }
  const file = path.join(dir, 'cloud.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return { file, port: config.port, config, dir };
}

export async function startCloud(cfg, { args = [] } = {}) {
  return startProcess(binaries.cloud, ['--config', cfg.file, ...args], { readyPattern: 'listening on' });
}

// A gateway config with simulated devices. devices: sim device entries.
export function gatewayConfig({ id, flat, token, url, devices, cloud = {}, extra = {} }) {
  const dir = tempDir('flatlink-gw-');
  const tokenFile = path.join(dir, 'token.txt');
  writeFileSync(tokenFile, token + '\n');
  chmodSync(tokenFile, 0o600);
  const config = {
    gateway_id: id,
    flat,
    state_dir: dir,
    cloud: {
      url,
      token_file: 'token.txt',
      backoff_base_ms: 100,
      backoff_max_ms: 1000,
      ping_interval_s: 1,
      pong_timeout_s: 1,
      ...cloud,
    },
    adapters: [{ type: 'sim', latency_ms: 10, seed: 1, devices }],
    ...extra,
  };
  const file = path.join(dir, 'gateway.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return { file, dir, config };
}

export async function startGateway(cfg, { ready = 'streaming from there', timeoutMs = 10_000 } = {}) {
  return startProcess(binaries.gateway, ['--config', cfg.file], { readyPattern: ready, timeoutMs });
}

export const demoDevices = (prefix = '') => [
  { id: `${prefix}lamp-1`, kind: 'lamp', name: 'Lamp', room: 'Living room' },
  { id: `${prefix}thermo-1`, kind: 'thermometer', room: 'Living room', interval_ms: 100 },
  { id: `${prefix}door-1`, kind: 'lock', room: 'Hall' },
];

// Device reports as a raw gateway's hello carries them: a lamp (on, writable) and a
// thermometer (t, a number; mode, an enum), both online.
export const lampReport = {
  id: 'lamp-1',
  name: 'Lamp',
  kind: 'lamp',
  capabilities: [{ name: 'on', type: 'bool', writable: true }],
  state: { on: false },
  online: true,
};
export const thermoReport = {
  id: 'thermo-1',
  name: 'Thermometer',
  kind: 'thermometer',
  capabilities: [
    { name: 't', type: 'number', writable: false },
    { name: 'mode', type: 'enum', writable: false, options: ['eco', 'heat'] },
  ],
  state: {},
  online: true,
};

// A WebSocket peer that records every message and how it closed.
export class Peer {
  constructor(url, protocol, options = {}) {
    this.messages = [];
    this.closed = null; // { code, reason }
    this.error = null;
    this.ws = new WebSocket(url, protocol, options);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', (err) => {
        this.error = err;
        reject(err);
      });
      this.ws.once('unexpected-response', (req, res) => {
        const err = new Error(`HTTP ${res.statusCode}`);
        this.error = err;
        reject(err);
      });
    });
    this.opened.catch(() => {});
    this.ws.on('message', (data, isBinary) => {
      const text = data.toString();
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        msg = { type: '(not json)', text, isBinary };
      }
      this.messages.push(msg);
    });
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
    });
    this.ws.on('error', () => {});
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  of(type) {
    return this.messages.filter((m) => m.type === type);
  }

  // The first message (already here or still to come) of that type that pred accepts.
  async next(type, pred = () => true, timeoutMs = 5000) {
    return waitFor(() => this.messages.find((m) => m.type === type && pred(m)), timeoutMs, {
      message: `a ${type} message${pred.toString() === '() => true' ? '' : ' matching ' + pred}`,
    });
  }

  async waitClosed(timeoutMs = 5000) {
    return waitFor(() => this.closed, timeoutMs, { message: 'the connection to close' });
  }

  close() {
    this.ws.close();
  }
}

export async function browser(port, { flat, user, password, scheme = 'ws', options = {} } = {}) {
  const peer = new Peer(`${scheme}://127.0.0.1:${port}/`, BROWSER_PROTOCOL, options);
  await peer.opened;
  if (flat) {
    peer.send({ type: 'login', flat, user, password });
    await peer.next('snapshot');
  }
  return peer;
}

// A dashboard login: POST /session with the page's Origin; { status, cookie, body }.
export async function postSession(port, body) {
  const res = await fetch(`http://127.0.0.1:${port}/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, cookie: res.headers.get('set-cookie') ?? '', body: await res.json() };
}

// A browser link whose upgrade carries the session cookie (a reload of the page), resumed.
export async function resumeSession(port, cookie) {
  const token = cookie.split(';')[0];
  const peer = await browser(port, { options: { headers: { cookie: token, origin: `http://127.0.0.1:${port}` } } });
  peer.send({ type: 'resume' });
  return peer;
}

export async function rawGateway(port, token) {
  const headers = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  const peer = new Peer(`ws://127.0.0.1:${port}/`, GATEWAY_PROTOCOL, { headers });
  await peer.opened;
  return peer;
}

// The cloud's counters; `port` is its public port (cloudConfig knows its metrics port) or
// the metrics port itself.
export async function metrics(port) {
  const res = await fetch(`http://127.0.0.1:${metricsPortOf.get(port) ?? port}/metrics`);
  const text = await res.text();
  const values = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [name, value] = line.split(' ');
    values[name] = Number(value);
  }
  return values;
}

export { stop };
