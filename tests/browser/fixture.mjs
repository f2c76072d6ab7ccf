// What the browser tests share: the real flatlink-cloud and flatlinkd on free loopback
// ports with configs written to temp folders (through ../integration/harness.mjs), Debian's
// headless Chromium driven by playwright-core, logging in, and screenshots kept under
// $FLATLINK_BUILD_DIR/screenshots for CI.
import { mkdirSync } from 'node:fs';
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
export async function startCloud({ port, flats, configFile, logLevel = 'info' } = {}) {
  if (!configFile) {
    const config = {
      listen_address: '127.0.0.1',
      port,
      log_level: logLevel,
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

export const desktop = { width: 1280, height: 800 };
export const phone = { width: 390, height: 844 };

// A fresh page (own context: own storage) that fails the test on a page error, and
// collects console errors in page.problems.
export async function openPage(browser, url, viewport = desktop) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, colorScheme: 'light' });
  context.setDefaultTimeout(5000);
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console error: ${msg.text()}`);
  });
  // Any request to another host would mean the page needs the network (a CDN): refuse it.
  const origin = new URL(url).origin;
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith('data:')) return route.continue();
    page.problems.push(`request to another host: ${u}`);
    return route.abort();
  });
  await page.goto(url);
  return page;
}

export async function login(page, { flat, user, password }) {
  await page.getByLabel('Flat', { exact: true }).fill(flat);
  await page.getByLabel('User', { exact: true }).fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
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
    outcome: (capability) => card.locator(`.control[data-capability="${capability}"] .outcome`),
    reading: (key) => card.locator(`dd[data-key="${key}"]`),
    chart: (capability) => card.locator(`figure.chart[data-capability="${capability}"]`),
  };
}
