// Cloud capacity and reconnect storm (issue 9, items 4 and 5), used by bench/run.mjs and
// runnable alone:
//
//   node bench/links.mjs [--links N] [--storm N] [--no-capacity] [--no-storm]
//
// Capacity: N idle gateway links (one flat and token each, hello with no device, acked) to
// one flatlink-cloud; its RSS before and after, per link; against Mosquitto's WebSocket
// listener holding N idle MQTT-over-WebSocket clients. Storm: N gateway links streaming a
// few statuses, kill -9 of the cloud, restart on the same port; time until every link's
// hello is acked again, the cloud's peak CPU, and whether every status got through.
//
// The links come from several load-generator processes (bench/loadgen.mjs), each at most
// PER_PROC links from its own source address 127.0.0.11, .12, … (a fresh one each time): the open-files cap here is
// 20,000 per process (the cloud, the broker and each generator alike), and one source
// address has ~28k ephemeral ports. So one cloud process is measured with up to ~19k links;
// 100k links would take several instances and the backplane that does not exist yet.
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { binaries, freePort, portAccepts, startProcess, stop, tempDir, waitFor } from '../tests/integration/harness.mjs';
import { gatewayConfig, metrics, rememberMetricsPort, startGateway } from '../tests/integration/flatlink.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const PER_PROC = 9000;
const MAX_LINKS = 19000; // one cloud process under the 20,000 open-files cap
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(`[links ${new Date().toISOString().slice(11, 19)}]`, ...a);

export function memOf(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((text.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1] || 0);
    let anon = 0;
    try {
      anon = Number((readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Anonymous:\s+(\d+)/m) || [])[1] || 0);
    } catch {
      // not readable
    }
    return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon };
  } catch {
    return { rss: 0, hwm: 0, anon: 0 };
  }
}
function cpuTicks(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}
const TICKS_PER_S = 100; // USER_HZ on Linux

// ---------------------------------------------------------------------------------------
// load-generator processes
const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});

// Every generator process gets a source address of its own, never reused in one run: links
// closed by the client side leave their ports in TIME_WAIT, and a bind() before connect()
// (which `localAddress` does) then crawls through the taken ports or fails.
let nextAddress = 11;
export class Generators {
  constructor(count) {
    this.procs = [];
    for (let i = 0; i < count; i++) {
      const child = fork(path.join(here, 'loadgen.mjs'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      children.add(child);
      child.on('exit', () => children.delete(child));
      const g = { child, index: i, address: `127.0.0.${nextAddress}`, waiters: [], progress: null };
      nextAddress = nextAddress >= 250 ? 11 : nextAddress + 1;
      child.on('message', (m) => {
        if (m.ev === 'progress') g.progress = m;
        else if (m.ev === 'error') log(`generator ${i}: ${m.message}`);
        const w = g.waiters.findIndex((x) => x.ev === m.ev);
        if (w >= 0) g.waiters.splice(w, 1)[0].resolve(m);
      });
      this.procs.push(g);
    }
  }
  static for(n) {
    return new Generators(Math.max(1, Math.ceil(n / PER_PROC)));
  }
  expect(g, ev, timeoutMs) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`generator ${g.index}: no ${ev} within ${timeoutMs} ms`)), timeoutMs);
      g.waiters.push({ ev, resolve: (m) => (clearTimeout(t), resolve(m)) });
    });
  }
  // Splits items over the processes; each gets its own source address.
  async open(items, common, timeoutMs) {
    const per = Math.ceil(items.length / this.procs.length);
    const answers = this.procs.map((g, i) => {
      const part = items.slice(i * per, (i + 1) * per);
      const p = this.expect(g, 'opened', timeoutMs);
      g.child.send({ cmd: 'open', localAddress: g.address, ...common(part, i) });
      return p;
    });
    const all = await Promise.all(answers);
    return { ok: all.reduce((s, a) => s + a.ok, 0), failed: all.reduce((s, a) => s + a.failed, 0) };
  }
  send(m) {
    for (const g of this.procs) g.child.send(m);
  }
  async report(timeoutMs = 10000) {
    const all = await Promise.all(this.procs.map((g) => {
      const p = this.expect(g, 'report', timeoutMs);
      g.child.send({ cmd: 'report' });
      return p;
    }));
    const sum = (k) => all.reduce((s, a) => s + a[k], 0);
    return {
      links: sum('links'),
      up: sum('up'),
      unacked: sum('unacked'),
      linksWithUnacked: sum('linksWithUnacked'),
      generated: sum('generated'),
      distinctAfterMark: sum('distinctAfterMark'),
      back: sum('back'),
      failures: sum('failures'),
      attempts: sum('attempts'),
      lastBackMs: Math.max(...all.map((a) => a.lastBackMs)),
      backTimes: all.flatMap((a) => a.backTimes).sort((a, b) => a - b),
    };
  }
  progress() {
    const ps = this.procs.map((g) => g.progress).filter(Boolean);
    return { up: ps.reduce((s, p) => s + p.up, 0), back: ps.reduce((s, p) => s + p.back, 0), attempts: ps.reduce((s, p) => s + p.attempts, 0) };
  }
  async exit() {
    await Promise.all(
      this.procs.map(
        (g) =>
          new Promise((resolve) => {
            if (g.child.exitCode !== null || g.child.signalCode) return resolve();
            const t = setTimeout(() => g.child.kill('SIGKILL'), 3000);
            g.child.once('exit', () => (clearTimeout(t), resolve()));
            try {
              g.child.send({ cmd: 'exit' });
            } catch {
              g.child.kill('SIGKILL');
            }
          }),
      ),
    );
  }
}

