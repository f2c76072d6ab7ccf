// The cloud's TLS (finding 8 of #19): TLS 1.2 only with forward secrecy and AEAD, TLS 1.3,
// HSTS on every answer; checked with `openssl s_client`, as an auditor would.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { cloudConfig, flatA, startCloud, stop } from './flatlink.mjs';
import { makeCa, makeServerCert, tempDir, waitFor } from './harness.mjs';
import { frame, parseFrames, rawRequest, upgradeRequest } from './rfc6455.mjs';

// True when a TLS handshake with these s_client options succeeds.
function handshake(port, args) {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args], {
    input: 'Q\n',
    encoding: 'utf8',
    timeout: 10_000,
  });
  const out = r.stdout + r.stderr;
  return { ok: /Cipher is (?!\(NONE\))/.test(out) && !/handshake failure|no cipher|alert/.test(out), out };
}

describe('TLS suites and HSTS', () => {
  let cfg, cloud, ca;
  before(async () => {
    const dir = tempDir('flatlink-tls-suites-');
    ca = makeCa(dir, 'test-ca');
    cfg = await cloudConfig([flatA], { tls: makeServerCert(dir, 'test-ca') });
    cloud = await startCloud(cfg);
  });
  after(async () => {
    await stop(cloud);
  });

  test('TLS 1.2 suites without forward secrecy or with CBC-SHA1 are refused; ECDHE + AEAD and TLS 1.3 are served', () => {
    for (const cipher of ['AES128-SHA', 'AES256-GCM-SHA384', 'AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384']) {
      const r = handshake(cfg.port, ['-tls1_2', '-cipher', cipher]);
      assert.equal(r.ok, false, `${cipher} was accepted:\n${r.out.slice(0, 400)}`);
    }
    for (const cipher of ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']) {
      const r = handshake(cfg.port, ['-tls1_2', '-cipher', cipher]);
      assert.equal(r.ok, true, `${cipher} was refused:\n${r.out.slice(0, 600)}`);
    }
    assert.equal(handshake(cfg.port, ['-tls1_3']).ok, true);
    assert.equal(handshake(cfg.port, ['-tls1_1']).ok, false);
  });

  test('every answer over TLS carries HSTS', async () => {
    const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${cfg.port}`, '-quiet', '-servername', 'localhost'], {
      input: 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.match(r.stdout, /strict-transport-security: max-age=31536000/i);
    assert.match(r.stdout, /content-security-policy: /i);
  });

  // RFC 6455 5.1 over TLS: the frame guard sees what SSL_read decrypted (frontdoor.test.mjs
  // has the plain case).
  test('over TLS an unmasked frame closes the connection unprocessed; masked ones pass', async () => {
    const r = await rawRequest(cfg.port, upgradeRequest(cfg.port), { ca });
    assert.equal(r.status, 101);
    r.conn.socket.write(frame('ping', { opcode: 9 }));
    await waitFor(() => parseFrames(r.conn).some((f) => f.opcode === 10), 3000, { message: 'a pong to a masked ping' });
    r.conn.socket.write(frame(JSON.stringify({ type: 'login', flat: flatA.id, user: flatA.user, password: flatA.password }), { mask: false }));
    await waitFor(() => r.conn.ended, 3000, { message: 'the server to close the connection' });
    assert.ok(!parseFrames(r.conn).some((f) => f.opcode === 1), 'an unmasked login was answered');
  });
});
