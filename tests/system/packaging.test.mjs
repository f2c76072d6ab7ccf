// The systemd units and the Debian packages: `systemd-analyze verify` is clean,
// the hardening score stays where docs/operations.md says, and `cpack -G DEB`
// builds flatlink-gateway and flatlink-cloud whose contents and dependencies are
// right, that lintian finds clean, that ship nothing under /etc (the live configs
// are made by postinst when absent: an upgrade never prompts), that install into a
// scratch root with their users, upgrade without a question and purge everything.
// (Issue 24, findings 2, 3 and 6; the units under a real systemd: nspawn.test.mjs.)
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { binaries, buildDir, repoRoot, tempDir } from '../integration/harness.mjs';

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

test('the docs give one token recipe (operations.md, "First run": pairing; by hand only without the store), the others point to it', () => {
  const docs = ['README.md', ...readdirSync(path.join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const recipes = docs.filter((f) => /openssl rand/.test(readFileSync(path.join(repoRoot, f), 'utf8').replace(/\(`openssl rand[^`]*`/g, '')));
  assert.deepEqual(recipes, ['docs/operations.md']);
  const ops = readFileSync(path.join(repoRoot, 'docs/operations.md'), 'utf8');
  assert.match(ops, /^### First run: pair the gateway \(the one token recipe\)$/m);
  assert.match(ops, /flatlinkd pair https:\/\/\S+ \S+/);
  assert.match(readFileSync(path.join(repoRoot, 'README.md'), 'utf8'), /flatlinkd pair https:/);
});

const canPackage = have('cpack') && have('dpkg-deb') && existsSync(path.join(buildDir, 'CPackConfig.cmake'));
describe('Debian packages', { skip: !canPackage && 'cpack, dpkg-deb or the build folder is missing' }, () => {
  const debs = {};
  const ddebs = {};
  before(() => {
    const out = tempDir('flatlink-debs-');
    const r = sh('cpack', ['-G', 'DEB', '--config', path.join(buildDir, 'CPackConfig.cmake'), '-B', out], { cwd: buildDir });
    assert.equal(r.code, 0, r.out);
    for (const f of readdirSync(out)) {
      const m = f.match(/^(flatlink-(?:gateway|cloud))(-dbgsym)?_.*\.(deb|ddeb)$/);
      if (m) (m[2] ? ddebs : debs)[m[1]] = path.join(out, f);
    }
    assert.deepEqual(Object.keys(debs).sort(), ['flatlink-cloud', 'flatlink-gateway'], r.out);
  });

  const contents = (deb) => execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' });
  const field = (deb, name) => execFileSync('dpkg-deb', ['-f', deb, name], { encoding: 'utf8' }).trim();
  const controlFiles = (deb) => {
    const dir = tempDir('flatlink-control-');
    execFileSync('dpkg-deb', ['-e', deb, dir]);
    return readdirSync(dir);
  };

  test('flatlink-gateway holds the daemon, its unit, snippets, examples and docs, and depends on its libraries', () => {
    const deb = debs['flatlink-gateway'];
    const list = contents(deb);
    for (const f of [
      './usr/bin/flatlinkd',
      './usr/lib/systemd/system/flatlinkd.service',
      './usr/lib/sysusers.d/flatlinkd.conf',
      './usr/lib/tmpfiles.d/flatlinkd.conf',
      './usr/share/flatlink/examples/gateway.json',
      './usr/share/flatlink/examples/gateway-serial.example.json',
      './usr/share/doc/flatlink-gateway/operations.md',
      './usr/share/doc/flatlink-gateway/copyright',
      './usr/share/doc/flatlink-gateway/changelog.gz',
      './usr/share/man/man8/flatlinkd.8.gz',
    ]) {
      assert.ok(list.includes(f), `${f} in\n${list}`);
    }
    assert.ok(!list.includes('flatlink-cloud'), 'no cloud files in the gateway package');
    assert.match(list, /-rwxr-xr-x root\/root .* \.\/usr\/bin\/flatlinkd/);
    const depends = field(deb, 'Depends');
    for (const lib of ['libwebsockets17', 'libmosquitto1', 'libserialport0', 'libsqlite3-0', 'libssl3', 'libasound2', 'libopus0', 'systemd']) {
      assert.match(depends, new RegExp(`\\b${lib}\\b`), `Depends: ${depends}`);
    }
  });

  test('flatlink-cloud holds the server, its unit, snippet, examples, docs and the dashboard', () => {
    const deb = debs['flatlink-cloud'];
    const list = contents(deb);
    for (const f of [
      './usr/bin/flatlink-cloud',
      './usr/lib/systemd/system/flatlink-cloud.service',
      './usr/lib/sysusers.d/flatlink-cloud.conf',
      './usr/share/flatlink/examples/cloud.json',
      './usr/share/flatlink/dashboard/index.html',
      './usr/share/flatlink/dashboard/app.js',
      './usr/share/flatlink/dashboard/app.js.gz', // the build's gzip variant (cmake/dashboard_stage.cmake)
      './usr/share/flatlink/dashboard/index.html.gz',
      './usr/share/doc/flatlink-cloud/copyright',
      './usr/share/doc/flatlink-cloud/changelog.gz',
      './usr/share/man/man8/flatlink-cloud.8.gz',
    ]) {
      assert.ok(list.includes(f), `${f} in\n${list}`);
    }
    assert.ok(!list.includes('flatlinkd'), 'no gateway files in the cloud package');
    const depends = field(deb, 'Depends');
    for (const lib of ['libwebsockets17', 'libssl3', 'systemd']) assert.match(depends, new RegExp(`\\b${lib}\\b`), depends);
  });

  test('no file under /etc and no conffile: an upgrade can never stop at a conffile prompt', () => {
    for (const deb of Object.values(debs)) {
      assert.doesNotMatch(contents(deb), /\.\/etc\//, deb);
      assert.ok(!controlFiles(deb).includes('conffiles'), `${deb} has conffiles`);
    }
  });

  test('the packaged starting configs hold no credential and no device that is not there', () => {
    const cloud = JSON.parse(readFileSync(path.join(repoRoot, 'packaging/examples/cloud.json'), 'utf8'));
    assert.deepEqual(cloud.flats, []);
    assert.ok(!('demo' in cloud));
    const gateway = JSON.parse(readFileSync(path.join(repoRoot, 'packaging/examples/gateway.json'), 'utf8'));
    assert.deepEqual(gateway.adapters, []);
    assert.ok(!('token' in gateway.cloud));
  });

  test('the binaries are stripped and their debug information is in -dbgsym packages', () => {
    for (const [name, binary] of [['flatlink-gateway', 'flatlinkd'], ['flatlink-cloud', 'flatlink-cloud']]) {
      const dir = tempDir('flatlink-deb-x-');
      execFileSync('dpkg-deb', ['-x', debs[name], dir]);
      const info = sh('file', ['-b', path.join(dir, 'usr/bin', binary)]).out;
      assert.match(info, /, stripped/, `${binary}: ${info}`);
      assert.ok(statSync(path.join(dir, 'usr/bin', binary)).size < 20 * 1024 * 1024, `${binary} is under 20 MB`);
      assert.ok(ddebs[name], `${name}-dbgsym built`);
      assert.match(contents(ddebs[name]), /\.\/usr\/lib\/debug\/\.build-id\/..\/.+\.debug/);
    }
  });

  test('lintian finds nothing (errors, warnings; every override has its reason)', { skip: !have('lintian') && 'lintian is not installed' }, () => {
    // Overrides ship in the packages (usr/share/lintian/overrides/), each with its reason.
    const r = sh('lintian', ['--fail-on', 'error,warning', '--display-level', '>=warning', debs['flatlink-gateway'], debs['flatlink-cloud']]);
    assert.equal(r.code, 0, r.out);
    // (lintian's own notice when run as root, as CI does, is no finding)
    assert.equal(r.out.replace(/^running with root privileges is not recommended!$/m, '').trim(), '', r.out);
  });

  // A scratch root as dpkg --root sees it: a base system's users and groups.
  function scratchRoot() {
    const root = tempDir('flatlink-root-');
    mkdirSync(path.join(root, 'var/lib/dpkg/info'), { recursive: true });
    mkdirSync(path.join(root, 'var/lib/dpkg/updates'), { recursive: true });
    writeFileSync(path.join(root, 'var/lib/dpkg/status'), '');
    mkdirSync(path.join(root, 'etc'), { recursive: true });
    writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\ndialout:x:20:\naudio:x:29:\n');
    writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    return root;
  }
  const dpkg = (root, ...args) =>
    sh('dpkg', [`--root=${root}`, '--force-script-chrootless', '--force-depends', '--force-not-root', '--log=/dev/null', ...args], {
      input: '', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });

  // The same package, a later version, whose starting config changed (a new key).
  function laterVersion(deb, example, change) {
    const dir = tempDir('flatlink-repack-');
    execFileSync('dpkg-deb', ['-R', deb, path.join(dir, 'tree')]);
    const controlFile = path.join(dir, 'tree/DEBIAN/control');
    writeFileSync(controlFile, readFileSync(controlFile, 'utf8').replace(/^Version: (.*)$/m, 'Version: $1+1'));
    const file = path.join(dir, 'tree/usr/share/flatlink/examples', example);
    writeFileSync(file, JSON.stringify(change(JSON.parse(readFileSync(file, 'utf8'))), null, 2));
    const out = path.join(dir, path.basename(deb).replace('.deb', '+1.deb'));
    execFileSync('dpkg-deb', ['--root-owner-group', '-b', path.join(dir, 'tree'), out], { stdio: 'ignore' });
    return out;
  }

  test('install, upgrade without a question, purge: the configs are made once, kept, then gone with the state', () => {
    const root = scratchRoot();
    const installed = dpkg(root, '-i', debs['flatlink-gateway'], debs['flatlink-cloud']);
    assert.equal(installed.code, 0, installed.out);
    for (const f of ['usr/bin/flatlinkd', 'usr/bin/flatlink-cloud', 'usr/lib/systemd/system/flatlinkd.service',
      'usr/lib/systemd/system/flatlink-cloud.service', 'usr/share/flatlink/dashboard/index.html']) {
      assert.ok(existsSync(path.join(root, f)), `${f} installed`);
    }
    const passwd = readFileSync(path.join(root, 'etc/passwd'), 'utf8');
    assert.match(passwd, /^flatlink:x:\d+:\d+:flatlink gateway daemon:\/var\/lib\/flatlink:/m);
    assert.match(passwd, /^flatlink-cloud:x:\d+:\d+:/m);
    assert.ok(existsSync(path.join(root, 'var/lib/flatlink')), 'the state folder exists (tmpfiles)');
    // The live configs come from the examples, readable by their service's group only.
    const group = readFileSync(path.join(root, 'etc/group'), 'utf8');
    for (const [name, user] of [['gateway', 'flatlink'], ['cloud', 'flatlink-cloud']]) {
      const live = path.join(root, `etc/flatlink/${name}.json`);
      assert.equal(readFileSync(live, 'utf8'), readFileSync(path.join(root, `usr/share/flatlink/examples/${name}.json`), 'utf8'));
      const st = statSync(live);
      assert.equal(st.gid, Number(group.match(new RegExp(`^${user}:x:(\\d+):`, 'm'))[1]), `${name}.json's group`);
      assert.equal(st.mode & 0o777, 0o640, `${name}.json's mode`);
    }
    const status = readFileSync(path.join(root, 'var/lib/dpkg/status'), 'utf8');
    assert.match(status, /Package: flatlink-gateway\nStatus: install ok installed/);
    assert.match(status, /Package: flatlink-cloud\nStatus: install ok installed/);
    const v = sh(path.join(root, 'usr/bin/flatlinkd'), ['--version']);
    assert.equal(v.code, 0, v.out);

    // The operator edits both files and adds the secrets and state the services keep.
    const edited = '{ "edited": "by the operator" }\n';
    writeFileSync(path.join(root, 'etc/flatlink/gateway.json'), edited);
    writeFileSync(path.join(root, 'etc/flatlink/cloud.json'), edited);
    writeFileSync(path.join(root, 'etc/flatlink/gateway-token.txt'), 'secret\n');
    mkdirSync(path.join(root, 'etc/flatlink/tls'));
    writeFileSync(path.join(root, 'etc/flatlink/tls/privkey.pem'), 'key');
    writeFileSync(path.join(root, 'var/lib/flatlink/outbox.db'), 'outbox');
    writeFileSync(path.join(root, 'var/lib/flatlink/outbox-backup.db'), 'outbox');

    // An unattended upgrade whose examples changed: no prompt, the operator's files kept.
    const upgraded = dpkg(root, '-i',
      laterVersion(debs['flatlink-gateway'], 'gateway.json', (c) => ({ ...c, log_level: 'warn' })),
      laterVersion(debs['flatlink-cloud'], 'cloud.json', (c) => ({ ...c, log_level: 'warn' })));
    assert.equal(upgraded.code, 0, upgraded.out);
    assert.doesNotMatch(upgraded.out, /conffile|Configuration file/);
    assert.equal(readFileSync(path.join(root, 'etc/flatlink/gateway.json'), 'utf8'), edited);
    assert.equal(readFileSync(path.join(root, 'etc/flatlink/cloud.json'), 'utf8'), edited);
    assert.match(readFileSync(path.join(root, 'usr/share/flatlink/examples/gateway.json'), 'utf8'), /"warn"/);

    // remove keeps the configuration and the state, purge takes them.
    const removed = dpkg(root, '--remove', 'flatlink-gateway');
    assert.equal(removed.code, 0, removed.out);
    assert.ok(existsSync(path.join(root, 'etc/flatlink/gateway-token.txt')));
    assert.ok(existsSync(path.join(root, 'var/lib/flatlink/outbox.db')));
    const purgedGateway = dpkg(root, '--purge', 'flatlink-gateway');
    assert.equal(purgedGateway.code, 0, purgedGateway.out);
    for (const f of ['etc/flatlink/gateway.json', 'etc/flatlink/gateway-token.txt', 'var/lib/flatlink']) {
      assert.ok(!existsSync(path.join(root, f)), `${f} purged`);
    }
    assert.ok(existsSync(path.join(root, 'etc/flatlink/cloud.json')), 'the cloud\'s config stays while the cloud is installed');
    const purgedCloud = dpkg(root, '--purge', 'flatlink-cloud');
    assert.equal(purgedCloud.code, 0, purgedCloud.out);
    assert.ok(!existsSync(path.join(root, 'etc/flatlink')), '/etc/flatlink purged with the last package');
  });

  test('a failure to create the service user fails the install instead of hiding it', () => {
    const root = scratchRoot();
    // An /etc/group that is a folder: systemd-sysusers cannot write it.
    execFileSync('rm', [path.join(root, 'etc/group')]);
    mkdirSync(path.join(root, 'etc/group'));
    const r = dpkg(root, '-i', debs['flatlink-gateway']);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /flatlink-gateway/);
  });
});
