// SIGHUP reloads the configuration of a running daemon: a good new config is
// applied without dropping links (new flats and users admitted, a rotated or
// removed token refused from then on, the log level changed), and a bad one is
// refused with the old config still running.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import {
  browser,
  cloudConfig,
  demoDevices,
  flatA,
  flatB,
  flatC,
  gatewayConfig,
  hashPassword,
  metrics,
  rawGateway,
  startCloud,
  startGateway,
  stop,
} from './flatlink.mjs';
import { binaries, sha256hex, startProcess, waitFor } from './harness.mjs';

async function flatEntry(f) {
  return {
    id: f.id,
    name: f.id,
    gateway_token_sha256: sha256hex(f.token),
    users: [{ name: f.user, password_hash: await hashPassword(f.password) }],
  };
}

// Sends SIGHUP and waits for the reload's outcome line (the nth of its kind).
async function hup(proc, pattern) {
  const before = proc.lines.filter((l) => pattern.test(l)).length;
  proc.kill('SIGHUP');
  await waitFor(() => proc.lines.filter((l) => pattern.test(l)).length > before, 5000, {
    message: `a log line matching ${pattern} after SIGHUP`,
  });
  return proc.lines.filter((l) => pattern.test(l)).at(-1);
}

describe('SIGHUP reload of flatlink-cloud', () => {
  let cfg;
  let cloud;
  let gwA;
  let gwB;
  before(async () => {
    cfg = await cloudConfig([flatA, flatB]);
    cloud = await startCloud(cfg);
    const url = `ws://127.0.0.1:${cfg.port}/`;
    gwA = await startGateway(gatewayConfig({ id: 'gw-a', flat: 'flat-a', token: flatA.token, url, devices: demoDevices('a-') }));
    gwB = await startGateway(gatewayConfig({ id: 'gw-b', flat: 'flat-b', token: flatB.token, url, devices: demoDevices('b-') }));
  });
  after(async () => {
    for (const p of [gwA, gwB, cloud]) if (p) await stop(p);
  });

  test('a good config adds a flat and a user, rotates a token and changes the log level without dropping other links', async () => {
    await assert.rejects(rawGateway(cfg.port, flatC.token)); // flat-c is not known yet
    const next = structuredClone(cfg.config);
    next.log_level = 'debug';
    next.flats.push(await flatEntry(flatC));
    // flat-a: a second user; flat-b: a new gateway token
    next.flats[0].users.push({ name: 'alex', password_hash: await hashPassword('pw-alex') });
    next.flats[1].gateway_token_sha256 = sha256hex('new-token-of-flat-b-0123456789');
    writeFileSync(cfg.file, JSON.stringify(next, null, 2));
    const line = await hup(cloud, /reload applied|reload refused/);
    assert.match(line, /reload applied: log_level debug; 3 flats \(1 added, 0 removed, 1 with a new gateway token, 1 with changed users\)/i);

    // flat-c's gateway is admitted now; alex may log in to flat-a
    const c = await rawGateway(cfg.port, flatC.token);
    c.send({ type: 'hello', gateway: 'raw-c', version: '0', devices: [], next_seq: 1 });
    assert.equal((await c.next('ack')).seq, 0);
    c.close();
    const alex = await browser(cfg.port, { flat: 'flat-a', user: 'alex', password: 'pw-alex' });
    alex.close();
    // flat-b's old token is refused from now on: its gateway was closed and cannot come back
    await gwB.waitForLine('4003');
    await assert.rejects(rawGateway(cfg.port, flatB.token));
    const ok = await rawGateway(cfg.port, 'new-token-of-flat-b-0123456789');
    ok.close();
    // flat-a's gateway link was never dropped
    assert.equal(gwA.lines.filter((l) => l.includes('link down')).length, 0);
    const m = await metrics(cfg.port);
    assert.equal(m.flatlink_replaced_gateways_total ?? 0, 0);
    // debug lines now appear
    assert.ok(cloud.lines.some((l) => / debug /i.test(l) || l.includes('DEBUG')), 'debug logging is on');
  });

  test('a bad config is refused and the running config stays', async () => {
    const good = structuredClone(JSON.parse((await import('node:fs')).readFileSync(cfg.file, 'utf8')));
    writeFileSync(cfg.file, '{ "port": "not a number", ');
    const line = await hup(cloud, /reload applied|reload refused/);
    assert.match(line, /reload refused, still running the previous config: .*cloud\.json/);
    // an invalid field, not just broken JSON
    writeFileSync(cfg.file, JSON.stringify({ ...good, flats: [{ id: 'x' }] }));
    assert.match(await hup(cloud, /reload applied|reload refused/), /reload refused/);
    // everything from the last good config still works
    const c = await rawGateway(cfg.port, flatC.token);
    c.close();
    const alex = await browser(cfg.port, { flat: 'flat-a', user: 'alex', password: 'pw-alex' });
    alex.close();
    assert.equal(gwA.lines.filter((l) => l.includes('link down')).length, 0);
    // removing a flat closes its links and refuses its token
    writeFileSync(cfg.file, JSON.stringify({ ...good, flats: good.flats.filter((f) => f.id !== 'flat-c') }));
    const c2 = await rawGateway(cfg.port, flatC.token);
    assert.match(await hup(cloud, /reload applied|reload refused/), /1 removed/);
    assert.equal((await c2.waitClosed()).code, 4003);
    await assert.rejects(rawGateway(cfg.port, flatC.token));
  });
});

