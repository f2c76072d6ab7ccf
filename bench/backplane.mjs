// Backplane benchmark (issue 11): what joining cloud instances over an MQTT broker costs a
// status and a command, beside the same gateway and browser on one instance, same run.
//
//   node bench/backplane.mjs [--smoke] [--statuses N] [--batch N] [--window N] [--commands N]
//                            [--latency N] [--rounds N] [--broker-nagle] [--out FILE]
//   bench/run.sh --backplane [same options]
//
// What runs (all on loopback, the real flatlink-cloud of $FLATLINK_BUILD_DIR, default
// <repo>/build, and /usr/sbin/mosquitto on a free port; everything stops by itself):
// - cloud-a and cloud-b, each with a `backplane` section over one Mosquitto (with
//   `set_tcp_nodelay true`, as docs/scale-out.md recommends; --broker-nagle leaves
//   Mosquitto's default, false, to show what that costs);
// - cloud-solo, the same config without a backplane.
// Three set-ups, one flat each (so that none sees another's traffic):
//   across   a gateway on cloud-a, its browser on cloud-b: every status crosses the broker;
//   bp-local a gateway and its browser both on cloud-a: the status is published (the ack
//            waits for the broker's PUBACK) but the browser gets it locally;
//   solo     a gateway and its browser on cloud-solo (no backplane): the peer.
// The gateway is a raw WebSocket client (flatlink-gateway.v1) in this process: statuses in
// batches (--batch, default 50 items) with consecutive seq, at most --window (default 1,000)
// in flight, that is sent and not yet both acknowledged to it and shown at the browser; it
// answers every command with an ok result at once. (flatlinkd's window counts acks only, up to
// 5,000; but a browser more than 2,000 messages behind gets one snapshot instead of them, one
// message per status, so with an ack-only window a 20,000-status burst would not bring every
// status to the browser across instances: the in-flight bound keeps the run a measure of the
// chain's throughput, every status checked.)
// The browser is a raw flatlink-browser.v1 client, logged in, in this process too; both time
// on its monotonic clock.
// Measured per set-up, the set-ups taking turns for --rounds rounds (median reported):
// 1. throughput: --statuses statuses (default 20,000), from the first send to the last update
//    at the browser, and to the last ack at the gateway; every status must arrive once, in
//    order (else exit 1);
// 2. command round trip: --commands commands (default 500) one after another, browser →
//    gateway → result at the browser, p50 / p99;
// 3. status latency: --latency single statuses (default 300) one after another, send →
//    update at the browser and send → ack at the gateway, p50 / p99.
// CPU seconds of each cloud process, Mosquitto and this process during the throughput runs
// (/proc/<pid>/stat, utime + stime).
//
// Writes bench/backplane.md (unless --smoke; bench/run.mjs folds it into docs/benchmarks.md)
// and splices it between its markers in docs/benchmarks.md. --smoke: a few hundred statuses
// and 20 commands, one round; fails when something is broken (a status missing, twice or out
// of order, a command without an ok result), never because a figure is slow.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import WebSocket from '../tests/integration/node_modules/ws/wrapper.mjs';
import { BROWSER_PROTOCOL, GATEWAY_PROTOCOL, cloudConfig, lampReport as lamp, startCloud } from '../tests/integration/flatlink.mjs';
import { repoRoot, startMosquitto, stop, waitFor } from '../tests/integration/harness.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const SMOKE = argv.includes('--smoke');
const STATUSES = Number(opt('--statuses', SMOKE ? 300 : 20_000));
const BATCH = Number(opt('--batch', 50));
const WINDOW = Number(opt('--window', 1000));
const COMMANDS = Number(opt('--commands', SMOKE ? 20 : 500));
const LATENCY = Number(opt('--latency', SMOKE ? 20 : 300));
const ROUNDS = Number(opt('--rounds', SMOKE ? 1 : 3));
const BROKER_NAGLE = argv.includes('--broker-nagle');
const DEFAULT_OUT = path.join(repoRoot, 'bench/backplane.md');
const OUT = opt('--out', SMOKE ? null : DEFAULT_OUT);
// Generous: a sanitizer build runs the same smoke with ASan daemons on a loaded machine.
const WAIT_MS = SMOKE ? 30_000 : 60_000;
const HZ = 100; // USER_HZ

