// Soak: flatlinkd and flatlink-cloud under steady status load, with the gateway's link cut
// every few seconds, for a set time; RSS, open descriptors and the outbox at the start and
// at the end, and growth beyond the bounds fails (exit 1). Issue 13; figures of the long run
// in docs/reliability.md.
//
//   node bench/soak.mjs [--seconds S] [--drop-every S] [--sim-devices N] [--interval-ms N]
//                       [--mqtt-rate N] [--rss-bound-kib N] [--fd-bound N]
//                       [--outbox-bound N] [--no-rss-bound] [--json FILE]
//   bench/run.sh soak [same options]
//
// What runs (all on loopback, everything stops by itself):
// - Mosquitto, and `mosquitto_pub -l` publishing --mqtt-rate statuses/s (QoS 1) over 5 MQTT
//   devices that flatlinkd's mqtt adapter maps (a generic rule);
// - flatlinkd with --sim-devices simulated thermometers reporting every --interval-ms, the
//   durable outbox, NOTIFY_SOCKET pointed at a socket of ours (its STATUS line says how many
//   statuses wait in the outbox);
// - flatlink-cloud, with one browser logged in that counts the updates it gets;
// - between the two, a TCP proxy of ours. Every --drop-every seconds it drops the link,
//   alternating two ways: "cut" closes both sides at once; "stall" silently stops
//   forwarding (a dead route), so that flatlinkd's ping/pong timeout must find it.
//
// Samples: "start" is taken after a warm-up (a quarter of the run, at most 60 s, so that
// allocator pools, SQLite's page cache and lws' buffers have reached their working size),
// "end" after the last drop; both with the link up for a while. Each sample: VmRSS and the
// number of open descriptors (/proc/<pid>/fd) of both daemons, the outbox's waiting
// statuses (flatlinkd's STATUS line) and its files' size (outbox.db + -wal). After the end
// sample the load stops and the outbox must drain to 0.
//
// Bounds (growth from start to end): RSS ≤ --rss-bound-kib (default 4096 KiB) per daemon,
// descriptors ≤ --fd-bound (default 2), waiting statuses at the end ≤ --outbox-bound
// (default: 3 s of load), outbox files ≤ 8 MiB more. --no-rss-bound drops the RSS bound (a
// sanitizer build's quarantine holds freed memory on purpose). Binaries from
// $FLATLINK_BUILD_DIR (default <repo>/build).
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { binaries, freePort, notifySocket, startProcess, stop, tempDir, waitFor } from '../tests/integration/harness.mjs';
import { browser, cloudConfig, gatewayConfig, metrics, startCloud } from '../tests/integration/flatlink.mjs';
import { startBroker } from './broker.mjs';

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const SECONDS = Number(opt('--seconds', 60));
const DROP_EVERY = Number(opt('--drop-every', 5));
const SIM_DEVICES = Number(opt('--sim-devices', 10));
const INTERVAL_MS = Number(opt('--interval-ms', 100));
const MQTT_RATE = Number(opt('--mqtt-rate', 50));
const LOAD_PER_S = (SIM_DEVICES * 1000) / INTERVAL_MS + MQTT_RATE;
const RSS_BOUND_KIB = flag('--no-rss-bound') ? Infinity : Number(opt('--rss-bound-kib', 4096));
const FD_BOUND = Number(opt('--fd-bound', 2));
const OUTBOX_BOUND = Number(opt('--outbox-bound', Math.ceil(3 * LOAD_PER_S)));
const OUTBOX_FILE_BOUND = 8 * 1024 * 1024;
const JSON_OUT = opt('--json', '');
const WARMUP_S = Math.min(60, SECONDS / 4);
if (!(SECONDS >= 8 && DROP_EVERY >= 2)) {
  console.error('soak: --seconds must be at least 8 and --drop-every at least 2');
  process.exit(2);
}

const hardStop = setTimeout(() => {
  console.error('soak: hard stop (ran far longer than --seconds)');
  process.exit(2); // the harness kills every process it started on exit
}, (SECONDS + 120) * 1000);
hardStop.unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const log = (...a) => console.error(`[soak ${((Date.now() - t0) / 1000).toFixed(1).padStart(7)} s]`, ...a);

