// Pairing instead of copied tokens (issue 24, finding 7; docs/operations.md, "First run"):
// the operator makes a one-time code (`flatlink-cloud admin pair-code FLAT`), `flatlinkd pair
// URL CODE` gets the flat's token over HTTPS and writes the config; the gateway then connects
// and its devices reach a browser. A wrong, an expired and a reused code are refused with a
// clear error and change nothing; an untrusted certificate and an unreachable cloud too;
// wrong codes are throttled. Real binaries, a TLS cloud with a SQLite store on loopback.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { browser, cloudConfig, demoDevices, startCloud, startGateway, stop } from './flatlink.mjs';
import { binaries, freePort, makeCa, makeServerCert, run, tempDir, waitFor } from './harness.mjs';

let dir;
let caFile;
let otherCa;
let cfg;
let cloud;
const flat = 'flat-p';

function admin(args, input) {
  return run(binaries.cloud, ['--config', cfg.file, 'admin', ...args], { input });
}

async function pairCode(seconds) {
  const r = await admin(['pair-code', flat, ...(seconds ? [String(seconds)] : [])]);
  assert.equal(r.code, 0, r.stderr);
  const code = r.stdout.trim();
  assert.match(code, /^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$/);
  return code;
}

// A gateway config as the package leaves it before pairing: devices, no cloud, no token.
function unpairedGateway() {
  const gw = tempDir('flatlink-pair-gw-');
  const file = path.join(gw, 'gateway.json');
  writeFileSync(file, JSON.stringify({
    gateway_id: 'gw-pair', state_dir: gw,
    adapters: [{ type: 'sim', latency_ms: 10, seed: 1, devices: demoDevices() }],
  }, null, 2));
  return { dir: gw, file };
}

function pair(gw, code, { ca = caFile, url = `https://127.0.0.1:${cfg.port}` } = {}) {
  return run(binaries.gateway, ['pair', '--config', gw.file, ...(ca ? ['--ca', ca] : []), '--no-start', url, code]);
}

before(async () => {
  dir = tempDir('flatlink-pair-');
  caFile = makeCa(dir, 'test-ca');
  otherCa = makeCa(dir, 'other-ca');
  const tls = makeServerCert(dir, 'test-ca');
  cfg = await cloudConfig([], { tls, extra: { store: { engine: 'sqlite', path: path.join(dir, 'store.db'), poll_ms: 5000 } } });
  for (const args of [['flat', 'add', flat, 'Flat P'], ['user', 'add', 'paula'], ['member', 'add', flat, 'paula', 'owner']]) {
    const r = await admin(args, 'pw-paula\n');
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  cloud = await startCloud(cfg);
});

after(async () => {
  if (cloud) await stop(cloud);
});

test('a code made by the operator pairs the gateway: config and token written, the devices reach a browser', async () => {
  const code = await pairCode();
  const gw = unpairedGateway();
  const r = await pair(gw, code.toLowerCase()); // typed in lower case: still the code
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`paired with flat ${flat}`));
  const written = JSON.parse(readFileSync(gw.file, 'utf8'));
  assert.equal(written.flat, flat);
  assert.equal(written.cloud.url, `wss://127.0.0.1:${cfg.port}/`);
  assert.equal(written.cloud.token_file, 'gateway-token.txt');
  assert.equal(written.cloud.ca_file, path.join(gw.dir, 'cloud-ca.pem'));
  assert.equal(written.adapters[0].devices.length, 3, 'the devices stay');
  const tokenFile = path.join(gw.dir, 'gateway-token.txt');
  assert.match(readFileSync(tokenFile, 'utf8'), /^[0-9a-f]{64}\n$/);
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  assert.equal(statSync(gw.file).mode & 0o007, 0, 'the config is not world-readable');
  assert.ok(!cloud.lines.some((l) => l.includes(readFileSync(tokenFile, 'utf8').trim())), 'the token is never logged');

  // The cloud admits the new token at once (no wait for the store's 5 s poll).
  const gateway = await startGateway({ file: gw.file }, { timeoutMs: 10_000 });
  try {
    const peer = await browser(cfg.port, { flat, user: 'paula', password: 'pw-paula', scheme: 'wss', options: { ca: readFileSync(caFile) } });
    const snapshot = await waitFor(() => {
      const s = peer.messages.find((m) => m.type === 'snapshot' && m.devices?.length === 3) ??
        (peer.of('device').length >= 3 ? peer.of('snapshot')[0] : null);
      return s;
    }, 10_000, { message: 'the paired flat\'s three devices in the browser' }).catch(async () => {
      // The snapshot may have come before the gateway's hello: the devices then arrive live.
      peer.close();
      const again = await browser(cfg.port, { flat, user: 'paula', password: 'pw-paula', scheme: 'wss', options: { ca: readFileSync(caFile) } });
      return again.next('snapshot', (m) => m.devices?.length === 3);
    });
    assert.deepEqual(snapshot.devices.map((d) => d.id).sort(), ['door-1', 'lamp-1', 'thermo-1']);
    peer.close();
  } finally {
    await stop(gateway);
  }

  // The same code once more: used.
  const again = await pair(unpairedGateway(), code);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /HTTP 403.*code already used/);
});