const log = (...a) => console.error(`[bench-backplane ${new Date().toISOString().slice(11, 19)}]`, ...a);
const hardStop = setTimeout(() => {
  console.error('bench-backplane: hard stop');
  process.exit(2);
}, (SMOKE ? 80 : 300) * 1000);
hardStop.unref();

const fmt = (x, d = 0) =>
  typeof x === 'number' && Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : String(x);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.round(q * (s.length - 1)))];
};
const now = () => performance.now();

function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}

const flats = ['across', 'bp-local', 'solo'].map((name, i) => ({
  id: `flat-${name}`,
  token: `token-of-flat-${name}-bench-0123456789`,
  user: `user-${i}`,
  password: `pw-${i}`,
}));
// Rate limits raised (the default 200 frames/s per connection is for the internet, not for
// a benchmark that sends 400 frames in a fraction of a second); the same in every set-up.
const limits = { messages_per_s: 100_000, burst: 1_000_000, command_timeout_ms: 5000 };

// Mosquitto on a free loopback port, as the backplane test starts it.
const startBroker = () =>
  startMosquitto(
    [
      'allow_anonymous true',
      'max_queued_messages 100000',
      // Without it Mosquitto's small writes (a PUBACK, a PUBLISH) wait for Nagle's algorithm
      // against the peer's delayed ACK: ~40 ms per command leg (see --broker-nagle).
      ...(BROKER_NAGLE ? [] : ['set_tcp_nodelay true']),
    ],
    { prefix: 'flatlink-bench-bp-mosquitto-' },
  );

// A cloud instance, on the backplane when brokerPort is given (waits until it has joined).
async function startInstance(id, brokerPort) {
  const extra = {};
  if (brokerPort) {
    extra.backplane = {
      instance_id: id,
      brokers: [`mqtt://127.0.0.1:${brokerPort}`],
      keepalive_s: 5,
      backoff_base_ms: 100,
      backoff_max_ms: 1000,
      command_offline_ms: 1000,
    };
  }
  // log_level info, the default: a line per connection and per command, none per status.
  const cfg = await cloudConfig(flats, { limits, extra });
  const proc = await startCloud(cfg);
  if (brokerPort) await proc.waitForLine(`instance=${id} connected;`, 20_000);
  return { id, proc, port: cfg.port };
}