// ---------------------------------------------------------------------------------------
// The link between flatlinkd and the cloud, cut or stalled on demand.
async function startProxy(targetPort) {
  const conns = new Set();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    const c = { client, upstream, since: Date.now(), stalled: false };
    conns.add(c);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      conns.delete(c);
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  const port = await freePort();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    port,
    accepted: () => accepted,
    // a live, forwarding connection that has been up for at least ms
    upFor: (ms) => [...conns].some((c) => !c.stalled && Date.now() - c.since >= ms),
    cut() {
      for (const c of conns) {
        c.client.destroy();
        c.upstream.destroy();
      }
    },
    // Stop forwarding, keep both sockets open: bytes go nowhere, nothing says so.
    stall() {
      for (const c of conns) {
        c.stalled = true;
        c.client.unpipe(c.upstream);
        c.upstream.unpipe(c.client);
        c.client.on('data', () => {});
        c.upstream.on('data', () => {});
        // a dead route that nobody notices for 15 s is a failure of the link's timeouts
        setTimeout(() => {
          if (conns.has(c)) {
            c.hung = true;
            c.client.destroy();
            c.upstream.destroy();
          }
        }, 15000).unref();
      }
    },
    hung: () => [...conns].some((c) => c.hung),
    close: () => server.close(),
  };
}

// ---------------------------------------------------------------------------------------
function kib(pid, key) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number((text.match(new RegExp(`^${key}:\\s+(\\d+)`, 'm')) || [])[1] ?? NaN);
  } catch {
    return NaN;
  }
}
function fds(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}
function fileBytes(dir, prefix) {
  let total = 0;
  for (const name of readdirSync(dir)) {
    if (name.startsWith(prefix)) total += statSync(path.join(dir, name)).size;
  }
  return total;
}

