// What the browser tests share: the real flatlink-cloud and flatlinkd on free loopback
// ports with configs written to temp folders (through ../integration/harness.mjs), Debian's
// headless Chromium driven by playwright-core, logging in, and screenshots kept under
// $FLATLINK_BUILD_DIR/screenshots for CI.
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { chromium } from 'playwright-core';

import {
  binaries,
  buildDir,
  freePort,
  run,
  sha256hex,
  startProcess,
  stop,
  tempDir,
  writeTempConfig,
} from '../integration/harness.mjs';

export const screenshotDir = path.join(buildDir, 'screenshots');
export const chromiumPath = process.env.FLATLINK_CHROMIUM || '/usr/bin/chromium';

const hashes = new Map();
// users[].password_hash for a password, from the cloud's own helper.
export async function hashPassword(password) {
  if (!hashes.has(password)) {
    const r = await run(binaries.cloud, ['hash-password'], { input: `${password}\n` });
    if (r.code !== 0) throw new Error(`hash-password failed: ${r.stderr}`);
    hashes.set(password, r.stdout.trim());
  }
  return hashes.get(password);
}

// flats: [{ id, name, token, users: [{ name, password }] }]. Resolves once it listens.
// Restarting on the same port: pass the same `configFile` back as { configFile }.
// limits: the config's "limits" object (e.g. { command_timeout_ms: 1000 }).
// dashboardDir: serve the dashboard from there (the config's dashboard_dir).
// store: true (or a store section) for sessions, roles and the event log: an SQLite file in
// a temp folder, kept across restarts with the same configFile; without it, no store.
export async function startCloud({ port, flats, configFile, logLevel = 'info', limits, dashboardDir, store, backplane } = {}) {
  if (!configFile) {
    const config = {
      listen_address: '127.0.0.1',
      port,
      log_level: logLevel,
      ...(limits ? { limits } : {}),
      ...(store ? { store: { path: path.join(tempDir('flatlink-store-'), 'cloud.db'), poll_ms: 200, ...(store === true ? {} : store) } } : {}),
      ...(dashboardDir ? { dashboard_dir: dashboardDir } : {}),
      ...(backplane ? { backplane } : {}),
      flats: await Promise.all(
        flats.map(async (f) => ({
          id: f.id,
          name: f.name,
          gateway_token_sha256: sha256hex(f.token),
          users: await Promise.all(f.users.map(async (u) => ({ name: u.name, password_hash: await hashPassword(u.password) }))),
        })),
      ),
    };
    configFile = await writeTempConfig(config, { name: 'cloud.json' });
  }
  const proc = await startProcess(binaries.cloud, ['--config', configFile], { readyPattern: 'listening on' });
  proc.configFile = configFile;
  return proc;
}

// A gateway with simulated devices, reconnecting quickly. The same stateDir across
// restarts keeps its sequence numbers, as on a real gateway.
export async function startGateway({ port, flat, gatewayId, token, devices, stateDir, seed = 1, latencyMs = 20 }) {
  const config = {
    gateway_id: gatewayId,
    flat,
    state_dir: stateDir ?? tempDir('flatlink-gw-'),
    log_level: 'info',
    cloud: { url: `ws://127.0.0.1:${port}/`, token, backoff_base_ms: 100, backoff_max_ms: 500 },
    adapters: [{ type: 'sim', latency_ms: latencyMs, seed, devices }],
  };
  const configFile = await writeTempConfig(config, { name: 'gateway.json' });
  const proc = await startProcess(binaries.gateway, ['--config', configFile], { readyPattern: 'streaming from there' });
  proc.stateDir = config.state_dir;
  return proc;
}

export { freePort, stop };