// ---------------------------------------------------------------------------------------
// a cloud with one flat per link (no users: only gateways connect)
export function makeFlats(n) {
  const flats = [];
  for (let i = 0; i < n; i++) {
    const token = randomBytes(16).toString('hex');
    flats.push({ flat: `f${i}`, token, sha: createHash('sha256').update(token).digest('hex') });
  }
  return flats;
}
export async function writeCloudConfig(flats, { port, extraFlats = [], eventLoop } = {}) {
  const dir = tempDir('flatlink-bench-links-');
  const config = {
    listen_address: '127.0.0.1',
    port: port ?? (await freePort()),
    // warn: a line per link at info would be 2–3 lines per connection through a pipe
    log_level: 'warn',
    ...(eventLoop ? { event_loop: eventLoop } : {}),
    limits: {},
    metrics: { listen_address: '127.0.0.1', port: await freePort() },
    flats: [...flats.map((f) => ({ id: f.flat, gateway_token_sha256: f.sha })), ...extraFlats],
  };
  rememberMetricsPort(config.port, config.metrics.port);
  const file = path.join(dir, 'cloud.json');
  writeFileSync(file, JSON.stringify(config));
  return { file, port: config.port, dir };
}
async function startCloudAt(cfg) {
  // "listening on" is logged at info: wait for the port instead
  const proc = await startProcess(binaries.cloud, ['--config', cfg.file, '--log-level', 'warn']);
  await waitFor(() => portAccepts(cfg.port), 10000, { intervalMs: 10, message: 'flatlink-cloud to accept connections' });
  return proc;
}
const gatewayLinks = async (port) => (await metrics(port))['flatlink_links{kind="gateway"}'];