// A WebSocket client that parses each message once and hands it to handlers; waits are
// promises resolved from the handlers (no polling, so the times are the arrival times).
class Client {
  constructor(port, protocol, headers = {}) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/`, protocol, { headers });
    this.waiters = new Set();
    this.closed = null;
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    this.ws.on('message', (data) => {
      const msg = JSON.parse(data.toString());
      const t = now();
      this.onMessage?.(msg, t);
      for (const w of this.waiters) {
        if (w.pred(msg, t)) {
          this.waiters.delete(w);
          clearTimeout(w.timer);
          w.resolve({ msg, t });
        }
      }
    });
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.waiters) {
        clearTimeout(w.timer);
        w.reject(new Error(`connection closed (${code} ${reason}) while waiting for ${w.what}`));
      }
      this.waiters.clear();
    });
    this.ws.on('error', () => {});
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj));
  }

  // The next message that pred accepts: { msg, t }.
  wait(what, pred, timeoutMs = WAIT_MS) {
    return new Promise((resolve, reject) => {
      const w = { what, pred, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  close() {
    this.ws.close();
  }
}

// A raw gateway (flatlink-gateway.v1) that answers every command with ok at once.
async function gateway(port, flat) {
  const gw = new Client(port, GATEWAY_PROTOCOL, { Authorization: `Bearer ${flat.token}` });
  await gw.opened;
  gw.acked = 0;
  gw.ackAt = 0;
  gw.nextSeq = 1;
  gw.commands = 0;
  gw.onMessage = (msg, t) => {
    if (msg.type === 'ack') {
      if (msg.seq > gw.acked) {
        gw.acked = msg.seq;
        gw.ackAt = t;
        gw.onAck?.();
      }
    } else if (msg.type === 'command') {
      ++gw.commands;
      gw.send({ type: 'result', id: msg.id, outcome: 'ok', message: '' });
    }
  };
  const hello = gw.wait('the ack of hello', (m) => m.type === 'ack');
  gw.send({ type: 'hello', gateway: `gw-${flat.id}`, version: 'bench', devices: [lamp], next_seq: 1 });
  await hello;
  return gw;
}

// A logged-in browser that checks every update: seq must be the next one expected.
async function browserOf(port, flat) {
  const b = new Client(port, BROWSER_PROTOCOL);
  await b.opened;
  b.expected = 1;
  b.updates = 0;
  b.errors = [];
  b.lastUpdateAt = 0;
  b.onMessage = (msg, t) => {
    if (msg.type !== 'update') return;
    if (msg.seq !== b.expected && b.errors.length < 5) b.errors.push(`update seq ${msg.seq} where ${b.expected} was expected`);
    b.expected = msg.seq + 1;
    ++b.updates;
    b.lastUpdateAt = t;
    b.onUpdate?.();
  };
  const online = b.wait(
    'the gateway online at the browser',
    (m) => (m.type === 'snapshot' && m.gateway_online === true) || (m.type === 'gateway' && m.online === true),
  );
  b.send({ type: 'login', flat: flat.id, user: flat.user, password: flat.password });
  await online;
  return b;
}

const item = (seq) => ({ seq, device: 'lamp-1', state: { on: seq % 2 === 0 }, ts: Date.now() });

// Sends n statuses in batches, at most WINDOW unacknowledged; resolves with the times from the
// first send to the last update at the browser and to the last ack at the gateway.
async function burst(setup, n) {
  const { gw, b } = setup;
  const first = gw.nextSeq;
  const last = first + n - 1;
  const startUpdates = b.updates;
  const atBrowser = b.wait(`update seq ${last} at the browser`, (m) => m.type === 'update' && m.seq === last);
  const acked = gw.wait(`ack ${last} at the gateway`, (m) => m.type === 'ack' && m.seq >= last);
  const t0 = now();
  // In flight: sent, and not yet both acknowledged to the gateway and shown at the browser.
  const done = () => Math.min(gw.acked, b.expected - 1);
  const pump = () => {
    while (gw.nextSeq <= last && gw.nextSeq - 1 - done() < WINDOW) {
      const items = [];
      const upto = Math.min(last, gw.nextSeq + BATCH - 1, done() + WINDOW);
      for (let s = gw.nextSeq; s <= upto; ++s) items.push(item(s));
      gw.send({ type: 'status', items });
      gw.nextSeq = upto + 1;
    }
  };
  gw.onAck = pump;
  b.onUpdate = pump;
  pump();
  const [u, a] = await Promise.all([atBrowser, acked]);
  gw.onAck = null;
  b.onUpdate = null;
  const got = b.updates - startUpdates;
  if (got !== n) b.errors.push(`${got} updates for ${n} statuses (seq ${first}..${last})`);
  return { toBrowserMs: u.t - t0, toAckMs: a.t - t0 };
}

async function commands(setup, n) {
  const { gw, b } = setup;
  const rtt = [];
  const before = gw.commands;
  for (let i = 0; i < n; ++i) {
    const id = `c${setup.cmdSeq++}`;
    const result = b.wait(`the result of command ${id}`, (m) => m.type === 'result' && m.id === id);
    const t0 = now();
    b.send({ type: 'command', id, device: 'lamp-1', set: { on: i % 2 === 0 } });
    const { msg, t } = await result;
    if (msg.outcome !== 'ok') throw new Error(`command ${id}: outcome ${msg.outcome} (${msg.message ?? ''})`);
    rtt.push(t - t0);
  }
  if (gw.commands - before !== n) throw new Error(`the gateway got ${gw.commands - before} of ${n} commands`);
  return rtt;
}

async function latencies(setup, n) {
  const { gw, b } = setup;
  const toBrowser = [];
  const toAck = [];
  for (let i = 0; i < n; ++i) {
    const seq = gw.nextSeq++;
    const u = b.wait(`update seq ${seq}`, (m) => m.type === 'update' && m.seq === seq);
    const a = gw.wait(`ack ${seq}`, (m) => m.type === 'ack' && m.seq >= seq);
    const t0 = now();
    gw.send({ type: 'status', items: [item(seq)] });
    const [ur, ar] = await Promise.all([u, a]);
    toBrowser.push(ur.t - t0);
    toAck.push(ar.t - t0);
  }
  return { toBrowser, toAck };
}

function machineLine() {
  let model = os.cpus()[0]?.model || '?';
  try {
    model = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? model;
  } catch {
    // keep os.cpus()'s
  }
  return `${os.availableParallelism?.() ?? os.cpus().length} CPUs (${model.trim()}), load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the end`;
}

async function main() {
  const started = [];
  const t0 = Date.now();
  try {
    log(`${ROUNDS} round(s): ${STATUSES} statuses in batches of ${BATCH} (window ${WINDOW}), ${COMMANDS} commands, ${LATENCY} single statuses per set-up`);
    const broker = await startBroker();
    started.push(broker.proc);
    const [A, B, S] = await Promise.all([startInstance('cloud-a', broker.port), startInstance('cloud-b', broker.port), startInstance('cloud-solo')]);
    started.push(A.proc, B.proc, S.proc);
    log(`pids: mosquitto ${broker.proc.pid}, cloud-a ${A.proc.pid}, cloud-b ${B.proc.pid}, cloud-solo ${S.proc.pid}`);
    const setups = [
      { name: 'across', label: 'across instances (gateway on cloud-a, browser on cloud-b)', gwOn: A, bOn: B, flat: flats[0] },
      { name: 'bp-local', label: 'one instance with the backplane on (gateway and browser on cloud-a)', gwOn: A, bOn: A, flat: flats[1] },
      { name: 'solo', label: 'one instance, no backplane', gwOn: S, bOn: S, flat: flats[2] },
    ];
    for (const s of setups) {
      s.gw = await gateway(s.gwOn.port, s.flat);
      s.b = await browserOf(s.bOn.port, s.flat);
      s.cmdSeq = 1;
      // warm-up: one batch through, and one command
      await burst(s, BATCH);
      await commands(s, 1);
      s.runs = [];
      s.rtt = [];
      s.lat = { toBrowser: [], toAck: [] };
      s.cpu = {}; // seconds of each process during its throughput runs
    }
    const procs = { 'cloud-a': A.proc, 'cloud-b': B.proc, 'cloud-solo': S.proc, mosquitto: broker.proc };
    for (let round = 1; round <= ROUNDS; ++round) {
      for (const s of setups) {
        const c0 = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, cpuTicks(p.pid)]));
        const self0 = process.cpuUsage();
        const r = await burst(s, STATUSES);
        const self1 = process.cpuUsage(self0);
        for (const [k, p] of Object.entries(procs)) s.cpu[k] = (s.cpu[k] ?? 0) + (cpuTicks(p.pid) - c0[k]) / HZ;
        s.cpu.bench = (s.cpu.bench ?? 0) + (self1.user + self1.system) / 1e6;
        s.runs.push(r);
        if (s.b.errors.length) throw new Error(`${s.name}: ${s.b.errors.join('; ')}`);
        log(`round ${round} ${s.name}: ${STATUSES} statuses at the browser in ${r.toBrowserMs.toFixed(1)} ms, acked in ${r.toAckMs.toFixed(1)} ms`);
      }
      // COMMANDS and LATENCY spread over the rounds
      const share = (n) => Math.floor((n * round) / ROUNDS) - Math.floor((n * (round - 1)) / ROUNDS);
      for (const s of setups) s.rtt.push(...(await commands(s, share(COMMANDS))));
      for (const s of setups) {
        const l = await latencies(s, share(LATENCY));
        s.lat.toBrowser.push(...l.toBrowser);
        s.lat.toAck.push(...l.toAck);
      }
    }
    for (const s of setups) {
      if (s.b.errors.length) throw new Error(`${s.name}: ${s.b.errors.join('; ')}`);
      const total = BATCH + ROUNDS * STATUSES + s.lat.toBrowser.length;
      if (s.b.updates !== total || s.b.expected !== total + 1) throw new Error(`${s.name}: ${s.b.updates} updates, up to seq ${s.b.expected - 1}, for ${total} statuses`);
      s.rate = STATUSES / (median(s.runs.map((r) => r.toBrowserMs)) / 1000);
      s.ackRate = STATUSES / (median(s.runs.map((r) => r.toAckMs)) / 1000);
      s.gw.close();
      s.b.close();
    }
    const [across, local, solo] = setups;
    const cpuOf = (s, keys) => keys.map((k) => `${k} ${fmt(s.cpu[k] / ROUNDS, 2)}`).join(', ');
    const ratio = (a, b) => `${(a / b).toFixed(2)}×`;
    const ms = (x) => fmt(x, 2);
    const rows = [
      ['statuses/s, gateway → browser, across instances', fmt(across.rate), 'one instance, no backplane', fmt(solo.rate), ratio(across.rate, solo.rate)],
      ['statuses/s, gateway → browser, one instance with the backplane on', fmt(local.rate), 'one instance, no backplane', fmt(solo.rate), ratio(local.rate, solo.rate)],
      ['statuses/s acknowledged to the gateway (PUBACK waited for), across instances', fmt(across.ackRate), 'one instance, no backplane', fmt(solo.ackRate), ratio(across.ackRate, solo.ackRate)],
      ['statuses/s acknowledged, one instance with the backplane on', fmt(local.ackRate), 'one instance, no backplane', fmt(solo.ackRate), ratio(local.ackRate, solo.ackRate)],
      ['command round trip p50, browser → gateway → result, across instances (ms)', ms(pct(across.rtt, 0.5)), 'one instance, no backplane', ms(pct(solo.rtt, 0.5)), ratio(pct(across.rtt, 0.5), pct(solo.rtt, 0.5))],
      ['command round trip p99, across instances (ms)', ms(pct(across.rtt, 0.99)), 'one instance, no backplane', ms(pct(solo.rtt, 0.99)), ratio(pct(across.rtt, 0.99), pct(solo.rtt, 0.99))],
      ['command round trip p50 / p99, one instance with the backplane on (ms)', `${ms(pct(local.rtt, 0.5))} / ${ms(pct(local.rtt, 0.99))}`, 'one instance, no backplane', `${ms(pct(solo.rtt, 0.5))} / ${ms(pct(solo.rtt, 0.99))}`, ''],
      ['one status, gateway → browser p50, across instances (ms)', ms(pct(across.lat.toBrowser, 0.5)), 'one instance, no backplane', ms(pct(solo.lat.toBrowser, 0.5)), ratio(pct(across.lat.toBrowser, 0.5), pct(solo.lat.toBrowser, 0.5))],
      ['one status, gateway → browser p99, across instances (ms)', ms(pct(across.lat.toBrowser, 0.99)), 'one instance, no backplane', ms(pct(solo.lat.toBrowser, 0.99)), ratio(pct(across.lat.toBrowser, 0.99), pct(solo.lat.toBrowser, 0.99))],
      ['one status, send → ack p50 / p99, backplane on (PUBACK) (ms)', `${ms(pct(local.lat.toAck, 0.5))} / ${ms(pct(local.lat.toAck, 0.99))}`, 'one instance, no backplane', `${ms(pct(solo.lat.toAck, 0.5))} / ${ms(pct(solo.lat.toAck, 0.99))}`, ratio(pct(local.lat.toAck, 0.5), pct(solo.lat.toAck, 0.5))],
      [`CPU s per round of ${fmt(STATUSES)} statuses (mean), across instances`, cpuOf(across, ['cloud-a', 'cloud-b', 'mosquitto', 'bench']), 'one instance, no backplane', cpuOf(solo, ['cloud-solo', 'bench']), ''],
      [`CPU s per round of ${fmt(STATUSES)} statuses (mean), one instance with the backplane on`, cpuOf(local, ['cloud-a', 'cloud-b', 'mosquitto', 'bench']), '', '', ''],
    ];
    const head = ['what', 'flatlink', 'peer', 'peer value', 'ratio'];
    console.log('\n' + head.join(' | '));
    for (const r of rows) console.log(r.join(' | '));
    for (const s of setups) {
      console.log(
        `# ${s.name}: runs (ms to the browser / to the last ack): ${s.runs.map((r) => `${r.toBrowserMs.toFixed(0)}/${r.toAckMs.toFixed(0)}`).join(', ')}; ` +
          `${s.b.updates} updates, every seq once, in order; ${s.rtt.length} commands ok`,
      );
    }
    const elapsed = ((Date.now() - t0) / 1000).toFixed(0);
    console.log(`bench backplane: ok (${elapsed} s)`);
    if (OUT) writeDoc(rows, head, setups, elapsed);
  } finally {
    for (const p of started.reverse()) await stop(p).catch((e) => log(`stop: ${e.message}`));
  }
}

