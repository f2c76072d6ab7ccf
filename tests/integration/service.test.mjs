// flatlinkd and flatlink-cloud under systemd's notify protocol (Type=notify): the
// test owns the unix datagram socket named by NOTIFY_SOCKET and reads what each
// daemon says: READY=1 once the loop runs, STATUS= lines, periodic WATCHDOG=1,
// STOPPING=1 on SIGTERM, and no more WATCHDOG=1 once the loop hangs (the test-only
// fault switch FLATLINK_TEST_FAULTS=1 + SIGUSR2).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { cloudConfig, demoDevices, flatA, gatewayConfig, startCloud } from './flatlink.mjs';
import { binaries, notifySocket, run, startProcess, stop, tempDir, waitFor } from './harness.mjs';

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

// `flatlinkd status` (issue 24, finding 7): the running daemon answers on
// <state_dir>/flatlinkd.sock with its link, outbox, counted losses and devices.
describe('flatlinkd status', () => {
  test('answers from the running daemon: link up, the outbox, each adapter with its devices; fails clearly when it is not running', async () => {
    const cloudCfg = await cloudConfig([flatA]);
    const cloud = await startCloud(cloudCfg);
    const gw = gatewayConfig({ id: 'gw-status', flat: flatA.id, token: flatA.token, url: `ws://127.0.0.1:${cloudCfg.port}/`, devices: demoDevices() });
    const notRunning = await run(binaries.gateway, ['status', '--config', gw.file]);
    assert.equal(notRunning.code, 1, notRunning.stdout + notRunning.stderr);
    assert.match(notRunning.stderr, /no answer from a running flatlinkd .*flatlinkd\.sock.*systemctl status flatlinkd/);
    const gateway = await startProcess(binaries.gateway, ['--config', gw.file], { readyPattern: 'streaming from there' });
    try {
      const r = await waitFor(async () => {
        const answer = await run(binaries.gateway, ['status', '--config', gw.file]);
        return answer.code === 0 && /door-1 online/.test(answer.stdout) && answer;
      }, 10_000, { intervalMs: 200, message: 'flatlinkd status showing the devices online' });
      assert.match(r.stdout, /^gateway gw-status \(flat flat-a\): link up$/m);
      assert.match(r.stdout, /^outbox: \d+ statuses waiting, 0 lost \(counted\)$/m);
      assert.match(r.stdout, /^link control queue: 0 presence or stream messages dropped \(statuses and results never are\)$/m);
      assert.match(r.stdout, /^  sim: 3 devices$/m);
      for (const id of ['lamp-1', 'thermo-1', 'door-1']) assert.match(r.stdout, new RegExp(`^    ${id} online$`, 'm'));
      assert.equal(await stop(cloud), 0);
      const down = await waitFor(async () => {
        const answer = await run(binaries.gateway, ['status', '--config', gw.file]);
        return /link down/.test(answer.stdout) && answer;
      }, 10_000, { intervalMs: 200, message: 'flatlinkd status showing the link down' });
      assert.equal(down.code, 0);
    } finally {
      assert.equal(await stop(gateway), 0);
      if (cloud.exitCode === null) await stop(cloud);
    }
  });
});

// `flatlinkd backup DIR` / `flatlinkd restore FOLDER` (issue 24, finding 7).
describe('flatlinkd backup and restore', () => {
  test('backup while running copies config, token and a consistent outbox into DIR; restore refuses a running daemon, then puts them back', async () => {
    const cloudCfg = await cloudConfig([flatA]);
    const cloud = await startCloud(cloudCfg);
    const gw = gatewayConfig({ id: 'gw-backup', flat: flatA.id, token: flatA.token, url: `ws://127.0.0.1:${cloudCfg.port}/`, devices: demoDevices() });
    const gateway = await startProcess(binaries.gateway, ['--config', gw.file], { readyPattern: 'streaming from there' });
    const dir = tempDir('flatlink-backup-');
    try {
      const b = await run(binaries.gateway, ['backup', dir, '--config', gw.file]);
      assert.equal(b.code, 0, b.stdout + b.stderr);
      // /tmp holds both the state and the backup here: the command says so.
      assert.match(b.stderr, /same device as .*prefer a folder on another disk/);
      const folder = b.stdout.trim();
      assert.ok(folder.startsWith(path.join(dir, 'flatlinkd-gw-backup-')), folder);
      assert.equal(readFileSync(path.join(folder, 'gateway.json'), 'utf8'), readFileSync(gw.file, 'utf8'));
      assert.equal(readFileSync(path.join(folder, 'gateway-token.txt'), 'utf8').trim(), flatA.token);
      assert.equal(statSync(path.join(folder, 'gateway-token.txt')).mode & 0o777, 0o600);
      assert.equal(readFileSync(path.join(folder, 'outbox.db')).subarray(0, 15).toString(), 'SQLite format 3');

      const refused = await run(binaries.gateway, ['restore', folder, '--config', gw.file]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /flatlinkd is running .*stop it first/);
      assert.equal(await stop(gateway), 0);

      rmSync(path.join(gw.dir, 'outbox.db'));
      writeFileSync(path.join(gw.dir, 'token.txt'), 'garbage\n');
      const restored = await run(binaries.gateway, ['restore', folder, '--config', gw.file]);
      assert.equal(restored.code, 0, restored.stdout + restored.stderr);
      assert.equal(readFileSync(path.join(gw.dir, 'token.txt'), 'utf8').trim(), flatA.token);
      assert.ok(existsSync(path.join(gw.dir, 'outbox.db')));
      const again = await startProcess(binaries.gateway, ['--config', gw.file], { readyPattern: 'streaming from there' });
      assert.equal(await stop(again), 0);
    } finally {
      if (gateway.exitCode === null) await stop(gateway);
      assert.equal(await stop(cloud), 0);
    }
  });
});
