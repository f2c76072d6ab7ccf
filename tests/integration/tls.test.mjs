// wss:// between gateway and cloud with certificates made at test time: the
// gateway verifies the server by default and says why when it refuses one.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { browser, cloudConfig, demoDevices, gatewayConfig, startCloud, startGateway, stop } from './flatlink.mjs';
import { startProcess, binaries, makeCa, makeServerCert, tempDir } from './harness.mjs';

const flat = { id: 'flat-t', token: 'token-of-flat-t-0123456789', user: 'tess', password: 'pw-tess' };

describe('wss:// with certificate verification', () => {
  let dir, caFile, otherCa, cloudCfg, cloud;
  const started = [];

  before(async () => {
    dir = tempDir('flatlink-tls-');
    caFile = makeCa(dir, 'test-ca');
    otherCa = makeCa(dir, 'other-ca');
    const tls = makeServerCert(dir, 'test-ca');
    cloudCfg = await cloudConfig([flat], { tls });
    cloud = await startCloud(cloudCfg);
    assert.ok(cloud.output().includes(`listening on wss://127.0.0.1:${cloudCfg.port}/`));
  });

  after(async () => {
    for (const p of [...started, cloud]) await stop(p).catch(() => {});
  });

  test('a gateway that trusts the CA connects over wss:// and its statuses reach a browser over wss://', async () => {
    const gwCfg = gatewayConfig({
      id: 'gw-t', flat: 'flat-t', token: flat.token, url: `wss://localhost:${cloudCfg.port}/`,
      devices: demoDevices(), cloud: { ca_file: caFile },
    });
    const gw = await startGateway(gwCfg);
    started.push(gw);
    const b = await browser(cloudCfg.port, {
      flat: 'flat-t', user: 'tess', password: 'pw-tess', scheme: 'wss',
      options: { ca: readFileSync(caFile), servername: 'localhost' },
    });
    assert.equal(b.of('snapshot')[0].gateway_online, true);
    await b.next('update', (m) => m.device === 'thermo-1');
    b.close();
    await stop(gw);
    started.pop();
  });

  test('a gateway that trusts another CA refuses the server and says why', async () => {
    const gwCfg = gatewayConfig({
      id: 'gw-x', flat: 'flat-t', token: flat.token, url: `wss://localhost:${cloudCfg.port}/`,
      devices: demoDevices(), cloud: { ca_file: otherCa },
    });
    const gw = await startProcess(binaries.gateway, ['--config', gwCfg.file], { readyPattern: /link to .* down/ });
    started.push(gw);
    const line = gw.lines.find((l) => /link to .* down/.test(l));
    console.log(`refused: ${line}`);
    assert.match(line, /verif|certificate|issuer/i, line);
    assert.ok(!gw.output().includes('streaming from there'), 'the gateway connected to a server it should not trust');
    assert.ok(!cloud.output().includes('gateway=gw-x'), 'the cloud saw a hello from the refusing gateway');
  });

  // Without cloud.ca_file the gateway looks the server's CA up in the system's CA folder
  // (OpenSSL's default, or SSL_CERT_DIR), by the hash of its subject, as the handshake needs it.
  function caFolder(name, ...cas) {
    const folder = path.join(dir, name);
    mkdirSync(folder);
    for (const ca of cas) copyFileSync(ca, path.join(folder, path.basename(ca)));
    execFileSync('openssl', ['rehash', folder]);
    return folder;
  }

  test("without cloud.ca_file: a CA in the system's CA folder (here SSL_CERT_DIR) is trusted", async () => {
    const folder = caFolder('cas-trusted', otherCa, caFile);
    assert.ok(readdirSync(folder).some((f) => /^[0-9a-f]{8}\.0$/.test(f)), 'openssl rehash made no hash link');
    const gwCfg = gatewayConfig({
      id: 'gw-s', flat: 'flat-t', token: flat.token, url: `wss://localhost:${cloudCfg.port}/`, devices: demoDevices(),
    });
    const gw = await startProcess(binaries.gateway, ['--config', gwCfg.file], {
      env: { SSL_CERT_DIR: folder },
      readyPattern: 'streaming from there',
    });
    started.push(gw);
    assert.ok(gw.output().includes(`checked against the system's CA folder ${folder}`), gw.output());
    await cloud.waitForLine('gateway=gw-s version=');
    await stop(gw);
    started.pop();
  });

  test("without cloud.ca_file: a server whose CA is not in the system's CA folder is refused", async () => {
    // libwebsockets' own default folder (Debian's build: "../share", from the working
    // directory) holding the right CA must not count either.
    caFolder('share', caFile);
    const work = path.join(dir, 'work');
    mkdirSync(work);
    for (const [name, env] of [
      ['the system folder (and the CA in ../share)', {}],
      ['a folder with another CA', { SSL_CERT_DIR: caFolder('cas-other', otherCa) }],
    ]) {
      const id = `gw-r${started.length}`;
      const gwCfg = gatewayConfig({
        id, flat: 'flat-t', token: flat.token, url: `wss://localhost:${cloudCfg.port}/`, devices: demoDevices(),
      });
      const gw = await startProcess(binaries.gateway, ['--config', gwCfg.file], { env, cwd: work, readyPattern: /link to .* down/ });
      started.push(gw);
      const line = gw.lines.find((l) => /link to .* down/.test(l));
      assert.match(line, /unable to get local issuer certificate/, `${name}: ${line}`);
      assert.ok(!cloud.output().includes(`gateway=${id}`), `${name}: the cloud saw a hello from the refusing gateway`);
    }
  });
});
