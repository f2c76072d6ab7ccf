// flatlink benchmarks, side by side with what a user would pick instead (issue 9).
//
//   node bench/run.mjs [--smoke] [--flood N] [--rate N] [--seconds S] [--commands N]
//                      [--no-nodered] [--out FILE] [--note TEXT]
//                      [--links N,N,...] [--storm N] [--no-links] [--no-storm]
//
// --links: cloud capacity at each size (idle gateway links vs Mosquitto's WebSocket
// listener; default 1000,10000, at most 19000: the open-files cap of one process here);
// --storm: reconnect storm size (default 2000; --storm 10000 for the design's figure).
// Both live in bench/links.mjs (load generators: bench/loadgen.mjs).
//
// Everything runs on loopback, bounded in count and time, and stops by itself. The real
// binaries come from $FLATLINK_BUILD_DIR (default <repo>/build), the peers from Debian
// (mosquitto, mosquitto_sub, mosquitto_pub, socat) and from bench/node_modules (Node-RED 4,
// `npm ci` in bench/). The process helpers, config builders and WebSocket clients are the
// integration tests' own (tests/integration/harness.mjs, flatlink.mjs).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { binaries, freePort, repoRoot, run, startProcess, stop, tempDir, waitFor } from '../tests/integration/harness.mjs';
import { browser, cloudConfig, gatewayConfig, metrics, startCloud, startGateway } from '../tests/integration/flatlink.mjs';
import { startBroker } from './broker.mjs';
import { cloudCapacity, reconnectStorm } from './links.mjs';

const benchDir = path.join(repoRoot, 'bench');
// One copy of `ws`: the integration tests' (bench/node_modules is only needed for Node-RED).
const requireWs = createRequire(path.join(repoRoot, 'tests/integration/package.json'));
const { WebSocketServer } = requireWs('ws');

// ---------------------------------------------------------------------------------------
// options
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const SMOKE = flag('--smoke');
const FLOOD = Number(opt('--flood', SMOKE ? 2000 : 60000));
const RATE = Number(opt('--rate', 1000));
const SECONDS = Number(opt('--seconds', SMOKE ? 1 : 5));
const COMMANDS = Number(opt('--commands', SMOKE ? 50 : 1000));
const NODE_RED_JS = path.join(benchDir, 'node_modules/node-red/red.js');
const WITH_NODE_RED = !flag('--no-nodered') && !SMOKE && existsSync(NODE_RED_JS);
const OUT = opt('--out', SMOKE ? null : path.join(repoRoot, 'docs/benchmarks.md'));
const NOTE = opt('--note', '');
const PERF = opt('--perf', ''); // a folder: perf record flatlinkd and the cloud during the group drain
const DRAIN_TIMEOUT_MS = Number(opt('--drain-timeout', SMOKE ? 20000 : 90000));
const LINKS = flag('--no-links') ? [] : String(opt('--links', SMOKE ? '50' : '1000,10000')).split(',').map(Number).filter((x) => x > 0);
const STORM = flag('--no-storm') ? 0 : Number(opt('--storm', SMOKE ? 50 : 2000));
const CHUNK = 20000; // lines per mosquitto_pub run: the 2.0.11 broker drops a publisher at ~34k

const hardStop = setTimeout(() => {
  console.error('bench: hard stop');
  process.exit(2); // the harness kills every process it started on exit
}, (SMOKE ? 60 : 900) * 1000);
hardStop.unref();

const now = () => performance.timeOrigin + performance.now(); // ms, sub-ms resolution
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

function procStatus(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((text.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1] || 0);
    let pss = 0;
    let anon = 0;
    try {
      const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      pss = Number((roll.match(/^Pss:\s+(\d+)/m) || [])[1] || 0);
      anon = Number((roll.match(/^Anonymous:\s+(\d+)/m) || [])[1] || 0);
    } catch {
      // not readable: leave 0
    }
    return { rss: kb('VmRSS'), hwm: kb('VmHWM'), pss, anon };
  } catch {
    return { rss: 0, hwm: 0, pss: 0, anon: 0 };
  }
}
// Samples VmRSS of pid every 50 ms until stopped; returns { maxRss, hwm } in KiB.
function rssSampler(pid) {
  let max = 0;
  let last = { rss: 0, hwm: 0 };
  const t = setInterval(() => {
    last = procStatus(pid);
    max = Math.max(max, last.rss);
  }, 50);
  return () => {
    clearInterval(t);
    const s = procStatus(pid);
    return { maxRss: Math.max(max, s.rss), hwm: s.hwm || last.hwm };
  };
}
function cpuTicks(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime, clock ticks
  } catch {
    return 0;
  }
}
const mib = (kib) => kib / 1024;
function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

// Publishes lines (QoS 1) to topic through `mosquitto_pub -l`, in runs of at most CHUNK lines.
async function publishLines(port, topic, lines, { retain = false } = {}) {
  for (let i = 0; i < lines.length; i += CHUNK) {
    const part = lines.slice(i, i + CHUNK);
    const args = ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-l'];
    if (retain) args.push('-r');
    const r = await run('mosquitto_pub', args, { input: part.join('\n') + '\n', timeoutMs: 120000 });
    if (r.code !== 0) throw new Error(`mosquitto_pub failed (${r.code}): ${r.stderr}`);
  }
}