function writeDoc(rows, head, setups, elapsed) {
  const extra = argv.filter((a) => a !== '--out' && a !== OUT);
  const cmd = ['bench/run.sh --backplane', ...extra].join(' ');
  const md = [
    '<!-- backplane:begin — written by bench/backplane.mjs -->',
    '## Cloud instances over an MQTT broker (issue 11)',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${cmd}\` (\`node bench/backplane.mjs\`, ${elapsed} s), all on loopback: ` +
      `two \`flatlink-cloud\` instances (cloud-a, cloud-b) with a \`backplane\` over one Mosquitto ${mosquittoVersion()} on a free port ` +
      `(${BROKER_NAGLE ? 'its default `set_tcp_nodelay false`' : '`set_tcp_nodelay true`'}), and a third ` +
      `(cloud-solo) with the same config but no backplane, the peer. The gateway is a raw \`flatlink-gateway.v1\` client in the bench process that ` +
      `sends status batches of ${BATCH} items with consecutive seq, at most ${fmt(WINDOW)} statuses in flight (sent and not yet both acknowledged to it and shown at the browser: ` +
      `a browser more than 2,000 messages behind gets a snapshot instead of them, one message per status), and ` +
      `answers each command with \`ok\` at once; the browser is a logged-in \`flatlink-browser.v1\` client in the same process; both time on its monotonic clock. ` +
      `Three set-ups, one flat each: **across** (gateway on cloud-a, browser on cloud-b: each status crosses the broker), **backplane on** (gateway and browser ` +
      `on cloud-a: the status is published and its ack waits for the broker's PUBACK, the browser gets it locally) and **one instance, no backplane**. ` +
      `They take turns for ${ROUNDS} rounds; throughput is the median round of ${fmt(STATUSES)} statuses, timed from the first send to the last update at the browser ` +
      `(and to the last ack at the gateway), every status checked to arrive once and in order; ${setups[0].rtt.length} commands one after another and ` +
      `${setups[0].lat.toBrowser.length} single statuses one after another per set-up (p50 / p99 over all rounds). Rate limits raised to 100,000 frames/s ` +
      `in every set-up; \`log_level\` info (the default: a line per command, none per status). Machine: ${machineLine()}.`,
    '',
    '| ' + head.join(' | ') + ' |',
    '|' + head.map(() => ' --- ').join('|') + '|',
    ...rows.map((r) => '| ' + r.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ') + ' |'),
    '',
    `What it means: ${meaning(setups)}`,
    '',
    'TCP_NODELAY: every backplane message is a small write, and a command is a write followed by another (the holder\'s ' +
      '`accepted`, then the result) before any answer; with Nagle\'s algorithm on either end the second waits for the ' +
      'peer\'s delayed ACK, ~40 ms. Measured 2026-11-27 on this machine with this benchmark: before `flatlink-cloud` set ' +
      'TCP_NODELAY on its broker connection, against Mosquitto\'s default (`set_tcp_nodelay false`), a command across instances took ' +
      '88 ms at p50 and the statuses across instances moved at ~900/s (the in-flight bound waits for the browser); with TCP_NODELAY ' +
      'on the instances but not on the broker (`--broker-nagle`), 44 ms and ~14,000/s. Set `set_tcp_nodelay true` in Mosquitto\'s ' +
      'configuration (docs/scale-out.md).',
    '<!-- backplane:end -->',
  ].join('\n');
  writeFileSync(OUT, md + '\n');
  log(`wrote ${path.relative(repoRoot, OUT)}`);
  const doc = path.join(repoRoot, 'docs/benchmarks.md');
  // Only the default output goes into the docs (an --out elsewhere is a trial run).
  if (OUT === DEFAULT_OUT && existsSync(doc)) {
    const text = readFileSync(doc, 'utf8');
    const re = /<!-- backplane:begin[\s\S]*?<!-- backplane:end -->\n?/;
    let next;
    if (re.test(text)) next = text.replace(re, md + '\n');
    else if (text.includes('<!-- audio:end -->\n')) next = text.replace('<!-- audio:end -->\n', `<!-- audio:end -->\n\n${md}\n`);
    else next = text.replace(/\n## How the figures are made/, `\n${md}\n\n## How the figures are made`);
    writeFileSync(doc, next);
    log('updated docs/benchmarks.md');
  }
}

function meaning([across, local, solo]) {
  const busiest = Object.entries(across.cpu)
    .filter(([k]) => k !== 'bench')
    .sort((a, b) => b[1] - a[1])[0];
  return (
    `a status that crosses instances goes gateway → cloud-a → Mosquitto → cloud-b → browser; at this batch size the chain moved ` +
    `${fmt(across.rate)} statuses/s, ${(across.rate / solo.rate).toFixed(2)}× what one instance without a backplane moved (${fmt(solo.rate)}/s) ` +
    `on the same two cores, which all the processes and the bench's own clients share (the busiest process across instances: ${busiest[0]}, ` +
    `${fmt(busiest[1] / ROUNDS, 2)} s CPU per ${fmt(STATUSES)} statuses). With the backplane on but the browser on the same instance ` +
    `(${fmt(local.rate)}/s, ${(local.rate / solo.rate).toFixed(2)}×) the difference is the publishing alone: each batch sent to the broker, ` +
    `its PUBACK awaited before the ack, and the instance's own message coming back to it (it watches the flat); cloud-a then spends ` +
    `${fmt(local.cpu['cloud-a'] / ROUNDS, 2)} s of CPU where cloud-solo spends ${fmt(solo.cpu['cloud-solo'] / ROUNDS, 2)} s. ` +
    `A command across instances takes ${fmt(pct(across.rtt, 0.5), 2)} ms at p50 (${fmt(pct(across.rtt, 0.99), 2)} ms p99) against ` +
    `${fmt(pct(solo.rtt, 0.5), 2)} ms on one instance: the command and its result each cross the broker once, and the holder's ` +
    `\`accepted\` too. docs/scale-out.md's capacity estimate uses these figures.`
  );
}

function mosquittoVersion() {
  try {
    execFileSync('/usr/sbin/mosquitto', ['-h'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
    return '';
  } catch (e) {
    // mosquitto -h prints its version and exits 3
    return `${e.stdout ?? ''}`.match(/mosquitto version (\S+)/)?.[1] ?? '';
  }
}

main().catch((err) => {
  console.error('bench-backplane failed:', err.stack || err);
  process.exit(1);
});
