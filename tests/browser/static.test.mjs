// flatlink-cloud serves the dashboard's files itself (from the build's staged copy of
// cloud-server/dashboard/ when the config names no dashboard_dir), with the right types,
// gzip-compressed when the browser accepts it (the `.gz` the build made beside each file),
// with validators, and nothing outside that folder.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, utimesSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';

import { buildDir, repoRoot, tempDir } from '../integration/harness.mjs';
import { freePort, launchBrowser, login, openPage, startCloud, startGateway, stop } from './fixture.mjs';

const sourceDir = path.join(repoRoot, 'cloud-server', 'dashboard');
const dashboardDir = path.join(buildDir, 'dashboard'); // the staged copy (cmake/dashboard_stage.cmake)
const compressible = /\.(html|js|mjs|css|json|svg|webmanifest)$/;

// One GET through node:http (which, unlike fetch, neither asks for nor undoes a
// Content-Encoding): the status, the headers and the body's bytes as sent.
function get(port, target, headers = {}, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method, agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

// One raw HTTP/1.1 request, the path sent exactly as given (no client-side cleaning).
function rawGet(port, target) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (d) => {
      data += d;
    });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve(data);
    });
    socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  });
}

describe('dashboard files', () => {
  let port;
  let cloud;
  before(async () => {
    port = await freePort();
    cloud = await startCloud({ port, flats: [{ id: 'flat-a', name: 'A', token: 'tok', users: [] }] });
  });
  after(async () => {
    if (cloud) await stop(cloud);
  });

  test('the cloud names where it serves the dashboard from', async () => {
    await cloud.waitForLine(`dashboard from ${dashboardDir}`, 1000);
  });

  test('/ is the dashboard page and every file has its type', async () => {
    const types = {
      '.html': /^text\/html/,
      '.js': /^text\/javascript/,
      '.css': /^text\/css/,
      '.svg': /^image\/svg\+xml/,
      '.png': /^image\/png/,
      '.json': /^application\/(manifest\+)?json/,
    };
    const index = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type'), types['.html']);
    assert.match(await index.text(), /<title>flatlink<\/title>/);
    const files = readdirSync(sourceDir);
    assert.ok(files.includes('app.js') && files.includes('style.css'));
    for (const file of files) {
      const r = await fetch(`http://127.0.0.1:${port}/${file}`);
      assert.equal(r.status, 200, file);
      const type = types[path.extname(file)];
      assert.ok(type, `${file}: a file type the test does not know`);
      assert.match(r.headers.get('content-type'), type, file);
      await r.arrayBuffer();
    }
  });

  test('files carry a validator (ETag, no-cache, not no-store); the same ETag back in If-None-Match gets 304 without a body', async () => {
    // (fetch asks for gzip: these are the compressed variants where there is one.)
    for (const file of ['', 'app.js', 'style.css', 'icon-192.png']) {
      const first = await fetch(`http://127.0.0.1:${port}/${file}`);
      assert.equal(first.status, 200, file);
      const etag = first.headers.get('etag');
      assert.match(etag ?? '', /^"[0-9a-f]+-[0-9a-f]+(-gzip)?"$/, `${file}: ETag`);
      assert.equal(first.headers.get('cache-control'), 'no-cache', file);
      await first.arrayBuffer();
      const again = await fetch(`http://127.0.0.1:${port}/${file}`, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304, file);
      assert.equal(again.headers.get('etag'), etag, file);
      assert.equal((await again.arrayBuffer()).byteLength, 0, file);
      const other = await fetch(`http://127.0.0.1:${port}/${file}`, { headers: { 'if-none-match': '"0-0"' } });
      assert.equal(other.status, 200, `${file}: another ETag`);
      await other.arrayBuffer();
    }
  });

  test('the build staged every source file, and a .gz beside each compressible one (gzip -9 -n: the same bytes every build)', () => {
    for (const file of readdirSync(sourceDir)) {
      const source = readFileSync(path.join(sourceDir, file));
      assert.deepEqual(readFileSync(path.join(dashboardDir, file)), source, `${file} staged as it is`);
      let gz = null;
      try {
        gz = readFileSync(path.join(dashboardDir, `${file}.gz`));
      } catch {
        // none
      }
      if (!compressible.test(file)) {
        assert.equal(gz, null, `${file}: no .gz beside a file that does not compress`);
        continue;
      }
      assert.ok(gz, `${file}.gz staged`);
      assert.deepEqual(gunzipSync(gz), source, `${file}.gz holds the source's bytes`);
      assert.equal(gz.readUInt32LE(4), 0, `${file}.gz: no time in its header (-n)`);
      assert.equal(gz[3] & 0x08, 0, `${file}.gz: no file name in its header (-n)`);
      assert.deepEqual(gz, execFileSync('gzip', ['-9', '-n', '-c'], { input: source }), `${file}.gz as gzip -9 -n makes it`);
    }
  });

  test('with Accept-Encoding: gzip a compressible file comes as its .gz (Content-Encoding, Vary, an ETag of its own, 304 on it)', async () => {
    let sent = 0;
    let identity = 0;
    for (const file of readdirSync(sourceDir).filter((f) => compressible.test(f))) {
      const source = readFileSync(path.join(sourceDir, file));
      const gz = await get(port, `/${file}`, { 'accept-encoding': 'gzip, deflate, br' });
      assert.equal(gz.status, 200, file);
      assert.equal(gz.headers['content-encoding'], 'gzip', file);
      assert.equal(gz.headers.vary, 'Accept-Encoding', file);
      assert.equal(Number(gz.headers['content-length']), gz.body.length, file);
      assert.deepEqual(gunzipSync(gz.body), source, `${file}: decompresses to the source's bytes`);
      assert.match(gz.headers.etag, /^"[0-9a-f]+-[0-9a-f]+-gzip"$/, file);
      const plain = await get(port, `/${file}`);
      assert.equal(plain.status, 200, file);
      assert.equal(plain.headers['content-encoding'], undefined, `${file}: identity without Accept-Encoding`);
      assert.equal(plain.headers.vary, 'Accept-Encoding', `${file}: Vary on the identity answer too`);
      assert.deepEqual(plain.body, source, file);
      assert.notEqual(plain.headers.etag, gz.headers.etag, `${file}: the two variants' ETags differ`);
      const again = await get(port, `/${file}`, { 'accept-encoding': 'gzip', 'if-none-match': gz.headers.etag });
      assert.equal(again.status, 304, `${file}: the gzip ETag revalidates`);
      assert.equal(again.headers.etag, gz.headers.etag, file);
      assert.equal(again.headers.vary, 'Accept-Encoding', file);
      assert.equal(again.body.length, 0, file);
      // The identity variant's ETag does not validate the gzip one (nor the reverse).
      assert.equal((await get(port, `/${file}`, { 'accept-encoding': 'gzip', 'if-none-match': plain.headers.etag })).status, 200, file);
      assert.equal((await get(port, `/${file}`, { 'if-none-match': gz.headers.etag })).status, 200, file);
      assert.equal((await get(port, `/${file}`, { 'if-none-match': plain.headers.etag })).status, 304, file);
      sent += gz.body.length;
      identity += source.length;
    }
    const png = await get(port, '/icon-192.png', { 'accept-encoding': 'gzip' });
    assert.equal(png.status, 200);
    assert.equal(png.headers['content-encoding'], undefined, 'a PNG is sent as it is');
    assert.equal(png.headers.vary, undefined, 'no Vary for a file without a .gz');
    assert.ok(sent < identity / 2, `gzip: ${sent} bytes for ${identity}`);
    console.log(`compressible files: ${identity} bytes as they are, ${sent} gzip-compressed (${(sent / identity).toFixed(2)})`);
  });

  test('Accept-Encoding is parsed: q=0 refuses gzip, a wildcard allows it, case does not matter', async () => {
    const cases = [
      ['gzip', true],
      ['GZip', true],
      ['deflate, gzip;q=0.5', true],
      ['gzip ; q=1.0', true],
      ['*', true],
      ['br;q=1, *;q=0.1', true],
      ['x-gzip', true],
      ['gzip;q=0', false],
      ['gzip;q=0.000', false],
      ['gzip; Q=0.0', false],
      ['gzip;q=0, *;q=1', false],
      ['*;q=0', false],
      ['identity', false],
      ['br, deflate', false],
      ['gzipper', false],
      ['', false],
    ];
    for (const [header, gzip] of cases) {
      const r = await get(port, '/app.js', { 'accept-encoding': header });
      assert.equal(r.status, 200, header);
      assert.equal(r.headers['content-encoding'], gzip ? 'gzip' : undefined, `Accept-Encoding: ${header}`);
      assert.equal(r.headers.vary, 'Accept-Encoding', header);
    }
  });

  test('HEAD gives the chosen variant\'s headers without a body', async () => {
    const r = await get(port, '/style.css', { 'accept-encoding': 'gzip' }, 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.headers.vary, 'Accept-Encoding');
    assert.equal(r.body.length, 0);
  });

  test('a missing file is 404', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/no-such-file.js`);
    assert.equal(r.status, 404);
  });

  test('nothing outside the dashboard folder is served', async () => {
    for (const target of [
      '/../CMakeLists.txt',
      '/../../README.md',
      '/%2e%2e/CMakeLists.txt',
      '/%2E%2E/%2E%2E/README.md',
      '/..%2fCMakeLists.txt',
      '/../../../../../../etc/passwd',
    ]) {
      const reply = await rawGet(port, target);
      assert.doesNotMatch(reply, /^HTTP\/1\.[01] 200/, `${target} was served:\n${reply.slice(0, 300)}`);
      assert.doesNotMatch(reply, /add_subdirectory|root:x:0|# flatlink/, target);
    }
  });
});

describe('a dashboard folder without .gz files (dashboard_dir at the unstaged source)', () => {
  let port;
  let cloud;
  let dir;
  before(async () => {
    dir = tempDir('flatlink-dash-');
    copyFileSync(path.join(sourceDir, 'index.html'), path.join(dir, 'index.html'));
    writeFileSync(path.join(dir, 'app.webmanifest'), JSON.stringify({ name: 'flatlink' }));
    port = await freePort();
    cloud = await startCloud({ port, flats: [{ id: 'flat-a', name: 'A', token: 'tok', users: [] }], dashboardDir: dir });
  });
  after(async () => {
    if (cloud) await stop(cloud);
  });

  test('every file is sent as it is, without Vary, whatever the browser accepts', async () => {
    const r = await get(port, '/', { 'accept-encoding': 'gzip' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers.vary, undefined);
    assert.deepEqual(r.body, readFileSync(path.join(sourceDir, 'index.html')));
  });

  test('a .webmanifest is application/manifest+json', async () => {
    const r = await get(port, '/app.webmanifest', { 'accept-encoding': 'gzip' });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^application\/manifest\+json/);
  });
});

describe('the build stages a changed source file again (cmake/dashboard_stage.cmake)', () => {
  test('a scratch project with the staging function: a .gz per compressible file; a changed file re-staged, the others untouched', () => {
    const root = tempDir('flatlink-stage-');
    const src = path.join(root, 'src');
    mkdirSync(src);
    writeFileSync(path.join(src, 'a.js'), 'export const a = 1;\n'.repeat(50));
    writeFileSync(path.join(src, 'b.css'), 'body { margin: 0 }\n'.repeat(50));
    writeFileSync(path.join(src, 'c.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    writeFileSync(
      path.join(root, 'CMakeLists.txt'),
      `cmake_minimum_required(VERSION 3.20)\nproject(stage NONE)\ninclude(${path.join(repoRoot, 'cmake', 'dashboard_stage.cmake')})\n` +
        `flatlink_stage_dashboard(stage "${src}" "\${CMAKE_BINARY_DIR}/staged")\n`,
    );
    const build = path.join(root, 'build');
    execFileSync('cmake', ['-S', root, '-B', build], { stdio: 'ignore' });
    execFileSync('cmake', ['--build', build], { stdio: 'ignore' });
    const staged = (f) => path.join(build, 'staged', f);
    assert.equal(gunzipSync(readFileSync(staged('a.js.gz'))).toString(), 'export const a = 1;\n'.repeat(50));
    assert.equal(gunzipSync(readFileSync(staged('b.css.gz'))).toString(), 'body { margin: 0 }\n'.repeat(50));
    assert.ok(readFileSync(staged('c.png')).length === 4);
    assert.throws(() => statSync(staged('c.png.gz')), 'no .gz for a PNG');
    const cssBefore = statSync(staged('b.css.gz')).mtimeMs;
    // a.js changes (its time moved on, as an editor's save would).
    writeFileSync(path.join(src, 'a.js'), 'export const a = 2;\n'.repeat(50));
    const later = new Date(Date.now() + 5000);
    utimesSync(path.join(src, 'a.js'), later, later);
    execFileSync('cmake', ['--build', build], { stdio: 'ignore' });
    assert.equal(readFileSync(staged('a.js')).toString(), 'export const a = 2;\n'.repeat(50));
    assert.equal(gunzipSync(readFileSync(staged('a.js.gz'))).toString(), 'export const a = 2;\n'.repeat(50), 'the .gz made again');
    assert.equal(statSync(staged('b.css.gz')).mtimeMs, cssBefore, 'an unchanged file is not staged again');
    // A new file is found (the glob's CONFIGURE_DEPENDS re-runs the configure step).
    writeFileSync(path.join(src, 'd.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>\n');
    execFileSync('cmake', ['--build', build], { stdio: 'ignore' });
    assert.equal(gunzipSync(readFileSync(staged('d.svg.gz'))).toString(), '<svg xmlns="http://www.w3.org/2000/svg"/>\n');
  });
});

describe('Chromium loads the dashboard compressed', () => {
  const flat = { id: 'flat-a', name: 'A', token: 'tok-a', users: [{ name: 'anna', password: 'pw-anna' }] };
  let cloud, gateway, browser;
  before(async () => {
    const port = await freePort();
    cloud = await startCloud({ port, flats: [flat] });
    gateway = await startGateway({
      port, flat: flat.id, gatewayId: 'gw-a', token: flat.token,
      devices: [
        { id: 'lamp-1', kind: 'lamp', name: 'Lamp', room: 'Living room' },
        { id: 'door-1', kind: 'lock', name: 'Front door', room: 'Hall' },
      ],
    });
    browser = await launchBrowser();
    cloud.url = `http://127.0.0.1:${port}/`;
  });
  after(async () => {
    await browser?.close().catch(() => {});
    for (const p of [gateway, cloud]) if (p) await stop(p).catch(() => {});
  });

  test('the page, its modules and its CSS arrive gzip-compressed; tiles shown; the intercom\'s code is not loaded for a flat without audio devices', async () => {
    const page = await openPage(browser, cloud.url);
    const encodings = new Map();
    page.on('response', async (response) => {
      if (!response.url().startsWith(cloud.url)) return;
      encodings.set(new URL(response.url()).pathname, (await response.allHeaders())['content-encoding'] ?? 'identity');
    });
    await page.reload({ waitUntil: 'load' });
    await login(page, { flat: flat.id, user: 'anna', password: 'pw-anna' });
    await page.locator('article[data-device="lamp-1"][data-online="true"]').waitFor();
    await page.locator('article[data-device="door-1"][data-online="true"]').waitFor();
    for (const file of ['/', '/app.js', '/style.css', '/i18n.js', '/device_card.js', '/connection.js']) {
      assert.equal(encodings.get(file), 'gzip', `${file}: ${encodings.get(file)} (${[...encodings].join(', ')})`);
    }
    const loaded = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname));
    assert.ok(loaded.includes('/app.js') || loaded.includes('/i18n.js'), loaded.join(' '));
    assert.ok(!loaded.includes('/audio.js'), `audio.js was loaded: ${loaded.join(' ')}`);
    assert.deepEqual(page.problems ?? [], []);
  });
});
