// The dashboard's weight and speed as served (the build's staged copy: a gzip variant beside
// each compressible file, sent with Content-Encoding to a browser that accepts it) beside the
// same page uncompressed (the cloud's dashboard_dir at the unstaged source folder, which has
// no .gz files; or, with --ref, another git ref's dashboard folder), each served by its own
// flatlink-cloud with the same sim devices, loaded in headless Chromium (Debian's, through
// tests/browser's playwright-core). Per page: bytes transferred on a first load (the bodies as
// sent, encoded) and the same bodies decoded; first load and repeat visit (navigation start to
// the load event); login to tiles shown (the click to every device's tile online). Medians of
// --runs runs, alternating the two pages.
// Writes bench/dashboard.md and its section of docs/benchmarks.md.
//   FLATLINK_BUILD_DIR=build node bench/dashboard.mjs [--runs 7] [--ref main]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { buildDir, repoRoot, tempDir } from '../tests/integration/harness.mjs';
import { freePort, launchBrowser, login, startCloud, startGateway, stop } from '../tests/browser/fixture.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const runs = Number(opt('runs', 7));
const ref = opt('ref', null); // the peer: another ref's dashboard; default the unstaged source folder

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
  return { label, port, cloud, gateway, url: `http://127.0.0.1:${port}/`, bytes: [], decoded: [], first: [], repeat: [], login: [] };
}

async function measure(browser, site) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
  const page = await context.newPage();
  const bodies = []; // per response: [bytes as sent (encoded), bytes decoded]
  page.on('response', async (response) => {
    if (!response.url().startsWith(site.url)) return;
    try {
      const decoded = (await response.body()).length;
      const sizes = await response.request().sizes();
      bodies.push([sizes.responseBodySize, decoded]);
      if (process.env.BENCH_URLS) console.log(site.label, response.url(), sizes.responseBodySize, decoded);
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
  site.bytes.push(bodies.reduce((n, [sent]) => n + sent, 0));
  site.decoded.push(bodies.reduce((n, [, decoded]) => n + decoded, 0));

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

const staged = path.join(buildDir, 'dashboard');
if (!existsSync(path.join(staged, 'app.js.gz'))) throw new Error(`${staged} has no .gz files: build first (scripts/build.sh)`);
const peerName = ref ? `${ref} (uncompressed)` : 'uncompressed';
const sites = [
  await serve('compressed', staged),
  await serve(peerName, ref ? extractRef() : path.join(repoRoot, 'cloud-server', 'dashboard')),
];
const browser = await launchBrowser();
try {
  for (const site of sites) await measure(browser, site); // warm-up, not counted
  for (const site of sites) for (const k of ['bytes', 'decoded', 'first', 'repeat', 'login']) site[k].length = 0;
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
  ['bytes transferred on a first load (bodies as sent)', 'bytes', (v) => `${(v / 1024).toFixed(1)} KiB`],
  ['the same bodies decoded', 'decoded', (v) => `${(v / 1024).toFixed(1)} KiB`],
  ['first load (to the load event)', 'first', (v) => `${v.toFixed(0)} ms`],
  ['repeat visit (reload)', 'repeat', (v) => `${v.toFixed(0)} ms`],
  ['login to tiles shown', 'login', (v) => `${v.toFixed(0)} ms`],
];
const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
const md = [
  '<!-- dashboard:begin — written by bench/dashboard.mjs -->',
  '## Dashboard page weight and speed (issue 22)',
  '',
  `Measured ${when} UTC with \`FLATLINK_BUILD_DIR=build node bench/dashboard.mjs --runs ${runs}${ref ? ` --ref ${ref}` : ''}\`: the ` +
    "dashboard as the build stages it (a `.gz` made by `gzip -9 -n` beside each HTML, JS, CSS, JSON and SVG file, sent " +
    'with `Content-Encoding: gzip` to a browser that accepts it) beside ' +
    (ref ? `\`${ref}\`'s dashboard (\`git archive\`), ` : 'the same files uncompressed (the cloud\'s `dashboard_dir` at the unstaged source folder, which has no `.gz`), ') +
    'each served by its own flatlink-cloud with the same three sim devices, loaded in headless ' +
    `Chromium (Debian's) on loopback, the two pages alternating; medians of ${runs} runs after one warm-up each. Bytes: the bodies of ` +
    "every response to the page's own requests during a first load in a fresh profile (the HTML, CSS, modules and favicon; " +
    "not the service worker's precache of the shell, which runs after the load in the worker), as sent (Playwright's " +
    '`responseBodySize`, the encoded body) and decoded. Load: navigation start to the load event; a repeat visit goes ' +
    'through the service worker (network first), the files kept by the browser with their ETags (`no-cache`: asked again on each visit). ' +
    'Login to tiles: the click on "Log in" to every ' +
    `device's tile shown online (includes the cloud's password hash check). Machine: ${os.cpus().length} CPUs, load average ` +
    `${os.loadavg().map((v) => v.toFixed(2)).join(' ')} at the end.`,
  '',
  `| what | compressed | ${peerName} | ratio |`,
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
