// Old password hashes are upgraded at the next good login (#19, "Passwords"): a user whose
// stored hash is PBKDF2 logs in, and the store then holds an Argon2id hash of the same
// password (made on the password-check pool, written by the store's worker); the browser
// stays open across the accounts' change, the next login works, a wrong password changes
// nothing. Accounts in the config file cannot be rewritten: one WARN per account per start
// names the account and `flatlink-cloud hash-password`, never the password or the hash.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { browser, cloudConfig, flatA, startCloud, stop } from './flatlink.mjs';
import { tempDir, waitFor } from './harness.mjs';

// The legacy form flatlink-cloud's hash-password made before Argon2id (cloud-server/auth.h).
function pbkdf2Hash(password, iterations = 100_000) {
  const salt = randomBytes(16);
  const hash = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  return `pbkdf2-sha256$${iterations}$${salt.toString('hex')}$${hash.toString('hex')}`;
}

// A cloud config whose only user (flat A's alice) has a PBKDF2 hash.
async function legacyConfig(extra) {
  const cfg = await cloudConfig([flatA], { extra: { login: { delay_base_ms: 10, delay_max_ms: 20 }, ...extra } });
  const legacy = pbkdf2Hash(flatA.password);
  cfg.config.flats[0].users[0].password_hash = legacy;
  writeFileSync(cfg.file, JSON.stringify(cfg.config, null, 2));
  return { cfg, legacy };
}

// Logs in; resolves with the open peer on `snapshot`, or the `error` code and close code.
async function login(port, password) {
  const peer = await browser(port);
  peer.send({ type: 'login', flat: flatA.id, user: flatA.user, password });
  const msg = await waitFor(() => peer.messages.find((m) => m.type === 'snapshot' || m.type === 'error'), 10_000, { message: 'an answer to the login' });
  if (msg.type === 'snapshot') return { peer };
  await peer.waitClosed(5000);
  return { error: msg.code, closed: peer.closed.code };
}

const secretsIn = (lines, ...secrets) => lines.filter((l) => secrets.some((s) => l.includes(s)));

describe('a PBKDF2 hash in the store', () => {
  const dbFile = path.join(tempDir('flatlink-rehash-'), 'cloud.db');
  const stored = () => {
    const r = spawnSync('sqlite3', [dbFile, `SELECT password_hash FROM users WHERE name = '${flatA.user}'`], { encoding: 'utf8' });
    assert.equal(r.status, 0, `sqlite3 (Debian package sqlite3, scripts/install-deps.sh): ${r.stderr ?? r.error}`);
    return r.stdout.trim();
  };
  let cfg, legacy, cloud;
  before(async () => {
    ({ cfg, legacy } = await legacyConfig({ store: { engine: 'sqlite', path: dbFile, poll_ms: 200 } }));
    cloud = await startCloud(cfg);
  });
  after(async () => stop(cloud));

  test('is Argon2id after the next good login (not after a wrong one); the browser stays; the next login works', async () => {
    await cloud.waitForLine(/the store has no flats: 1 flats, 1 users imported/);
    assert.equal(stored(), legacy);

    const wrong = await login(cfg.port, 'not-the-password');
    assert.equal(wrong.error, 'unauthorized');
    assert.equal(stored(), legacy, 'a wrong password changed the stored hash');

    const { peer } = await login(cfg.port, flatA.password);
    assert.ok(peer, 'the right password is refused with a PBKDF2 hash');
    const upgraded = await cloud.waitForLine(/login: flat=flat-a user="alice" password hash upgraded to Argon2id in the store/, 5000).catch(() => null);
    const now = stored();
    assert.match(now, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'the stored hash after a good login');
    assert.ok(upgraded, 'no log line says the hash was upgraded');
    // The store's change reaches this instance at its next poll; the browser that just logged
    // in is not closed as for a changed password.
    const since = cloud.lines.indexOf(upgraded);
    const applied = await waitFor(() => cloud.lines.slice(since).find((l) => /store: accounts version [0-9]+: /.test(l)), 3000, { message: "the store's change applied" });
    assert.match(applied, /1 flats \(0 added, 0 removed, 0 with a new gateway token, 0 with changed users\)/);
    // A round trip after it: a close sent at the change would have come before this answer.
    peer.send({ type: 'command', id: 'c-1', device: 'lamp-1', set: { on: true } });
    await waitFor(() => peer.closed || peer.of('result').length, 5000, { message: 'a result or a close' });
    assert.equal(peer.closed, null, `the browser was closed: ${JSON.stringify(peer.closed)}`);

    const again = await login(cfg.port, flatA.password);
    assert.ok(again.peer, 'the next login with the Argon2id hash failed');
    again.peer.close();
    const wrongAfter = await login(cfg.port, 'still-not-it');
    assert.equal(wrongAfter.error, 'unauthorized');
    assert.equal(stored(), now, 'a wrong password changed the stored hash');
    assert.equal(cloud.lines.filter((l) => /password hash upgraded/.test(l)).length, 1, 'rehashed more than once');
    assert.deepEqual(secretsIn(cloud.lines, flatA.password, legacy, now, legacy.split('$')[3]), []);
    peer.close();
  });
});

describe('a PBKDF2 hash in the config file (no store)', () => {
  let cfg, legacy, cloud;
  before(async () => {
    ({ cfg, legacy } = await legacyConfig({}));
    cloud = await startCloud(cfg);
  });
  after(async () => stop(cloud));

  test('is not rewritten: one WARN per account per start names hash-password, never the password or the hash', async () => {
    const before = readFileSync(cfg.file, 'utf8');
    for (let i = 0; i < 3; i++) {
      const { peer } = await login(cfg.port, flatA.password);
      assert.ok(peer, `login ${i + 1} with the PBKDF2 hash failed`);
      peer.close();
    }
    await cloud.waitForLine(/WARN login: flat=flat-a user="alice" .*flatlink-cloud hash-password/, 3000);
    const warns = cloud.lines.filter((l) => /WARN login: flat=flat-a user="alice" .*hash-password/.test(l));
    assert.equal(warns.length, 1, warns.join('\n'));
    assert.equal(readFileSync(cfg.file, 'utf8'), before);
    assert.deepEqual(secretsIn(cloud.lines, flatA.password, legacy, legacy.split('$')[3]), []);
  });
});
