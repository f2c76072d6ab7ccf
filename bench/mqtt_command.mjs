// A command's round trip through an MQTT device, against Mosquitto's default
// (`set_tcp_nodelay false`) and with `set_tcp_nodelay true` (issue 18, finding 10).
//
//   node bench/mqtt_command.mjs [--smoke] [--commands N]
//
// One flatlink-cloud, one flatlinkd with the mqtt adapter's tasmota preset, a Tasmota plug
// played by two long-lived Mosquitto clients (mosquitto_sub reads cmnd/<plug>/+, and for each
// command a `mosquitto_pub -l` already connected publishes stat/<plug>/RESULT), and a
// browser that sends N commands one after another and times each until its result. The
// same run against two brokers that differ only in set_tcp_nodelay: the peer is the same
// set-up with the broker's Nagle algorithm off. Prints a table for docs/benchmarks.md.
import { spawn } from 'node:child_process';
import os from 'node:os';
import { performance } from 'node:perf_hooks';

import { browser, cloudConfig, flatA, gatewayConfig, loginA, startCloud, startGateway } from '../tests/integration/flatlink.mjs';
import { startMosquitto, stop, waitFor } from '../tests/integration/harness.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const SMOKE = argv.includes('--smoke');
const COMMANDS = Number(opt('--commands', SMOKE ? 20 : 300));
const log = (...a) => console.error(`[bench-mqtt-command ${new Date().toISOString().slice(11, 19)}]`, ...a);
const hardStop = setTimeout(() => {
  console.error('bench-mqtt-command: hard stop');
  process.exit(2);
}, 300_000);
hardStop.unref();

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

// The plug: answers every POWER command with its RESULT, through clients that stay connected.
function startPlug(port, topic) {
  const pub = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', `stat/${topic}/RESULT`, '-l'], {
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', `cmnd/${topic}/+`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Tasmota reports its state when asked (cmnd/<topic>/STATE); the gateway learns "on" from it.
  pub.stdin.write('{"POWER":"OFF"}\n');
  let buffered = '';
  sub.stdout.on('data', (chunk) => {
    buffered += chunk.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const payload = buffered.slice(0, nl).trim().toUpperCase();
      buffered = buffered.slice(nl + 1);
      if (payload === 'ON' || payload === 'OFF') pub.stdin.write(`{"POWER":"${payload}"}\n`);
      else pub.stdin.write('{"POWER":"OFF"}\n');
    }
  });
  return { stop: () => [pub, sub].forEach((p) => p.kill('SIGTERM')) };
}

async function measure(nodelay) {
  const broker = await startMosquitto(['allow_anonymous true', `set_tcp_nodelay ${nodelay}`], { prefix: 'flatlink-bench-nodelay-' });
  const topic = `bench_plug_${nodelay}`;
  const plug = startPlug(broker.port, topic);
  const cloudCfg = await cloudConfig([flatA]);
  const cloud = await startCloud(cloudCfg);
  const gwCfg = gatewayConfig({
    id: 'gw-bench',
    flat: flatA.id,
    token: flatA.token,
    url: `ws://127.0.0.1:${cloudCfg.port}/`,
    devices: [],
    extra: {
      adapters: [{ type: 'mqtt', name: 'mqtt', port: broker.port, presets: [{ preset: 'tasmota', devices: [topic] }] }],
    },
  });
  const gateway = await startGateway(gwCfg);
  const page = await browser(cloudCfg.port, loginA);
  try {
    await waitFor(() => page.messages.some((m) => JSON.stringify(m).includes(topic)), 10_000, { message: 'the plug to show up' });
    // Until the plug has reported its state, "on" is not one of its capabilities (rejected).
    for (let i = 0; ; i++) {
      const id = `warm-${nodelay}-${i}`;
      page.send({ type: 'command', id, device: topic, set: { on: false }, ttl_ms: 10_000 });
      const r = await page.next('result', (m) => m.id === id, 10_000);
      if (r.outcome === 'ok') break;
      if (i > 100) throw new Error(`the plug never took a command: ${JSON.stringify(r)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    const times = [];
    const outcomes = {};
    for (let i = 0; i < COMMANDS; i++) {
      const id = `c-${nodelay}-${i}`;
      const t0 = performance.now();
      page.send({ type: 'command', id, device: topic, set: { on: i % 2 === 0 }, ttl_ms: 10_000 });
      const r = await page.next('result', (m) => m.id === id, 10_000);
      outcomes[r.outcome] = (outcomes[r.outcome] || 0) + 1;
      if (r.outcome === 'ok') times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { nodelay, outcomes, p50: percentile(times, 50), p99: percentile(times, 99), n: times.length };
  } finally {
    page.close();
    await stop(gateway);
    await stop(cloud);
    plug.stop();
    await stop(broker.proc);
  }
}

const off = await measure(false);
log(`set_tcp_nodelay false: ${JSON.stringify(off)}`);
const on = await measure(true);
log(`set_tcp_nodelay true: ${JSON.stringify(on)}`);
const f = (x) => (typeof x === 'number' ? x.toFixed(2) : String(x));
console.log(`Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`bench/run.sh --mqtt-command\` (${COMMANDS} commands one after another, browser → cloud → flatlinkd → Mosquitto → Tasmota plug (mosquitto_sub/mosquitto_pub) → back; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}).`);
console.log('');
console.log('| command round trip through a Tasmota plug | Mosquitto `set_tcp_nodelay true` | peer: Mosquitto default (`false`) | ratio |');
console.log('| --- | --- | --- | --- |');
console.log(`| p50 (ms) | ${f(on.p50)} | ${f(off.p50)} | ${f(off.p50 / on.p50)}× |`);
console.log(`| p99 (ms) | ${f(on.p99)} | ${f(off.p99)} | ${f(off.p99 / on.p99)}× |`);
console.log(`| outcomes | ${JSON.stringify(on.outcomes)} | ${JSON.stringify(off.outcomes)} | |`);
process.exit(on.n === COMMANDS && off.n === COMMANDS ? 0 : 1);