// ---------------------------------------------------------------------------------------
// 4. cloud capacity
export async function cloudCapacity(n, { concurrency = 200, settleMs = 1000 } = {}) {
  if (n > MAX_LINKS) throw new Error(`at most ${MAX_LINKS} links per cloud process (open-files cap 20,000)`);
  const result = { links: n };
  // flatlink-cloud on lws' poll() loop (the default) and on libuv ("event_loop": "libuv")
  for (const [key, eventLoop] of [['cloud', 'poll'], ['cloudUv', 'libuv']]) {
    const flats = makeFlats(n);
    const cfg = await writeCloudConfig(flats, { eventLoop });
    const cloud = await startCloudAt(cfg);
    const gens = Generators.for(n);
    try {
      await sleep(settleMs / 3);
      const before = memOf(cloud.pid);
      const cpu0 = cpuTicks(cloud.pid);
      const t0 = now();
      const opened = await gens.open(flats, (part) => ({ kind: 'gateway', url: `ws://127.0.0.1:${cfg.port}/`, links: part, concurrency }), 120000);
      const ms = now() - t0;
      const cpuS = (cpuTicks(cloud.pid) - cpu0) / TICKS_PER_S;
      await sleep(settleMs);
      const after = memOf(cloud.pid);
      const held = await gatewayLinks(cfg.port);
      result[key] = { eventLoop, ok: opened.ok, failed: opened.failed, held, ms, cpuS, before, after, perLinkKiB: (after.rss - before.rss) / n, anonPerLinkKiB: (after.anon - before.anon) / n };
      log(`cloud (${eventLoop}): ${opened.ok}/${n} links acked in ${ms.toFixed(0)} ms, ${cpuS.toFixed(2)} s CPU (${held} held), RSS ${before.rss} → ${after.rss} KiB: ${result[key].perLinkKiB.toFixed(2)} KiB/link`);
    } finally {
      await gens.exit();
      await stop(cloud, 'SIGKILL'); // measured; a graceful stop of ~19k links takes over 10 s (poll, see analysis.md)
    }
  }
  // Mosquitto's WebSocket listener (2.0.11 starts no listener unless a plain one exists too)
  {
    const dir = tempDir('flatlink-bench-mqws-');
    const port = await freePort();
    const plain = await freePort();
    writeFileSync(
      path.join(dir, 'mosquitto.conf'),
      [`listener ${plain} 127.0.0.1`, `listener ${port} 127.0.0.1`, 'protocol websockets', 'allow_anonymous true', `log_dest file ${dir}/mosquitto.log`, `user ${os.userInfo().username}`, ''].join('\n'),
    );
    const broker = await startProcess('/usr/sbin/mosquitto', ['-c', path.join(dir, 'mosquitto.conf')]);
    const gens = Generators.for(n);
    try {
      await waitFor(() => portAccepts(port), 5000, { intervalMs: 20, message: 'mosquitto to accept connections' });
      await sleep(settleMs / 3);
      const before = memOf(broker.pid);
      const cpu0 = cpuTicks(broker.pid);
      const t0 = now();
      const opened = await gens.open(Array.from({ length: n }, (_, i) => i), (part, i) => ({ kind: 'mqtt', url: `ws://127.0.0.1:${port}/`, count: part.length, idPrefix: `bench-${i}`, concurrency }), 120000);
      const ms = now() - t0;
      const cpuS = (cpuTicks(broker.pid) - cpu0) / TICKS_PER_S;
      await sleep(settleMs);
      const after = memOf(broker.pid);
      result.mosquitto = { ok: opened.ok, failed: opened.failed, ms, cpuS, before, after, perLinkKiB: (after.rss - before.rss) / n, anonPerLinkKiB: (after.anon - before.anon) / n };
      log(`mosquitto ws: ${opened.ok}/${n} clients connected in ${ms.toFixed(0)} ms, ${cpuS.toFixed(2)} s CPU, RSS ${before.rss} → ${after.rss} KiB: ${result.mosquitto.perLinkKiB.toFixed(2)} KiB/client`);
    } finally {
      await gens.exit();
      await stop(broker, 'SIGKILL');
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// 5. reconnect storm
export async function reconnectStorm(n, { realGateways = 3, restartDelayMs = 1000, backoffBaseMs = 500, backoffMaxMs = 30000, timeoutMs = 90000 } = {}) {
  if (n > MAX_LINKS - realGateways) throw new Error(`at most ${MAX_LINKS} links per cloud process`);
  const flats = makeFlats(n);
  // a few real flatlinkd processes among them, with sim devices, flatlinkd's default backoff
  const realFlats = makeFlats(realGateways).map((f, i) => ({ ...f, flat: `real${i}` }));
  const cfg = await writeCloudConfig(flats, { extraFlats: realFlats.map((f) => ({ id: f.flat, gateway_token_sha256: f.sha })) });
  let cloud = await startCloudAt(cfg);
  const gens = Generators.for(n);
  const reals = [];
  const result = { links: n, realGateways, restartDelayMs, backoffBaseMs, backoffMaxMs };
  try {
    for (const f of realFlats) {
      const gcfg = gatewayConfig({
        id: `gw-${f.flat}`,
        flat: f.flat,
        token: f.token,
        url: `ws://127.0.0.1:${cfg.port}/`,
        devices: [{ id: 'thermo-1', kind: 'thermometer', interval_ms: 200 }, { id: 'lamp-1', kind: 'lamp' }],
        cloud: { backoff_base_ms: backoffBaseMs, backoff_max_ms: backoffMaxMs, ping_interval_s: 20, pong_timeout_s: 10 },
      });
      reals.push(await startGateway(gcfg));
    }
    const t0 = now();
    const opened = await gens.open(flats, (part) => ({ kind: 'gateway', url: `ws://127.0.0.1:${cfg.port}/`, links: part, concurrency: 200, withDevice: true, reconnect: true, backoffBaseMs, backoffMaxMs }), 120000);
    if (opened.ok !== n) throw new Error(`storm: only ${opened.ok} of ${n} links came up`);
    log(`storm: ${n} links up in ${(now() - t0).toFixed(0)} ms (+${reals.length} flatlinkd)`);
    // stream a little: three statuses per link, all acked
    for (let i = 0; i < 3; i++) {
      gens.send({ cmd: 'status', n: 1 });
      await sleep(100);
    }
    await waitFor(async () => (await gens.report()).unacked === 0, 20000, { intervalMs: 200, message: 'the first statuses acked' });
    const statusesBefore = (await metrics(cfg.port)).flatlink_statuses_total;
    result.memBefore = memOf(cloud.pid);

    // one more status each, and kill -9 while those are on their way
    const markAt = now();
    gens.send({ cmd: 'mark', at: markAt });
    gens.send({ cmd: 'status', n: 1 });
    await sleep(5);
    const killAt = now();
    cloud.kill('SIGKILL');
    await cloud.exited;
    await sleep(restartDelayMs / 2);
    gens.send({ cmd: 'status', n: 2 }); // produced while the cloud is down: queued
    await sleep(restartDelayMs / 2);
    const atKill = await gens.report();
    const realsBack = reals.map((g) => g.lines.filter((l) => /streaming from there/.test(l)).length);

    const restartAt = now();
    cloud = await startCloudAt(cfg);
    const upAt = now();
    result.restartMs = { afterKill: restartAt - killAt, toAccept: upAt - restartAt };
    // the cloud's CPU in 200 ms windows until everyone is back
    const pid = cloud.pid;
    let lastTicks = cpuTicks(pid);
    let lastT = now();
    let peakPct = 0;
    const cpuStart = lastTicks;
    const sampler = setInterval(() => {
      const t = now();
      const ticks = cpuTicks(pid);
      peakPct = Math.max(peakPct, ((ticks - lastTicks) / TICKS_PER_S / ((t - lastT) / 1000)) * 100);
      lastTicks = ticks;
      lastT = t;
    }, 200);
    let allBackAt = 0;
    try {
      await waitFor(
        async () => {
          const p = gens.progress();
          const realOk = reals.every((g, i) => g.lines.filter((l) => /streaming from there/.test(l)).length > realsBack[i]);
          return p.back >= n && realOk;
        },
        timeoutMs,
        { intervalMs: 50, message: 'every link back' },
      );
      allBackAt = now();
    } catch (err) {
      log(`storm: ${err.message}; generator links back: ${gens.progress().back} of ${n}`);
      reals.forEach((g, i) => log(`  flatlinkd ${i}, last lines:\n    ${g.lines.slice(-6).join('\n    ')}`));
    } finally {
      clearInterval(sampler);
    }
    const cpuS = (cpuTicks(pid) - cpuStart) / TICKS_PER_S;
    // every status acknowledged by the new cloud?
    await waitFor(async () => (await gens.report()).unacked === 0, 20000, { intervalMs: 200, message: 'every status acked' }).catch(() => {});
    const end = await gens.report();
    const m = await metrics(cfg.port);
    const times = end.backTimes.map((t) => t - upAt);
    const pct = (p) => times[Math.min(times.length - 1, Math.max(0, Math.ceil((p / 100) * times.length) - 1))];
    Object.assign(result, {
      back: end.back,
      allBack: allBackAt > 0,
      backMsFromRestart: allBackAt ? end.lastBackMs - upAt : NaN,
      backMsFromKill: allBackAt ? end.lastBackMs - killAt : NaN,
      backP50Ms: pct(50),
      backP99Ms: pct(99),
      realBackMs: allBackAt ? allBackAt - upAt : NaN, // includes the real flatlinkd ones
      peakCpuPct: peakPct,
      cpuS,
      attempts: end.attempts - atKill.attempts,
      generated: end.generated,
      statusesBeforeKill: statusesBefore,
      unackedAtKill: atKill.unacked,
      resentAccepted: m.flatlink_statuses_total,
      resentSent: end.distinctAfterMark,
      duplicates: m.flatlink_duplicate_statuses_total,
      unackedAtEnd: end.unacked,
      linksWithUnackedAtEnd: end.linksWithUnacked,
      heldAtEnd: m['flatlink_links{kind="gateway"}'],
      memAfter: memOf(pid),
    });
    // lost: statuses a client still holds unacknowledged, or sent to the new cloud and not accepted
    result.lost = end.unacked + Math.max(0, end.distinctAfterMark - m.flatlink_statuses_total);
    log(
      `storm: restarted ${result.restartMs.afterKill.toFixed(0)} ms after the kill, accepting ${result.restartMs.toAccept.toFixed(0)} ms later; ` +
        `${end.back}/${n} back ${result.backMsFromRestart.toFixed(0)} ms after that (${result.backMsFromKill.toFixed(0)} ms after the kill), ` +
        `p50 ${result.backP50Ms?.toFixed(0)} ms; cloud peak CPU ${peakPct.toFixed(0)} %, ${cpuS.toFixed(2)} s; ` +
        `${atKill.unacked} statuses unacked at the kill, ${end.distinctAfterMark} resent, ${m.flatlink_statuses_total} accepted, ${end.unacked} unacked at the end; ` +
        `${reals.length} flatlinkd back`,
    );
  } finally {
    await gens.exit();
    for (const g of reals) await stop(g);
    await stop(cloud, 'SIGKILL');
  }
  return result;
}

// ---------------------------------------------------------------------------------------
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const opt = (name, d) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : d;
  };
  const hard = setTimeout(() => {
    console.error('links: hard stop');
    process.exit(2);
  }, 600000);
  hard.unref();
  (async () => {
    const out = {};
    if (!argv.includes('--no-capacity')) out.capacity = await cloudCapacity(Number(opt('--links', 1000)));
    if (!argv.includes('--no-storm')) out.storm = await reconnectStorm(Number(opt('--storm', 2000)));
    console.log(JSON.stringify(out, (k, v) => (k === 'backTimes' ? undefined : v), 2));
  })().catch((err) => {
    console.error('links failed:', err.stack || err);
    process.exit(1);
  });
}
