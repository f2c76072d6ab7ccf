// What the nspawn system tests share (nspawn.test.mjs, firstrun.test.mjs): a minimal Debian
// root made by mmdebstrap (cached under /var/cache/flatlink-test/ between runs on one
// machine), the packages of this build installed into it through apt from a signed
// repository (scripts/apt-repo.sh), and a boot with `systemd-nspawn --boot` bounded in time.
// Needs root, mmdebstrap and systemd-nspawn (scripts/install-deps.sh installs them): `why`
// says what is missing.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { buildDir, repoRoot, tempDir } from '../integration/harness.mjs';

const have = (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
export const why =
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

// Runs a command in the root (not booted).
export const nspawn = (root, args, opts = {}) =>
  execFileSync('systemd-nspawn', ['-q', '-D', root, '--register=no', '--keep-unit', ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, ...opts });

export function write(root, file, text, mode = 0o644) {
  const full = path.join(root, file);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, text, { mode });
}

// The group id of `name` in the root.
export const gid = (root, name) =>
  Number(readFileSync(path.join(root, 'etc/group'), 'utf8').match(new RegExp(`^${name}:x:(\\d+):`, 'm'))[1]);

// A fresh root with `packages` (of flatlink-gateway, flatlink-cloud) installed the way a Pi
// does: the .debs of this build in a signed apt repository (scripts/apt-repo.sh, a throwaway
// key) added as a local source, `apt-get install`, apt checking the signature. `note` gets
// one line per step. Returns the root's path and apt's output.
export function rootWithPackages(packages, note = () => {}) {
  const started = Date.now();
  const { tar, cached } = baseTarball();
  note(`base root ${tar} (${cached ? 'cached' : 'made now'}, ${Math.round((Date.now() - started) / 1000)} s)`);
  const debs = tempDir('flatlink-nspawn-debs-');
  // (Stripped by cpack itself, no -dbgsym: packaging.test.mjs checks those; this saves minutes.)
  execFileSync('cpack', ['-G', 'DEB', '-D', 'CPACK_DEBIAN_DEBUGINFO_PACKAGE=OFF', '-D', 'CPACK_STRIP_FILES=ON',
    '--config', path.join(buildDir, 'CPackConfig.cmake'), '-B', debs],
    { cwd: buildDir, stdio: 'ignore', timeout: 300_000 });
  const built = readdirSync(debs).filter((f) => /^flatlink-(gateway|cloud)_.*\.deb$/.test(f));
  assert.equal(built.length, 2, readdirSync(debs).join(' '));

  const root = tempDir('flatlink-nspawn-root-');
  execFileSync('tar', ['-xf', tar, '-C', root]);
  const repo = path.join(tempDir('flatlink-nspawn-repo-'), 'repo');
  execFileSync(path.join(repoRoot, 'scripts/apt-repo.sh'), [repo, ...built.map((p) => path.join(debs, p))],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
  const onlyOurs = '-o Dir::Etc::sourcelist=/etc/apt/sources.list.d/flatlink.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0';
  const apt = nspawn(root, [`--bind-ro=${repo}:/srv/flatlink-repo`, 'sh', '-ec', [
    'install -m 0644 /srv/flatlink-repo/flatlink-archive-keyring.gpg /usr/share/keyrings/',
    "echo 'deb [signed-by=/usr/share/keyrings/flatlink-archive-keyring.gpg] file:/srv/flatlink-repo bookworm main' >/etc/apt/sources.list.d/flatlink.list",
    `apt-get -q ${onlyOurs} update`,
    `DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends ${onlyOurs} install ${packages.join(' ')} </dev/null`,
  ].join('\n')]);
  note(`apt install from the signed repository: ${apt.split('\n').filter((l) => /^(Setting up flatlink|Get:.*flatlink)/.test(l)).join('; ')}`);
  for (const p of packages) assert.match(apt, new RegExp(`Setting up ${p}`));
  note(`root ready in ${Math.round((Date.now() - started) / 1000)} s`);
  return { root, apt };
}

// Boots the root (`results` bound at /results); the container is expected to power itself
// off, and is killed after `boundMs`. Returns { exited: Promise<code>, output() }.
export function boot(root, results, boundMs) {
  const container = spawn('systemd-nspawn', ['-q', '-D', root, '--register=no', '--keep-unit', '--boot', `--bind=${results}:/results`],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  container.stdout.on('data', (d) => (out += d));
  container.stderr.on('data', (d) => (out += d));
  const guard = setTimeout(() => container.kill('SIGKILL'), boundMs);
  const exited = new Promise((resolve) => container.on('close', (code) => {
    clearTimeout(guard);
    resolve(code);
  }));
  return { exited, output: () => out };
}

// What the container's check script wrote (`checks`, `journal`), and a context for failures.
export function results(dir, consoleOut) {
  const read = (f) => (existsSync(path.join(dir, f)) ? readFileSync(path.join(dir, f), 'utf8') : '');
  const checks = read('checks');
  const journal = read('journal');
  const context = `checks:\n${checks}\njournal (tail):\n${journal.split('\n').slice(-60).join('\n')}\nconsole (tail):\n${consoleOut.slice(-3000)}`;
  return { checks, journal, context };
}
