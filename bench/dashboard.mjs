// The dashboard's weight and speed beside the page it replaces: this tree's
// cloud-server/dashboard/ and another git ref's (default: main), each served by its own
// flatlink-cloud with the same sim devices, loaded in headless Chromium (Debian's, through
// tests/browser's playwright-core). Per page: bytes transferred on a first load (as served:
// uncompressed) and what gzip -9 of the same files would be; first load and repeat visit
// (navigation start to the load event); login to tiles shown (the click to every device's
// tile online). Medians of --runs runs, alternating the two pages.
// Writes bench/dashboard.md and its section of docs/benchmarks.md.
//   FLATLINK_BUILD_DIR=build node bench/dashboard.mjs [--runs 7] [--ref main]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import { repoRoot, tempDir } from '../tests/integration/harness.mjs';
import { freePort, launchBrowser, login, startCloud, startGateway, stop } from '../tests/browser/fixture.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const runs = Number(opt('runs', 7));
const ref = opt('ref', 'main');

const flat = { id: 'flat-a', name: 'Bench', token: 'token-bench', users: [{ name: 'demo', password: 'demo' }] };
const devices = [
  { id: 'door-1', kind: 'lock', name: 'Front door', room: 'Hall' },
  { id: 'lamp-1', kind: 'lamp', name: 'Lamp', room: 'Living room' },
  { id: 'thermo-1', kind: 'thermometer', name: 'Thermometer', room: 'Living room', interval_ms: 1000 },
];

// The other ref's dashboard folder, extracted into a temp dir.
function extractRef() {
  const dir = tempDir('flatlink-bench-dash-');
  const tar = execFileSync('git', ['-C', repoRoot, 'archive', ref, 'cloud-server/dashboard'], { maxBuffer: 64 << 20 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  return path.join(dir, 'cloud-server', 'dashboard');
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function serve(label, dashboardDir) {
  const port = await freePort();
  const cloud = await startCloud({ port, flats: [flat], dashboardDir });
  const gateway = await startGateway({ port, flat: flat.id, gatewayId: `gw-${label.replace(/[^A-Za-z0-9]/g, "-")}`, token: flat.token, devices, latencyMs: 20 });
  return { label, port, cloud, gateway, url: `http://127.0.0.1:${port}/`, bytes: [], gzip: [], first: [], repeat: [], login: [] };
}

async function measure(browser, site) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
  const page = await context.newPage();
  const bodies = [];
  page.on('response', async (response) => {
    if (!response.url().startsWith(site.url)) return;
    try {
      bodies.push(await response.body());
      if (process.env.BENCH_URLS) console.log(site.label, response.url());
    } catch {
      // a redirect or an aborted request: no body
    }
  });
  const loadMs = () => page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    return nav.loadEventEnd - nav.startTime;
  });
  await page.goto(site.url, { waitUntil: 'load' });
  await page.waitForLoadState('networkidle');
  site.first.push(await loadMs());
  site.bytes.push(bodies.reduce((n, b) => n + b.length, 0));
  site.gzip.push(bodies.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0));

  await page.reload({ waitUntil: 'load' });
  site.repeat.push(await loadMs());

  const t0 = await page.evaluate(() => performance.now());
  await login(page, { flat: flat.id, user: 'demo', password: 'demo' });
  const shown = await page.waitForFunction(
    (n) => {
      const tiles = document.querySelectorAll('article[data-device][data-online="true"]');
      return tiles.length === n ? performance.now() : false;
    },
    devices.length,
    { polling: 'raf', timeout: 10_000 },
  );
  site.login.push((await shown.jsonValue()) - t0);
  await context.close();
}

const sites = [await serve('this tree', path.join(repoRoot, 'cloud-server', 'dashboard')), await serve(ref, extractRef())];
const browser = await launchBrowser();
try {
  for (const site of sites) await measure(browser, site); // warm-up, not counted
  for (const site of sites) for (const k of ['bytes', 'gzip', 'first', 'repeat', 'login']) site[k].length = 0;
  for (let i = 0; i < runs; i++) for (const site of sites) await measure(browser, site);
} finally {
  await browser.close();
  for (const site of sites) {
    await stop(site.gateway).catch(() => {});
    await stop(site.cloud).catch(() => {});
  }
}

const [mine, peer] = sites;
const rows = [
  ['bytes on a first load (as served)', 'bytes', (v) => `${(v / 1024).toFixed(1)} KiB`],
  ['the same gzip -9 (if precompressed)', 'gzip', (v) => `${(v / 1024).toFixed(1)} KiB`],
  ['first load (to the load event)', 'first', (v) => `${v.toFixed(0)} ms`],
  ['repeat visit (reload)', 'repeat', (v) => `${v.toFixed(0)} ms`],
  ['login to tiles shown', 'login', (v) => `${v.toFixed(0)} ms`],
];
const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
const md = [
  '<!-- dashboard:begin — written by bench/dashboard.mjs -->',
  '## Dashboard page weight and speed (issue 22)',
  '',
  `Measured ${when} UTC with \`FLATLINK_BUILD_DIR=build node bench/dashboard.mjs --runs ${runs}\`: this tree's dashboard beside ` +
    `\`${ref}\`'s (\`git archive\`), each served by its own flatlink-cloud with the same three sim devices, loaded in headless ` +
    `Chromium (Debian's) on loopback, the two pages alternating; medians of ${runs} runs after one warm-up each. Bytes: the bodies of ` +
    "every response to the page's own requests during a first load in a fresh profile (the HTML, CSS, modules and favicon; " +
    "not the service worker's precache of the shell, which runs after the load in the worker), as served today (uncompressed), " +
    'and what gzip -9 of the same bodies would be. Load: navigation start to the load event; a repeat visit of this tree goes ' +
    'through its service worker (network first). Login to tiles: the click on "Log in" to every ' +
    `device's tile shown online (includes the cloud's password hash check). Machine: ${os.cpus().length} CPUs, load average ` +
    `${os.loadavg().map((v) => v.toFixed(2)).join(' ')} at the end.`,
  '',
  `| what | this tree | ${ref} | ratio |`,
  '| --- | --- | --- | --- |',
];
for (const [name, key, fmt] of rows) {
  const a = median(mine[key]);
  const b = median(peer[key]);
  md.push(`| ${name} | ${fmt(a)} | ${fmt(b)} | ${(a / b).toFixed(2)} |`);
}
md.push('<!-- dashboard:end -->');
const text = md.join('\n');
console.log(text);
writeFileSync(path.join(repoRoot, 'bench', 'dashboard.md'), `${text}\n`);
const doc = path.join(repoRoot, 'docs', 'benchmarks.md');
if (existsSync(doc)) {
  const old = readFileSync(doc, 'utf8');
  const re = /<!-- dashboard:begin[\s\S]*?<!-- dashboard:end -->\n?/;
  const next = re.test(old) ? old.replace(re, `${text}\n`) : old.replace(/\n## How the figures are made/, `\n${text}\n\n## How the figures are made`);
  writeFileSync(doc, next);
}
