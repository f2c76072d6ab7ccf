// A cloud that takes the TCP connection but never answers the upgrade (an
// overloaded one, or a black hole): the gateway gives up within its dead-peer
// bound, or when libwebsockets does (5 s), and tries again, instead of waiting
// for the kernel or for ever.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';

import { demoDevices, gatewayConfig } from './flatlink.mjs';
import { binaries, startProcess, stop, waitFor } from './harness.mjs';

let silent, gw;
after(async () => {
  if (gw) await stop(gw).catch(() => {});
  silent?.close();
});

const sockets = [];
before(async () => {
  silent = net.createServer((socket) => sockets.push(socket)); // accepts, never answers
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
});

async function startAgainstSilentCloud(cloud) {
  const cfg = gatewayConfig({
    id: 'gw-s', flat: 'flat-s', token: 'token-of-flat-s-0123456789', url: `ws://127.0.0.1:${silent.address().port}/`,
    devices: demoDevices(), cloud,
  });
  return startProcess(binaries.gateway, ['--config', cfg.file], { readyPattern: 'connecting to' });
}

test('a connection that never opens is given up after ping + pong seconds and retried', async () => {
  gw = await startAgainstSilentCloud({ ping_interval_s: 1, pong_timeout_s: 1 });
  const t0 = Date.now();
  const line = await gw.waitForLine(/down \(no answer within 2 s\)/, 8000);
  const took = Date.now() - t0;
  assert.ok(took >= 1500 && took < 6000, `gave up after ${took} ms: ${line}`);
  await waitFor(() => gw.lines.filter((l) => l.includes('connecting to')).length >= 2, 5000);
  // The log line comes before the connect: give the second attempt time to arrive.
  await waitFor(() => sockets.length >= 2, 5000, { message: 'a second connection attempt at the server' });
  for (const s of sockets) s.destroy();
});

// libwebsockets ends an upgrade that got no answer after 5 s without telling the link it
// failed (only that the connection is destroyed): the link must notice and retry then. It
// used to wait for its own ping + pong bound and then touch the freed connection.
test('an upgrade that libwebsockets gives up on (after 5 s) is retried then, not after the ping + pong bound', async () => {
  await stop(gw);
  const seen = sockets.length;
  gw = await startAgainstSilentCloud({ ping_interval_s: 30, pong_timeout_s: 30 });
  const t0 = Date.now();
  const line = await gw.waitForLine(/down \(closed before the WebSocket upgrade was answered\)/, 15_000);
  const took = Date.now() - t0;
  assert.ok(took < 10_000, `gave up after ${took} ms: ${line}`);
  await waitFor(() => sockets.length >= seen + 2, 5000, { message: 'a second connection attempt at the server' });
  for (const s of sockets) s.destroy();
});