test('a wrong and an expired code are refused with a clear error and write nothing', async () => {
  const gw = unpairedGateway();
  const before = readFileSync(gw.file, 'utf8');
  const wrong = await pair(gw, 'ABCD-EFGH');
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /the cloud refused \(HTTP 403\): unknown code/);
  const code = await pairCode(1);
  await new Promise((resolve) => setTimeout(resolve, 1200)); // the code's own 1 s lifetime
  const expired = await pair(gw, code);
  assert.equal(expired.code, 1);
  assert.match(expired.stderr, /HTTP 403\): expired code/);
  const garbage = await pair(gw, 'not-a-code!');
  assert.equal(garbage.code, 1);
  assert.match(garbage.stderr, /HTTP 400\): code: not a pairing code/);
  assert.equal(readFileSync(gw.file, 'utf8'), before);
  assert.ok(!existsSync(path.join(gw.dir, 'gateway-token.txt')));
});

test('an untrusted certificate and an unreachable cloud are named, nothing is written', async () => {
  const gw = unpairedGateway();
  const code = await pairCode();
  const untrusted = await pair(gw, code, { ca: otherCa });
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /the cloud's certificate is not trusted \(.*\): give the CA that signed it with --ca FILE/);
  const noCa = await pair(gw, code, { ca: null }); // the system's CAs do not know the test CA
  assert.equal(noCa.code, 1);
  assert.match(noCa.stderr, /not trusted/);
  const closed = await pair(gw, code, { url: `https://127.0.0.1:${await freePort()}` });
  assert.equal(closed.code, 1);
  assert.match(closed.stderr, /cannot reach the cloud at 127\.0\.0\.1:\d+: Connection refused/);
  const plain = await pair(gw, code, { url: `http://127.0.0.1:${cfg.port}` });
  assert.equal(plain.code, 2);
  assert.match(plain.stderr, /must start with https/);
  assert.ok(!existsSync(path.join(gw.dir, 'gateway-token.txt')));
  // The code was never spent: it still pairs.
  assert.equal((await pair(gw, code)).code, 0);
});

test('wrong codes from one address are throttled: then even a right code waits (429)', async () => {
  const gw = unpairedGateway();
  const code = await pairCode();
  let last;
  for (let i = 0; i < 6; ++i) last = await pair(gw, 'ZZZZ-ZZZZ');
  assert.match(last.stderr, /HTTP 429\): too many wrong codes: try again in \d+ s/);
  const right = await pair(gw, code);
  assert.equal(right.code, 1);
  assert.match(right.stderr, /HTTP 429/);
  assert.ok(cloud.lines.some((l) => /pair.*refused: too many wrong codes/.test(l)));
});

test('flatlink-cloud status, backup while running, restore only when stopped', async () => {
  const status = await run(binaries.cloud, ['--config', cfg.file, 'status']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`127\\.0\\.0\\.1:${cfg.port} \\(TLS\\): accepting connections`));
  assert.match(status.stdout, /links: \d+ gateways, \d+ browsers/);
  assert.match(status.stdout, /store: sqlite .*store\.db, schema version (\d+) of \1, 1 flats, 1 with a gateway token/);

  const backups = tempDir('flatlink-cloud-backups-');
  const backup = await run(binaries.cloud, ['--config', cfg.file, 'backup', backups]);
  assert.equal(backup.code, 0, backup.stderr);
  const folder = backup.stdout.trim();
  assert.ok(folder.startsWith(backups));
  assert.equal(statSync(folder).mode & 0o777, 0o700);
  assert.ok(existsSync(path.join(folder, 'cloud.json')) && existsSync(path.join(folder, 'cloud.db')));

  assert.equal((await admin(['flat', 'add', 'flat-after', 'After the backup'])).code, 0);
  const refused = await run(binaries.cloud, ['--config', cfg.file, 'restore', folder]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /the cloud is running .*: stop it first/);

  await stop(cloud);
  cloud = null;
  const down = await run(binaries.cloud, ['--config', cfg.file, 'status']);
  assert.equal(down.code, 1);
  assert.match(down.stdout, /not running/);
  const restored = await run(binaries.cloud, ['--config', cfg.file, 'restore', folder]);
  assert.equal(restored.code, 0, restored.stderr);
  const flats = await admin(['flat', 'list']);
  assert.match(flats.stdout, new RegExp(`^${flat}\\t`, 'm'));
  assert.doesNotMatch(flats.stdout, /flat-after/, 'the store is the backup\'s');
});
