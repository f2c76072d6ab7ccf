// The units under a real systemd (issue 24, finding 4): a minimal Debian root made by
// mmdebstrap (cached under /var/cache/flatlink-test/ between runs on one machine), both
// .debs installed with dpkg, booted with `systemd-nspawn --boot`. Inside, the shipped units
// run the daemons in their full sandbox; tests/system/nspawn-check.sh checks that both reach
// `active` through Type=notify, that the watchdog restarts a frozen flatlinkd (SIGSTOP), that
// `systemctl reload` applies a change, and records `systemd-analyze security`. From the host
// (the container shares its network), a browser logs in to the container's cloud and sees the
// serial adapter's device reporting from a pty, and receives an ALSA capture stream the audio
// adapter reads from ALSA's file plugin: both opened inside the sandbox.
// Only the test's own additions go in drop-ins: ALSA_CONFIG_PATH, WatchdogSec=4s (the shipped
// 30 s would make the run slow), the ordering after the fake serial device.
// Needs root, mmdebstrap and systemd-nspawn (scripts/install-deps.sh installs them); skipped
// with the reason otherwise. Alone: node --test tests/system/nspawn.test.mjs
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { dominantFrequency, samplesOf, streamBrowser, tone } from '../integration/audio.mjs';
import { hashPassword } from '../integration/flatlink.mjs';
import { buildDir, freePort, portAccepts, repoRoot, sha256hex, tempDir, waitFor } from '../integration/harness.mjs';

const have = (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const why =
  process.getuid?.() !== 0 ? 'needs root (systemd-nspawn)'
  : !have('mmdebstrap') ? 'mmdebstrap is not installed (scripts/install-deps.sh)'
  : !have('systemd-nspawn') ? 'systemd-nspawn is not installed (systemd-container, scripts/install-deps.sh)'
  : !existsSync(path.join(buildDir, 'CPackConfig.cmake')) ? `no build folder at ${buildDir}`
  : null;

// What the base root holds besides minbase: systemd, and the packages' runtime libraries
// (so that dpkg -i needs no network), socat for the pty. A change of this list makes a new cache.
const basePackages = ['systemd', 'systemd-sysv', 'dbus', 'libwebsockets17', 'libmosquitto1', 'libserialport0',
  'libsqlite3-0', 'libssl3', 'libasound2', 'libopus0', 'libuv1', 'libpq5', 'libargon2-1', 'socat'];
const cacheDir = '/var/cache/flatlink-test';

// The Debian mirror this machine's apt uses (deb822 .sources or one-line sources.list).
function mirror() {
  const files = ['/etc/apt/sources.list', ...(existsSync('/etc/apt/sources.list.d')
    ? readdirSync('/etc/apt/sources.list.d').map((f) => path.join('/etc/apt/sources.list.d', f)) : [])];
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/^(?:URIs:\s*(\S+)|deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s)/gm)) {
      const uri = m[1] ?? m[2];
      if (!/security/.test(uri)) return uri;
    }
  }
  return 'http://deb.debian.org/debian';
}

// The cached root file system (a tarball), made once per machine and package list.
function baseTarball() {
  const key = createHash('sha256').update(basePackages.join(',')).digest('hex').slice(0, 12);
  const tar = path.join(cacheDir, `bookworm-minbase-${key}.tar`);
  if (existsSync(tar)) return { tar, cached: true };
  mkdirSync(cacheDir, { recursive: true });
  // --format=tar: mmdebstrap picks a directory for a target name that does not end in .tar.
  const partial = `${tar}.partial-${process.pid}.tar`;
  execFileSync('mmdebstrap', ['--quiet', '--variant=minbase', '--format=tar', `--include=${basePackages.join(',')}`, 'bookworm', partial, mirror()],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
  renameSync(partial, tar);
  return { tar, cached: false };
}

const nspawn = (root, args, opts = {}) =>
  execFileSync('systemd-nspawn', ['-q', '-D', root, '--register=no', '--keep-unit', ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, ...opts });

function write(root, file, text, mode = 0o644) {
  const full = path.join(root, file);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, text, { mode });
}

