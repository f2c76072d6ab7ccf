// Many gateway links over several cloud instances joined by the backplane (issue 23,
// "100k links, shown"), runnable alone and from bench/run.sh --instances:
//
//   node bench/instances.mjs [--links N] [--clouds K] [--broker nats|mosquitto]
//                            [--no-storm] [--timeout-s S] [--smoke]
//
// K flatlink-cloud processes (each under the 20,000 open-files cap of this machine), one
// flat and token per link, every instance configured with every flat and joined to the
// others over the backplane: a 3-node nats-server cluster (JetStream, MQTT listener;
// the default) or one Mosquitto. Link i goes to instance i mod K, from load-generator
// processes (bench/loadgen.mjs, each with a source address of its own).
//
// 1. Held: all N links opened (hello acked); per instance its links, RSS before and after
//    (per link), the CPU it spent; the broker's RSS.
// 2. Storm: each link sends statuses until all are acked, one more is sent, every instance
//    is killed with SIGKILL, two more are made while they are down, every instance restarts
//    on its port; the time until every link's hello is acked again, and whether every status
//    got through (a link keeps what was not acknowledged and sends it again, as flatlinkd).
// Bounded: every wait has a timeout; the run ends by itself and stops what it started.
// --smoke (the test suite's bench_instances_smoke): 600 links over 3 instances on one
// Mosquitto (the nats cluster's own faults are tests/integration/backplane*.test.mjs'); exits 1 when a link is not held or not back, or a status is lost or doubled,
// never because a figure is slow.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { binaries, freePort, portAccepts, startProcess, stop, tempDir, waitFor } from '../tests/integration/harness.mjs';
import { mosquittoBroker, natsBroker } from '../tests/integration/faults.mjs';
import { metrics, rememberMetricsPort } from '../tests/integration/flatlink.mjs';
import { Generators, makeFlats, memOf } from './links.mjs';

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(`[instances ${new Date().toISOString().slice(11, 19)}]`, ...a);
const TICKS_PER_S = 100;
const MAX_PER_INSTANCE = 19000; // the open-files cap is 20,000 per process here
function cpuTicks(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

// brokers: tests/integration/faults.mjs starts them (a 3-node nats-server cluster or one Mosquitto)
const startBroker = (kind) => (kind === 'nats' ? natsBroker() : mosquittoBroker());

// ---------------------------------------------------------------------------------------
// the instances: every flat in every config, each its own instance_id, port and metrics port
async function writeInstanceConfigs(flats, k, brokerPorts, dir) {
  const keyFile = path.join(dir, 'backplane.key');
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const flatsJson = flats.map((f) => ({ id: f.flat, gateway_token_sha256: f.sha }));
  const out = [];
  for (let i = 0; i < k; ++i) {
    const config = {
      listen_address: '127.0.0.1',
      port: await freePort(),
      log_level: 'warn',
      limits: {},
      metrics: { listen_address: '127.0.0.1', port: await freePort() },
      backplane: {
        instance_id: `cloud-${i}`,
        // each instance prefers another node of the cluster
        brokers: brokerPorts.map((_, j) => `mqtt://127.0.0.1:${brokerPorts[(i + j) % brokerPorts.length]}`),
        shared_key_file: keyFile,
      },
      flats: flatsJson,
    };
    rememberMetricsPort(config.port, config.metrics.port);
    const file = path.join(dir, `cloud-${i}.json`);
    writeFileSync(file, JSON.stringify(config));
    out.push({ file, port: config.port, id: config.backplane.instance_id });
  }
  return out;
}
async function startInstance(cfg) {
  const proc = await startProcess(binaries.cloud, ['--config', cfg.file, '--log-level', 'warn'], { timeoutMs: 60_000 });
  const exited = proc.exited.then(() => {
    throw new Error(`${cfg.id} exited at start: ${proc.lines.slice(-3).join(' | ')}`);
  });
  await Promise.race([waitFor(() => portAccepts(cfg.port), 60_000, { intervalMs: 20, message: `${cfg.id} to accept connections` }), exited]);
  exited.catch(() => {}); // a later exit (the storm's kill) is expected
  return proc;
}
const sum = (xs) => xs.reduce((s, x) => s + x, 0);
async function metricSum(cfgs, name) {
  return sum(await Promise.all(cfgs.map(async (c) => (await metrics(c.port))[name] ?? 0)));
}

// ---------------------------------------------------------------------------------------
export async function instancesRun({ links = 100_000, instances = 6, broker = 'nats', storm = true, timeoutS = 120 } = {}) {
  if (links / instances > MAX_PER_INSTANCE) throw new Error(`at most ${MAX_PER_INSTANCE} links per instance: use more instances`);
  const dir = tempDir('flatlink-bench-instances-');
  const result = { links, instances, broker };
  const flats = makeFlats(links);
  const br = await startBroker(broker);
  const cfgs = await writeInstanceConfigs(flats, instances, br.ports(), dir);
  const brokerProcs = () => br.nodes.map((n) => n.proc);
  let procs = [];
  const gens = [];
  try {
    const t0s = now();
    procs = await Promise.all(cfgs.map(startInstance));
    await waitFor(async () => (await metricSum(cfgs, 'flatlink_backplane_connected')) === instances, 60_000, { intervalMs: 100, message: 'every instance on the backplane' });
    log(`${instances} instances up and joined in ${(now() - t0s).toFixed(0)} ms (${broker})`);
    await sleep(1000);

    // 1. held
    const parts = cfgs.map((_, i) => flats.filter((_, j) => j % instances === i));
    const before = procs.map((p) => memOf(p.pid));
    const cpu0 = procs.map((p) => cpuTicks(p.pid));
    const brokerBefore = brokerProcs().map((p) => memOf(p.pid));
    const t0 = now();
    // Past the timeout the figures are still taken: how many links the instances hold by then.
    let timedOut = false;
    const opened = await Promise.all(
      parts.map((part, i) => {
        const g = Generators.for(part.length);
        gens.push(g);
        return g
          .open(part, (p) => ({ kind: 'gateway', url: `ws://127.0.0.1:${cfgs[i].port}/`, links: p, concurrency: 100, withDevice: true, reconnect: true, backoffBaseMs: 500, backoffMaxMs: 30000 }), timeoutS * 1000)
          .catch(() => {
            timedOut = true;
            return { ok: 0, failed: 0 };
          });
      }),
    );
    const openMs = now() - t0;
    await sleep(2000);
    const after = procs.map((p) => memOf(p.pid));
    const held = await Promise.all(cfgs.map(async (c) => (await metrics(c.port))['flatlink_links{kind="gateway"}']));
    const ok = timedOut ? sum(held) : sum(opened.map((o) => o.ok));
    result.held = {
      timedOut,
      ok,
      failed: sum(opened.map((o) => o.failed)),
      openMs,
      perInstance: cfgs.map((c, i) => ({
        id: c.id,
        links: held[i],
        rssBeforeKiB: before[i].rss,
        rssAfterKiB: after[i].rss,
        perLinkKiB: (after[i].rss - before[i].rss) / Math.max(1, held[i]),
        cpuS: (cpuTicks(procs[i].pid) - cpu0[i]) / TICKS_PER_S,
      })),
      brokerRssMiB: brokerProcs().map((p, i) => [brokerBefore[i].rss / 1024, memOf(p.pid).rss / 1024]),
    };
    log(`held: ${ok}/${links} links ${timedOut ? `held when the ${timeoutS} s to open them ran out` : 'acked'} after ${openMs.toFixed(0)} ms; held per instance ${held.join(', ')}`);
    for (const p of result.held.perInstance) log(`  ${p.id}: ${p.links} links, RSS ${p.rssBeforeKiB} → ${p.rssAfterKiB} KiB, ${p.perLinkKiB.toFixed(2)} KiB/link, ${p.cpuS.toFixed(1)} s CPU`);
    log(`  broker RSS (MiB): ${result.held.brokerRssMiB.map(([a, b]) => `${a.toFixed(0)} → ${b.toFixed(0)}`).join(', ')}`);
    if (!storm || timedOut) return result;

    // 2. storm
    const all = {
      send: (m) => gens.forEach((g) => g.send(m)),
      report: async () => {
        const rs = await Promise.all(gens.map((g) => g.report(30_000)));
        return {
          unacked: sum(rs.map((r) => r.unacked)),
          distinctAfterMark: sum(rs.map((r) => r.distinctAfterMark)),
          back: sum(rs.map((r) => r.back)),
          lastBackMs: Math.max(...rs.map((r) => r.lastBackMs)),
          backTimes: rs.flatMap((r) => r.backTimes).sort((a, b) => a - b),
          generated: sum(rs.map((r) => r.generated)),
        };
      },
      back: () => sum(gens.map((g) => g.progress().back)),
    };
    for (let i = 0; i < 2; ++i) {
      all.send({ cmd: 'status', n: 1 });
      await sleep(500);
    }
    const tFirst = now();
    await waitFor(async () => (await all.report()).unacked === 0, timeoutS * 1000, { intervalMs: 500, message: 'the first statuses acked' });
    log(`storm: two statuses per link made and all acked in ${(now() - tFirst).toFixed(0)} ms`);
    const markAt = now();
    all.send({ cmd: 'mark', at: markAt });
    all.send({ cmd: 'status', n: 1 });
    await sleep(5);
    const killAt = now();
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await sleep(500);
    all.send({ cmd: 'status', n: 2 }); // made while every instance is down
    await sleep(500);
    const atKill = await all.report();
    const restartAt = now();
    procs = await Promise.all(cfgs.map(startInstance));
    const upAt = now();
    const cpuStart = procs.map((p) => cpuTicks(p.pid));
    let allBackAt = 0;
    try {
      await waitFor(() => all.back() >= links, timeoutS * 1000, { intervalMs: 100, message: 'every link back' });
      allBackAt = now();
    } catch (err) {
      log(`storm: ${err.message}; back ${all.back()} of ${links}`);
    }
    const cpuS = procs.map((p, i) => (cpuTicks(p.pid) - cpuStart[i]) / TICKS_PER_S);
    await waitFor(async () => (await all.report()).unacked === 0, 60_000, { intervalMs: 500, message: 'every status acked' }).catch(() => {});
    const ackedAt = now();
    const end = await all.report();
    const accepted = await metricSum(cfgs, 'flatlink_statuses_total');
    const duplicates = await metricSum(cfgs, 'flatlink_duplicate_statuses_total');
    const times = end.backTimes.map((t) => t - upAt);
    const pct = (p) => times[Math.min(times.length - 1, Math.max(0, Math.ceil((p / 100) * times.length) - 1))];
    result.storm = {
      restartMs: upAt - restartAt,
      back: end.back,
      allBack: allBackAt > 0,
      backMsFromRestart: allBackAt ? end.lastBackMs - upAt : NaN,
      backMsFromKill: allBackAt ? end.lastBackMs - killAt : NaN,
      backP50Ms: pct(50),
      backP99Ms: pct(99),
      allAckedMsFromRestart: ackedAt - upAt,
      cpuS,
      unackedAtKill: atKill.unacked,
      resentSent: end.distinctAfterMark,
      accepted,
      duplicates,
      unackedAtEnd: end.unacked,
      lost: end.unacked + Math.max(0, end.distinctAfterMark - accepted),
    };
    const s = result.storm;
    log(
      `storm: ${s.back}/${links} back ${s.backMsFromRestart.toFixed(0)} ms after the restart (${s.backMsFromKill.toFixed(0)} ms after the kill; ` +
        `p50 ${s.backP50Ms?.toFixed(0)}, p99 ${s.backP99Ms?.toFixed(0)} ms), every status acked ${s.allAckedMsFromRestart.toFixed(0)} ms after the restart; instances ready ${s.restartMs.toFixed(0)} ms after the restart; ` +
        `CPU per instance ${cpuS.map((c) => c.toFixed(1)).join(', ')} s; ${s.unackedAtKill} statuses unacked at the kill, ${s.resentSent} sent after it, ` +
        `${s.accepted} accepted, ${s.duplicates} duplicates, ${s.unackedAtEnd} unacked at the end: lost ${s.lost}`,
    );
    return result;
  } finally {
    await Promise.all(gens.map((g) => g.exit()));
    for (const p of procs) await stop(p, 'SIGKILL').catch(() => {});
    await br.stop();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const opt = (name, d) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : d;
  };
  if (argv.includes('--help')) {
    console.log('usage: node bench/instances.mjs [--links N] [--clouds K] [--broker nats|mosquitto] [--no-storm] [--timeout-s S] [--smoke]');
    process.exit(0);
  }
  const smoke = argv.includes('--smoke');
  const r = await instancesRun({
    links: Number(opt('--links', smoke ? 600 : 100_000)),
    instances: Number(opt('--clouds', smoke ? 3 : 6)),
    broker: opt('--broker', smoke ? 'mosquitto' : 'nats'),
    storm: !argv.includes('--no-storm'),
    timeoutS: Number(opt('--timeout-s', smoke ? 60 : 120)),
  });
  console.log(JSON.stringify(r, null, 2));
  const broken = [];
  if (r.held.ok !== r.links) broken.push(`${r.held.ok} of ${r.links} links acked`);
  if (r.storm && !r.storm.allBack) broken.push(`${r.storm.back} of ${r.links} links back after the storm`);
  if (r.storm?.lost) broken.push(`${r.storm.lost} statuses lost`);
  if (r.storm?.duplicates) broken.push(`${r.storm.duplicates} statuses twice`);
  if (broken.length) {
    console.error(`bench/instances.mjs: broken: ${broken.join('; ')}`);
    process.exit(1);
  }
  process.exit(0);
}
