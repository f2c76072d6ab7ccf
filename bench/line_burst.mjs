// A burst on a line device's path (issue #18): how fast flatlinkd's WiFly adapter reads a
// 5 MB burst of lines from one module on loopback, beside peers from the same run:
//   - the same 5 MB as one over-long line (the framer only skips it: the reading and the
//     framing without the per-line work),
//   - a tenth of the burst (0.5 MB of the same lines): linear reading takes a tenth of
//     the time; quadratic buffer handling would take a hundredth.
// The time runs from the first byte written to flatlinkd's log line saying the peer closed,
// which the session writes after it has read and handled every byte before the close.
// Lines are 1 KiB of nesting deeper than 16 levels: each is refused before any parse (the
// adapter base's check), so the figure is the reading path's, not the outbox's. The JSON
// lines are parsed and refused for their unknown key (the device's status path up to the
// value checks).
//
//   node bench/line_burst.mjs [--mb 5] [--rounds 3]
//
// Real flatlinkd from $FLATLINK_BUILD_DIR (default <repo>/build); loopback only; no cloud
// (the link retries in the background and does not matter here).
import net from 'node:net';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

import { binaries, freePort, startProcess, stop, tempDir, waitFor } from '../tests/integration/harness.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const mb = arg('mb', 5);
const rounds = arg('rounds', 3);

const dir = tempDir('flatlink-burst-');
writeFileSync(path.join(dir, 'token.txt'), 'token-of-flat-a-0123456789\n', { mode: 0o600 });
const port = await freePort();
const config = {
  gateway_id: 'gw-burst', flat: 'flat-a', state_dir: dir,
  cloud: { url: `ws://127.0.0.1:${await freePort()}/`, token_file: 'token.txt', backoff_base_ms: 1000, backoff_max_ms: 5000 },
  adapters: [{
    type: 'wifly', name: 'wifly', listen: { address: '127.0.0.1', port }, max_line_bytes: 4096,
    devices: [{ id: 't1', kind: 'thermometer', capabilities: [{ name: 'temp', type: 'number' }] }],
  }],
};
const file = path.join(dir, 'gateway.json');
writeFileSync(file, JSON.stringify(config));
const gw = await startProcess(binaries.gateway, ['--config', file], { readyPattern: `listening on 127.0.0.1:${port}` });

const line = '['.repeat(511) + ']'.repeat(511) + '\r\n';  // 1 KiB
function burstOfLines(bytes) {
  return Buffer.from(line.repeat(Math.round(bytes / line.length)));
}
const jsonLine = '{"dev":"t1","temp":21.5,"note":"' + 'x'.repeat(990) + '"}\n';  // 1 KiB, parsed, one unknown key
function burstOfJson(bytes) {
  return Buffer.from(jsonLine.repeat(Math.round(bytes / jsonLine.length)));
}
const oneLine = (bytes) => Buffer.concat([Buffer.from('['.repeat(bytes - 1)), Buffer.from('\n')]);

let closes = 0;
const closedCount = () => gw.lines.filter((l) => l.includes('closed by the peer')).length;
async function send(buf) {
  const before = closedCount();
  const t0 = performance.now();
  await new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(buf, resolve));
    s.on('error', reject);
  });
  await waitFor(() => closedCount() > before, 120_000, { intervalMs: 2, message: 'the close after the burst' });
  closes++;
  return performance.now() - t0;
}

const bytes = mb * 1024 * 1024;
const cases = [
  ['lines, burst', () => burstOfLines(bytes)],
  ['one line (skipped)', () => oneLine(bytes)],
  ['lines, a tenth', () => burstOfLines(bytes / 10)],
  ['JSON lines, burst', () => burstOfJson(bytes)],
  ['JSON lines, a tenth', () => burstOfJson(bytes / 10)],
];
const results = {};
for (let r = 0; r < rounds; r++) {
  for (const [name, make] of cases) {
    const buf = make();
    const ms = await send(buf);
    (results[name] ??= []).push({ ms, bytes: buf.length });
  }
}
await stop(gw);
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`| path | bytes | median ms (of ${rounds}) | MB/s |`);
console.log('|---|---|---|---|');
for (const [name] of cases) {
  const ms = median(results[name].map((x) => x.ms));
  const b = results[name][0].bytes;
  console.log(`| ${name} | ${b} | ${ms.toFixed(1)} | ${(b / 1048576 / (ms / 1000)).toFixed(1)} |`);
}
const m = (n) => median(results[n].map((x) => x.ms));
console.log(`\nburst / one line: ${(m('lines, burst') / m('one line (skipped)')).toFixed(2)}x; ` +
  `burst / a tenth: ${(m('lines, burst') / m('lines, a tenth')).toFixed(1)}x, JSON lines ` +
  `${(m('JSON lines, burst') / m('JSON lines, a tenth')).toFixed(1)}x (linear: ~10, quadratic: ~100)`);