// The flood: `total` counter statuses spread over 10 topics flood/c0..c9 ({"n": i}).
async function flood(port, total) {
  const per = Math.ceil(total / 10);
  let n = 0;
  for (let d = 0; d < 10 && n < total; d++) {
    const lines = [];
    for (let i = 0; i < per && n < total; i++) lines.push(`{"n":${++n}}`);
    await publishLines(port, `flood/c${d}`, lines);
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// Consumers of the queued flood. Each returns { received, firstMs, lastMs, spawnMs, ... }.

// mosquitto_sub: the limit, a consumer that does nothing but read.
async function createSubSession(port, id) {
  const r = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-c', '-i', id, '-q', '1', '-t', 'flood/#', '-E'], { timeoutMs: 10000 });
  if (r.code !== 0) throw new Error(`mosquitto_sub -E failed: ${r.stderr}`);
}
function drainSub(port, id, total) {
  return new Promise((resolve, reject) => {
    const spawnMs = now();
    const child = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-c', '-i', id, '-q', '1', '-t', 'flood/#', '-C', String(total)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let received = 0;
    let firstMs = 0;
    let lastMs = 0;
    let stderr = '';
    // Its CPU, read at each output chunk (it exits after the last message: what it spends
    // after the last chunk is not counted, a small underestimate).
    let cpu = 0;
    const sampler = rssSampler(child.pid);
    const timer = setTimeout(() => child.kill('SIGKILL'), DRAIN_TIMEOUT_MS);
    child.stdout.on('data', (buf) => {
      const t = now();
      if (!firstMs) firstMs = t;
      for (let i = 0; i < buf.length; i++) if (buf[i] === 10) received++;
      lastMs = t;
      cpu = cpuTicks(child.pid) || cpu;
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      const mem = sampler();
      resolve({ received, firstMs, lastMs, spawnMs, mem, cpuS: cpu / 100, note: stderr.trim() });
    });
  });
}

// flatlinkd with the mqtt adapter (a generic counter rule) and the durable outbox.
function floodGatewayConfig(cloudCfg, flat, durability) {
  return gatewayConfig({
    id: `gw-${flat.id}`,
    flat: flat.id,
    token: flat.token,
    url: `ws://127.0.0.1:${cloudCfg.port}/`,
    devices: [],
    extra: {
      log_level: 'info',
      outbox: { durability, max_items: 1000000, max_bytes: 1 << 30 },
      adapters: [
        {
          type: 'mqtt',
          name: 'broker',
          host: '127.0.0.1',
          port: cloudCfg.brokerPort,
          client_id: `bench-${flat.id}`,
          rules: [{ topic: 'flood/{device}', kind: 'counter', payload: 'json', values: [{ field: 'n', capability: 'n', type: 'int' }] }],
        },
      ],
    },
  });
}
async function createGatewaySession(cfg) {
  const gw = await startGateway(cfg);
  await gw.waitForLine(/adapter=broker connected to/, 10000);
  await stop(gw); // SIGTERM: DISCONNECT, the persistent session stays
}
async function drainGateway(cfg, cloudPort, total, { cloudPid, perfName } = {}) {
  const before = (await metrics(cloudPort)).flatlink_statuses_total;
  const spawnMs = now();
  const gw = await startProcess(binaries.gateway, ['--config', cfg.file]);
  const sampler = rssSampler(gw.pid);
  const cpu0 = cpuTicks(gw.pid);
  const cloudCpu0 = cpuTicks(cloudPid);
  let perf = null;
  if (PERF && perfName) {
    perf = spawn('perf', ['record', '-q', '-F', '2000', '-g', '-o', path.join(PERF, `${perfName}.data`), '-p', `${gw.pid},${cloudPid}`], { stdio: 'ignore' });
  }
  let firstMs = 0;
  let lastMs = 0;
  let received = 0;
  const deadline = spawnMs + DRAIN_TIMEOUT_MS;
  let stalledSince = now();
  while (received < total && now() < deadline) {
    await sleep(5);
    const got = (await metrics(cloudPort)).flatlink_statuses_total - before;
    const t = now();
    if (got > received) {
      if (!firstMs) firstMs = t;
      lastMs = t;
      received = got;
      stalledSince = t;
    } else if (received > 0 && t - stalledSince > 15000) break;
  }
  const cpu = cpuTicks(gw.pid) - cpu0;
  const cloudCpu = cpuTicks(cloudPid) - cloudCpu0;
  const mem = sampler();
  if (perf) {
    perf.kill('SIGINT');
    await new Promise((r) => perf.on('close', r));
  }
  const code = await stop(gw);
  return { received, firstMs, lastMs, spawnMs, mem, cpuS: cpu / 100, cloudCpuS: cloudCpu / 100, note: code === 0 ? '' : `exit ${code}` };
}

// Node-RED 4: mqtt in (same broker, QoS 1, persistent session) -> function (builds a
// status frame) -> websocket out to a WebSocket sink that counts frames. Node-RED cannot
// speak flatlink's protocol (hello, acks), so the sink stands in for the cloud endpoint.
function nodeRedFlow(brokerPort, sinkPort) {
  return [
    { id: 'tab1', type: 'tab', label: 'bench' },
    { id: 'wsc', type: 'websocket-client', path: `ws://127.0.0.1:${sinkPort}/`, tls: '', wholemsg: 'false', hb: '0', subprotocol: '' },
    {
      id: 'brk',
      type: 'mqtt-broker',
      name: 'bench',
      broker: '127.0.0.1',
      port: String(brokerPort),
      clientid: 'bench-nodered',
      autoConnect: true,
      usetls: false,
      protocolVersion: '4',
      keepalive: '60',
      cleansession: false,
      autoUnsubscribe: false,
      birthTopic: '',
      closeTopic: '',
      willTopic: '',
    },
    { id: 'in1', type: 'mqtt in', z: 'tab1', name: '', topic: 'flood/#', qos: '1', datatype: 'utf8', broker: 'brk', nl: false, rap: true, rh: 0, inputs: 0, x: 100, y: 100, wires: [['fn1']] },
    {
      id: 'fn1',
      type: 'function',
      z: 'tab1',
      name: 'to status',
      func:
        "const v = JSON.parse(msg.payload);\n" +
        "context.seq = (context.seq || 0) + 1;\n" +
        "msg.payload = JSON.stringify({type: 'status', items: [{seq: context.seq, device: msg.topic.split('/')[1], state: {n: v.n}, ts: Date.now()}]});\n" +
        'return msg;',
      outputs: 1,
      x: 300,
      y: 100,
      wires: [['out1']],
    },
    { id: 'out1', type: 'websocket out', z: 'tab1', name: '', server: '', client: 'wsc', x: 500, y: 100, wires: [] },
  ];
}
async function startSink() {
  const port = await freePort();
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  const sink = { port, received: 0, firstMs: 0, lastMs: 0, connections: 0, wss };
  wss.on('connection', (ws) => {
    sink.connections++;
    ws.on('message', () => {
      const t = now();
      if (!sink.firstMs) sink.firstMs = t;
      sink.lastMs = t;
      sink.received++;
    });
  });
  await new Promise((r) => wss.once('listening', r));
  return sink;
}
async function nodeRedSetup(brokerPort) {
  const sink = await startSink();
  const userDir = tempDir('flatlink-bench-nodered-');
  writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(nodeRedFlow(brokerPort, sink.port), null, 1));
  const uiPort = await freePort();
  writeFileSync(
    path.join(userDir, 'settings.js'),
    `module.exports = { uiPort: ${uiPort}, uiHost: '127.0.0.1', flowFile: 'flows.json', credentialSecret: false,
  logging: { console: { level: 'info', metrics: false, audit: false } }, telemetry: { enabled: false },
  diagnostics: { enabled: false }, runtimeState: { enabled: false }, editorTheme: { tours: false } };\n`,
  );
  const start = () =>
    startProcess(process.execPath, [NODE_RED_JS, '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], {
      readyPattern: 'Started flows',
      timeoutMs: 60000,
      cwd: userDir,
    });
  return { sink, userDir, start };
}

// ---------------------------------------------------------------------------------------
// main

const results = { machine: {}, throughput: {}, latency: {}, commands: {}, memory: {}, capacity: [], storm: null, notes: [] };
const rows = [];

function machineInfo() {
  const lscpu = (() => {
    try {
      return execFileSync('lscpu', { encoding: 'utf8' });
    } catch {
      return '';
    }
  })();
  const model = (lscpu.match(/^Model name:\s+(.*)$/m) || [])[1] || os.cpus()[0]?.model || '?';
  const memKb = Number((readFileSync('/proc/meminfo', 'utf8').match(/MemTotal:\s+(\d+)/) || [])[1] || 0);
  const ver = (cmd, args, re) => {
    try {
      const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
      return (out.match(re) || [])[1] || out.trim().split('\n')[0];
    } catch (e) {
      return ((e.stdout || '') + (e.stderr || '')).match(re)?.[1] || '?';
    }
  };
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    model,
    ramGiB: (memKb / 1048576).toFixed(1),
    kernel: os.release(),
    node: process.version,
    mosquitto: ver('mosquitto', ['-h'], /mosquitto version (\S+)/),
    nodeRed: existsSync(NODE_RED_JS) ? JSON.parse(readFileSync(path.join(benchDir, 'node_modules/node-red/package.json'), 'utf8')).version : 'not installed',
    loadBefore: os.loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

function rate(r) {
  const span = (r.lastMs - r.firstMs) / 1000;
  return span > 0 ? (r.received - 1) / span : NaN;
}
function rateFromSpawn(r) {
  const span = (r.lastMs - r.spawnMs) / 1000;
  return span > 0 ? r.received / span : NaN;
}

async function main() {
  results.machine = machineInfo();
  log(`machine: ${results.machine.nproc} CPUs, ${results.machine.model}, ${results.machine.ramGiB} GiB; load ${results.machine.loadBefore}`);
  for (const b of [binaries.cloud, binaries.gateway]) if (!existsSync(b)) throw new Error(`missing ${b}: build first (FLATLINK_BUILD_DIR)`);

  const broker = await startBroker();
  const flats = ['group', 'sync', 'mem'].map((id) => ({ id, token: `tok-${id}-0123456789`, user: 'bench', password: 'bench-pw' }));
  const cloudCfg = await cloudConfig(flats, { limits: { messages_per_s: 100000, burst: 1000000, handshake_timeout_s: 30 } });
  cloudCfg.brokerPort = broker.port;
  const cloud = await startCloud(cloudCfg);

  // ---- 1. upstream throughput: one flood, queued for every consumer's persistent session
  log(`throughput: creating the persistent sessions`);
  const gwGroup = floodGatewayConfig(cloudCfg, flats[0], 'group');
  const gwSync = floodGatewayConfig(cloudCfg, flats[1], 'sync');
  await createSubSession(broker.port, 'bench-sub');
  await createGatewaySession(gwGroup);
  await createGatewaySession(gwSync);
  let nr = null;
  if (WITH_NODE_RED) {
    nr = await nodeRedSetup(broker.port);
    const first = await nr.start();
    await first.waitForLine(/Connected to broker/, 30000);
    await waitFor(() => nr.sink.connections > 0, 10000, { message: 'Node-RED to open its WebSocket' });
    await sleep(SMOKE ? 500 : 3000);
    nr.idle = procStatus(first.pid); // idle: flows running, connected, nothing queued
    await stop(first, 'SIGKILL'); // a clean stop would unsubscribe (mqtt-in), losing the queue
  }
  log(`throughput: flooding ${FLOOD} QoS 1 messages (mosquitto_pub -l, ${CHUNK} per run)`);
  const t0 = now();
  await flood(broker.port, FLOOD);
  log(`  published in ${((now() - t0) / 1000).toFixed(1)} s`);

  log('  draining: mosquitto_sub');
  const sub = await drainSub(broker.port, 'bench-sub', FLOOD);
  log(`  mosquitto_sub: ${sub.received} in ${(sub.lastMs - sub.firstMs).toFixed(0)} ms`);
  log('  draining: flatlinkd (outbox group)');
  const grp = await drainGateway(gwGroup, cloudCfg.port, FLOOD, { cloudPid: cloud.pid, perfName: 'group' });
  log(`  flatlinkd group: ${grp.received} in ${(grp.lastMs - grp.firstMs).toFixed(0)} ms`);
  log('  draining: flatlinkd (outbox sync)');
  const syn = await drainGateway(gwSync, cloudCfg.port, FLOOD, { cloudPid: cloud.pid });
  log(`  flatlinkd sync: ${syn.received} in ${(syn.lastMs - syn.firstMs).toFixed(0)} ms`);
  let red = null;
  if (nr) {
    log('  draining: Node-RED');
    nr.sink.received = 0;
    nr.sink.firstMs = 0;
    const spawnMs = now();
    const proc = await nr.start();
    const sampler = rssSampler(proc.pid);
    const deadline = spawnMs + DRAIN_TIMEOUT_MS;
    let seen = -1;
    let stalled = now();
    while (nr.sink.received < FLOOD && now() < deadline) {
      await sleep(20);
      if (nr.sink.received !== seen) {
        seen = nr.sink.received;
        stalled = now();
      } else if (seen > 0 && now() - stalled > 10000) break;
    }
    const mem = sampler();
    red = { received: nr.sink.received, firstMs: nr.sink.firstMs, lastMs: nr.sink.lastMs, spawnMs, mem };
    log(`  Node-RED: ${red.received} in ${(red.lastMs - red.firstMs).toFixed(0)} ms`);
    red.idle = nr.idle;
    await stop(proc, 'SIGKILL');
    nr.sink.wss.close();
  }
  results.throughput = { flood: FLOOD, sub, grp, syn, red };

  // ---- 2/3. latency and memory: one gateway with three adapters and 200 devices
  log('latency/memory: flatlinkd with sim + mqtt + serial, 200 devices');
  const ptyDir = tempDir('flatlink-bench-pty-');
  const socat = await startProcess('socat', ['-d', '-d', `pty,raw,echo=0,link=${ptyDir}/dev`, `pty,raw,echo=0,link=${ptyDir}/test`]);
  await waitFor(() => existsSync(`${ptyDir}/dev`) && existsSync(`${ptyDir}/test`), 5000, { message: 'socat links' });
  const simDevices = [];
  for (let i = 1; i <= 100; i++) simDevices.push({ id: `lamp-${i}`, kind: 'lamp' });
  for (let i = 1; i <= 50; i++) simDevices.push({ id: `lock-${i}`, kind: 'lock' });
  const MQTT_FILLERS = 48;
  const memCfg = gatewayConfig({
    id: 'gw-mem',
    flat: 'mem',
    token: flats[2].token,
    url: `ws://127.0.0.1:${cloudCfg.port}/`,
    devices: [],
    extra: {
      log_level: 'info',
      adapters: [
        { type: 'sim', name: 'sim', latency_ms: 0, seed: 1, devices: simDevices },
        {
          type: 'mqtt',
          name: 'broker',
          host: '127.0.0.1',
          port: broker.port,
          client_id: 'bench-gw-mem',
          rules: [
            { topic: 'lat/{device}', kind: 'counter', payload: 'json', values: [{ field: 'n', capability: 'n', type: 'int' }, { field: 't', capability: 't', type: 'number' }] },
            { topic: 'dev/{device}', kind: 'counter', payload: 'json', values: [{ field: 'n', capability: 'n', type: 'int' }] },
          ],
        },
        { type: 'serial', name: 'uart', port: `${ptyDir}/dev`, devices: [{ id: 'uart-1', kind: 'counter', capabilities: [{ name: 'n', type: 'int' }] }] },
      ],
    },
  });
  const gw = await startGateway(memCfg);
  await gw.waitForLine(/adapter=broker connected to/, 10000);
  await gw.waitForLine(/adapter=uart port=.* opened/, 10000);
  // the MQTT devices appear when a topic names them: 48 retained fillers + the latency device
  const fillers = [];
  for (let i = 1; i <= MQTT_FILLERS; i++) fillers.push(publishLines(broker.port, `dev/m-${i}`, ['{"n":1}'], { retain: true }));
  await Promise.all(fillers);
  await publishLines(broker.port, 'lat/lat-1', [`{"n":0,"t":${now()}}`]);
  writeFileSync(`${ptyDir}/test`, '{"n":1}\n');
  const page = await browser(cloudCfg.port, { flat: 'mem', user: 'bench', password: 'bench-pw' });
  const deviceCount = await waitFor(
    () => {
      const snap = page.of('snapshot').at(-1);
      const lists = page.of('devices');
      const n = lists.length ? lists.at(-1).devices.length : snap.devices.length;
      return n >= 200 ? n : false;
    },
    10000,
    { message: '200 devices at the cloud' },
  ).catch(() => {
    const lists = page.of('devices');
    return lists.length ? lists.at(-1).devices.length : page.of('snapshot').at(-1)?.devices?.length;
  });
  await sleep(SMOKE ? 500 : 3000);
  const idle = procStatus(gw.pid);
  log(`  idle: ${deviceCount} devices, RSS ${mib(idle.rss).toFixed(2)} MiB`);

  // latency: MQTT publish -> browser update, at RATE/s for SECONDS, the publish time in the payload
  const arrivals = new Map();
  page.ws.on('message', (data) => {
    const t = now();
    const s = data.toString();
    if (!s.includes('"lat-1"')) return;
    const m = JSON.parse(s);
    if (m.type === 'update' && m.device === 'lat-1' && m.state.n > 0) arrivals.set(m.state.n, t - m.state.t);
  });
  const total = Math.round(RATE * SECONDS);
  const pub = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-q', '1', '-t', 'lat/lat-1', '-l'], { stdio: ['pipe', 'ignore', 'pipe'] });
  await new Promise((r) => setTimeout(r, 300)); // connected
  const memSampler = rssSampler(gw.pid);
  const cpu0 = cpuTicks(gw.pid);
  const startMs = now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((now() - startMs) / 1000) * RATE) + 1);
    let chunk = '';
    while (sent < due) chunk += `{"n":${++sent},"t":${now()}}\n`;
    if (chunk) pub.stdin.write(chunk);
    await sleep(1);
  }
  const sendSpan = now() - startMs;
  await waitFor(() => arrivals.size >= total, 10000, { message: 'every latency status at the browser' }).catch(() => {});
  pub.stdin.end();
  const latCpu = (cpuTicks(gw.pid) - cpu0) / 100;
  const lats = [...arrivals.values()].sort((a, b) => a - b);
  results.latency = {
    sent: total,
    received: arrivals.size,
    achievedRate: total / (sendSpan / 1000),
    p50: percentile(lats, 50),
    p99: percentile(lats, 99),
    max: lats.at(-1),
    gwCpuPct: (latCpu / (sendSpan / 1000)) * 100,
  };
  log(`  latency: ${arrivals.size}/${total} p50 ${results.latency.p50?.toFixed(2)} p99 ${results.latency.p99?.toFixed(2)} max ${results.latency.max?.toFixed(2)} ms`);

  // commands: browser -> cloud -> gateway -> sim lamp -> result, one at a time
  const pending = new Map();
  page.ws.on('message', (data) => {
    const s = data.toString();
    if (!s.startsWith('{"type":"result"') && !s.includes('"result"')) return;
    const m = JSON.parse(s);
    if (m.type === 'result' && pending.has(m.id)) {
      const { t0, resolve } = pending.get(m.id);
      pending.delete(m.id);
      resolve({ ms: now() - t0, outcome: m.outcome });
    }
  });
  const cmdTimes = [];
  const outcomes = {};
  for (let i = 0; i < COMMANDS; i++) {
    const id = `b-${i}`;
    const done = new Promise((resolve) => pending.set(id, { t0: now(), resolve }));
    page.send({ type: 'command', id, device: `lamp-${(i % 100) + 1}`, set: { on: Math.floor(i / 100) % 2 === 0 }, ttl_ms: 10000 });
    const r = await Promise.race([done, sleep(5000).then(() => ({ ms: NaN, outcome: 'no answer' }))]);
    outcomes[r.outcome] = (outcomes[r.outcome] || 0) + 1;
    if (r.outcome === 'ok') cmdTimes.push(r.ms);
  }
  cmdTimes.sort((a, b) => a - b);
  results.commands = { n: COMMANDS, outcomes, p50: percentile(cmdTimes, 50), p99: percentile(cmdTimes, 99), max: cmdTimes.at(-1) };
  log(`  commands: ${JSON.stringify(outcomes)} p50 ${results.commands.p50?.toFixed(2)} p99 ${results.commands.p99?.toFixed(2)} ms`);
  const load = memSampler();
  results.memory = { devices: deviceCount, idle, load, flood: { group: grp.mem, sync: syn.mem } };
  log(`  memory under load: max RSS ${mib(load.maxRss).toFixed(2)} MiB, HWM ${mib(load.hwm).toFixed(2)} MiB`);
  page.close();
  await stop(gw);
  await stop(socat, 'SIGKILL');
  await stop(cloud);
  await stop(broker.proc, 'SIGKILL');

  // ---- 4. cloud capacity, 5. reconnect storm (bench/links.mjs)
  for (const n of LINKS) {
    log(`capacity: ${n} idle gateway links, then ${n} MQTT-over-WebSocket clients`);
    results.capacity.push(await cloudCapacity(n, { settleMs: SMOKE ? 300 : 1000 }));
  }
  if (STORM) {
    log(`storm: ${STORM} gateway links, kill -9 of the cloud, restart`);
    results.storm = await reconnectStorm(STORM, SMOKE ? { realGateways: 1, restartDelayMs: 200, timeoutMs: 20000 } : {});
  }
  results.machine.loadAfter = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  report();
}

