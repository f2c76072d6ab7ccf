// flatlinkd and flatlink-cloud under systemd's notify protocol (Type=notify): the
// test owns the unix datagram socket named by NOTIFY_SOCKET and reads what each
// daemon says: READY=1 once the loop runs, STATUS= lines, periodic WATCHDOG=1,
// STOPPING=1 on SIGTERM, and no more WATCHDOG=1 once the loop hangs (the test-only
// fault switch FLATLINK_TEST_FAULTS=1 + SIGUSR2).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { cloudConfig, demoDevices, flatA, gatewayConfig, startCloud } from './flatlink.mjs';
import { binaries, notifySocket, startProcess, stop, tempDir, waitFor } from './harness.mjs';

const WATCHDOG_USEC = 300_000; // pings expected every 150 ms

function notifyEnv(sock) {
  return { NOTIFY_SOCKET: sock.address, WATCHDOG_USEC: String(WATCHDOG_USEC), FLATLINK_TEST_FAULTS: '1' };
}

// Watchdog pings arrive regularly, then stop for good once SIGUSR2 hangs the loop.
async function checkWatchdogStopsOnHang(proc, sock) {
  await waitFor(() => sock.fields('WATCHDOG=1').length >= 4, 5000, { message: 'four WATCHDOG=1 pings' });
  const pings = sock.fields('WATCHDOG=1').map((m) => m.t);
  const gaps = pings.slice(1).map((t, i) => t - pings[i]);
  assert.ok(Math.max(...gaps) < WATCHDOG_USEC / 1000, `pings within the watchdog period, gaps ${gaps}`);
  proc.kill('SIGUSR2');
  await proc.waitForLine('hanging the event loop now');
  const hungAt = Date.now();
  const countAtHang = sock.fields('WATCHDOG=1').length;
  // Three watchdog periods of silence (one ping may have been on its way).
  await new Promise((r) => setTimeout(r, (3 * WATCHDOG_USEC) / 1000));
  assert.ok(sock.fields('WATCHDOG=1').length <= countAtHang + 1, 'no watchdog pings from a hung loop');
  assert.ok(Date.now() - hungAt >= (3 * WATCHDOG_USEC) / 1000);
  // A hung loop does not even stop on SIGTERM: systemd would SIGABRT/SIGKILL it.
  assert.equal(await stop(proc, 'SIGKILL'), 137);
}

