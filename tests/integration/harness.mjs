// Helpers for black-box tests of flatlinkd and flatlink-cloud: the real binaries,
// started as processes on loopback, observed through their output, exit codes
// and sockets. Used by the *.test.mjs files in this folder (node:test).
//
// Binaries come from $FLATLINK_BUILD_DIR (ctest sets it to the build folder),
// default ../../build relative to this file.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export const repoRoot = path.resolve(here, '../..');
export const buildDir = path.resolve(process.env.FLATLINK_BUILD_DIR || path.join(here, '../../build'));
export const binaries = {
  cloud: path.join(buildDir, 'cloud-server', 'flatlink-cloud'),
  gateway: path.join(buildDir, 'gateway', 'flatlinkd'),
};
export const examplesDir = path.join(repoRoot, 'config', 'examples');

// Everything started or created here is cleaned up when the test file's process
// ends, even after a failed assertion: no stray daemons, no temp folders left.
const live = new Set();
const tempDirs = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

// But a child still running keeps the process from ending: under `node --test`, one that
// outlives a file's last test by 20 s (a test's clean-up that failed; the file's own `after`
// hooks get those 20 s to stop theirs) is killed and named, so that the file ends instead of
// holding ctest until its timeout.
if (process.env.NODE_TEST_CONTEXT) {
  const { after } = await import('node:test');
  after(() => {
    setTimeout(() => {
      for (const child of live) {
        console.error(`leaked process killed 20 s after the last test: ${describe(child)}`);
        child.kill('SIGKILL');
        child.stdout?.destroy(); // (its own children may hold the pipes open)
        child.stderr?.destroy();
      }
    }, 20_000).unref();
  });
}

// Whether something accepts TCP connections on 127.0.0.1:port now.
export function portAccepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// A TCP port on 127.0.0.1 that was free a moment ago.
// A port free now on 127.0.0.1, never one this process was given before: the kernel may
// hand a just-closed port out again, and two servers of one test (a cluster's nodes) were
// once given the same one.
const portsGiven = new Set();
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address();
        server.close(() => resolve(port));
      });
    });
    if (!portsGiven.has(port)) {
      portsGiven.add(port);
      return port;
    }
  }
}

function matches(pattern, line) {
  return typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line);
}

function signalCode(signal) {
  return 128 + (os.constants.signals[signal] ?? 0);
}

// The exit code as a shell reports it: 128 + signal number when killed by a signal.
function exitCode(code, signal) {
  return code ?? signalCode(signal);
}

function describe(proc) {
  const shown = proc.lines.slice(-60);
  const cut = proc.lines.length - shown.length;
  return (
    `${path.basename(proc.binary)} ${proc.args.join(' ')}\n` +
    (cut > 0 ? `  ... ${cut} earlier lines\n` : '') +
    (shown.length ? shown.map((l) => `  | ${l}`).join('\n') : '  (no output)')
  );
}

