// Fault run across cloud instances (issue 20): what each broker fault costs the statuses and
// the commands, counted at every browser and at the device.
//
//   node bench/faults.mjs [--smoke] [--down-ms N] [--after-ms N] [--only mosquitto|nats] [--each-command] [--out FILE]
//   bench/run.sh --faults [same options]
//
// What runs (all on loopback, free ports, the real flatlink-cloud and flatlinkd of
// $FLATLINK_BUILD_DIR, default <repo>/build; everything stops by itself, hard stop after 10 min):
// three flatlink-cloud instances (cloud-a, cloud-b, cloud-c) over a backplane, a flatlinkd with
// four simulated thermometers (one numbered stream of ~40 statuses/s) and a simulated lamp,
// its cloud list cloud-a, cloud-b, cloud-c; a logged-in browser of the flat on every instance;
// a command from the browsers in turn every 300 ms (TTL 4 s), during the faults too.
// Two set-ups, one phase per fault, each with steady load before and after:
//   Mosquitto: kill -9 and restart (--down-ms, default 1,500 ms later; no persistence, so it
//     comes back without sessions); SIGTERM and restart; the holding instance killed (kill -9;
//     the gateway moves to the next instance, the killed one is started again).
//   a 3-node nats-server cluster (JetStream, MQTT on every node; each instance prefers another
//     node: cloud-a n1, cloud-b n2, cloud-c n3): each node killed in turn, n2, n3, then n1
//     (kill -9; started again once statuses flow at every browser without it; the table names
//     the instances that were on it); then the holding instance killed.
// Per phase (tests/integration/faults.mjs): per browser, statuses produced / arrived /
// counted lost / silently lost / duplicated / out of order / repaired, and the recovery time
// (fault → a status produced after the fault arriving live, < 1 s old, at that browser);
// per outcome told, the commands, how many ran at the device, twice, and after the outcome was
// told (--each-command: also a line per command: its cloud id, outcome, executions). Exit 1 when a promise broke (a status silently lost or twice, a command told
// offline/expired that ran, or that ran after `timeout`, a command without an answer).
//
// Writes bench/faults.md (unless --smoke or --out elsewhere) and splices it between its
// markers in docs/benchmarks.md.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { broken, faults, formatPhase, natsServer, phase, startRun, stopRun } from '../tests/integration/faults.mjs';
import { repoRoot } from '../tests/integration/harness.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const SMOKE = argv.includes('--smoke');
const DOWN_MS = Number(opt('--down-ms', 1500));
const AFTER_MS = Number(opt('--after-ms', SMOKE ? 1000 : 3000));
const BEFORE_MS = SMOKE ? 1000 : 2000;
const ONLY = opt('--only', null);
const EACH = argv.includes('--each-command');
const DEFAULT_OUT = path.join(repoRoot, 'bench/faults.md');
const OUT = opt('--out', SMOKE ? null : DEFAULT_OUT);

const log = (...a) => console.error(`[bench-faults ${new Date().toISOString().slice(11, 19)}]`, ...a);
setTimeout(() => {
  console.error('bench-faults: hard stop');
  process.exit(2);
}, 600_000).unref();

async function setup(kind, list) {
  const r = await startRun({ broker: kind, instances: 3, log });
  const phases = [];
  try {
    for (const f of list) {
      const p = await phase(r, f, { beforeMs: BEFORE_MS, afterMs: AFTER_MS });
      console.log(`\n${formatPhase(p)}`);
      if (EACH) {
        console.log('\n| command | from | cloud id | outcome told | executions at the device | after the outcome was told |\n| --- | --- | --- | --- | --- | --- |');
        for (const c of p.commands.rows) console.log(`| ${c.id} | ${c.from} | ${c.cloudId ?? '(none: answered at once)'} | ${c.outcome} | ${c.executions} | ${c.afterTold} |`);
      }
      const b = broken(p);
      if (b.length) console.log(`\nBROKEN: ${b.join('; ')}`);
      phases.push(p);
    }
  } finally {
    await stopRun(r);
  }
  return phases;
}