describe('systemd notify protocol', () => {
  let cloudCfg;
  let dir;
  before(async () => {
    dir = tempDir('flatlink-notify-');
    cloudCfg = await cloudConfig([flatA]);
  });

  test('the cloud says READY, its link count, WATCHDOG while alive, STOPPING on SIGTERM (abstract socket)', async () => {
    const sock = await notifySocket(`@flatlink-test-${process.pid}-cloud`);
    after(() => sock.close());
    const cloud = await startProcess(binaries.cloud, ['--config', cloudCfg.file], {
      env: notifyEnv(sock),
      readyPattern: 'listening on',
    });
    await waitFor(() => sock.has('READY=1'), 5000, { message: 'READY=1' });
    assert.ok(sock.has('STATUS=0 gateways, 0 browsers'));
    const gwCfg = gatewayConfig({ id: 'gw-a', flat: 'flat-a', token: flatA.token, url: `ws://127.0.0.1:${cloudCfg.port}/`, devices: demoDevices() });
    const gw = await startProcess(binaries.gateway, ['--config', gwCfg.file], { readyPattern: 'streaming from there' });
    await waitFor(() => sock.has('STATUS=1 gateways, 0 browsers'), 5000, { message: 'STATUS with one gateway' });
    await waitFor(() => sock.fields('WATCHDOG=1').length >= 3, 5000, { message: 'WATCHDOG=1 pings' });
    assert.equal(await stop(gw), 0);
    assert.equal(await stop(cloud), 0);
    // The datagram was sent before the exit, but the helper may read it a moment later.
    await waitFor(() => sock.has('STOPPING=1'), 2000, { message: 'STOPPING=1' });
    const stopping = sock.fields('STOPPING=1');
    assert.equal(stopping.length, 1);
    assert.ok(sock.fields('READY=1')[0].t < stopping[0].t);
  });

  test('the gateway says READY, its link state, WATCHDOG while alive, STOPPING on SIGTERM (socket path)', async () => {
    const cloud = await startCloud(cloudCfg);
    const sock = await notifySocket(path.join(dir, 'gw.sock'));
    after(() => sock.close());
    const gwCfg = gatewayConfig({ id: 'gw-a', flat: 'flat-a', token: flatA.token, url: `ws://127.0.0.1:${cloudCfg.port}/`, devices: demoDevices() });
    const gw = await startProcess(binaries.gateway, ['--config', gwCfg.file], {
      env: notifyEnv(sock),
      readyPattern: 'streaming from there',
    });
    await waitFor(() => sock.has('READY=1'), 5000, { message: 'READY=1' });
    await waitFor(() => sock.fields('STATUS=link up;').length > 0, 5000, { message: 'STATUS=link up' });
    assert.match(sock.fields('STATUS=link up')[0].field, /^STATUS=link up; \d+ statuses waiting$/);
    // The cloud goes away: the status line says so.
    assert.equal(await stop(cloud), 0);
    await waitFor(() => sock.fields('STATUS=link down;').length > 0, 5000, { message: 'STATUS=link down' });
    await waitFor(() => sock.fields('WATCHDOG=1').length >= 3, 5000, { message: 'WATCHDOG=1 pings' });
    assert.equal(await stop(gw), 0);
    await waitFor(() => sock.has('STOPPING=1'), 2000, { message: 'STOPPING=1' });
    assert.equal(sock.fields('STOPPING=1').length, 1);
  });

  test('a hung gateway loop stops its watchdog pings', async () => {
    const sock = await notifySocket(path.join(dir, 'gw-hang.sock'));
    after(() => sock.close());
    const gwCfg = gatewayConfig({ id: 'gw-a', flat: 'flat-a', token: flatA.token, url: `ws://127.0.0.1:${cloudCfg.port}/`, devices: demoDevices() });
    const gw = await startProcess(binaries.gateway, ['--config', gwCfg.file], {
      env: notifyEnv(sock),
      readyPattern: 'test fault switches are on',
    });
    await checkWatchdogStopsOnHang(gw, sock);
  });

  test('a hung cloud loop stops its watchdog pings', async () => {
    const sock = await notifySocket(path.join(dir, 'cloud-hang.sock'));
    after(() => sock.close());
    const cloud = await startProcess(binaries.cloud, ['--config', cloudCfg.file], {
      env: notifyEnv(sock),
      readyPattern: 'listening on',
    });
    await checkWatchdogStopsOnHang(cloud, sock);
  });

  test('without FLATLINK_TEST_FAULTS, SIGUSR2 is no fault switch', async () => {
    const sock = await notifySocket(path.join(dir, 'cloud-nofault.sock'));
    after(() => sock.close());
    const cloud = await startProcess(binaries.cloud, ['--config', cloudCfg.file], {
      env: { NOTIFY_SOCKET: sock.address, WATCHDOG_USEC: String(WATCHDOG_USEC) },
      readyPattern: 'listening on',
    });
    assert.ok(!cloud.output().includes('test fault'));
    await waitFor(() => sock.has('READY=1'), 5000, { message: 'READY=1' });
    assert.equal(await stop(cloud, 'SIGUSR2'), 128 + 12); // default action: terminate
  });

  test('without NOTIFY_SOCKET the daemons say nothing about systemd', async () => {
    const cloud = await startCloud(cloudCfg);
    assert.ok(!cloud.output().includes('notifying systemd'));
    assert.equal(await stop(cloud), 0);
  });
});