// Spawns a long-running binary and resolves with it once one of its output lines
// (stdout or stderr) matches readyPattern (a RegExp or a substring); without a
// pattern, once it has spawned. Rejects if it exits first or not ready in time,
// with its output in the message.
//
// The returned ChildProcess also has:
//   lines       every output line so far, in arrival order
//   stdoutLines, stderrLines
//   exited      a promise of { code, signal } (never rejects)
//   waitForLine(pattern, timeoutMs)  the first line (so far or later) that matches
//   output()    lines joined with newlines
export function startProcess(binary, args = [], { env = {}, readyPattern, timeoutMs = 10_000, cwd } = {}) {
  const child = spawn(binary, args, {
    cwd: cwd ?? repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.binary = binary;
  child.args = args;
  child.lines = [];
  child.stdoutLines = [];
  child.stderrLines = [];
  child.output = () => child.lines.join('\n');
  live.add(child);

  const watchers = new Set();
  const collect = (stream, own) => {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      child.lines.push(line);
      own.push(line);
      for (const w of watchers) w(line);
    });
  };
  collect(child.stdout, child.stdoutLines);
  collect(child.stderr, child.stderrLines);

  let spawnError = null;
  child.exited = new Promise((resolve) => {
    child.on('error', (err) => {
      spawnError = err;
      live.delete(child);
      resolve({ code: null, signal: null, error: err });
    });
    // 'close' comes after the output streams ended, so every line is in.
    child.on('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });

  child.waitForLine = (pattern, ms = 10_000) =>
    new Promise((resolve, reject) => {
      const seen = child.lines.find((l) => matches(pattern, l));
      if (seen !== undefined) return resolve(seen);
      let timer;
      const done = () => {
        watchers.delete(watch);
        clearTimeout(timer);
      };
      const watch = (line) => {
        if (matches(pattern, line)) {
          done();
          resolve(line);
        }
      };
      watchers.add(watch);
      timer = setTimeout(() => {
        done();
        reject(new Error(`no line matching ${pattern} within ${ms} ms from ${describe(child)}`));
      }, ms);
      child.exited.then(({ code, signal, error }) => {
        if (!watchers.has(watch)) return;
        done();
        const how = error ? `failed to start: ${error.message}` : `exited with ${exitCode(code, signal)}`;
        reject(new Error(`${how} before printing a line matching ${pattern}: ${describe(child)}`));
      });
    });

  if (readyPattern === undefined) {
    return new Promise((resolve, reject) => {
      child.once('spawn', () => resolve(child));
      child.exited.then(() => spawnError && reject(new Error(`cannot start ${binary}: ${spawnError.message}`)));
    });
  }
  return child.waitForLine(readyPattern, timeoutMs).then(
    () => child,
    (err) => {
      child.kill('SIGKILL');
      throw err;
    },
  );
}

// Sends signal and resolves with the exit code once the process is gone (128 +
// the signal number if a signal ended it). Rejects, after a SIGKILL, if it is
// still running after timeoutMs: a graceful stop that hangs is a bug.
export async function stop(proc, signal = 'SIGTERM', { timeoutMs = 10_000 } = {}) {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  const result = await Promise.race([proc.exited, late]);
  clearTimeout(timer);
  if (result === 'late') {
    proc.kill('SIGKILL');
    await proc.exited;
    throw new Error(`still running ${timeoutMs} ms after ${signal}: ${describe(proc)}`);
  }
  if (result.error) throw result.error;
  return exitCode(result.code, result.signal);
}

// Runs a binary to completion: { code, stdout, stderr } (code as in stop()).
// `input` is written to its stdin. Rejects if it runs longer than timeoutMs.
export function run(binary, args = [], { env = {}, input, timeoutMs = 10_000, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      cwd: cwd ?? repoRoot,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(binary)} ${args.join(' ')}: still running after ${timeoutMs} ms\n${stdout}${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      reject(new Error(`cannot run ${binary}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code: exitCode(code, signal), stdout, stderr });
    });
    child.stdin.on('error', () => {}); // it may exit without reading
    child.stdin.end(input ?? '');
  });
}

// Polls fn (sync or async) every intervalMs until it returns a truthy value,
// and resolves with that value. Exceptions thrown by fn count as "not yet"; the
// last one is reported if time runs out.
export async function waitFor(fn, timeoutMs = 5_000, { intervalMs = 10, message } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const what = message ?? `condition ${fn.toString().slice(0, 120)}`;
      throw new Error(`${what} not met within ${timeoutMs} ms` + (lastError ? `: ${lastError.message}` : ''));
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// A fresh temp folder, removed when the test process exits.
export function tempDir(prefix = 'flatlink-test-') {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

// Mosquitto on a free loopback port with a temp folder of its own (its log is there);
// `lines` are added to its config (the listener's options: anonymous or TLS and passwords,
// persistence, queue limits), or made from that folder by `lines(dir)`. Resolves once it
// accepts connections.
export async function startMosquitto(lines = ['allow_anonymous true'], { prefix = 'flatlink-mosquitto-' } = {}) {
  const dir = tempDir(prefix);
  if (typeof lines === 'function') lines = lines(dir);
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      ...lines,
      `log_dest file ${dir}/mosquitto.log`,
      `user ${os.userInfo().username}`, // as root it would switch to "mosquitto" and not write its folder
      '',
    ].join('\n'),
  );
  const proc = await startProcess('/usr/sbin/mosquitto', ['-c', conf]);
  await waitFor(() => portAccepts(port), 5000, { intervalMs: 20, message: 'mosquitto to accept connections' });
  return { proc, port, dir };
}

// Writes obj as JSON (or a string as it is) into a fresh temp folder and returns
// the file's path. `files` adds more files beside it: { name: text } or
// { name: { text, mode } } (e.g. a token file with mode 0o600).
export async function writeTempConfig(obj, { name = 'config.json', files = {} } = {}) {
  const dir = tempDir();
  const file = path.join(dir, name);
  await writeFile(file, typeof obj === 'string' ? obj : JSON.stringify(obj, null, 2) + '\n');
  for (const [fileName, content] of Object.entries(files)) {
    const { text, mode } = typeof content === 'string' ? { text: content, mode: 0o600 } : content;
    const target = path.join(dir, fileName);
    await writeFile(target, text, { mode: mode ?? 0o600 });
    await chmod(target, mode ?? 0o600); // umask must not widen or narrow it
  }
  return file;
}

export function sha256hex(text) {
  return createHash('sha256').update(text).digest('hex');
}

// A unix datagram socket (python3: node's dgram has no AF_UNIX) that records every
// datagram with the time it came (systemd's NOTIFY_SOCKET, for service.test.mjs and the
// soak bench). `address` is a path, or '@name' for the abstract namespace.
export async function notifySocket(address) {
  const script = `
import json, socket, sys, time
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + addr[1:] if addr.startswith('@') else addr)
print('listening', flush=True)
while True:
    data = s.recv(4096)
    print(json.dumps({'t': time.monotonic(), 'msg': data.decode()}), flush=True)
`;
  const proc = spawn('python3', ['-c', script, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  live.add(proc); // killed on exit like the daemons
  proc.on('close', () => live.delete(proc));
  const messages = [];
  const lines = readline.createInterface({ input: proc.stdout });
  await new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`notify socket helper exited ${code}`)));
    lines.on('line', (line) => {
      if (line === 'listening') return resolve();
      const { t, msg } = JSON.parse(line);
      for (const field of msg.split('\n')) if (field) messages.push({ t: t * 1000, field });
    });
  });
  return {
    address,
    messages,
    fields: (prefix) => messages.filter((m) => m.field.startsWith(prefix)),
    has: (prefix) => messages.some((m) => m.field.startsWith(prefix)),
    close: () => proc.kill('SIGKILL'),
  };
}

// Certificates made at test time with openssl, in `dir`: a CA (<name>.pem, <name>.key),
// and a server certificate for localhost and 127.0.0.1 signed by the CA named `ca`.
export function makeCa(dir, name) {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
    '-keyout', `${name}.key`, '-out', `${name}.pem`], dir);
  return path.join(dir, `${name}.pem`);
}

export function makeServerCert(dir, ca) {
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr'], dir);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-days', '2', '-extfile', 'san.ext', '-out', 'server.pem'], dir);
  return { cert_file: path.join(dir, 'server.pem'), key_file: path.join(dir, 'server.key') };
}

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

// A throwaway PostgreSQL server (tests/postgres.sh: Debian's postgresql package, never the
// system's cluster) on a free loopback port, or null when the package is not installed.
// `url` is a store section's libpq string; `psql(sql)` runs one statement and resolves with
// its rows (tab-separated fields); `stop()` stops it and removes its folder.
export async function startPostgres() {
  const script = path.join(repoRoot, 'tests', 'postgres.sh');
  if ((await run(script, ['available'])).code !== 0) return null;
  const dir = mkdtempSync('/tmp/flatlink-pg-'); // directly in /tmp: the postgres user must reach it
  const port = await freePort();
  const started = await run(script, ['start', dir, String(port)], { timeoutMs: 120_000 });
  if (started.code !== 0) throw new Error(`tests/postgres.sh start: ${started.stderr}`);
  const url = `host=127.0.0.1 port=${port} user=flatlink dbname=postgres`;
  return {
    url,
    port,
    dir,
    async psql(sql) {
      const r = await run('psql', [url, '-X', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
      if (r.code !== 0) throw new Error(`psql ${sql}: ${r.stderr}`);
      return r.stdout.split('\n').filter(Boolean).map((line) => line.split('\t'));
    },
    stop: () => run(script, ['stop', dir], { timeoutMs: 60_000 }),
  };
}
