// flatlink-cloud serves the dashboard's files itself (from cloud-server/dashboard/ when the
// config names no dashboard_dir), with the right types, and nothing outside that folder.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { repoRoot } from '../integration/harness.mjs';
import { freePort, startCloud, stop } from './fixture.mjs';

const dashboardDir = path.join(repoRoot, 'cloud-server', 'dashboard');

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
    const files = readdirSync(dashboardDir);
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
    for (const file of ['', 'app.js', 'style.css', 'icon-192.png']) {
      const first = await fetch(`http://127.0.0.1:${port}/${file}`);
      assert.equal(first.status, 200, file);
      const etag = first.headers.get('etag');
      assert.match(etag ?? '', /^"[0-9a-f]+-[0-9a-f]+"$/, `${file}: ETag`);
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
