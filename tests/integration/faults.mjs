// A fault run across cloud instances (issue 20): two or three flatlink-cloud instances over a
// backplane (one Mosquitto, or a 3-node nats-server cluster), a real flatlinkd with simulated
// thermometers producing numbered statuses at a steady rate and a simulated lamp, a logged-in
// browser of the flat on every instance, and commands sent from the browsers in turn all the
// time. Faults are injected one phase at a time, with steady load before, during and after;
// each phase is then tallied:
// - per browser, for the statuses the gateway produced in the phase (seqs in the phase's
//   window): arrived (distinct), counted lost (the browser's instance's
//   flatlink_backplane_gap_lost_total + flatlink_backplane_catch_up_gaps_total, the phase's
//   increase), silently lost (produced − arrived − counted), duplicated, out of order;
// - per command sent in the phase: the outcome the browser was told against the executions at
//   the device (the sim adapter's "adapter=… command=<cloud id> ok" lines of flatlinkd), and
//   executions after the browser was told `offline`, `expired` or `timeout`;
// - recovery: from the fault to the first status produced after the fault reaching each browser
//   live (less than LIVE_MS after the gateway stamped it).
// Used by bench/faults.mjs (the full run, printed as tables) and
// tests/integration/backplane_fault_run.test.mjs (a short run with assertions).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

import { Peer, BROWSER_PROTOCOL, cloudConfig, flatA, gatewayConfig, loginA, metrics, startCloud, startGateway } from './flatlink.mjs';
import { freePort, portAccepts, run, startMosquitto, startProcess, stop, tempDir, waitFor } from './harness.mjs';

export const natsServer = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p));

// A status counts as live at a browser when it arrives less than this after its stamp.
const LIVE_MS = 1000;
// Outcomes after which the command must never run.
export const NOT_RUN = ['offline', 'expired', 'timeout'];

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// Every output line of a process with the time it came (Date.now()), beside harness.mjs's lines.
function tap(proc) {
  proc.timed = [];
  for (const stream of [proc.stdout, proc.stderr]) {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => proc.timed.push({ t: Date.now(), line }));
  }
  return proc;
}

// ---------------------------------------------------------------------------------------
// Brokers: { kind, urls(order), nodes, kill(i, signal), restart(i), stop() }

export async function mosquittoBroker() {
  const m = await startMosquitto(['allow_anonymous true', 'max_queued_messages 100000', 'set_tcp_nodelay true'], { prefix: 'flatlink-faults-mosquitto-' });
  const conf = path.join(m.dir, 'mosquitto.conf');
  const node = { name: 'mosquitto', port: m.port, proc: m.proc };
  return {
    kind: 'mosquitto',
    nodes: [node],
    ports: () => [m.port],
    async kill(i, signal) {
      node.proc.kill(signal);
      await node.proc.exited;
    },
    async restart() {
      node.proc = await startProcess('/usr/sbin/mosquitto', ['-c', conf]);
      await waitFor(() => portAccepts(m.port), 5000, { intervalMs: 20, message: 'mosquitto to accept connections again' });
    },
    async stop() {
      await stop(node.proc).catch(() => {});
    },
  };
}

