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

// A browser's view over the WebSocket protocol: logs in, follows snapshot and devices
// messages, and can send a command and wait for its result.
function browserClient(port) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'flatlink-browser.v1');
  const view = { devices: [], gatewayOnline: false, messages: [] };
  const waiters = new Set();
  const check = () => {
    for (const w of waiters) {
      const value = w.test();
      if (value) {
        waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(value);
      }
    }
  };
  ws.on('open', () => ws.send(JSON.stringify({ type: 'login', flat: 'flat-a', user: 'demo', password: 'demo' })));
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data));
    view.messages.push(msg);
    if (msg.type === 'snapshot') {
      view.devices = msg.devices;
      view.gatewayOnline = msg.gateway_online;
    } else if (msg.type === 'devices') {
      view.devices = msg.devices;
    } else if (msg.type === 'gateway') {
      view.gatewayOnline = msg.online;
    }
    check();
  });
  // Resolves with test()'s first truthy value, checked on every message.
  view.until = (test, timeoutMs = 10_000, what = 'condition') =>
    new Promise((resolve, reject) => {
      const w = { test, resolve };
      w.timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`${what} not met within ${timeoutMs} ms; got ${JSON.stringify(view.messages).slice(-1500)}`));
      }, timeoutMs);
      waiters.add(w);
      check();
    });
  view.send = (msg) => ws.send(JSON.stringify(msg));
  view.close = () => ws.close(1000);
  ws.on('error', (err) => {
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve(Promise.reject(err));
    }
  });
  return view;
}

test('the demo starts, serves the dashboard, lets the demo user in, and stops on Ctrl-C', async () => {
  const port = await freePort();
  const mqttPort = await freePort();
  demo = await startProcess('bash', [path.join(repoRoot, 'scripts', 'demo.sh')], {
    env: {
      FLATLINK_DEMO_PORT: String(port),
      FLATLINK_DEMO_MQTT_PORT: String(mqttPort),
      FLATLINK_DEMO_SKIP_BUILD: '1',
      FLATLINK_BUILD_DIR: buildDir,
    },
    readyPattern: 'Press Ctrl-C to stop them', // the banner's last line: the whole banner is in
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

  const browser = browserClient(port);
  const snapshot = await browser.until(() => browser.messages.find((m) => m.type === 'snapshot'), 5000, 'a snapshot');
  assert.equal(snapshot.flat, 'flat-a');
  const simIds = ['door-1', 'lamp-1', 'thermo-1'];
  await browser.until(
    () => browser.gatewayOnline && simIds.every((id) => browser.devices.some((d) => d.id === id)),
    10_000,
    'the gateway online with the three sim devices',
  );
  if (/MQTT: +a Tasmota plug "demo-plug"/.test(banner)) {
    // The broker and the simulated plug run too: the plug is reached through the MQTT adapter.
    await browser.until(() => browser.devices.find((d) => d.id === 'demo-plug' && d.capabilities.some((c) => c.name === 'on')), 10_000, 'the plug with its switch');
    browser.send({ type: 'command', id: 'b-1', device: 'demo-plug', set: { on: true } });
    const result = await browser.until(() => browser.messages.find((m) => m.type === 'result' && m.id === 'b-1'), 10_000, 'the result');
    assert.equal(result.outcome, 'ok', JSON.stringify(result));
    await browser.until(() => browser.messages.find((m) => m.type === 'update' && m.device === 'demo-plug' && m.state.on === true), 5000, 'the plug on');
    assert.equal(browser.devices.length, 4);
  } else {
    assert.deepEqual(browser.devices.map((d) => d.id).sort(), simIds);
  }
  browser.close();

  assert.equal(await stop(demo, 'SIGINT', { timeoutMs: 15_000 }), 0, demo.output());
  const out = demo.output();
  assert.match(out, /flatlink-cloud stopped \(exit code 0\)/, out);
  assert.match(out, /flatlinkd stopped \(exit code 0\)/, out);
  assert.doesNotMatch(out, /did not stop within/, out);
  // Nothing is left listening.
  await waitFor(
    () => fetch(`http://127.0.0.1:${port}/healthz`).then(() => false, () => true),
    2000,
    { message: 'the port is free again' },
  );
});
