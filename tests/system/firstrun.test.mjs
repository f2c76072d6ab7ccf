// A new user's whole path under a real systemd (issue 24, "Done when"): both packages
// installed through apt from the signed repository in a fresh Debian root
// (tests/system/nspawn.mjs), booted; inside (tests/system/firstrun-check.sh) the operator
// starts the cloud, adds a flat, a user and a one-time pairing code with `flatlink-cloud
// admin`, and `flatlinkd pair URL CODE` writes the gateway's flat, cloud URL and token and
// starts flatlinkd. From the host (the container shares its network) a browser logs in to
// the container's cloud over TLS and sees the flat's simulated devices and a status of one.
// What the test writes itself, as an operator would before the first run: the cloud's TLS
// files and listen address, and the gateway's adapters (its devices); no token, flat or cloud
// URL. The store is the packaged cloud.json's. Needs root, mmdebstrap and systemd-nspawn; skipped with the
// reason otherwise. Alone: node --test tests/system/firstrun.test.mjs
import assert from 'node:assert/strict';
import { chownSync, copyFileSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { browser, demoDevices } from '../integration/flatlink.mjs';
import { freePort, makeCa, makeServerCert, portAccepts, repoRoot, tempDir, waitFor } from '../integration/harness.mjs';
import { boot, gid, results as resultsOf, rootWithPackages, why, write } from './nspawn.mjs';

test('first run in a booted container: apt install, cloud started, pair code, flatlinkd pair, the devices seen through the cloud',
  { skip: why ?? false, timeout: 900_000 }, async (t) => {
    const started = Date.now();
    const { root } = rootWithPackages(['flatlink-gateway', 'flatlink-cloud'], (line) => t.diagnostic(line));
    const results = tempDir('flatlink-firstrun-results-');

    // The operator's part on the cloud host: TLS files for 127.0.0.1, the listen address.
    const port = await freePort();
    const password = `pw-alice-firstrun-${process.pid}`;
    const tlsDir = tempDir('flatlink-firstrun-tls-');
    const ca = makeCa(tlsDir, 'firstrun-ca');
    const tls = makeServerCert(tlsDir, 'firstrun-ca');
    const cloudGid = gid(root, 'flatlink-cloud');
    write(root, 'etc/flatlink/tls/fullchain.pem', readFileSync(tls.cert_file), 0o644);
    write(root, 'etc/flatlink/tls/privkey.pem', readFileSync(tls.key_file), 0o640);
    const packaged = JSON.parse(readFileSync(path.join(root, 'etc/flatlink/cloud.json'), 'utf8'));
    assert.deepEqual(packaged.flats, [], 'the packaged cloud.json has no flat');
    assert.equal(packaged.store?.path, '/var/lib/flatlink-cloud/cloud.db', 'the packaged cloud.json keeps its accounts in the store');
    // Its listener: loopback on a free port (the container shares the host's network), and the
    // metrics listener off the default 9464 for the same reason.
    const cloud = { ...packaged, listen_address: '127.0.0.1', port, metrics: { listen_address: '127.0.0.1', port: await freePort() } };
    write(root, 'etc/flatlink/cloud.json', JSON.stringify(cloud, null, 2), 0o640);
    for (const f of ['etc/flatlink/cloud.json', 'etc/flatlink/tls/privkey.pem']) chownSync(path.join(root, f), 0, cloudGid);
    // The gateway's devices (adapters): the one thing of gateway.json written before pairing.
    const gatewayFile = path.join(root, 'etc/flatlink/gateway.json');
    const gateway = JSON.parse(readFileSync(gatewayFile, 'utf8'));
    const devices = demoDevices().map((d) => (d.kind === 'thermometer' ? { ...d, interval_ms: 500 } : d));
    gateway.adapters = [{ type: 'sim', name: 'sim', latency_ms: 10, seed: 1, devices }];
    writeFileSync(gatewayFile, JSON.stringify(gateway, null, 2));

    // The check script, its parameters, and a unit that runs it once the system is up.
    write(root, 'root/firstrun.env', `PORT=${port}\nPASSWORD='${password}'\n`, 0o600);
    copyFileSync(ca, path.join(root, 'root/cloud-ca.pem'));
    write(root, 'usr/local/sbin/flatlink-firstrun', readFileSync(path.join(repoRoot, 'tests/system/firstrun-check.sh')), 0o755);
    write(root, 'etc/systemd/system/flatlink-firstrun.service', [
      '[Unit]', 'Description=flatlink first run (nspawn test)', 'After=multi-user.target',
      '[Service]', 'Type=oneshot', 'ExecStart=/usr/local/sbin/flatlink-firstrun', 'StandardOutput=journal',
      '[Install]', 'WantedBy=multi-user.target', ''].join('\n'));
    write(root, 'etc/systemd/system/multi-user.target.wants/.keep', '');
    symlinkSync('/etc/systemd/system/flatlink-firstrun.service', path.join(root, 'etc/systemd/system/multi-user.target.wants/flatlink-firstrun.service'));

    // Boot. The container powers itself off when its steps are done; 240 s is the bound.
    const bootStarted = Date.now();
    const container = boot(root, results, 240_000);
    let hostSummary = '';
    let hostError = null;
    try {
      // The script says when the gateway is paired and linked (a login before it would only
      // be refused, and count towards a ban of this address).
      await waitFor(() => existsSync(path.join(results, 'paired')), 150_000, { intervalMs: 200, message: 'the container\'s pairing step' });
      const paired = readFileSync(path.join(results, 'paired'), 'utf8').trim();
      if (paired !== 'ok') throw new Error(`pairing in the container: ${paired}`);
      assert.ok(await portAccepts(port), `the container's cloud on port ${port}`);
      const peer = await browser(port, { scheme: 'wss', options: { ca: readFileSync(ca) } });
      peer.send({ type: 'login', flat: 'flat-n', user: 'alice', password });
      await peer.next('snapshot', () => true, 10_000);
      // The devices: in the snapshot if the gateway said hello before the login, else in a `devices` message.
      const ids = await waitFor(() => {
        const seen = new Set([...peer.of('snapshot'), ...peer.of('devices')].flatMap((m) => (m.devices ?? []).map((d) => d.id)));
        return ['lamp-1', 'thermo-1', 'door-1'].every((id) => seen.has(id)) ? [...seen].sort() : null;
      }, 60_000, { intervalMs: 100, message: 'the paired gateway\'s three devices' });
      const update = await waitFor(() => peer.messages.find((m) => m.type === 'update' && m.device === 'thermo-1'),
        30_000, { intervalMs: 100, message: 'an update of the sim thermometer' });
      peer.close();
      hostSummary = `alice logged in over TLS; devices ${ids.join(', ')}; thermo-1 update ${JSON.stringify(update.state)}`;
    } catch (err) {
      hostError = err;
      hostSummary = `FAILED: ${err.message}`;
    }
    writeFileSync(path.join(results, 'host-done'), hostSummary);
    const code = await container.exited;
    const seconds = Math.round((Date.now() - bootStarted) / 1000);
    const { checks, context } = resultsOf(results, container.output());
    for (const line of checks.trim().split('\n')) t.diagnostic(line);
    t.diagnostic(`boot to power-off: ${seconds} s; whole test ${Math.round((Date.now() - started) / 1000)} s`);
    if (hostError) assert.fail(`${hostError.message}\n${context}`);
    assert.equal(code, 0, `systemd-nspawn exited ${code}\n${context}`);
    assert.match(checks, /^done$/m, context);
    assert.doesNotMatch(checks, /^fail /m, context);
    for (const name of ['cloud-active', 'accounts', 'pair-code', 'pair', 'gateway-active', 'token-file', 'status', 'host-checks']) {
      assert.match(checks, new RegExp(`^ok ${name} `, 'm'), context);
    }
  });