// ---------------------------------------------------------------------------------------
// report: a table on stdout, docs/benchmarks.md

const fmt = (x, d = 0) => (x === undefined || x === null || Number.isNaN(x) ? '—' : Number(x).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));

function report() {
  const { sub, grp, syn, red } = results.throughput;
  // native consumers: from their spawn (start-up, connects and the gateway's hello
  // included: conservative for flatlinkd); Node-RED: from its first frame at the sink
  // (its JavaScript start-up takes seconds and is not what is measured).
  const rSub = rateFromSpawn(sub);
  const rGrp = rateFromSpawn(grp);
  const rSyn = rateFromSpawn(syn);
  const rRed = red ? rate(red) : NaN;
  const lat = results.latency;
  const cmd = results.commands;
  const mem = results.memory;
  const table = [];
  // [what, flatlink, peer name, peer, ratio text, target, met]
  const add = (what, ours, peerName, peer, ratio, target, met) => table.push({ what, ours, peerName, peer, ratio, target, met });
  const okStr = (b) => (b === undefined ? '' : b ? 'met' : 'MISSED');
  const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b ? `${(Math.floor((a / b) * 100) / 100).toFixed(2)}×` : '—'); // floored: 2.999 is not 3
  const complete = (r) => r.received >= results.throughput.flood;
  const incomplete = (r) => (complete(r) ? '' : ` (only ${r.received} of ${results.throughput.flood})`);

  add('upstream msg/s, outbox group', fmt(rGrp) + incomplete(grp), 'mosquitto_sub', fmt(rSub) + incomplete(sub), ratio(rGrp, rSub), '≥ 0.75× mosquitto_sub', complete(grp) && rGrp >= 0.75 * rSub);
  if (red) add('upstream msg/s, outbox group', fmt(rGrp), 'Node-RED 4', fmt(rRed) + incomplete(red), ratio(rGrp, rRed), '≥ 3× Node-RED', complete(grp) && rGrp >= 3 * rRed);
  add('upstream msg/s, outbox sync', fmt(rSyn) + incomplete(syn), 'mosquitto_sub', fmt(rSub), ratio(rSyn, rSub), '(no target)', undefined);
  // CPU per status (issue 23): flatlinkd from spawn to its last status, over the flood; the
  // peer's figure is a lower bound (read at its last output chunk).
  const usPer = (r) => (r.cpuS * 1e6) / results.throughput.flood;
  add('flatlinkd CPU per status, outbox group (µs)', fmt(usPer(grp), 1), 'mosquitto_sub, per message', '≥ ' + fmt(usPer(sub), 1), ratio(usPer(grp), usPer(sub)), '≤ 10 µs', complete(grp) && usPer(grp) <= 10);
  if (red) add('upstream msg/s, outbox sync', fmt(rSyn), 'Node-RED 4', fmt(rRed), ratio(rSyn, rRed), '(no target)', undefined);
  add(`MQTT → browser latency p50 @ ${fmt(lat.achievedRate)}/s (ms)`, fmt(lat.p50, 2), '', '', '', '≤ 1 ms', lat.p50 <= 1);
  add('MQTT → browser latency p99 (ms)', fmt(lat.p99, 2), '', '', '', '≤ 5 ms', lat.p99 <= 5);
  add('MQTT → browser latency max (ms)', fmt(lat.max, 2), '', '', '', '', undefined);
  add('command → sim → result p50 (ms)', fmt(cmd.p50, 2), '', '', '', '', undefined);
  add('command → sim → result p99 (ms)', fmt(cmd.p99, 2), '', '', '', '≤ 10 ms', cmd.p99 <= 10);
  add(`flatlinkd PSS idle (private + its share of libraries) (MiB)`, fmt(mib(mem.idle.pss), 2), 'Node-RED PSS idle', red ? fmt(mib(red.idle.pss), 1) : '—', red ? ratio(mem.idle.pss, red.idle.pss) : '—', '', undefined);
  add(`flatlinkd anonymous memory idle (heap, stacks) (MiB)`, fmt(mib(mem.idle.anon), 2), 'Node-RED anonymous idle', red ? fmt(mib(red.idle.anon), 1) : '—', red ? ratio(mem.idle.anon, red.idle.anon) : '—', '', undefined);
  add(`flatlinkd RSS idle, 3 adapters, ${mem.devices} devices (MiB)`, fmt(mib(mem.idle.rss), 2), 'Node-RED idle', red ? fmt(mib(red.idle.rss), 1) : '—', red ? ratio(mem.idle.rss, red.idle.rss) : '—', '≤ 8 MiB', mib(mem.idle.rss) <= 8);
  add('flatlinkd peak RSS under 1k/s + commands (MiB)', fmt(mib(Math.max(mem.load.maxRss, mem.load.hwm)), 2), '', '', '', '≤ 8 MiB', mib(Math.max(mem.load.maxRss, mem.load.hwm)) <= 8);
  add('flatlinkd peak RSS draining the flood, group (MiB)', fmt(mib(grp.mem.hwm), 2), 'Node-RED draining', red ? fmt(mib(Math.max(red.mem.hwm, red.mem.maxRss)), 1) : '—', red ? ratio(grp.mem.hwm, Math.max(red.mem.hwm, red.mem.maxRss)) : '—', '≤ 8 MiB', mib(grp.mem.hwm) <= 8);
  add('flatlinkd peak RSS draining the flood, sync (MiB)', fmt(mib(syn.mem.hwm), 2), '', '', '', '≤ 8 MiB', mib(syn.mem.hwm) <= 8);
  for (const c of results.capacity) {
    const n = fmt(c.links);
    const short = (r, what) => (r.ok === c.links ? '' : ` (only ${fmt(r.ok)} ${what})`);
    add(`cloud RSS per idle gateway link, ${n} links, no TLS (KiB)`, fmt(c.cloud.perLinkKiB, 2) + short(c.cloud, 'acked'), 'Mosquitto WebSocket, per idle MQTT client', fmt(c.mosquitto.perLinkKiB, 2) + short(c.mosquitto, 'connected'), ratio(c.cloud.perLinkKiB, c.mosquitto.perLinkKiB), '≤ 4 KiB', c.cloud.ok === c.links && c.cloud.perLinkKiB <= 4);
    add(`time to open ${n} links, poll loop (ms)`, fmt(c.cloud.ms) + ` (cloud ${fmt(c.cloud.cpuS, 2)} s CPU)`, 'Mosquitto WebSocket', fmt(c.mosquitto.ms) + ` (${fmt(c.mosquitto.cpuS, 2)} s CPU)`, ratio(c.cloud.ms, c.mosquitto.ms), '', undefined);
    const uv = c.cloudUv;
    add(`time to open ${n} links, libuv loop (ms)`, fmt(uv.ms) + ` (cloud ${fmt(uv.cpuS, 2)} s CPU)` + short(uv, 'acked'), 'Mosquitto WebSocket', fmt(c.mosquitto.ms) + ` (${fmt(c.mosquitto.cpuS, 2)} s CPU)`, ratio(uv.ms, c.mosquitto.ms), '≤ 1× Mosquitto', uv.ok === c.links && uv.ms <= c.mosquitto.ms);
    add(`cloud CPU per new link, libuv loop, ${n} links (ms)`, fmt((uv.cpuS * 1000) / c.links, 3), 'Mosquitto WebSocket', fmt((c.mosquitto.cpuS * 1000) / c.links, 3), ratio(uv.cpuS, c.mosquitto.cpuS), '≤ 1× Mosquitto', uv.ok === c.links && uv.cpuS <= c.mosquitto.cpuS);
  }
  if (results.capacity.length) add('idle gateway links on one instance', `≤ ~19,000 here (not measurable: 20,000 open files per process)`, '', '', '', '100k', undefined);
  const st = results.storm;
  if (st) {
    add(`reconnect storm, ${fmt(st.links)} links (+${st.realGateways} flatlinkd): all back after the restart (s)`, `${fmt(st.backMsFromRestart / 1000, 1)} (${fmt(st.backMsFromKill / 1000, 1)} after the kill)`, '', '', '', st.links >= 10000 ? '≤ 60 s' : '≤ 60 s (the design says 10k: see below)', st.allBack && st.backMsFromRestart <= 60000);
    add('reconnect storm: statuses lost', `${fmt(st.lost)} (of ${fmt(st.unackedAtKill)} unacked: in flight at the kill or made while down)`, '', '', '', '0', st.allBack && st.lost === 0);
    add('reconnect storm: cloud peak CPU (% of one core, 200 ms windows)', `${fmt(st.peakCpuPct)} % (${fmt(st.cpuS, 2)} s CPU)`, '', '', '', '', undefined);
  }

  const head = ['what', 'flatlink', 'peer', 'peer value', 'ratio', 'target', ''];
  const lines = table.map((r) => [r.what, r.ours, r.peerName, r.peer, r.ratio, r.target, okStr(r.met)]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => String(l[i]).length)));
  const pad = (l) => l.map((c, i) => String(c).padEnd(widths[i])).join('  ');
  console.log(pad(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(pad(l));
  console.log(
    `\nflood ${results.throughput.flood}: drain times spawn→last message: mosquitto_sub ${fmt(sub.lastMs - sub.spawnMs)} ms (≥ ${fmt(sub.cpuS, 2)} s CPU), ` +
      `flatlinkd group ${fmt(grp.lastMs - grp.spawnMs)} ms (${fmt(grp.cpuS, 2)} s CPU, cloud ${fmt(grp.cloudCpuS, 2)} s), ` +
      `sync ${fmt(syn.lastMs - syn.spawnMs)} ms (${fmt(syn.cpuS, 2)} s CPU, cloud ${fmt(syn.cloudCpuS, 2)} s)` +
      (red ? `; Node-RED first→last frame ${fmt(red.lastMs - red.firstMs)} ms (spawn→last ${fmt(red.lastMs - red.spawnMs)} ms)` : ''),
  );
  if (SMOKE) {
    // the smoke run fails when a part is broken, not when a figure is slow
    const broken = [];
    if (!complete(sub)) broken.push('mosquitto_sub did not drain the flood');
    if (!complete(grp)) broken.push('flatlinkd (group) did not deliver the flood');
    if (!complete(syn)) broken.push('flatlinkd (sync) did not deliver the flood');
    if (lat.received < lat.sent) broken.push(`latency: ${lat.received} of ${lat.sent} statuses reached the browser`);
    if (!cmd.outcomes.ok || cmd.outcomes.ok !== cmd.n) broken.push(`commands: ${JSON.stringify(cmd.outcomes)}`);
    for (const c of results.capacity) {
      if (c.cloud.ok !== c.links || c.cloud.held !== c.links) broken.push(`capacity: the cloud acked ${c.cloud.ok} and holds ${c.cloud.held} of ${c.links} links`);
      if (c.mosquitto.ok !== c.links) broken.push(`capacity: Mosquitto connected ${c.mosquitto.ok} of ${c.links} MQTT-over-WebSocket clients`);
    }
    if (st && (!st.allBack || st.lost !== 0)) broken.push(`storm: ${st.back} of ${st.links} links back, ${st.lost} statuses lost`);
    if (broken.length) {
      console.error('bench smoke: FAILED\n  ' + broken.join('\n  '));
      process.exitCode = 1;
    } else console.log('bench smoke: ok');
  }
  if (OUT) writeDoc(table, lines, head);
}

function writeDoc(table, lines, head) {
  const m = results.machine;
  const { sub, grp, syn, red } = results.throughput;
  const st = results.storm;
  const md = [];
  const cmdLine = [`FLATLINK_BUILD_DIR=${path.dirname(path.dirname(binaries.gateway))}`, 'bench/run.sh', ...argv.map((a) => (/[^\w./=-]/.test(a) ? `'${a}'` : a))].join(' ');
  md.push('# Benchmarks', '');
  md.push('<!-- written by bench/run.mjs; the analysis below the figures is kept in bench/analysis.md -->', '');
  md.push(`Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${cmdLine}\` (build: \`${path.relative(repoRoot, path.dirname(path.dirname(binaries.gateway))) || '.'}\`, RelWithDebInfo).`, '');
  md.push('## Machine', '');
  md.push(`- ${m.nproc} CPUs (\`nproc\`), ${m.model} (\`lscpu\`), ${m.ramGiB} GiB RAM, Linux ${m.kernel}`);
  md.push(`- Node.js ${m.node}, Mosquitto ${m.mosquitto}, Node-RED ${m.nodeRed}`);
  md.push(`- load average (1/5/15 min) before: ${m.loadBefore}, after: ${m.loadAfter}`);
  if (NOTE) md.push(`- also running: ${NOTE}`);
  md.push('');
  md.push('## Figures, each beside its peer from the same run', '');
  md.push('| ' + head.join(' | ') + ' |');
  md.push('|' + head.map(() => ' --- ').join('|') + '|');
  for (const l of lines) md.push('| ' + l.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ') + ' |');
  md.push('');
  md.push(
    `Flood: ${results.throughput.flood} QoS 1 messages over 10 topics, queued by the broker for each consumer's persistent session while it was down, ` +
      `then the consumer started. The last message is taken at the consumer's far end ` +
      `(mosquitto_sub: its stdout; flatlinkd: the cloud's \`flatlink_statuses_total\`, polled every 5 ms; Node-RED: the WebSocket sink). ` +
      `mosquitto_sub and flatlinkd are timed from their spawn (start-up, broker connect and, for flatlinkd, the cloud link's hello included: ` +
      `conservative for flatlinkd, which also buffers in its outbox until the link is up); Node-RED from its first frame at the sink, ` +
      `since its JavaScript start-up takes seconds. ` +
      `Drain times: mosquitto_sub ${fmt(sub.lastMs - sub.spawnMs)} ms (≥ ${fmt(sub.cpuS, 2)} s CPU); flatlinkd group ${fmt(grp.lastMs - grp.spawnMs)} ms ` +
      `(flatlinkd ${fmt(grp.cpuS, 2)} s CPU, the cloud ${fmt(grp.cloudCpuS, 2)} s); sync ${fmt(syn.lastMs - syn.spawnMs)} ms (flatlinkd ${fmt(syn.cpuS, 2)} s CPU, the cloud ${fmt(syn.cloudCpuS, 2)} s)` +
      (red ? `; Node-RED ${fmt(red.lastMs - red.firstMs)} ms first→last frame (${fmt(red.lastMs - red.spawnMs)} ms from spawn)` : '') +
      '.',
    '',
  );
  md.push(`Latency: ${results.latency.sent} statuses published (QoS 1, \`mosquitto_pub -l\`) at ${fmt(results.latency.achievedRate)}/s, ${results.latency.received} reached the browser; flatlinkd used ${fmt(results.latency.gwCpuPct, 1)} % of a CPU meanwhile. Commands: ${results.commands.n} one after another to sim lamps (latency_ms 0), outcomes ${JSON.stringify(results.commands.outcomes)}.`, '');
  for (const c of results.capacity) {
    md.push(
      `Capacity, ${c.links} links: flatlink-cloud (one flat and token per link, \`log_level\` warn) RSS ${fmt(mib(c.cloud.before.rss), 1)} → ${fmt(mib(c.cloud.after.rss), 1)} MiB ` +
        `(anonymous ${fmt(mib(c.cloud.before.anon), 1)} → ${fmt(mib(c.cloud.after.anon), 1)} MiB), ${c.cloud.ok} hellos acked, ${c.cloud.held} links held, in ${fmt(c.cloud.ms)} ms; ` +
        `Mosquitto ${results.machine.mosquitto} WebSocket listener RSS ${fmt(mib(c.mosquitto.before.rss), 1)} → ${fmt(mib(c.mosquitto.after.rss), 1)} MiB, ${c.mosquitto.ok} CONNACKs in ${fmt(c.mosquitto.ms)} ms.`,
      '',
    );
  }
  if (st) {
    md.push(
      `Reconnect storm: ${st.links} generator links (hello with one device, three statuses each, acked) and ${st.realGateways} real \`flatlinkd\` (sim devices, backoff ${st.backoffBaseMs} ms–${st.backoffMaxMs / 1000} s); ` +
        `one more status each, kill -9 of the cloud 5 ms later, two more statuses each while it is down, restart on the same port after ${st.restartDelayMs} ms (started ${fmt(st.restartMs.afterKill)} ms after the kill, accepting connections ${fmt(st.restartMs.toAccept)} ms later). ` +
        `Back (hello acked): p50 ${fmt(st.backP50Ms)} ms, p99 ${fmt(st.backP99Ms)} ms, last ${fmt(st.backMsFromRestart)} ms after the restart; every \`flatlinkd\` streaming again ${fmt(st.realBackMs)} ms after it; ` +
        `${fmt(st.attempts)} connection attempts. Statuses: ${fmt(st.generated)} made by the generators, ${fmt(st.unackedAtKill)} not acknowledged when the cloud came back (in flight at the kill or made while it was down), ` +
        `${fmt(st.resentSent)} sent to the new cloud, which accepted ${fmt(st.resentAccepted)} (the generators' and the real gateways'), ${fmt(st.duplicates)} duplicates, ` +
        `${fmt(st.unackedAtEnd)} still unacknowledged at the end; the cloud held ${fmt(st.heldAtEnd)} links, RSS ${fmt(mib(st.memAfter.rss), 1)} MiB.`,
      '',
    );
  }
  // The audio streams' figures (bench/audio.mjs, run on its own: bench/run.sh --audio).
  const audio = path.join(benchDir, 'audio.md');
  if (existsSync(audio)) md.push(readFileSync(audio, 'utf8').trim(), '');
  // Cloud instances over an MQTT broker (bench/backplane.mjs, run on its own: bench/run.sh --backplane).
  const backplane = path.join(benchDir, 'backplane.md');
  if (existsSync(backplane)) md.push(readFileSync(backplane, 'utf8').trim(), '');
  // Broker and instance faults across instances (bench/faults.mjs, run on its own: bench/run.sh --faults).
  const faultRun = path.join(benchDir, 'faults.md');
  if (existsSync(faultRun)) md.push(readFileSync(faultRun, 'utf8').trim(), '');
  // The dashboard's weight and speed (bench/dashboard.mjs, run on its own).
  const dashboard = path.join(benchDir, 'dashboard.md');
  if (existsSync(dashboard)) md.push(readFileSync(dashboard, 'utf8').trim(), '');
  // The history in the store (bench/history.mjs, run on its own: bench/run.sh --history).
  const history = path.join(benchDir, 'history.md');
  if (existsSync(history)) md.push(readFileSync(history, 'utf8').trim(), '');
  const analysis = path.join(benchDir, 'analysis.md');
  if (existsSync(analysis)) md.push(readFileSync(analysis, 'utf8').trim(), '');
  writeFileSync(OUT, md.join('\n'));
  log(`wrote ${path.relative(repoRoot, OUT)}`);
}

main().catch((err) => {
  console.error('bench failed:', err.stack || err);
  process.exit(1);
});
