// History benchmark (issue 21): what keeping every status value in the cloud's store costs.
//
//   node bench/history.mjs [--smoke] [--values N] [--statuses N] [--rounds N]
//
// 1. The store alone (build/bench/bench_store_history, bench/store_history.cpp), on SQLite and
//    on a PostgreSQL server started for this run (tests/postgres.sh, fsync off as in the
//    tests; the SQLite file is on the same disk with synchronous=NORMAL): --values status
//    values (default 200,000; 100 series) written in the cloud's batches of 5,000, values/s
//    and the ratio PostgreSQL / SQLite; bytes on disk per stored value; a 30-day chart at
//    1-hour resolution from a store holding 30 days of 1-minute rollups for 100 values,
//    p50/p99, beside a 1-hour query of raw values from the same store.
// 2. The cloud's drain, history on vs off, same run: the real flatlink-cloud with a SQLite
//    store, `store.history.enabled` true or false, taking turns for --rounds rounds (median);
//    a raw gateway in this process sends --statuses statuses (default 100,000) in batches of
//    500 with at most 10 batches unacknowledged; the rate is statuses / (first send → last
//    ack). With history on, also the time from the last ack until every value is written
//    (flatlink_history_written_total).
// 3. The cloud's idle memory with the store: the real flatlink-cloud with one flat and no
//    links, without a store, with SQLite and with PostgreSQL (the server of part 1's kind),
//    VmRSS 3 s after it listens (median of --rounds), side by side with the differences.
// --rss-only runs part 3 alone and only prints it.
// Prints the figures; unless --smoke also writes bench/history.md and splices it between its
// markers in docs/benchmarks.md (bench/run.mjs folds it in too).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import WebSocket from '../tests/integration/node_modules/ws/wrapper.mjs';
import { GATEWAY_PROTOCOL, cloudConfig, metrics, startCloud } from '../tests/integration/flatlink.mjs';
import { buildDir, freePort, repoRoot, startPostgres, stop, tempDir, waitFor } from '../tests/integration/harness.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const SMOKE = argv.includes('--smoke');
const RSS_ONLY = argv.includes('--rss-only');
const VALUES = Number(opt('--values', SMOKE ? 10_000 : 200_000));
const STATUSES = Number(opt('--statuses', SMOKE ? 5_000 : 100_000));
const ROUNDS = Number(opt('--rounds', SMOKE ? 1 : 3));
const BATCH = 500;
const WINDOW = 10; // batches in flight

