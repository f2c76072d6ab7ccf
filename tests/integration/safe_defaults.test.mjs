// Safe defaults of an installation (issue 24, findings 1 and 5): flatlink-cloud refuses the
// credentials published with the repository outside the demo, at start, in --check-config
// and on reload, naming the credential; and the built binary carries no build-machine path
// to the dashboard (an installed binary must not serve a stale checkout).
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { browser, cloudConfig, rawGateway, startCloud } from './flatlink.mjs';
import { binaries, buildDir, examplesDir, freePort, repoRoot, run, sha256hex, startProcess, stop, tempDir } from './harness.mjs';

const demoPasswordHash =
  'pbkdf2-sha256$100000$6a1f3c9e2b7d4a50c8e1f2a3b4c5d6e7$e65bcfaa0531992854bcfa3a983bc0f702608c340959b1c3a6d5dd2a66b1094a';

function writeCloud(config) {
  const dir = tempDir('flatlink-safe-');
  const file = path.join(dir, 'cloud.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

const flat = (extra = {}) => ({ id: 'flat-a', name: 'Flat A', gateway_token_sha256: sha256hex('a-token-of-our-own-0123'), users: [], ...extra });

describe('published demo credentials', () => {
  test('the shipped cloud.example.json next to TLS files is refused by --check-config, naming the demo token', async () => {
    const dir = tempDir('flatlink-safe-');
    copyFileSync(path.join(examplesDir, 'cloud.example.json'), path.join(dir, 'cloud.json'));
    mkdirSync(path.join(dir, 'tls'));
    writeFileSync(path.join(dir, 'tls/fullchain.pem'), 'cert');
    writeFileSync(path.join(dir, 'tls/privkey.pem'), 'key');
    const r = await run(binaries.cloud, ['--config', path.join(dir, 'cloud.json'), '--check-config']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /valid/);
    assert.match(r.stderr, /flats\[0\] \(flat-a\)\.gateway_token_sha256 is the published demo gateway token "demo-flat-a-token-change-me" is refused outside the demo/);
  });

  test('the demo login demo/demo is refused, also hashed again with a salt of its own on a cloud reachable from other hosts', async () => {
    for (const hash of [demoPasswordHash, (await import('./flatlink.mjs')).hashPassword]) {
      const passwordHash = typeof hash === 'string' ? hash : await hash('demo');
      const file = writeCloud({ listen_address: '0.0.0.0', port: 8443, flats: [flat({ users: [{ name: 'demo', password_hash: passwordHash }] })] });
      const r = await run(binaries.cloud, ['--config', file, '--check-config']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /flats\[0\] \(flat-a\)\.users\[0\] \(demo\)\.password_hash is the published demo/);
    }
    // On loopback only a re-hashed demo/demo is a test's own login (tests/browser use it).
    const local = writeCloud({ listen_address: '127.0.0.1', port: 8080, flats: [flat({ users: [{ name: 'demo', password_hash: await (await import('./flatlink.mjs')).hashPassword('demo') }] })] });
    assert.equal((await run(binaries.cloud, ['--config', local, '--check-config'])).code, 0);
  });

  test('the published token is refused at start: the cloud exits 1 with the reason and never listens', async () => {
    const port = await freePort();
    const file = writeCloud({ listen_address: '127.0.0.1', port, flats: [flat({ gateway_token_sha256: sha256hex('demo-flat-a-token-change-me') })] });
    const r = await run(binaries.cloud, ['--config', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /published demo gateway token "demo-flat-a-token-change-me"/);
    assert.doesNotMatch(r.stderr, /listening on/);
  });

  test('"demo": true allows them on loopback only', async () => {
    const demo = JSON.parse(readFileSync(path.join(examplesDir, 'demo-cloud.json'), 'utf8'));
    assert.equal(demo.demo, true);
    const ok = await run(binaries.cloud, ['--config', path.join(examplesDir, 'demo-cloud.json'), '--check-config']);
    assert.equal(ok.code, 0, ok.stderr);
    const file = writeCloud({ ...demo, listen_address: '0.0.0.0' });
    const r = await run(binaries.cloud, ['--config', file, '--check-config']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /demo: true \(the published demo credentials\) is only allowed on a loopback listen_address, got "0\.0\.0\.0"/);
  });

  test('a reload that brings in the demo token is refused and the running flats stay', async () => {
    const alice = { id: 'flat-a', token: 'token-of-flat-a-0123456789', user: 'alice', password: 'pw-alice' };
    const cfg = await cloudConfig([alice]);
    const cloud = await startCloud(cfg);
    try {
      (await browser(cfg.port, { flat: 'flat-a', user: 'alice', password: 'pw-alice' })).close();
      const next = { ...cfg.config, flats: [{ ...cfg.config.flats[0], gateway_token_sha256: sha256hex('demo-flat-a-token-change-me') }] };
      writeFileSync(cfg.file, JSON.stringify(next));
      cloud.kill('SIGHUP');
      const line = await cloud.waitForLine(/reload refused/);
      assert.match(line, /demo-flat-a-token-change-me/);
      // The running flat and its token stay: the gateway with the old token is let in.
      const gw = await rawGateway(cfg.port, alice.token);
      gw.close();
    } finally {
      assert.equal(await stop(cloud), 0);
    }
  });
});

describe('the dashboard is found from where the binary is', () => {
  test('the built flatlink-cloud holds no path to the source tree\'s dashboard', () => {
    // Only the dashboard's path: the debug information names the source files by their
    // absolute paths (RelWithDebInfo; unless ccache's base_dir makes them relative, which
    // is why this once passed here and failed on CI's checkout), and so may ASan's
    // metadata of globals. None of those is used to find files at run time.
    const bytes = readFileSync(binaries.cloud);
    const dashboard = path.join(repoRoot, 'cloud-server', 'dashboard');
    assert.equal(bytes.indexOf(Buffer.from(dashboard)), -1, `${binaries.cloud} has ${dashboard} compiled in`);
  });

  test('a copy of the binary outside the build tree does not serve the source tree\'s dashboard', async () => {
    // The installed layout: <prefix>/bin/flatlink-cloud, <prefix>/share/flatlink/dashboard.
    const prefix = tempDir('flatlink-prefix-');
    mkdirSync(path.join(prefix, 'bin'));
    mkdirSync(path.join(prefix, 'share/flatlink/dashboard'), { recursive: true });
    writeFileSync(path.join(prefix, 'share/flatlink/dashboard/index.html'), '<p>installed</p>');
    copyFileSync(binaries.cloud, path.join(prefix, 'bin/flatlink-cloud'));
    const cfg = await cloudConfig([]);
    const cloud = await startProcess(path.join(prefix, 'bin/flatlink-cloud'), ['--config', cfg.file], { readyPattern: 'listening on' });
    try {
      const line = cloud.lines.find((l) => /dashboard from/.test(l));
      assert.ok(line, cloud.output());
      assert.ok(line.endsWith(`dashboard from ${path.join(prefix, 'bin')}/../share/flatlink/dashboard`), line);
      const page = await (await fetch(`http://127.0.0.1:${cfg.port}/`)).text();
      assert.equal(page, '<p>installed</p>');
    } finally {
      assert.equal(await stop(cloud), 0);
    }
  });

  test('run from the build tree, it serves the build\'s staged dashboard (the source tree\'s files, each with its .gz)', async () => {
    const cfg = await cloudConfig([]);
    const cloud = await startCloud(cfg);
    try {
      assert.ok(cloud.lines.some((l) => l.endsWith(`dashboard from ${path.join(buildDir, 'dashboard')}`)), cloud.output());
    } finally {
      assert.equal(await stop(cloud), 0);
    }
  });
});
