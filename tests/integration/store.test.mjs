// The cloud's store through the real binaries (docs/operations.md, "The store"): an empty
// store is seeded from the config's flats; `flatlink-cloud admin` changes reach the running
// cloud within a second (a new user logs in, a guest may not command, a revoked gateway and
// a removed user are cut off); the same on a PostgreSQL server started for this file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { browser, cloudConfig, flatA, rawGateway, startCloud, stop } from './flatlink.mjs';
import { binaries, freePort, repoRoot, run, tempDir } from './harness.mjs';

const pgScript = path.join(repoRoot, 'tests', 'postgres.sh');

function admin(cfg, args, input) {
  return run(binaries.cloud, ['--config', cfg.file, 'admin', ...args], { input });
}

async function adminOk(cfg, args, input) {
  const r = await admin(cfg, args, input);
  assert.equal(r.code, 0, `admin ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

// Tries a login until it succeeds (the cloud reads the store's change counter every poll_ms).
async function loginSoon(port, flat, user, password, withinMs) {
  const start = Date.now();
  for (;;) {
    const peer = await browser(port);
    peer.send({ type: 'login', flat, user, password });
    const got = await Promise.race([peer.next('snapshot', () => true, 2000).then(() => 'ok'), peer.waitClosed(2000).then(() => 'closed')]);
    if (got === 'ok') return { peer, ms: Date.now() - start };
    if (Date.now() - start > withinMs) throw new Error(`${user} could not log in within ${withinMs} ms`);
  }
}

function suite(engine, storeSection) {
  describe(`the store on ${engine}`, () => {
    let cfg;
    let cloud;
    before(async (t) => {
      const store = await storeSection();
      if (!store) return;
      cfg = await cloudConfig([flatA], { extra: { store: { poll_ms: 200, ...store } } });
      cloud = await startCloud(cfg);
    });
    after(async () => {
      if (cloud) await stop(cloud);
    });

    test('an empty store is seeded from the config; admin changes reach the running cloud within a second', async (t) => {
      if (!cloud) return t.skip('PostgreSQL is not installed');
      assert.ok(cloud.lines.some((l) => /the store has no flats: 1 flats, 1 users imported/.test(l)));
      const seeded = await browser(cfg.port, { flat: flatA.id, user: flatA.user, password: flatA.password });
      assert.equal(seeded.of('snapshot')[0].flat, flatA.id);

      await adminOk(cfg, ['user', 'add', 'gina'], 'pw-gina\n');
      await adminOk(cfg, ['member', 'add', flatA.id, 'gina', 'guest']);
      const { peer: guest, ms } = await loginSoon(cfg.port, flatA.id, 'gina', 'pw-gina', 3000);
      assert.ok(ms < 1500, `a new user logged in after ${ms} ms`);
      guest.send({ type: 'command', id: 'g-1', device: 'lamp-1', set: { on: true } });
      // offline flat: the guest is refused before anything else is looked at
      const result = await guest.next('result');
      assert.equal(result.outcome, 'rejected');
      assert.match(result.message, /^forbidden: /);

      await adminOk(cfg, ['user', 'remove', 'gina']);
      const t0 = Date.now();
      await guest.waitClosed(3000);
      assert.equal(guest.closed.code, 4003);
      assert.ok(Date.now() - t0 < 1500);
    });

    test('a rotated gateway token is refused and the link that used the old one is closed at once', async (t) => {
      if (!cloud) return t.skip('PostgreSQL is not installed');
      const gw = await rawGateway(cfg.port, flatA.token);
      gw.send({ type: 'hello', gateway: 'gw-a', version: '0.1.0', devices: [], next_seq: 1, dropped: 0 });
      await gw.next('ack');
      const token = await adminOk(cfg, ['gateway', 'rotate', flatA.id]);
      assert.match(token, /^[0-9a-f]{64}$/);
      await gw.waitClosed(3000);
      assert.equal(gw.closed.code, 4003);
      await assert.rejects(rawGateway(cfg.port, flatA.token)); // the old token: refused at the upgrade
      const fresh = await rawGateway(cfg.port, token);
      fresh.send({ type: 'hello', gateway: 'gw-a', version: '0.1.0', devices: [], next_seq: 1, dropped: 0 });
      await fresh.next('ack');
      fresh.close();
    });

    test('admin refuses bad input with a clear error and changes nothing', async (t) => {
      if (!cloud) return t.skip('PostgreSQL is not installed');
      const r = await admin(cfg, ['member', 'add', flatA.id, flatA.user, 'king']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /a role is owner, member or guest/);
      const dup = await admin(cfg, ['flat', 'add', flatA.id, 'again']);
      assert.equal(dup.code, 1);
      assert.match(await adminOk(cfg, ['member', 'list', flatA.id]), new RegExp(`${flatA.user}\\towner`));
    });
  });
}

suite('SQLite', async () => ({ engine: 'sqlite', path: path.join(tempDir('flatlink-store-'), 'cloud.db') }));

let pgDir = null;
suite('PostgreSQL', async () => {
  if (spawnSync(pgScript, ['available']).status !== 0) return null;
  pgDir = mkdtempSync('/tmp/flatlink-pg-'); // directly in /tmp: the postgres user must reach it
  const port = await freePort();
  const started = spawnSync(pgScript, ['start', pgDir, String(port)], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(started.status, 0, `tests/postgres.sh start: ${started.stderr}`);
  return { engine: 'postgresql', url: `host=127.0.0.1 port=${port} user=flatlink dbname=postgres` };
});
after(() => {
  if (pgDir) spawnSync(pgScript, ['stop', pgDir], { timeout: 60_000 });
});
