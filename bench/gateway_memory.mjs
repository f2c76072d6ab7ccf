// flatlinkd's idle memory with the demo configuration beside an idle Mosquitto broker
// from the same run, and what each mapped file costs (issue 23).
//   node bench/gateway_memory.mjs   (bench/run.sh --gateway-memory)
// Prints a markdown table: VmRSS, RssAnon, RssFile of both, then flatlinkd's resident
// KiB per mapped library (/proc/PID/smaps), 3 s after the gateway's link is up.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startMosquitto, stop, examplesDir } from '../tests/integration/harness.mjs';
import { cloudConfig, startCloud, gatewayConfig, startGateway, flatA } from '../tests/integration/flatlink.mjs';

const demo = JSON.parse(readFileSync(path.join(examplesDir, 'demo-gateway.json'), 'utf8'));
const status = (pid) => {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1] || 0);
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
};
const perMapping = (pid) => {
  const out = new Map();
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
    if (m) { name = m[1] || '[anonymous]'; continue; }
    const r = line.match(/^Rss:\s+(\d+)/);
    if (r) out.set(name, (out.get(name) || 0) + Number(r[1]));
  }
  return [...out.entries()].sort((a, b) => b[1] - a[1]);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const cloudCfg = await cloudConfig([flatA]);
const cloud = await startCloud(cloudCfg);
const broker = await startMosquitto();
// The demo configuration's adapters and log level, on this run's cloud.
const gwCfg = gatewayConfig({ id: demo.gateway_id, flat: flatA.id, token: flatA.token, url: `ws://127.0.0.1:${cloudCfg.port}/`,
  devices: [], extra: { adapters: demo.adapters, log_level: demo.log_level } });
const gw = await startGateway(gwCfg);
await sleep(3000);
const g = status(gw.pid);
const b = status(broker.proc.pid);
const maps = perMapping(gw.pid);
await stop(gw); await stop(cloud); await stop(broker.proc);

const mib = (kb) => (kb / 1024).toFixed(2);
console.log('| what | flatlinkd, demo configuration (sim, ws:// cloud) | peer: Mosquitto broker, idle | ratio |');
console.log('| --- | --- | --- | --- |');
console.log(`| VmRSS idle (MiB) | ${mib(g.rss)} | ${mib(b.rss)} | ${(g.rss / b.rss).toFixed(2)}× |`);
console.log(`| RssAnon (heap, stacks) (MiB) | ${mib(g.anon)} | ${mib(b.anon)} | |`);
console.log(`| RssFile (mapped files) (MiB) | ${mib(g.file)} | ${mib(b.file)} | |`);
console.log('');
console.log('| flatlinkd mapping | resident KiB |');
console.log('| --- | --- |');
for (const [name, kb] of maps) if (kb > 0) console.log(`| ${path.basename(name)} | ${kb} |`);