// `flatlink-cloud admin …` against a running cloud's config (its store): resolves with stdout.
export async function admin(cloud, args, input) {
  const r = await run(binaries.cloud, ['--config', cloud.configFile, 'admin', ...args], { input });
  if (r.code !== 0) throw new Error(`admin ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

// fakeMedia: Chromium's fake microphone and no permission prompt (audio tests); a WAV file
// for the microphone to play instead of its beeps.
export async function launchBrowser({ fakeMedia = false, fakeAudioFile } = {}) {
  const media = fakeMedia
    ? [
        '--use-fake-device-for-media-stream',
        '--use-fake-ui-for-media-stream',
        '--autoplay-policy=no-user-gesture-required',
        ...(fakeAudioFile ? [`--use-file-for-fake-audio-capture=${fakeAudioFile}`] : []),
      ]
    : [];
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      ...media,
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

// A browser with a profile of its own on disk (not incognito, as newContext's are): what
// Chromium's installability check and a service worker's life want. Close the context
// returned (its .page is open at url).
export async function launchProfile(url, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await chromium.launchPersistentContext(tempDir('flatlink-profile-'), {
    executablePath: chromiumPath,
    viewport,
    deviceScaleFactor: 1,
    colorScheme: 'light',
    locale: 'en-US',
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context.setDefaultTimeout(5000);
  const page = context.pages()[0] || (await context.newPage());
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(`page error: ${err.message}`));
  await page.goto(url);
  context.page = page;
  return context;
}

export const desktop = { width: 1280, height: 800 };
export const phone = { width: 390, height: 844 };

// A fresh page (own context: own storage) that fails the test on a page error, and
// collects console errors in page.problems. locale: the browser's language (en-US unless
// said); colorScheme: 'light' or 'dark'.
// guard: false leaves out the route that refuses other hosts (a route keeps requests away
// from a service worker).
export async function openPage(browser, url, viewport = desktop, { locale = 'en-US', colorScheme = 'light', guard = true } = {}) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, colorScheme, locale });
  context.setDefaultTimeout(5000);
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // A refused login (401) and a cloud without sessions (404) are answers, not faults.
    if (new URL(msg.location().url || url, url).pathname === '/session' && /status of 40[14]/.test(msg.text())) return;
    page.problems.push(`console error: ${msg.text()}`);
  });
  // Any request to another host would mean the page needs the network (a CDN): refuse it.
  const origin = new URL(url).origin;
  if (guard) await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith('data:')) return route.continue();
    page.problems.push(`request to another host: ${u}`);
    return route.abort();
  });
  await page.goto(url);
  return page;
}

export async function login(page, { flat, user, password }) {
  await page.locator('#login-flat').fill(flat);
  await page.locator('#login-user').fill(user);
  await page.locator('#login-password').fill(password);
  await page.locator('#login-submit').click();
}

// axe-core (npm, pinned) run in the page: resolves with its violations, each as
// "rule: target, ...". Evaluated through the debugger, so the page's CSP does not apply.
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
export async function axeViolations(page) {
  const loaded = await page.evaluate(() => typeof window.axe === 'object');
  if (!loaded) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  return violations;
}

// Saves $FLATLINK_BUILD_DIR/screenshots/<name>.png (transitions finished). crop: only
// down to the end of the content, not the empty rest of the window.
export async function screenshot(page, name, { crop = false } = {}) {
  mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, `${name}.png`);
  const options = { path: file, fullPage: true, animations: 'disabled' };
  if (crop) {
    const [width, bottom] = await page.evaluate(() => [
      document.documentElement.clientWidth,
      Math.ceil(document.querySelector('main').getBoundingClientRect().bottom),
    ]);
    options.clip = { x: 0, y: 0, width, height: bottom };
  }
  await page.screenshot(options);
  return file;
}

// Locators of one device's card and its parts.
export function device(page, id) {
  const card = page.locator(`article[data-device="${id}"]`);
  return {
    card,
    presence: card.locator('.presence'),
    control: (capability) => card.locator(`.control[data-capability="${capability}"]`),
    outcome: (capability) => card.locator(`output.outcome[data-capability="${capability}"]`),
    details: card.locator('details.tile-details'),
    // Opens the tile's detail view (brightness, the lock's choice, history, last seen).
    openDetails: async () => {
      if (!(await card.locator('details.tile-details').evaluate((d) => d.open))) await card.locator('summary').click();
    },
    reading: (key) => card.locator(`dd[data-key="${key}"]`),
    chart: (capability) => card.locator(`figure.chart[data-capability="${capability}"]`),
  };
}
