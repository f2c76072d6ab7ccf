// The systemd units and the Debian packages: `systemd-analyze verify` is clean,
// the hardening score stays where docs/operations.md says, and `cpack -G DEB`
// builds flatlink-gateway and flatlink-cloud whose contents, conffiles and
// dependencies are right and which install into a scratch root with their users.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { binaries, buildDir, repoRoot, tempDir } from './harness.mjs';

const units = {
  'flatlinkd.service': binaries.gateway,
  'flatlink-cloud.service': binaries.cloud,
};

function have(tool) {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, ...opts });
  return { code: r.status, out: (r.stdout ?? '') + (r.stderr ?? ''), stdout: r.stdout ?? '' };
}

describe('systemd units', { skip: !have('systemd-analyze') && 'systemd-analyze is not installed here' }, () => {
  for (const [unit, binary] of Object.entries(units)) {
    test(`${unit}: systemd-analyze verify is clean`, () => {
      // verify wants ExecStart's binary to exist: check a copy that runs the built one.
      const dir = tempDir('flatlink-units-');
      const text = readFileSync(path.join(repoRoot, 'systemd', unit), 'utf8');
      assert.match(text, /^ExecStart=\/usr\/bin\//m);
      writeFileSync(path.join(dir, unit), text.replace(/^ExecStart=\/usr\/bin\/\S+/m, `ExecStart=${binary}`));
      const r = sh('systemd-analyze', ['verify', path.join(dir, unit)], { cwd: dir });
      assert.equal(r.code, 0, r.out);
      assert.equal(r.out.trim(), '', `verify printed warnings:\n${r.out}`);
    });

    test(`${unit}: systemd-analyze security scores it 2.0 or better`, () => {
      const r = sh('systemd-analyze', ['security', '--offline=true', '--no-pager', path.join(repoRoot, 'systemd', unit)]);
      const m = r.out.match(/Overall exposure level for \S+: ([\d.]+)/);
      assert.ok(m, r.out);
      assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]}:\n${r.out}`);
    });
  }

  test('the units are Type=notify with a watchdog, restart on failure and run as their own user', () => {
    for (const unit of Object.keys(units)) {
      const text = readFileSync(path.join(repoRoot, 'systemd', unit), 'utf8');
      for (const line of ['Type=notify', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'CapabilityBoundingSet=']) {
        assert.match(text, new RegExp(`^${line}$`, 'm'), `${unit}: ${line}`);
      }
      assert.match(text, /^WatchdogSec=\d+s$/m);
      assert.match(text, /^User=flatlink/m);
    }
    assert.match(readFileSync(path.join(repoRoot, 'systemd', 'flatlinkd.service'), 'utf8'), /^SupplementaryGroups=dialout audio$/m);
    assert.doesNotMatch(readFileSync(path.join(repoRoot, 'systemd', 'flatlink-cloud.service'), 'utf8'), /dialout/);
  });
});

const canPackage = have('cpack') && have('dpkg-deb') && existsSync(path.join(buildDir, 'CPackConfig.cmake'));
describe('Debian packages', { skip: !canPackage && 'cpack, dpkg-deb or the build folder is missing' }, () => {
  const debs = {};
  before(() => {
    const out = tempDir('flatlink-debs-');
    const r = sh('cpack', ['-G', 'DEB', '--config', path.join(buildDir, 'CPackConfig.cmake'), '-B', out], { cwd: buildDir });
    assert.equal(r.code, 0, r.out);
    for (const f of readdirSync(out)) {
      const m = f.match(/^(flatlink-(?:gateway|cloud))_.*\.deb$/);
      if (m) debs[m[1]] = path.join(out, f);
    }
    assert.deepEqual(Object.keys(debs).sort(), ['flatlink-cloud', 'flatlink-gateway'], r.out);
  });

  const contents = (deb) => execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' });
  const field = (deb, name) => execFileSync('dpkg-deb', ['-f', deb, name], { encoding: 'utf8' }).trim();
  const control = (deb, file) => {
    const dir = tempDir('flatlink-control-');
    execFileSync('dpkg-deb', ['-e', deb, dir]);
    return readFileSync(path.join(dir, file), 'utf8');
  };

  test('flatlink-gateway holds the daemon, its unit, snippets and config, and depends on its libraries', () => {
    const deb = debs['flatlink-gateway'];
    const list = contents(deb);
    for (const f of [
      './usr/bin/flatlinkd',
      './usr/lib/systemd/system/flatlinkd.service',
      './usr/lib/sysusers.d/flatlinkd.conf',
      './usr/lib/tmpfiles.d/flatlinkd.conf',
      './etc/flatlink/gateway.json',
      './usr/share/doc/flatlink-gateway/operations.md',
    ]) {
      assert.ok(list.includes(f), `${f} in\n${list}`);
    }
    assert.ok(!list.includes('flatlink-cloud'), 'no cloud files in the gateway package');
    assert.match(list, /-rwxr-xr-x root\/root .* \.\/usr\/bin\/flatlinkd/);
    const depends = field(deb, 'Depends');
    for (const lib of ['libwebsockets17', 'libmosquitto1', 'libserialport0', 'libsqlite3-0', 'libssl3', 'libasound2', 'libopus0', 'systemd']) {
      assert.match(depends, new RegExp(`\\b${lib}\\b`), `Depends: ${depends}`);
    }
    assert.equal(control(deb, 'conffiles').trim(), '/etc/flatlink/gateway.json');
  });

  test('flatlink-cloud holds the server, its unit, snippet, config and the dashboard', () => {
    const deb = debs['flatlink-cloud'];
    const list = contents(deb);
    for (const f of [
      './usr/bin/flatlink-cloud',
      './usr/lib/systemd/system/flatlink-cloud.service',
      './usr/lib/sysusers.d/flatlink-cloud.conf',
      './etc/flatlink/cloud.json',
      './usr/share/flatlink/dashboard/index.html',
      './usr/share/flatlink/dashboard/app.js',
    ]) {
      assert.ok(list.includes(f), `${f} in\n${list}`);
    }
    assert.ok(!list.includes('flatlinkd'), 'no gateway files in the cloud package');
    const depends = field(deb, 'Depends');
    for (const lib of ['libwebsockets17', 'libssl3', 'systemd']) assert.match(depends, new RegExp(`\\b${lib}\\b`), depends);
    assert.equal(control(deb, 'conffiles').trim(), '/etc/flatlink/cloud.json');
  });

  test('dpkg installs both into a scratch root: the files, the users and the state folder are there', () => {
    const root = tempDir('flatlink-root-');
    mkdirSync(path.join(root, 'var/lib/dpkg/info'), { recursive: true });
    mkdirSync(path.join(root, 'var/lib/dpkg/updates'), { recursive: true });
    writeFileSync(path.join(root, 'var/lib/dpkg/status'), '');
    mkdirSync(path.join(root, 'etc'), { recursive: true });
    // A base system's groups, as base-passwd gives them (the gateway joins dialout).
    writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\ndialout:x:20:\n');
    writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    const r = sh('dpkg', [
      `--root=${root}`,
      '--force-script-chrootless',
      '--force-depends',
      '--force-not-root',
      '--log=/dev/null',
      '-i',
      debs['flatlink-gateway'],
      debs['flatlink-cloud'],
    ]);
    assert.equal(r.code, 0, r.out);
    for (const f of ['usr/bin/flatlinkd', 'usr/bin/flatlink-cloud', 'usr/lib/systemd/system/flatlinkd.service',
      'usr/lib/systemd/system/flatlink-cloud.service', 'etc/flatlink/gateway.json', 'etc/flatlink/cloud.json',
      'usr/share/flatlink/dashboard/index.html']) {
      assert.ok(existsSync(path.join(root, f)), `${f} installed`);
    }
    const passwd = readFileSync(path.join(root, 'etc/passwd'), 'utf8');
    assert.match(passwd, /^flatlink:x:\d+:\d+:flatlink gateway daemon:\/var\/lib\/flatlink:/m);
    assert.match(passwd, /^flatlink-cloud:x:\d+:\d+:/m);
    assert.ok(existsSync(path.join(root, 'var/lib/flatlink')), 'the state folder exists (tmpfiles)');
    // the cloud's user can read its config, nobody else
    const gid = readFileSync(path.join(root, 'etc/group'), 'utf8').match(/^flatlink-cloud:x:(\d+):/m)[1];
    const st = statSync(path.join(root, 'etc/flatlink/cloud.json'));
    assert.equal(st.gid, Number(gid));
    assert.equal(st.mode & 0o777, 0o640);
    const status = readFileSync(path.join(root, 'var/lib/dpkg/status'), 'utf8');
    assert.match(status, /Package: flatlink-gateway\nStatus: install ok installed/);
    assert.match(status, /Package: flatlink-cloud\nStatus: install ok installed/);
    // the installed binary runs
    const v = sh(path.join(root, 'usr/bin/flatlinkd'), ['--version']);
    assert.equal(v.code, 0, v.out);
  });
});