const log = (...a) => console.error(`[bench-history ${new Date().toISOString().slice(11, 19)}]`, ...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const fmt = (x, d = 0) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

const pgScript = path.join(repoRoot, 'tests', 'postgres.sh');
const storeBench = path.join(buildDir, 'bench', 'bench_store_history');

async function storeFigures() {
  let pgDir = null;
  const args = ['--sqlite', tempDir('flatlink-bench-history-'), '--values', String(VALUES), '--queries', SMOKE ? '20' : '300'];
  if (SMOKE) args.push('--series', '10'); // a tenth of the 30-day chart's rows: the smoke checks the parts work
  try {
    if (spawnSync(pgScript, ['available']).status === 0) {
      pgDir = mkdtempSync('/tmp/flatlink-pg-');
      const port = await freePort();
      const started = spawnSync(pgScript, ['start', pgDir, String(port)], { encoding: 'utf8', timeout: 120_000 });
      if (started.status !== 0) throw new Error(`tests/postgres.sh start: ${started.stderr}`);
      args.push('--postgres', `host=127.0.0.1 port=${port} user=flatlink dbname=postgres`);
    } else {
      log('PostgreSQL is not installed: SQLite only');
    }
    log(`bench_store_history ${args.join(' ')}`);
    return execFileSync(storeBench, args, { encoding: 'utf8', timeout: 600_000 });
  } finally {
    if (pgDir) spawnSync(pgScript, ['stop', pgDir], { timeout: 60_000 });
  }
}

const thermo = {
  id: 'thermo-1',
  name: 'Thermometer',
  kind: 'thermometer',
  capabilities: [{ name: 't', type: 'number', writable: false }],
  state: {},
  online: true,
};
const flat = { id: 'flat-h', token: 'token-of-flat-h-bench-0123456789', user: 'hanna', password: 'pw-hanna' };

// One drain: a fresh cloud and store; returns { rate, storedAfterMs }.
async function drain(history) {
  const cfg = await cloudConfig([flat], {
    limits: { messages_per_s: 100_000, burst: 1_000_000 },
    extra: { store: { path: path.join(tempDir('flatlink-bench-drain-'), 'cloud.db'), history: { enabled: history } } },
  });
  const cloud = await startCloud(cfg);
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${cfg.port}/`, GATEWAY_PROTOCOL, { headers: { Authorization: `Bearer ${flat.token}` } });
    let acked = 0;
    let wake = null;
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'ack') {
        acked = Math.max(acked, m.seq);
        if (wake) wake();
      }
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'hello', gateway: 'gw-h', version: '0.1.0', devices: [thermo], next_seq: 1, dropped: 0 }));
    const until = (seq) =>
      new Promise((resolve) => {
        if (acked >= seq) return resolve();
        wake = () => {
          if (acked >= seq) {
            wake = null;
            resolve();
          }
        };
      });
    await until(0);
    const t0 = performance.now();
    const ts0 = Date.now() - 3_600_000;
    for (let seq = 1; seq <= STATUSES; seq += BATCH) {
      await until(seq - 1 - WINDOW * BATCH);
      const items = [];
      for (let s = seq; s < seq + BATCH && s <= STATUSES; s++) items.push({ seq: s, device: 'thermo-1', state: { t: s % 100 }, ts: ts0 + s });
      ws.send(JSON.stringify({ type: 'status', items }));
    }
    await until(STATUSES);
    const ackedAt = performance.now();
    let storedAfterMs = null;
    if (history) {
      await waitFor(async () => (await metrics(cfg.port)).flatlink_history_written_total >= STATUSES, 120_000, { intervalMs: 20 });
      storedAfterMs = performance.now() - ackedAt;
    }
    ws.close();
    return { rate: STATUSES / ((ackedAt - t0) / 1000), storedAfterMs };
  } finally {
    await stop(cloud);
  }
}

// VmRSS (KiB) of an idle cloud with this store section (none: without a store), 3 s after it
// listens (1 s in the smoke run).
const IDLE_MS = SMOKE ? 1000 : 3000;
async function idleRss(store) {
  const cfg = await cloudConfig([flat], store ? { extra: { store } } : {});
  const cloud = await startCloud(cfg);
  try {
    await new Promise((r) => setTimeout(r, IDLE_MS)); // idle: nothing to wait for but time
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${cloud.pid}/status`, 'utf8'))[1]);
  } finally {
    await stop(cloud);
  }
}

async function rssFigures() {
  const pg = await startPostgres();
  if (!pg) log('PostgreSQL is not installed: idle memory without a store and with SQLite only');
  try {
    const kinds = [
      ['no store', null],
      ['SQLite', { path: path.join(tempDir('flatlink-bench-rss-'), 'cloud.db') }],
      ...(pg ? [['PostgreSQL', { engine: 'postgresql', url: pg.url }]] : []),
    ];
    const kib = new Map(kinds.map(([name]) => [name, []]));
    for (let r = 0; r < ROUNDS; r++) for (const [name, store] of kinds) kib.get(name).push(await idleRss(store));
    const mib = (k) => fmt(k / 1024, 2);
    const base = median(kib.get('no store'));
    const worst = Math.max(...kinds.slice(1).map(([name]) => median(kib.get(name)) - base));
    return (
      `cloud idle VmRSS (1 flat, no links, ${IDLE_MS / 1000} s after it listens, median of ${ROUNDS}): ` +
      kinds
        .map(([name]) => {
          const m = median(kib.get(name));
          return name === 'no store' ? `no store ${mib(m)} MiB` : `${name} ${mib(m)} MiB (+${mib(m - base)} MiB, ratio ${fmt(m / base, 2)})`;
        })
        .join(', ') +
      `; target (issue 21) store <= +4 MiB: ${worst <= 4096 ? 'met' : 'MISSED'}`
    );
  } finally {
    if (pg) await pg.stop();
  }
}

if (RSS_ONLY) {
  console.log(await rssFigures());
  process.exit(0);
}
if (!existsSync(storeBench)) {
  console.error(`${storeBench} is missing: build first (scripts/build.sh)`);
  process.exit(2);
}
const started = new Date();
const load0 = os.loadavg().map((x) => x.toFixed(2)).join(' ');
const store = await storeFigures();
process.stdout.write(store);

