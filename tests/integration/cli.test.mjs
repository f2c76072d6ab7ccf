// The command line both daemons share (README "Command line"), through the real
// executables: options, exit codes (0 ok, 1 invalid config or failure, 2 bad
// command line) and config errors that name the JSON path.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { binaries, examplesDir, freePort, run, sha256hex, tempDir, writeTempConfig } from './harness.mjs';

const daemons = [
  { name: 'flatlinkd', binary: binaries.gateway, example: path.join(examplesDir, 'demo-gateway.json') },
  { name: 'flatlink-cloud', binary: binaries.cloud, example: path.join(examplesDir, 'demo-cloud.json') },
];

function output(result) {
  return `exit ${result.code}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
}

for (const daemon of daemons) {
  describe(`${daemon.name} command line`, () => {
    test('the binary is built', () => {
      assert.ok(existsSync(daemon.binary), `${daemon.binary} does not exist: build first (scripts/build.sh)`);
    });

    test('--version prints the name and version and exits 0', async () => {
      const r = await run(daemon.binary, ['--version']);
      assert.equal(r.code, 0, output(r));
      assert.match(r.stdout, new RegExp(`^${daemon.name} 0\\.1\\.0$`, 'm'), output(r));
    });

    test('--help describes the options and exits 0', async () => {
      const r = await run(daemon.binary, ['--help']);
      assert.equal(r.code, 0, output(r));
      for (const option of ['--config', '--check-config', '--log-level', '--version']) {
        assert.ok(r.stdout.includes(option), `--help does not mention ${option}\n${output(r)}`);
      }
    });

    test('an unknown option exits 2 and names it', async () => {
      const r = await run(daemon.binary, ['--no-such-option']);
      assert.equal(r.code, 2, output(r));
      assert.match(r.stderr, /--no-such-option/, output(r));
      assert.equal(r.stdout, '', output(r));
    });

    test('--log-level with a bad level exits 2', async () => {
      const r = await run(daemon.binary, ['--log-level', 'loud', '--version']);
      assert.equal(r.code, 2, output(r));
      assert.match(r.stderr, /--log-level/, output(r));
    });

    test('--config without a path exits 2', async () => {
      const r = await run(daemon.binary, ['--config']);
      assert.equal(r.code, 2, output(r));
      assert.match(r.stderr, /--config/, output(r));
    });

    test('--check-config accepts the example configuration', async () => {
      const r = await run(daemon.binary, ['--config', daemon.example, '--check-config']);
      assert.equal(r.code, 0, output(r));
      assert.match(r.stdout, /valid/, output(r));
    });

    test('a missing config file exits 1 and names the path', async () => {
      const missing = path.join(tempDir(), 'no-such-config.json');
      const r = await run(daemon.binary, ['--config', missing, '--check-config']);
      assert.equal(r.code, 1, output(r));
      assert.ok(r.stderr.includes(missing), `stderr does not name ${missing}\n${output(r)}`);
    });

    test('a config that is not JSON exits 1', async () => {
      const file = await writeTempConfig('{"port": 80,,}');
      const r = await run(daemon.binary, ['--config', file, '--check-config']);
      assert.equal(r.code, 1, output(r));
      assert.ok(r.stderr.includes(path.basename(file)), `stderr does not name the file\n${output(r)}`);
    });
  });
}

async function gatewayConfig(overrides = {}) {
  return {
    gateway_id: 'gw-test',
    flat: 'flat-a',
    cloud: { url: `ws://127.0.0.1:${await freePort()}/`, token: 'test-token-1' },
    adapters: [{ type: 'sim', devices: [{ id: 'lamp1', kind: 'lamp' }] }],
    ...overrides,
  };
}

describe('config errors name the JSON path', () => {
  test('flatlinkd: a serial baud of the wrong type', async () => {
    const file = await writeTempConfig(
      await gatewayConfig({ adapters: [{ type: 'serial', name: 'u', port: '/dev/ttyUSB0', baud: 'fast' }] }),
    );
    const r = await run(binaries.gateway, ['--config', file, '--check-config']);
    assert.equal(r.code, 1, output(r));
    assert.match(r.stderr, /adapters\[0\]\.baud: expected one of/, output(r));
    assert.equal(r.stdout, '', output(r));
  });

  test('flatlinkd: an unknown key is refused', async () => {
    const file = await writeTempConfig({ ...(await gatewayConfig()), gatway_id: 'typo' });
    const r = await run(binaries.gateway, ['--config', file, '--check-config']);
    assert.equal(r.code, 1, output(r));
    assert.match(r.stderr, /gatway_id/, output(r));
  });

  test('flatlinkd: a valid minimal config passes --check-config', async () => {
    const file = await writeTempConfig(await gatewayConfig());
    const r = await run(binaries.gateway, ['--config', file, '--check-config']);
    assert.equal(r.code, 0, output(r));
  });

  test('flatlink-cloud: a port out of range', async () => {
    const file = await writeTempConfig({
      port: 70000,
      flats: [{ id: 'flat-a', gateway_token_sha256: sha256hex('test-token-1'), users: [] }],
    });
    const r = await run(binaries.cloud, ['--config', file, '--check-config']);
    assert.equal(r.code, 1, output(r));
    assert.match(r.stderr, /port: expected/, output(r));
  });

  test('flatlink-cloud: a gateway token hash that is not hex', async () => {
    const file = await writeTempConfig({ flats: [{ id: 'flat-a', gateway_token_sha256: 'secret' }] });
    const r = await run(binaries.cloud, ['--config', file, '--check-config']);
    assert.equal(r.code, 1, output(r));
    assert.match(r.stderr, /flats\[0\]\.gateway_token_sha256: expected/, output(r));
    // The value given may be a token pasted by mistake: it must not be echoed.
    assert.ok(!r.stderr.includes('secret'), output(r));
  });
});

describe('flatlink-cloud helper commands', () => {
  test('hash-token prints the sha256 hex of the token read on stdin', async () => {
    const r = await run(binaries.cloud, ['hash-token'], { input: 'test-token-1\n' });
    assert.equal(r.code, 0, output(r));
    assert.equal(r.stdout.trim(), sha256hex('test-token-1'), output(r));
  });

  test('hash-password prints an Argon2id hash (m=19 MiB, t=2, p=1)', async () => {
    const r = await run(binaries.cloud, ['hash-password'], { input: 'demo\n' });
    assert.equal(r.code, 0, output(r));
    assert.match(r.stdout.trim(), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/, output(r));
    assert.ok(!r.stdout.includes('demo'), output(r));
  });

  test('an unknown sub-command exits 2', async () => {
    const r = await run(binaries.cloud, ['frobnicate']);
    assert.equal(r.code, 2, output(r));
  });
});