describe('SIGHUP reload of flatlinkd', () => {
  test('the log level applies at once, other changes wait for a restart, a bad config is refused; the link stays up', async () => {
    const cfg = await cloudConfig([flatA]);
    const cloud = await startCloud(cfg);
    const gwCfg = gatewayConfig({ id: 'gw-a', flat: 'flat-a', token: flatA.token, url: `ws://127.0.0.1:${cfg.port}/`, devices: demoDevices() });
    const gw = await startGateway(gwCfg);
    try {
      writeFileSync(gwCfg.file, JSON.stringify({ ...gwCfg.config, log_level: 'debug' }, null, 2));
      assert.match(await hup(gw, /reload applied|reload refused/), /reload applied: log_level debug; nothing else changed/i);

      writeFileSync(gwCfg.file, JSON.stringify({ ...gwCfg.config, log_level: 'warn', command_timeout_ms: 1234 }, null, 2));
      assert.match(await hup(gw, /reload applied|reload refused/), /log_level warn; other changes .* wait for a restart/i);

      writeFileSync(gwCfg.file, JSON.stringify({ ...gwCfg.config, adapters: 'none' }, null, 2));
      assert.match(await hup(gw, /reload applied|reload refused/), /reload refused, still running the previous config: .*adapters/);
      writeFileSync(gwCfg.file, '{');
      assert.match(await hup(gw, /reload applied|reload refused/), /reload refused/);

      // still streaming on the same link
      const a = await browser(cfg.port, { flat: 'flat-a', user: 'alice', password: 'pw-alice' });
      await a.next('update', (m) => m.device === 'thermo-1');
      a.close();
      assert.equal(gw.lines.filter((l) => l.includes('link down')).length, 0);
      assert.equal(gw.exitCode, null);
    } finally {
      assert.equal(await stop(gw), 0);
      assert.equal(await stop(cloud), 0);
    }
  });
});

describe('SIGHUP as soon as flatlink-cloud says it listens', () => {
  test('reloads instead of ending the process (the handler is in place before "listening on")', async () => {
    const cfg = await cloudConfig([flatA]);
    const cloud = await startProcess(binaries.cloud, ['--config', cfg.file]);
    try {
      await cloud.waitForLine(/listening on/);
      cloud.kill('SIGHUP');
      await cloud.waitForLine(/reload applied/, 5000);
      assert.equal(cloud.exitCode, null, 'still running after the SIGHUP');
    } finally {
      assert.equal(await stop(cloud), 0);
    }
  });
});