const on = [];
const off = [];
const stored = [];
for (let r = 0; r < ROUNDS; r++) {
  const a = await drain(false);
  off.push(a.rate);
  const b = await drain(true);
  on.push(b.rate);
  stored.push(b.storedAfterMs);
  log(`round ${r + 1}: off ${fmt(a.rate)}/s, on ${fmt(b.rate)}/s, stored ${fmt(b.storedAfterMs)} ms after the last ack`);
}
const drainLine =
  `cloud drain (${fmt(STATUSES)} statuses, batches of ${BATCH}, SQLite store, median of ${ROUNDS}): history off ${fmt(median(off))}/s, ` +
  `history on ${fmt(median(on))}/s, ratio on/off ${fmt(median(on) / median(off), 2)}; with history on every value was written ` +
  `${fmt(median(stored))} ms after the last ack; target (issue 21) on within 10 % of off: ` +
  `${median(on) >= 0.9 * median(off) ? 'met' : 'MISSED'}`;
console.log(drainLine);
const rssLine = await rssFigures();
console.log(rssLine);

if (!SMOKE) {
  const load1 = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const cmd = ['bench/run.sh --history', ...argv.filter((a) => a !== '--history')].join(' ');
  const md = [
    '<!-- history:begin — written by bench/history.mjs -->',
    '## History in the store (issue 21)',
    '',
    `Measured ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${cmd}\` (\`node bench/history.mjs\`). ` +
      `Machine: ${os.cpus().length} CPUs shared with other work; load average ${load0} before, ${load1} after. ` +
      'The store alone (`bench_store_history`, bench/store_history.cpp): status values of 100 series written through ' +
      '`HistoryStore::write` in the cloud\'s batches of 5,000 (each a transaction: raw rows, then the minute and hour rollups they ' +
      'fall in recomputed); SQLite in WAL mode with `synchronous=NORMAL`, PostgreSQL 15 started by the run (tests/postgres.sh: ' +
      '`fsync=off`, loopback). Bytes per value: the file (SQLite, after a checkpoint) or the history tables with their indexes ' +
      '(PostgreSQL, after VACUUM) grown by the run, over the values written. The chart: a store holding 30 days of 1-minute ' +
      'rollups (and their hours) for 100 values, each query one random value\'s 30 days at 1-hour resolution (720 buckets) as the ' +
      'cloud answers `range: 30d`, beside the same value\'s last hour of raw values (360) as it answers `range: 1h` (raw values ' +
      'counted, then read). The drain: the real `flatlink-cloud` with a SQLite store, `store.history.enabled` on against off, ' +
      'taking turns; a raw gateway sends statuses in batches of 500, at most 10 batches unacknowledged, timed from the first ' +
      'send to the last ack. Idle memory: the real `flatlink-cloud` with one flat and no links, without a store, with SQLite ' +
      'and with PostgreSQL, VmRSS 3 s after it listens.',
    '',
    '```',
    store.trim(),
    drainLine,
    rssLine,
    '```',
    '',
    'What it means: the insert rates against their targets are in the lines above; PostgreSQL takes more bytes per value ' +
      '(its row headers and a B-tree per table). The drain with history on stays close to off because the store\'s worker ' +
      'thread runs at nice 10: when the cores are short the loop routes first and the values wait in the bounded buffer.',
    '<!-- history:end -->',
  ].join('\n');
  writeFileSync(path.join(repoRoot, 'bench/history.md'), md + '\n');
  const doc = path.join(repoRoot, 'docs/benchmarks.md');
  const text = readFileSync(doc, 'utf8');
  const re = /<!-- history:begin[\s\S]*?<!-- history:end -->\n?/;
  let next;
  if (re.test(text)) next = text.replace(re, md + '\n');
  else if (text.includes('<!-- dashboard:end -->\n')) next = text.replace('<!-- dashboard:end -->\n', `<!-- dashboard:end -->\n\n${md}\n`);
  else next = text.replace(/\n## How the figures are made/, `\n${md}\n\n## How the figures are made`);
  writeFileSync(doc, next);
  log('wrote bench/history.md and updated docs/benchmarks.md');
}
