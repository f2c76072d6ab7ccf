// The cloud's front door under hostile load (issue #19), each figure beside its peer from
// the same run (the same measurement without the attack):
//   1. login flood: one source sends wrong passwords for flat A as fast as it can (≥ 300/s);
//      meanwhile flat B's user logs in from another address, again and again: B's login
//      time p50/p99 under the flood vs without it. Run twice: with the default bans, and
//      with bans and delays off (the fair pool alone holds B's logins).
//   2. non-reading browsers: 40 browsers of flat A ask for history (~15 KB a reply) and
//      never read; cloud RSS above idle, and flat B's history round trip p99 vs without them.
//   3. a gateway's backlog: 100,000 statuses sent as fast as the socket takes them in
//      batches of 50 (2,000 frames against 200 frames/s): link closes (must be 0), drain time.
// Usage: node bench/frontdoor.mjs [--seconds 10] [--smoke] [--only login|memory|backlog]
// Prints one line per figure; docs/benchmarks.md, "The front door (issue 19)", has a run.
import { readFileSync } from 'node:fs';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

import { BROWSER_PROTOCOL, Peer, browser, cloudConfig, metrics, rawGateway, startCloud, stop } from '../tests/integration/flatlink.mjs';

const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
const seconds = Number(args[args.indexOf('--seconds') + 1]) || (smoke ? 2 : 10);
const flatA = { id: 'flat-a', token: 'token-of-flat-a-0123456789', user: 'alice', password: 'pw-alice' };
const flatB = { id: 'flat-b', token: 'token-of-flat-b-0123456789', user: 'bob', password: 'pw-bob' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

// One login of flat B from 127.0.0.2: ms until the snapshot (or the error it got).
async function timedLogin(port) {
  const t0 = performance.now();
  const ws = new Peer(`ws://127.0.0.1:${port}/`, BROWSER_PROTOCOL, { localAddress: '127.0.0.2' }).ws;
  return new Promise((resolve) => {
    ws.on('open', () => ws.send(JSON.stringify({ type: 'login', flat: flatB.id, user: flatB.user, password: flatB.password })));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'snapshot' || m.type === 'error') {
        resolve({ ms: performance.now() - t0, ok: m.type === 'snapshot', code: m.code });
        ws.close();
      }
    });
    ws.on('error', () => resolve({ ms: performance.now() - t0, ok: false, code: 'socket' }));
  });
}

async function loginsOfB(port, ms) {
  const times = [];
  let failed = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const r = await timedLogin(port);
    times.push(r.ms);
    if (!r.ok) failed++;
    await sleep(50);
  }
  return { times, failed };
}

// Wrong guesses for flat A from 127.0.0.3, each on its own connection, `inFlight` at a time.
// Runs in a worker thread (floodInWorker) so that the attacker's sockets do not hold up the
// event loop that times flat B's logins: the figure is the cloud's delay, not the bench's.
function flood(port, inFlight) {
  let stopped = false;
  let sent = 0;
  const one = () =>
    new Promise((resolve) => {
      const ws = new Peer(`ws://127.0.0.1:${port}/`, BROWSER_PROTOCOL, { localAddress: '127.0.0.3' }).ws;
      ws.on('open', () => {
        sent++;
        ws.send(JSON.stringify({ type: 'login', flat: flatA.id, user: flatA.user, password: `guess-${sent}` }));
      });
      ws.on('close', resolve);
      ws.on('error', resolve);
      ws.on('unexpected-response', (req, res) => {
        sent++;
        res.resume();
        resolve();
      });
    });
  const workers = Array.from({ length: inFlight }, async () => {
    while (!stopped) await one();
  });
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      return sent;
    },
  };
}

function floodInWorker(port, inFlight) {
  const worker = new Worker(new URL(import.meta.url), { workerData: { floodPort: port, inFlight } });
  return {
    stop: () =>
      new Promise((resolve) => {
        worker.once('message', (sent) => {
          worker.terminate();
          resolve(sent);
        });
        worker.postMessage('stop');
      }),
  };
}

async function loginFlood(label, extra) {
  const cfg = await cloudConfig([flatA, flatB], { ...extra, limits: { ...(extra.limits ?? {}) } });
  const cloud = await startCloud(cfg);
  try {
    const quiet = await loginsOfB(cfg.port, seconds * 500);
    const attack = floodInWorker(cfg.port, 60);
    const t0 = Date.now();
    const loud = await loginsOfB(cfg.port, seconds * 1000);
    const guesses = await attack.stop();
    const rate = guesses / ((Date.now() - t0) / 1000);
    console.log(
      `login flood (${label}): ${Math.round(rate)} wrong logins/s from one source; flat B login p50 ${pct(loud.times, 50).toFixed(0)} ms, ` +
        `p99 ${pct(loud.times, 99).toFixed(0)} ms, ${loud.failed} of ${loud.times.length} failed ` +
        `(peer, no flood: p50 ${pct(quiet.times, 50).toFixed(0)} ms, p99 ${pct(quiet.times, 99).toFixed(0)} ms, ${quiet.failed} failed)`,
    );
  } finally {
    await stop(cloud);
  }
}

async function historyRoundTrips(b, ms) {
  const times = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const t0 = performance.now();
    const n = b.of('history').length;
    b.send({ type: 'history', device: 'b-lamp', capability: 'on' });
    while (b.of('history').length === n) await sleep(0);
    times.push(performance.now() - t0);
    await sleep(20);
  }
  return times;
}