test('under systemd in a booted container: Type=notify, watchdog, reload, serial and ALSA in the sandbox, security score',
  { skip: why ?? false, timeout: 900_000 }, async (t) => {
    const started = Date.now();
    const { tar, cached } = baseTarball();
    t.diagnostic(`base root ${tar} (${cached ? 'cached' : 'made now'}, ${Math.round((Date.now() - started) / 1000)} s)`);

    // The packages, built from this build folder.
    const debs = tempDir('flatlink-nspawn-debs-');
    // (Stripped by cpack itself, no -dbgsym: packaging.test.mjs checks those; this saves minutes.)
    execFileSync('cpack', ['-G', 'DEB', '-D', 'CPACK_DEBIAN_DEBUGINFO_PACKAGE=OFF', '-D', 'CPACK_STRIP_FILES=ON',
      '--config', path.join(buildDir, 'CPackConfig.cmake'), '-B', debs],
      { cwd: buildDir, stdio: 'ignore', timeout: 300_000 });
    const packages = readdirSync(debs).filter((f) => /^flatlink-(gateway|cloud)_.*\.deb$/.test(f));
    assert.equal(packages.length, 2, readdirSync(debs).join(' '));

    const root = tempDir('flatlink-nspawn-root-');
    execFileSync('tar', ['-xf', tar, '-C', root]);
    const results = tempDir('flatlink-nspawn-results-');
    // Installed the way a Pi does: from a signed apt repository (scripts/apt-repo.sh, a
    // throwaway key), as a local source; apt checks the signature.
    const repo = path.join(tempDir('flatlink-nspawn-repo-'), 'repo');
    execFileSync(path.join(repoRoot, 'scripts/apt-repo.sh'), [repo, ...packages.map((p) => path.join(debs, p))],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    const onlyOurs = '-o Dir::Etc::sourcelist=/etc/apt/sources.list.d/flatlink.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0';
    const installed = nspawn(root, [`--bind-ro=${repo}:/srv/flatlink-repo`, 'sh', '-ec', [
      'install -m 0644 /srv/flatlink-repo/flatlink-archive-keyring.gpg /usr/share/keyrings/',
      "echo 'deb [signed-by=/usr/share/keyrings/flatlink-archive-keyring.gpg] file:/srv/flatlink-repo bookworm main' >/etc/apt/sources.list.d/flatlink.list",
      `apt-get -q ${onlyOurs} update`,
      `DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends ${onlyOurs} install flatlink-gateway flatlink-cloud </dev/null`,
    ].join('\n')]);
    t.diagnostic(`apt install from the signed repository: ${installed.split('\n').filter((l) => /^(Setting up flatlink|Get:.*flatlink)/.test(l)).join('; ')}`);
    assert.match(installed, /Setting up flatlink-gateway/);
    assert.match(installed, /Setting up flatlink-cloud/);
    const gid = (name) => Number(readFileSync(path.join(root, 'etc/group'), 'utf8').match(new RegExp(`^${name}:x:(\\d+):`, 'm'))[1]);
    // postinst made both live configs from the examples, readable by their service only.
    for (const f of ['etc/flatlink/gateway.json', 'etc/flatlink/cloud.json']) assert.ok(existsSync(path.join(root, f)), f);

    // The flat, its gateway and its user; the gateway's serial port and microphone.
    const port = await freePort();
    const token = `nspawn-token-${process.pid}-0123456789`;
    const login = { flat: 'flat-n', user: 'alice', password: 'pw-alice-nspawn' };
    const cloud = {
      listen_address: '127.0.0.1', port, log_level: 'info',
      flats: [{ id: login.flat, name: 'Flat N', gateway_token_sha256: sha256hex(token),
        users: [{ name: login.user, password_hash: await hashPassword(login.password) }] }],
    };
    const gateway = {
      gateway_id: 'gw-nspawn', flat: login.flat, state_dir: '/var/lib/flatlink', log_level: 'info',
      cloud: { url: `ws://127.0.0.1:${port}/`, token_file: 'gateway-token.txt' },
      adapters: [
        { type: 'serial', name: 'uart-pty', port: '/dev/ttyFLATLINK', baud: 9600, protocol: 'json', device: 'boiler' },
        { type: 'audio', name: 'intercom', devices: [{ id: 'alsa-mic', name: 'Mic', room: 'Hall', direction: 'capture', pcm: 'mic' }] },
      ],
    };
    write(root, 'etc/flatlink/cloud.json', JSON.stringify(cloud, null, 2), 0o640);
    write(root, 'etc/flatlink/gateway.json', JSON.stringify(gateway, null, 2), 0o640);
    write(root, 'etc/flatlink/gateway-token.txt', `${token}\n`, 0o640);
    execFileSync('chown', [`0:${gid('flatlink-cloud')}`, path.join(root, 'etc/flatlink/cloud.json')]);
    execFileSync('chown', [`0:${gid('flatlink')}`, path.join(root, 'etc/flatlink/gateway.json'), path.join(root, 'etc/flatlink/gateway-token.txt')]);
    const toneHz = 700;
    write(root, 'etc/flatlink/test-mic.raw', tone(toneHz, 30_000));
    write(root, 'etc/flatlink/test-asound.conf',
      'pcm.mic { type file; slave { pcm { type null } } file "/dev/null"; infile "/etc/flatlink/test-mic.raw"; format "raw" }\n');
    write(root, 'etc/systemd/system/flatlinkd.service.d/nspawn-test.conf', [
      '# The nspawn test only: its fake serial device first, ALSA file plugin config, a short watchdog.',
      '[Unit]', 'Wants=flatlink-fake-serial.service flatlink-cloud.service', 'After=flatlink-fake-serial.service flatlink-cloud.service',
      '[Service]', 'Environment=ALSA_CONFIG_PATH=/etc/flatlink/test-asound.conf', 'WatchdogSec=4s', ''].join('\n'));
    // A device on a pty, as socat or ser2net bridge one: a status line every second.
    write(root, 'etc/systemd/system/flatlink-fake-serial.service', [
      '[Unit]', 'Description=a serial device on a pty for the nspawn test',
      '[Service]',
      'ExecStart=/usr/bin/socat -d pty,raw,echo=0,link=/dev/ttyFLATLINK,group=dialout,perm=0660 EXEC:/usr/local/sbin/flatlink-fake-device',
      ''].join('\n'));
    write(root, 'usr/local/sbin/flatlink-fake-device', '#!/bin/sh\nwhile true; do echo \'{"temp":21.5}\'; sleep 1; done\n', 0o755);
    copyFileSync(path.join(repoRoot, 'tests/system/nspawn-check.sh'), path.join(root, 'usr/local/sbin/flatlink-check'));
    execFileSync('chmod', ['755', path.join(root, 'usr/local/sbin/flatlink-check')]);
    write(root, 'etc/systemd/system/flatlink-check.service', [
      '[Unit]', 'Description=flatlink nspawn checks', 'Wants=flatlinkd.service flatlink-cloud.service',
      'After=flatlinkd.service flatlink-cloud.service',
      '[Service]', 'Type=oneshot', 'ExecStart=/usr/local/sbin/flatlink-check', 'StandardOutput=journal', ''].join('\n'));
    const wants = path.join(root, 'etc/systemd/system/multi-user.target.wants');
    mkdirSync(wants, { recursive: true });
    for (const unit of ['flatlinkd.service', 'flatlink-cloud.service']) symlinkSync(`/usr/lib/systemd/system/${unit}`, path.join(wants, unit));
    symlinkSync('/etc/systemd/system/flatlink-check.service', path.join(wants, 'flatlink-check.service'));

    // Boot. The container powers itself off when its checks are done; 180 s is the bound.
    const bootStarted = Date.now();
    const container = spawn('systemd-nspawn', ['-q', '-D', root, '--register=no', '--keep-unit', '--boot', `--bind=${results}:/results`],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let consoleOut = '';
    container.stdout.on('data', (d) => (consoleOut += d));
    container.stderr.on('data', (d) => (consoleOut += d));
    const exited = new Promise((resolve) => container.on('close', (code) => resolve(code)));
    const guard = setTimeout(() => container.kill('SIGKILL'), 180_000);
    let hostSummary = '';
    let hostError = null;
    try {
      // The host's part, through the container's cloud on the shared loopback.
      await waitFor(() => portAccepts(port), 60_000, { intervalMs: 200, message: `the container's cloud on port ${port}` });
      const b = await streamBrowser(port, login);
      const boiler = await waitFor(() => b.messages.find((m) => JSON.stringify(m).includes('"boiler"') && JSON.stringify(m).includes('21.5')),
        30_000, { intervalMs: 100, message: 'the serial device boiler reporting temp 21.5 from the pty' });
      const opened = await b.openStream('mic', 'alsa-mic', 'from_device');
      assert.equal(opened.type, 'stream_opened', JSON.stringify(opened));
      await waitFor(() => b.frames.length >= 25, 10_000, { intervalMs: 50, message: 'half a second of ALSA capture frames' });
      const hz = dominantFrequency(samplesOf(Buffer.concat(b.frames.map((f) => f.pcm))));
      assert.ok(Math.abs(hz - toneHz) <= 20, `captured ${hz} Hz, the file holds ${toneHz} Hz`);
      b.close();
      hostSummary = `serial: boiler reported temp 21.5 (${boiler.type}); ALSA: ${b.frames.length} frames of ${hz} Hz from the file plugin`;
    } catch (err) {
      hostError = err;
      hostSummary = `FAILED: ${err.message}`;
    }
    writeFileSync(path.join(results, 'host-done'), hostSummary);
    const code = await exited;
    clearTimeout(guard);
    const seconds = Math.round((Date.now() - bootStarted) / 1000);
    const checks = existsSync(path.join(results, 'checks')) ? readFileSync(path.join(results, 'checks'), 'utf8') : '';
    const journal = existsSync(path.join(results, 'journal')) ? readFileSync(path.join(results, 'journal'), 'utf8') : '';
    for (const line of checks.trim().split('\n')) t.diagnostic(line);
    t.diagnostic(`boot to power-off: ${seconds} s; whole test ${Math.round((Date.now() - started) / 1000)} s`);
    const context = `checks:\n${checks}\njournal (tail):\n${journal.split('\n').slice(-60).join('\n')}\nconsole (tail):\n${consoleOut.slice(-3000)}`;
    if (hostError) assert.fail(`${hostError.message}\n${context}`);
    assert.equal(code, 0, `systemd-nspawn exited ${code}\n${context}`);
    assert.match(checks, /^done$/m, context);
    assert.doesNotMatch(checks, /^fail /m, context);
    for (const name of ['active-flatlink-cloud', 'active-flatlinkd', 'type-notify', 'host-checks', 'watchdog', 'watchdog-journal', 'reload', 'reload-cloud', 'security']) {
      assert.match(checks, new RegExp(`^ok ${name} `, 'm'), context);
    }
    // The scores the running systemd gives the shipped units: docs/operations.md has them.
    const summary = readFileSync(path.join(results, 'security-summary'), 'utf8');
    for (const unit of ['flatlinkd', 'flatlink-cloud']) {
      const m = summary.match(new RegExp(`Overall exposure level for ${unit}\\.service: ([\\d.]+)`));
      assert.ok(m, summary);
      assert.ok(Number(m[1]) <= 2.0, `${unit}: exposure ${m[1]} under systemd`);
    }
  });
