// The README's first command, scripts/demo.sh, on a free port with the binaries already
// built: it serves the dashboard, a browser can log in and see the three sim devices, and
// Ctrl-C (SIGINT) stops everything with exit code 0.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';

import WebSocket from 'ws';

import { buildDir, repoRoot, startProcess, stop, waitFor } from '../integration/harness.mjs';
import { freePort } from './fixture.mjs';

let demo;
after(async () => {
  if (demo && demo.exitCode === null) await stop(demo, 'SIGINT').catch(() => {});
});

// Resolves with the first snapshot that satisfies want(), over a fresh browser login.
function loginAndWait(port, want, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'flatlink-browser.v1');
    const seen = [];
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no matching snapshot within ${timeoutMs} ms; got ${JSON.stringify(seen).slice(0, 800)}`));
    }, timeoutMs);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'login', flat: 'flat-a', user: 'demo', password: 'demo' })));
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      seen.push(msg);
      if (msg.type === 'snapshot' && want(msg)) {
        clearTimeout(timer);
        ws.close(1000);
        resolve(msg);
      }
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

test('the demo starts, serves the dashboard, lets the demo user in, and stops on Ctrl-C', async () => {
  const port = await freePort();
  demo = await startProcess('bash', [path.join(repoRoot, 'scripts', 'demo.sh')], {
    env: { FLATLINK_DEMO_PORT: String(port), FLATLINK_DEMO_SKIP_BUILD: '1', FLATLINK_BUILD_DIR: buildDir },
    readyPattern: 'The demo is running',
    timeoutMs: 15_000,
  });
  const banner = demo.output();
  assert.ok(banner.includes(`http://127.0.0.1:${port}/`), `the dashboard's address is printed:\n${banner}`);
  assert.match(banner, /flat "flat-a", user "demo", password "demo"/);

  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), 'ok\n');
  const index = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  assert.match(await index.text(), /<script type="module" src="app.js">/);

  const snapshot = await loginAndWait(port, (s) => s.gateway_online && s.devices.length === 3);
  assert.equal(snapshot.flat, 'flat-a');
  assert.deepEqual(snapshot.devices.map((d) => d.id).sort(), ['door-1', 'lamp-1', 'thermo-1']);

  assert.equal(await stop(demo, 'SIGINT', { timeoutMs: 15_000 }), 0, demo.output());
  const out = demo.output();
  assert.match(out, /flatlink-cloud stopped \(exit code 0\)/, out);
  assert.match(out, /flatlinkd stopped \(exit code 0\)/, out);
  // Nothing is left listening.
  await waitFor(
    () => fetch(`http://127.0.0.1:${port}/healthz`).then(() => false, () => true),
    2000,
    { message: 'the port is free again' },
  );
});