async function main() {
  log(`${SECONDS} s, a link drop every ${DROP_EVERY} s, load ${LOAD_PER_S} statuses/s ` +
      `(${SIM_DEVICES} sim devices every ${INTERVAL_MS} ms + ${MQTT_RATE}/s over MQTT)`);
  const flat = { id: 'soak', token: 'token-of-the-soak-flat-0123456789', user: 'soak', password: 'soak-pw' };
  const broker = await startBroker();
  const cloudCfg = await cloudConfig([flat]);
  const cloud = await startCloud(cloudCfg);
  const proxy = await startProxy(cloudCfg.port);

  const devices = [];
  for (let i = 1; i <= SIM_DEVICES; i++) devices.push({ id: `thermo-${i}`, kind: 'thermometer', interval_ms: INTERVAL_MS });
  const gwCfg = gatewayConfig({
    id: 'gw-soak',
    flat: flat.id,
    token: flat.token,
    url: `ws://127.0.0.1:${proxy.port}/`,
    devices,
    extra: {
      log_level: 'warn',
      adapters: [
        { type: 'sim', name: 'sim', latency_ms: 10, seed: 1, devices },
        {
          type: 'mqtt',
          name: 'broker',
          host: '127.0.0.1',
          port: broker.port,
          client_id: 'soak-gw',
          rules: [{ topic: 'soak/{device}', kind: 'counter', payload: 'json', values: [{ field: 'n', capability: 'n', type: 'int' }] }],
        },
      ],
    },
  });
  const sock = await notifySocket(path.join(tempDir('flatlink-soak-notify-'), 'notify.sock'));
  const gateway = await startProcess(binaries.gateway, ['--config', gwCfg.file], { env: { NOTIFY_SOCKET: sock.address } });
  const status = () => sock.fields('STATUS=').at(-1)?.field ?? '';
  const waiting = () => Number((status().match(/(\d+) statuses waiting/) || [])[1] ?? NaN);
  await waitFor(() => status().startsWith('STATUS=link up'), 15000, { message: 'flatlinkd to report its link up' });

  // A browser: counts the updates (its Peer would keep every message: not for hours).
  const page = await browser(cloudCfg.port, { flat: flat.id, user: flat.user, password: flat.password });
  page.ws.removeAllListeners('message');
  page.messages.length = 0;
  let updates = 0;
  let lastUpdateAt = Date.now();
  page.ws.on('message', (data) => {
    if (data.toString().includes('"type":"update"')) {
      updates++;
      lastUpdateAt = Date.now();
    }
  });

  // MQTT load: mosquitto_pub -l, one line per status, over 5 devices.
  const pubs = [];
  for (let d = 1; d <= 5; d++) {
    const p = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-q', '1', '-t', `soak/mqtt-${d}`, '-l'], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    p.stdin.on('error', () => {});
    pubs.push(p);
  }
  let published = 0;
  const pubTimer = setInterval(() => {
    // every 100 ms, a tenth of the rate
    const n = Math.round(MQTT_RATE / 10);
    for (let i = 0; i < n; i++) {
      published++;
      pubs[published % pubs.length].stdin.write(`{"n":${published}}\n`);
    }
  }, 100);

  const sample = (what) => {
    const s = {
      what,
      at_s: Math.round((Date.now() - t0) / 1000),
      gateway: { rss_kib: kib(gateway.pid, 'VmRSS'), fds: fds(gateway.pid) },
      cloud: { rss_kib: kib(cloud.pid, 'VmRSS'), fds: fds(cloud.pid) },
      outbox: { waiting: waiting(), file_bytes: fileBytes(gwCfg.dir, 'outbox.db') },
      updates,
    };
    log(`${what}: gateway RSS ${s.gateway.rss_kib} KiB, ${s.gateway.fds} fds; cloud RSS ${s.cloud.rss_kib} KiB, ` +
        `${s.cloud.fds} fds; outbox ${s.outbox.waiting} waiting, ${s.outbox.file_bytes} bytes; ${updates} updates at the browser`);
    return s;
  };
  // With the link up for a while (a sample in the middle of a reconnect would count its
  // buffers), and one STATUS line later than that.
  const settled = async () => {
    await waitFor(() => proxy.upFor(1500) && status().startsWith('STATUS=link up'), 30000, {
      intervalMs: 50,
      message: 'the link to be up for 1.5 s',
    });
    const n = sock.fields('STATUS=').length;
    await waitFor(() => sock.fields('STATUS=').length > n, 3000, { intervalMs: 50 }).catch(() => {});
  };

  let drops = 0;
  let maxWaiting = 0;
  const waitTrack = setInterval(() => {
    const w = waiting();
    if (w > maxWaiting) maxWaiting = w;
  }, 200);
  const endAt = t0 + SECONDS * 1000;
  let start = null;
  while (Date.now() + DROP_EVERY * 1000 <= endAt) {
    await sleep(DROP_EVERY * 1000);
    if (!start && Date.now() - t0 >= WARMUP_S * 1000) {
      await settled();
      start = sample('start');
    }
    const how = drops % 2 === 0 ? 'cut' : 'stall';
    drops++;
    const acceptedBefore = proxy.accepted();
    if (how === 'cut') proxy.cut();
    else proxy.stall();
    await waitFor(() => proxy.accepted() > acceptedBefore, 20000, { intervalMs: 20, message: `flatlinkd to reconnect after a ${how}` });
  }
  await settled();
  if (!start) start = sample('start');
  const end = sample('end');
  const updatesAtEnd = updates;
  await sleep(1000);
  const flowing = updates > updatesAtEnd;

  clearInterval(waitTrack);
  clearInterval(pubTimer);
  for (const p of pubs) p.stdin.end();
  const m = await metrics(cloudCfg.port);
  page.close();
  // Both stop cleanly (under a sanitizer build, a leak found at exit fails here too).
  const gwExit = await stop(gateway, 'SIGTERM', { timeoutMs: 20000 });
  const cloudExit = await stop(cloud, 'SIGTERM', { timeoutMs: 20000 });
  sock.close();
  proxy.close();
  await stop(broker.proc).catch(() => {});

  // ---- verdict
  const failures = [];
  const growth = {
    gateway_rss_kib: end.gateway.rss_kib - start.gateway.rss_kib,
    cloud_rss_kib: end.cloud.rss_kib - start.cloud.rss_kib,
    gateway_fds: end.gateway.fds - start.gateway.fds,
    cloud_fds: end.cloud.fds - start.cloud.fds,
    outbox_file_bytes: end.outbox.file_bytes - start.outbox.file_bytes,
  };
  const check = (ok, what) => ok || failures.push(what);
  check(growth.gateway_rss_kib <= RSS_BOUND_KIB, `flatlinkd RSS grew ${growth.gateway_rss_kib} KiB (bound ${RSS_BOUND_KIB})`);
  check(growth.cloud_rss_kib <= RSS_BOUND_KIB, `flatlink-cloud RSS grew ${growth.cloud_rss_kib} KiB (bound ${RSS_BOUND_KIB})`);
  check(growth.gateway_fds <= FD_BOUND, `flatlinkd descriptors grew by ${growth.gateway_fds} (bound ${FD_BOUND})`);
  check(growth.cloud_fds <= FD_BOUND, `flatlink-cloud descriptors grew by ${growth.cloud_fds} (bound ${FD_BOUND})`);
  check(end.outbox.waiting <= OUTBOX_BOUND, `${end.outbox.waiting} statuses waiting in the outbox at the end (bound ${OUTBOX_BOUND})`);
  check(growth.outbox_file_bytes <= OUTBOX_FILE_BOUND, `outbox files grew ${growth.outbox_file_bytes} bytes (bound ${OUTBOX_FILE_BOUND})`);
  check(flowing, 'no update reached the browser in the second after the end sample');
  check(!proxy.hung(), 'a stalled link was not given up by flatlinkd within 15 s');
  check(gwExit === 0, `flatlinkd exited ${gwExit} on SIGTERM`);
  check(cloudExit === 0, `flatlink-cloud exited ${cloudExit} on SIGTERM`);

  const result = {
    seconds: SECONDS,
    drop_every_s: DROP_EVERY,
    drops,
    reconnects: proxy.accepted() - 1,
    load_per_s: LOAD_PER_S,
    published_mqtt: published,
    cloud_statuses_total: m.flatlink_statuses_total,
    cloud_duplicate_statuses_total: m.flatlink_duplicate_statuses_total,
    browser_updates: updates,
    max_waiting: maxWaiting,
    start,
    end,
    growth,
    bounds: { rss_kib: RSS_BOUND_KIB, fds: FD_BOUND, outbox_waiting: OUTBOX_BOUND, outbox_file_bytes: OUTBOX_FILE_BOUND },
    exits: { gateway: gwExit, cloud: cloudExit },
    failures,
  };
  const row = (name, a, b, g, bound) => console.log(`| ${name} | ${a} | ${b} | ${g} | ${bound} |`);
  console.log(`\nsoak: ${SECONDS} s, ${drops} link drops (cut/stall alternating, every ${DROP_EVERY} s), ` +
              `${result.reconnects} reconnects, ${LOAD_PER_S} statuses/s offered; the cloud counted ` +
              `${m.flatlink_statuses_total} statuses, the browser ${updates} updates; outbox peak ${maxWaiting} waiting\n`);
  console.log(`| measure | start (${start.at_s} s) | end (${end.at_s} s) | growth | bound |`);
  console.log('|---|---|---|---|---|');
  row('flatlinkd RSS (KiB)', start.gateway.rss_kib, end.gateway.rss_kib, growth.gateway_rss_kib, RSS_BOUND_KIB);
  row('flatlinkd open descriptors', start.gateway.fds, end.gateway.fds, growth.gateway_fds, FD_BOUND);
  row('flatlink-cloud RSS (KiB)', start.cloud.rss_kib, end.cloud.rss_kib, growth.cloud_rss_kib, RSS_BOUND_KIB);
  row('flatlink-cloud open descriptors', start.cloud.fds, end.cloud.fds, growth.cloud_fds, FD_BOUND);
  row('outbox: statuses waiting', start.outbox.waiting, end.outbox.waiting, end.outbox.waiting - start.outbox.waiting, `≤ ${OUTBOX_BOUND} at the end`);
  row('outbox: outbox.db* bytes', start.outbox.file_bytes, end.outbox.file_bytes, growth.outbox_file_bytes, OUTBOX_FILE_BOUND);
  if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(result, null, 2) + '\n');
  if (failures.length) {
    console.log(`\nsoak: FAILED\n  ${failures.join('\n  ')}`);
    return 1;
  }
  console.log('\nsoak: passed');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`soak: ${err.stack || err}`);
    process.exit(1);
  },
);