// A 3-node nats-server cluster with JetStream and an MQTT listener on every node (as
// backplane.test.mjs starts it). A port picked free may be taken before a node binds it: then
// the whole cluster starts again on new ports.
export async function natsBroker() {
  for (let attempt = 1; ; ++attempt) {
    try {
      return await natsBrokerOnce();
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

async function natsReady(n, timeoutMs = 30_000) {
  await waitFor(
    async () =>
      (await run('/usr/bin/mosquitto_sub', ['-h', '127.0.0.1', '-p', String(n.mqtt), '-t', 'flatlink/probe', '-W', '1', '-i', `probe-${n.name}-${Date.now()}`], { timeoutMs: 5000 })).stderr.includes('Timed out'),
    timeoutMs,
    { intervalMs: 200, message: `nats node ${n.name} to take MQTT subscriptions` },
  );
}

async function natsBrokerOnce() {
  const dir = tempDir('flatlink-faults-nats-');
  const nodes = [];
  for (let i = 0; i < 3; ++i) nodes.push({ name: `n${i + 1}`, client: await freePort(), cluster: await freePort(), mqtt: await freePort(), http: await freePort() });
  for (const n of nodes) {
    const store = path.join(dir, n.name);
    mkdirSync(store, { recursive: true });
    n.conf = path.join(dir, `${n.name}.conf`);
    const routes = nodes.filter((o) => o !== n).map((o) => `nats-route://127.0.0.1:${o.cluster}`);
    writeFileSync(
      n.conf,
      [
        `server_name: ${n.name}`,
        `listen: 127.0.0.1:${n.client}`,
        `http: 127.0.0.1:${n.http}`,
        `jetstream { store_dir: "${store}" }`,
        `mqtt { listen: 127.0.0.1:${n.mqtt}, stream_replicas: 3, consumer_replicas: 3 }`,
        `cluster { name: flatlink, listen: 127.0.0.1:${n.cluster}, routes: [${routes.join(', ')}] }`,
        '',
      ].join('\n'),
    );
  }
  const start = (n) => startProcess(natsServer, ['-c', n.conf], { readyPattern: 'Server is ready', timeoutMs: 15_000 });
  try {
    for (const n of nodes) n.proc = await start(n);
    for (const n of nodes) await natsReady(n);
  } catch (err) {
    for (const n of nodes) if (n.proc) await stop(n.proc).catch(() => {});
    throw err;
  }
  return {
    kind: 'nats',
    nodes,
    ports: () => nodes.map((n) => n.mqtt),
    async kill(i, signal) {
      nodes[i].proc.kill(signal);
      await nodes[i].proc.exited;
    },
    // Started again; then up to currentMs for it to be current (its JetStream caught up,
    // /healthz ok), so that the next node's death does not cost the streams their quorum.
    // Says how long that took, or what /healthz still said.
    async restart(i, currentMs = 20_000) {
      const t0 = Date.now();
      nodes[i].proc = await start(nodes[i]);
      await natsReady(nodes[i], 60_000);
      let said = '';
      const current = await waitFor(
        async () => {
          const res = await fetch(`http://127.0.0.1:${nodes[i].http}/healthz`);
          said = await res.text();
          return res.ok && JSON.parse(said).status === 'ok';
        },
        currentMs,
        { intervalMs: 200 },
      ).then(() => true, () => false);
      return current
        ? `n${i + 1} started again, current (/healthz ok) ${Date.now() - t0} ms later`
        : `n${i + 1} started again, still not current ${Date.now() - t0} ms later: /healthz said ${said}`;
    },
    async stop() {
      for (const n of nodes) await stop(n.proc).catch(() => {});
    },
  };
}

// ---------------------------------------------------------------------------------------
// A browser of flat-a on an instance: updates with their arrival time, results by id.
class Browser {
  constructor(instance) {
    this.instance = instance;
    this.updates = []; // { seq, ts, t }
    this.results = new Map(); // browser command id → { outcome, message, t }
    this.peer = null;
  }

  async login() {
    const peer = new Peer(`ws://127.0.0.1:${this.instance.port}/`, BROWSER_PROTOCOL);
    await peer.opened;
    peer.ws.on('message', (data) => {
      const t = Date.now();
      let m;
      try {
        m = JSON.parse(data.toString());
      } catch {
        return;
      }
      if (m.type === 'update' && typeof m.seq === 'number') this.updates.push({ seq: m.seq, ts: m.ts, t });
      else if (m.type === 'result' && !this.results.has(m.id)) this.results.set(m.id, { outcome: m.outcome, message: m.message, t });
    });
    peer.send({ type: 'login', ...loginA });
    this.snapshot = await peer.next('snapshot', () => true, 10_000); // the login's: gateway_online as told
    this.peer = peer;
    return this;
  }

  get live() {
    return this.peer && !this.peer.closed;
  }

  maxSeq() {
    let max = 0;
    for (const u of this.updates) if (u.seq > max) max = u.seq;
    return max;
  }
}

// ---------------------------------------------------------------------------------------
// The run: brokers, instances, gateway, browsers, the command sender.
export async function startRun({ broker = 'mosquitto', instances = 3, thermometers = 4, intervalMs = 100, commandEveryMs = 300, ttlMs = 4000, lampLatencyMs = 100, log = () => {} } = {}) {
  const r = {
    broker: broker === 'nats' ? await natsBroker() : await mosquittoBroker(),
    instances: [],
    browsers: [],
    commands: [], // { id, browser, instance, sentAt, phase }
    phase: null,
    log,
  };
  const names = ['cloud-a', 'cloud-b', 'cloud-c'].slice(0, instances);
  for (const [i, id] of names.entries()) {
    const ports = r.broker.ports();
    // each instance prefers another node of a cluster, and knows every node
    const order = ports.map((_, k) => ports[(k + i) % ports.length]);
    const cfg = await cloudConfig([flatA], {
      limits: { command_timeout_ms: 3000, messages_per_s: 20_000 },
      extra: {
        backplane: {
          instance_id: id,
          brokers: order.map((p) => `mqtt://127.0.0.1:${p}`),
          keepalive_s: 5,
          backoff_base_ms: 100,
          backoff_max_ms: 500,
          command_offline_ms: 1000,
        },
      },
    });
    r.instances.push({ id, cfg, port: cfg.port, procs: [], proc: null });
  }
  await Promise.all(r.instances.map((inst) => startInstance(inst)));
  const devices = [
    ...Array.from({ length: thermometers }, (_, i) => ({ id: `thermo-${i + 1}`, kind: 'thermometer', interval_ms: intervalMs })),
    { id: 'lamp-1', kind: 'lamp' },
  ];
  r.gatewayCfg = gatewayConfig({
    id: 'gw-a',
    flat: 'flat-a',
    token: flatA.token,
    url: r.instances.map((inst) => `ws://127.0.0.1:${inst.port}/`),
    devices,
    // the lamp takes lampLatencyMs to switch: a command is at the device while a fault strikes
    extra: { adapters: [{ type: 'sim', latency_ms: lampLatencyMs, seed: 1, devices }] },
  });
  r.gateway = tap(await startGateway(r.gatewayCfg));
  await r.instances[0].proc.waitForLine('flat=flat-a gateway=gw-a version=', 10_000);
  for (const inst of r.instances) {
    const b = await new Browser(inst).login();
    r.browsers.push(b);
    inst.browser = b;
  }
  await waitFor(() => r.browsers.every((b) => b.updates.length >= 5), 30_000, { message: 'statuses at every browser' });

  // Commands from the live browsers in turn, all the time (also during faults).
  let n = 0;
  r.command = (b) => {
    const id = `fc-${++n}`;
    r.commands.push({ id, browser: b, instance: b.instance, sentAt: Date.now(), phase: r.phase });
    b.peer.send({ type: 'command', id, device: 'lamp-1', set: { on: n % 2 === 0 }, ttl_ms: ttlMs });
  };
  r.sender = setInterval(() => {
    const live = r.browsers.filter((b) => b.live);
    if (live.length) r.command(live[n % live.length]);
  }, commandEveryMs);
  r.ttlMs = ttlMs;
  return r;
}

async function startInstance(inst) {
  inst.proc = tap(await startCloud(inst.cfg));
  inst.procs.push(inst.proc);
  await inst.proc.waitForLine(`instance=${inst.id} connected;`, 30_000);
}

export async function stopRun(r) {
  clearInterval(r?.sender);
  for (const b of r?.browsers ?? []) b.peer?.close();
  if (r?.gateway) await stop(r.gateway).catch(() => {});
  for (const inst of r?.instances ?? []) if (inst.proc) await stop(inst.proc).catch(() => {});
  await r?.broker?.stop();
}

// The instance holding the gateway now: the one its current link is connected to.
export function holder(r) {
  const lines = r.gateway.lines.filter((l) => /connected to ws:\/\/127\.0\.0\.1:\d+\//.test(l));
  const port = Number(lines.at(-1)?.match(/127\.0\.0\.1:(\d+)/)?.[1]);
  return r.instances.find((inst) => inst.port === port) ?? r.instances[0];
}

const maxSeq = (r) => Math.max(0, ...r.browsers.filter((b) => b.live).map((b) => b.maxSeq()));

async function counters(inst) {
  try {
    const m = await metrics(inst.port);
    return {
      lost: (m.flatlink_backplane_gap_lost_total ?? 0) + (m.flatlink_backplane_catch_up_gaps_total ?? 0),
      repaired: m.flatlink_backplane_gap_repaired_total ?? 0,
      resyncs: m.flatlink_backplane_resyncs_total ?? 0,
    };
  } catch {
    return null; // the instance is down
  }
}

// ---------------------------------------------------------------------------------------
// Faults: each returns what happened; the phase measures around it.
export const faults = {
  // The broker killed (kill -9, no will) or stopped (SIGTERM), started again after downMs.
  broker: (signal, downMs) => ({
    name: `Mosquitto ${signal === 'SIGKILL' ? 'kill -9' : 'SIGTERM'}, back after ${downMs} ms`,
    async inject(r) {
      await r.broker.kill(0, signal);
      await delay(downMs);
      await r.broker.restart(0);
      return { restartedAt: Date.now() };
    },
  }),
  // One node of the nats cluster killed (kill -9); started again once statuses flow at every
  // browser without it (or after maxDownMs).
  natsNode: (i, { maxDownMs = 30_000, currentMs = 20_000 } = {}) => ({
    name: `nats node n${i + 1} kill -9`,
    async inject(r, tFault) {
      const port = r.broker.nodes[i].mqtt;
      const on = r.instances.filter((inst) => brokerPortOf(inst.proc.pid).includes(port)).map((inst) => inst.id + (inst === holder(r) ? ' (the holder)' : ''));
      await r.broker.kill(i, 'SIGKILL');
      await waitFor(() => liveAfter(r, tFault + 500), maxDownMs, { intervalMs: 50, message: 'statuses live at every browser' }).catch(() => {});
      // When each instance that was on the node had a session on another one again (read
      // when the phase is tallied).
      const back = () => on.map((name) => {
        const inst = r.instances.find((x) => name.startsWith(x.id));
        const line = inst.proc.timed.find((x) => x.t > tFault && x.line.includes(`instance=${inst.id} connected;`));
        return `${inst.id} connected to another node ${line ? `${line.t - tFault} ms after the kill` : 'not within the phase'}`;
      });
      return {
        restart: () => r.broker.restart(i, currentMs),
        note: () => `the node under ${on.join(', ') || 'no instance'}${on.length ? ` (${back().join(', ')})` : ''}`,
      };
    },
  }),
  // The instance holding the gateway killed (kill -9): the gateway moves to the next in its
  // list; the instance is started again once the gateway has moved, and its browser logs in again.
  holder: () => ({
    name: 'the holding instance kill -9',
    async inject(r) {
      const inst = holder(r);
      const connects = r.gateway.lines.filter((l) => l.includes('connected to ws://')).length;
      inst.proc.kill('SIGKILL');
      await inst.proc.exited;
      await waitFor(() => r.gateway.lines.filter((l) => l.includes('connected to ws://')).length > connects, 20_000, {
        message: 'the gateway to connect to another instance',
      });
      return {
        killed: inst,
        restart: async () => {
          await startInstance(inst);
          const b = await new Browser(inst).login();
          r.browsers[r.browsers.indexOf(inst.browser)] = b;
          inst.browser = b;
        },
      };
    },
  }),
};

// The broker port a process is connected to (ss: its established TCP connections).
function brokerPortOf(pid) {
  try {
    const out = execFileSync('ss', ['-tnpH', 'state', 'established'], { encoding: 'utf8', timeout: 5000 });
    const ports = [];
    for (const line of out.split('\n')) {
      if (!line.includes(`pid=${pid},`)) continue;
      ports.push(Number(line.trim().split(/\s+/)[3]?.split(':').at(-1)));
    }
    return ports;
  } catch {
    return [];
  }
}

// Every live browser has had a status produced after tFault arrive live.
function liveAfter(r, tFault) {
  return r.browsers.filter((b) => b.live).every((b) => b.updates.some((u) => u.ts > tFault && u.t - u.ts < LIVE_MS));
}

// When statuses flowed live again at a browser after a fault: the end of the longest pause in
// its updates since the fault (when one was longer than PAUSE_MS; statuses produced just
// before a broker's death can still arrive after tFault), at the first status produced after
// the fault that arrived live. Milliseconds from the fault; null when none came.
const PAUSE_MS = 500;
function recoveryOf(b, tFault) {
  const after = b.updates.filter((u) => u.t >= tFault);
  let from = tFault;
  let longest = 0;
  let prev = tFault;
  for (const u of after) {
    if (u.t - prev > longest) {
      longest = u.t - prev;
      from = u.t;
    }
    prev = u.t;
  }
  if (longest < PAUSE_MS) from = tFault;
  const u = after.find((x) => x.t >= from && x.ts > tFault && x.t - x.ts < LIVE_MS);
  return u ? u.t - tFault : null;
}

// One phase: steady load for beforeMs, the fault, recovery (statuses live at every browser
// again), steady load for afterMs, then the tally. Returns the phase's report.
export async function phase(r, fault, { beforeMs = 1500, afterMs = 2000, recoveryMs = 60_000 } = {}) {
  r.phase = fault.name;
  await delay(beforeMs);
  const browsers = r.browsers.filter((b) => b.live);
  const startSeq = maxSeq(r);
  const base = new Map();
  for (const b of browsers) base.set(b, await counters(b.instance));
  const firstCommand = r.commands.length;
  // One command from every browser just before the fault: in flight (at the broker, the
  // holder or the device) when it strikes.
  for (const b of browsers) r.command(b);
  await delay(30);
  const tFault = Date.now();
  r.log(`phase: ${fault.name} (statuses after seq ${startSeq})`);
  const info = (await fault.inject(r, tFault)) ?? {};
  await waitFor(() => liveAfter(r, info.restartedAt ?? tFault + 500), recoveryMs, { intervalMs: 20, message: `statuses live at every browser after "${fault.name}"` }).catch((e) => r.log(e.message));
  const survivors = browsers.filter((b) => b.live);
  const recovery = new Map();
  for (const b of survivors) recovery.set(b, recoveryOf(b, tFault));
  const restarted = info.restart ? await info.restart() : undefined;
  await delay(afterMs);
  const endSeq = maxSeq(r);
  // Whatever is still on its way comes before the tally (or the wait runs out).
  await waitFor(() => survivors.every((b) => b.maxSeq() >= endSeq), 10_000, { intervalMs: 20 }).catch(() => {});
  const commandsEnd = r.commands.length;
  // The phase's commands: answered, or past their deadline + 2 s.
  const cmds = r.commands.slice(firstCommand, commandsEnd);
  await waitFor(() => cmds.every((c) => c.browser.results.has(c.id) || !c.browser.live), r.ttlMs + 8000, { intervalMs: 50 }).catch(() => {});
  await delay(300); // an execution that would follow a told outcome has its chance
  const statuses = [];
  for (const b of browsers) {
    const name = b.instance.id;
    if (!survivors.includes(b)) {
      statuses.push({ browser: name, note: 'its instance was killed' });
      continue;
    }
    const before = base.get(b);
    const now = await counters(b.instance);
    const counted = now && before ? now.lost - before.lost : 0;
    const seqs = b.updates.map((u) => u.seq).filter((s) => s > startSeq && s <= endSeq);
    const distinct = new Set(seqs);
    let outOfOrder = 0;
    for (let i = 1; i < seqs.length; ++i) if (seqs[i] <= seqs[i - 1] && seqs[i] !== seqs[i - 1]) ++outOfOrder;
    const produced = endSeq - startSeq;
    statuses.push({
      browser: name,
      produced,
      arrived: distinct.size,
      counted,
      silent: produced - distinct.size - counted,
      duplicated: seqs.length - distinct.size,
      outOfOrder,
      repaired: now && before ? now.repaired - before.repaired : 0,
      recoveryMs: recovery.get(b),
    });
  }
  const commands = tallyCommands(r, cmds);
  return { name: fault.name, note: typeof info.note === 'function' ? info.note() : info.note, restarted: typeof restarted === 'string' ? restarted : undefined, startSeq, endSeq, statuses, commands, recoveryMs: Math.max(...[...recovery.values()].map((v) => v ?? Infinity)) };
}

// Per command: the outcome told, its cloud id (logged by the browser's instance), the
// executions at the device, and whether one came after a told offline/expired/timeout.
function tallyCommands(r, cmds) {
  const rows = [];
  for (const c of cmds) {
    const told = c.browser.results.get(c.id);
    let cloudId = null;
    const needle = ` browser_command=${c.id} device=`;
    for (const p of c.instance.procs) {
      const line = p.lines.find((l) => l.includes(needle));
      if (line) cloudId = line.match(/ command=(\S+) browser_command=/)?.[1] ?? null;
    }
    const runs = cloudId === null ? [] : r.gateway.timed.filter((x) => x.line.includes('adapter=') && x.line.includes(`command=${cloudId} ok`));
    const outcome = told ? told.outcome : c.browser.live ? 'no answer' : 'no answer (instance killed)';
    const afterTold = told && NOT_RUN.includes(told.outcome) ? runs.filter((x) => x.t >= told.t).length : 0;
    rows.push({ id: c.id, from: c.instance.id, cloudId, outcome, executions: runs.length, afterTold, message: told?.message });
  }
  const byOutcome = new Map();
  for (const row of rows) {
    const o = byOutcome.get(row.outcome) ?? { outcome: row.outcome, commands: 0, executed: 0, executions: 0, twice: 0, afterTold: 0 };
    ++o.commands;
    if (row.executions > 0) ++o.executed;
    if (row.executions > 1) ++o.twice;
    o.executions += row.executions;
    o.afterTold += row.afterTold;
    byOutcome.set(row.outcome, o);
  }
  return { rows, byOutcome: [...byOutcome.values()] };
}

// The phase's report as text tables.
export function formatPhase(p) {
  const out = [`## ${p.name}${p.note ? `, ${p.note}` : ''} (statuses seq ${p.startSeq + 1}..${p.endSeq})`, ''];
  out.push('| browser on | produced | arrived | counted lost | silently lost | duplicated | out of order | repaired from the holder | recovery (ms) |');
  out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const s of p.statuses) {
    if (s.note) out.push(`| ${s.browser} | ${s.note} | | | | | | | |`);
    else out.push(`| ${s.browser} | ${s.produced} | ${s.arrived} | ${s.counted} | ${s.silent} | ${s.duplicated} | ${s.outOfOrder} | ${s.repaired} | ${s.recoveryMs ?? 'not recovered'} |`);
  }
  out.push('');
  out.push('| outcome told | commands | executed at the device | executed twice | executions after the outcome was told |');
  out.push('| --- | --- | --- | --- | --- |');
  for (const o of p.commands.byOutcome) out.push(`| ${o.outcome} | ${o.commands} | ${o.executed} | ${o.twice} | ${NOT_RUN.includes(o.outcome) ? o.afterTold : '—'} |`);
  if (p.restarted) out.push('', `After the phase: ${p.restarted}.`);
  return out.join('\n');
}

// The broken promises of a phase: [] when it kept them all.
export function broken(p) {
  const out = [];
  for (const s of p.statuses) {
    if (s.note) continue;
    if (s.silent > 0) out.push(`${s.browser}: ${s.silent} statuses silently lost`);
    if (s.silent < 0) out.push(`${s.browser}: ${-s.silent} more counted lost than missing`);
    if (s.duplicated > 0) out.push(`${s.browser}: ${s.duplicated} statuses duplicated`);
    if (s.outOfOrder > 0) out.push(`${s.browser}: ${s.outOfOrder} statuses out of order`);
  }
  for (const c of p.commands.rows) {
    // `offline` and `expired`: it never reached the gateway; `timeout`: the gateway runs
    // nothing after the deadline, and the instance tells `timeout` only after it.
    if (['offline', 'expired'].includes(c.outcome) && c.executions > 0) out.push(`command ${c.id} from ${c.from}: told ${c.outcome} ("${c.message}"), executed ${c.executions} time(s), ${c.afterTold} after it was told`);
    if (c.afterTold > 0 && c.outcome === 'timeout') out.push(`command ${c.id} from ${c.from}: told timeout ("${c.message}"), executed ${c.afterTold} time(s) after it was told`);
    if (c.outcome === 'no answer') out.push(`command ${c.id} from ${c.from}: no result within its TTL + 8 s after the phase`);
    if (c.executions > 1) out.push(`command ${c.id} from ${c.from}: executed ${c.executions} times`);
    if (c.outcome === 'ok' && c.executions === 0) out.push(`command ${c.id} from ${c.from}: told ok, never executed`);
  }
  return out;
}
