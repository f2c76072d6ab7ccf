// Takes the dashboard's screenshots for README.md and docs/dashboard.md with headless
// Chromium against the real flatlink-cloud and flatlinkd (sim devices): desktop and phone,
// light and dark, into docs/screenshots/. Not a test; run it after a build:
//   FLATLINK_BUILD_DIR=build node tests/browser/screenshots.mjs
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { repoRoot, waitFor } from '../integration/harness.mjs';
import { desktop, device, freePort, launchBrowser, login, openPage, phone, startCloud, startGateway, stop } from './fixture.mjs';

const outDir = path.join(repoRoot, 'docs', 'screenshots');
const flat = { id: 'flat-a', name: 'Demo flat', token: 'token-of-flat-a', users: [{ name: 'demo', password: 'demo' }] };
const devices = [
  { id: 'door-1', kind: 'lock', name: 'Front door', room: 'Hall' },
  { id: 'lamp-1', kind: 'lamp', name: 'Ceiling light', room: 'Living room' },
  { id: 'lamp-2', kind: 'lamp', name: 'Reading lamp', room: 'Living room' },
  { id: 'thermo-1', kind: 'thermometer', name: 'Thermometer', room: 'Living room', interval_ms: 250, initial: 21.5 },
  { id: 'thermo-2', kind: 'thermometer', name: 'Balcony', interval_ms: 250, initial: 8 },
];
const port = await freePort();
const cloud = await startCloud({ port, flats: [flat] });
const gateway = await startGateway({ port, flat: 'flat-a', gatewayId: 'gw-a', token: flat.token, devices, latencyMs: 20 });
const browser = await launchBrowser();
mkdirSync(outDir, { recursive: true });

try {
  // Put the flat into an interesting state once: the door unlocked, the ceiling light on.
  const setup = await openPage(browser, `http://127.0.0.1:${port}/`, desktop);
  await login(setup, { flat: 'flat-a', user: 'demo', password: 'demo' });
  await waitFor(async () => (await setup.locator('#gateway-link').getAttribute('data-state')) === 'online', 10_000);
  await setup.getByRole('switch', { name: 'Ceiling light power' }).click();
  await waitFor(async () => (await setup.getByRole('switch', { name: 'Ceiling light power' }).getAttribute('aria-checked')) === 'true', 5000);
  await setup.getByRole('button', { name: 'Front door: unlock' }).click();
  await setup.locator('#confirm-ok').click();
  await waitFor(async () => (await device(setup, 'door-1').card.getAttribute('data-look')) === 'alert', 5000);
  await setup.context().close();

  for (const [view, viewport] of [['desktop', desktop], ['phone', phone]]) {
    for (const scheme of ['light', 'dark']) {
      const page = await openPage(browser, `http://127.0.0.1:${port}/`, viewport, { colorScheme: scheme });
      await login(page, { flat: 'flat-a', user: 'demo', password: 'demo' });
      await waitFor(async () => (await page.locator('#gateway-link').getAttribute('data-state')) === 'online', 10_000);
      await waitFor(async () => Number(await device(page, 'thermo-1').chart('temperature').getAttribute('data-points')) >= 12, 10_000);
      if (view === 'desktop') await device(page, 'thermo-1').openDetails();
      await page.evaluate(() => document.activeElement?.blur());
      const file = path.join(outDir, `dashboard-${view}-${scheme}.png`);
      const bottom = await page.evaluate(() => Math.ceil(document.querySelector('main').getBoundingClientRect().bottom));
      await page.screenshot({ path: file, animations: 'disabled', clip: { x: 0, y: 0, width: viewport.width, height: Math.min(bottom, viewport.height * 1.2) } });
      console.log(file);
      await page.context().close();
    }
  }
} finally {
  await browser.close();
  await stop(gateway);
  await stop(cloud);
}