async function main() {
  const t0 = Date.now();
  const sets = [];
  if (ONLY !== 'nats') {
    sets.push({
      kind: 'Mosquitto',
      phases: await setup('mosquitto', [faults.broker('SIGKILL', DOWN_MS), faults.broker('SIGTERM', DOWN_MS), faults.holder()]),
    });
  }
  if (ONLY !== 'mosquitto') {
    if (!natsServer) log('nats-server is not installed: the cluster set-up is skipped');
    else sets.push({ kind: 'nats', phases: await setup('nats', [faults.natsNode(1), faults.natsNode(2), faults.natsNode(0), faults.holder()]) });
  }
  const all = sets.flatMap((s) => s.phases);
  const problems = all.flatMap((p) => broken(p).map((b) => `${p.name}: ${b}`));
  const elapsed = ((Date.now() - t0) / 1000).toFixed(0);
  console.log(`\nbench faults: ${problems.length ? `${problems.length} broken promise(s)` : 'every promise kept'} (${elapsed} s)`);
  if (OUT) writeDoc(sets, elapsed, problems);
  if (problems.length) process.exit(1);
}

function writeDoc(sets, elapsed, problems) {
  const extra = argv.filter((a) => a !== '--out' && a !== OUT);
  const cmd = ['bench/run.sh --faults', ...extra].join(' ');
  const natsVersion = natsServer ? version(natsServer, ['--version'], /v?(\d+\.\d+\.\d+)/) : '';
  const md = [
    '<!-- faults:begin — written by bench/faults.mjs -->',
    '## Broker and instance faults across cloud instances (issue 20)',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${cmd}\` (\`node bench/faults.mjs\`, ${elapsed} s), all on loopback: ` +
      'three `flatlink-cloud` instances (cloud-a, cloud-b, cloud-c) over one Mosquitto (no persistence), then over a 3-node ' +
      `nats-server ${natsVersion} cluster (JetStream, MQTT on every node, 3 replicas); a real \`flatlinkd\` with four simulated thermometers ` +
      '(one numbered stream, ~40 statuses/s) and a simulated lamp, its cloud list cloud-a, cloud-b, cloud-c; a logged-in browser of the flat on every ' +
      'instance; a command to the lamp (which takes 100 ms to switch) from the browsers in turn every 300 ms (TTL 4 s), during the faults too, and one from every ' +
      'browser 30 ms before each fault (at the broker, the holder or the device when it strikes). Each fault is a phase with steady ' +
      `load ${BEFORE_MS} ms before it and ${AFTER_MS} ms after the recovery; a killed nats node is started again after the recovery and given up to 20 s ` +
      'to be current (`/healthz`) before the next phase (the line under its table says whether it was). ' +
      "**Produced**: the statuses of the phase (the gateway's seqs); " +
      "**counted lost**: the increase of the browser's instance's `flatlink_backplane_gap_lost_total` + `flatlink_backplane_catch_up_gaps_total`; " +
      '**silently lost** = produced − arrived − counted lost; **recovery**: from the fault to the first status produced after it arriving live ' +
      "(< 1 s after the gateway stamped it) at that browser. Commands: the outcome the browser was told against the executions at the device (the sim adapter's log). " +
      `Machine: ${os.availableParallelism?.() ?? os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the end.`,
    '',
    ...sets.flatMap((s) => s.phases.map((p) => `### ${s.kind}: ${formatPhase(p).replace(/^## /, '')}\n`)),
    problems.length ? `Broken promises: ${problems.join('; ')}.` : 'Every promise kept: no status silently lost or duplicated, no command told `offline` or `expired` ran, none ran after `timeout`, every command answered.',
    '',
    'What each fault costs over all the runs, and the recovery bound for a nats node loss: [scale-out](scale-out.md#what-each-fault-costs-measured).',
    '<!-- faults:end -->',
  ].join('\n');
  writeFileSync(OUT, md + '\n');
  log(`wrote ${path.relative(repoRoot, OUT)}`);
  const doc = path.join(repoRoot, 'docs/benchmarks.md');
  if (OUT === DEFAULT_OUT && existsSync(doc)) {
    const text = readFileSync(doc, 'utf8');
    const re = /<!-- faults:begin[\s\S]*?<!-- faults:end -->\n?/;
    let next;
    if (re.test(text)) next = text.replace(re, md + '\n');
    else if (text.includes('<!-- backplane:end -->\n')) next = text.replace('<!-- backplane:end -->\n', `<!-- backplane:end -->\n\n${md}\n`);
    else next = text.replace(/\n## How the figures are made/, `\n${md}\n\n## How the figures are made`);
    writeFileSync(doc, next);
    log('updated docs/benchmarks.md');
  }
}

function version(bin, args, re) {
  try {
    return execFileSync(bin, args, { encoding: 'utf8', timeout: 5000 }).match(re)?.[1] ?? '';
  } catch {
    return '';
  }
}

main().catch((err) => {
  console.error('bench-faults failed:', err.stack || err);
  process.exit(1);
});