async function nonReaders() {
  const cfg = await cloudConfig([flatA, flatB], { limits: { max_browsers_per_ip: 100, max_connections_per_user: 100 } });
  const cloud = await startCloud(cfg);
  try {
    const gw = await rawGateway(cfg.port, flatA.token);
    const meter = { id: 'a-meter', name: 'meter', kind: 'sensor', capabilities: [{ name: 'power', type: 'number', writable: false }], state: { power: 0 }, online: true };
    gw.send({ type: 'hello', gateway: 'gw-a', version: '0', devices: [meter], next_seq: 1 });
    await gw.next('ack');
    for (let from = 1; from <= 720; from += 240) {
      gw.send({ type: 'status', items: Array.from({ length: 240 }, (_, i) => ({ seq: from + i, device: 'a-meter', state: { power: 1000 + (from + i) / 7 }, ts: 1_700_000_000_000 + (from + i) * 1000 })) });
    }
    await gw.next('ack', (m) => m.seq === 720);
    const gwB = await rawGateway(cfg.port, flatB.token);
    gwB.send({ type: 'hello', gateway: 'gw-b', version: '0', devices: [{ id: 'b-lamp', name: 'l', kind: 'lamp', capabilities: [{ name: 'on', type: 'bool', writable: true }], state: { on: false }, online: true }], next_seq: 1 });
    await gwB.next('ack');
    const b = await browser(cfg.port, { flat: flatB.id, user: flatB.user, password: flatB.password });
    const quiet = await historyRoundTrips(b, seconds * 500);
    const idle = rssKiB(cloud.pid);
    const readers = [];
    for (let i = 0; i < 40; i++) {
      const r = await browser(cfg.port, { flat: flatA.id, user: flatA.user, password: flatA.password });
      r.ws._socket.pause(); // reads nothing from now on
      readers.push(r);
    }
    const asking = setInterval(() => {
      for (const r of readers) for (let i = 0; i < 20; i++) r.send({ type: 'history', device: 'a-meter', capability: 'power' });
    }, 100);
    let peak = 0;
    const sampling = setInterval(() => (peak = Math.max(peak, rssKiB(cloud.pid))), 100);
    const loud = await historyRoundTrips(b, seconds * 1000);
    clearInterval(asking);
    clearInterval(sampling);
    const m = await metrics(cfg.port);
    console.log(
      `40 non-reading browsers: cloud RSS idle ${(idle / 1024).toFixed(1)} MiB, peak ${(peak / 1024).toFixed(1)} MiB ` +
        `(+${((peak - idle) / 1024).toFixed(1)} MiB); flat B history round trip p50 ${pct(loud, 50).toFixed(1)} ms, p99 ${pct(loud, 99).toFixed(1)} ms ` +
        `(peer, no non-readers: p50 ${pct(quiet, 50).toFixed(1)} ms, p99 ${pct(quiet, 99).toFixed(1)} ms); ` +
        `closed too slow ${m.flatlink_slow_closed_total}, closed for rate ${m.flatlink_rate_limited_total}`,
    );
    for (const r of readers) r.ws.terminate();
  } finally {
    await stop(cloud);
  }
}

async function backlog() {
  const total = smoke ? 10_000 : 100_000;
  const cfg = await cloudConfig([flatA]);
  const cloud = await startCloud(cfg);
  try {
    const gw = await rawGateway(cfg.port, flatA.token);
    gw.send({ type: 'hello', gateway: 'gw-a', version: '0', devices: [{ id: 'a-lamp', name: 'l', kind: 'lamp', capabilities: [{ name: 'on', type: 'bool', writable: true }], state: { on: false }, online: true }], next_seq: 1 });
    await gw.next('ack');
    const t0 = performance.now();
    for (let from = 1; from <= total; from += 50) {
      gw.send({ type: 'status', items: Array.from({ length: 50 }, (_, i) => ({ seq: from + i, device: 'a-lamp', state: { on: (from + i) % 2 === 0 }, ts: 1_700_000_000_000 + from + i })) });
    }
    await gw.next('ack', (m) => m.seq === total, 120_000);
    const ms = performance.now() - t0;
    const m = await metrics(cfg.port);
    console.log(
      `backlog of ${total} statuses in ${total / 50} frames: drained in ${(ms / 1000).toFixed(1)} s (${Math.round(total / (ms / 1000))}/s; ` +
        `the 200 frames/s rate alone allows ${(((total / 50) - 400) / 200).toFixed(1)} s), link closes ${gw.closed ? 1 : 0}, paced ${m.flatlink_gateway_paced_total} times`,
    );
    gw.close();
  } finally {
    await stop(cloud);
  }
}

if (!isMainThread) {
  const attack = flood(workerData.floodPort, workerData.inFlight);
  parentPort.once('message', async () => parentPort.postMessage(await attack.stop()));
} else {
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : '';
  if (!only || only === 'login') {
    await loginFlood('default bans and delays', {});
    await loginFlood('bans and delays off: the fair pool alone', { extra: { login: { ban_after: 1_000_000, delay_base_ms: 0 } }, limits: { max_unauthenticated_per_ip: 10_000 } });
  }
  if (!only || only === 'memory') await nonReaders();
  if (!only || only === 'backlog') await backlog();
}
