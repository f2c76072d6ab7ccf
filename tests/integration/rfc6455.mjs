// A raw RFC 6455 / HTTP/1.1 test client on a plain TCP socket: it sends exactly the bytes
// a test asks for (bad keys, other versions, unmasked frames, huge headers) and reports
// exactly what came back, so that the cloud's strictness is checked by our own reading of
// the RFC rather than by a client library's politeness.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

import { waitFor } from './harness.mjs';

// Sends `request` (a complete HTTP request as text, or bytes: a request and what follows it)
// and resolves once the response head has arrived: { status, headers (lower-case names), body
// (what followed, so far), conn }. conn.ended tells whether the server closed the connection.
// With `ca` (a CA file's path), over TLS to a server named localhost.
export function rawRequest(port, request, { timeoutMs = 5000, ca } = {}) {
  return new Promise((resolve, reject) => {
    const socket = ca
      ? tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: readFileSync(ca) })
      : net.connect(port, '127.0.0.1');
    const conn = { socket, data: Buffer.alloc(0), ended: false, endedAt: null };
    let done = false;
    const timer = setTimeout(() => finish(new Error(`no response head within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve(value);
      }
    };
    const tryHead = () => {
      const end = conn.data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = conn.data.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(head[0].split(' ')[1]);
      const headers = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      conn.data = conn.data.subarray(end + 4);
      finish(null, { status, headers, conn, head: head[0] });
    };
    socket.on('data', (chunk) => {
      conn.data = Buffer.concat([conn.data, chunk]);
      if (!done) tryHead();
    });
    socket.on('end', () => {
      conn.ended = true;
      conn.endedAt = Date.now();
      if (!done) finish(new Error(`connection closed without a response (${conn.data.length} bytes)`));
    });
    socket.on('close', () => {
      conn.ended = true;
      conn.endedAt ??= Date.now();
      if (!done) finish(new Error('connection closed without a response'));
    });
    socket.on('error', (err) => {
      conn.ended = true;
      conn.endedAt ??= Date.now();
      if (!done) finish(err);
    });
    socket.write(request);
  });
}

// The body of a response whose head rawRequest returned: waits for content-length bytes.
export async function body(response, timeoutMs = 3000) {
  const want = Number(response.headers['content-length'] ?? 0);
  await waitFor(() => response.conn.data.length >= want || response.conn.ended, timeoutMs, { message: 'the body' });
  return response.conn.data.subarray(0, want).toString('utf8');
}

export function newKey() {
  return randomBytes(16).toString('base64');
}

// A WebSocket upgrade request; every part can be overridden (key: null leaves it out).
export function upgradeRequest(port, { key = newKey(), version = '13', protocol = 'flatlink-browser.v1', origin, headers = {}, path = '/' } = {}) {
  const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade'];
  if (key !== null) lines.push(`Sec-WebSocket-Key: ${key}`);
  if (version !== null) lines.push(`Sec-WebSocket-Version: ${version}`);
  if (protocol) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
  if (origin) lines.push(`Origin: ${origin}`);
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

// One frame as a client would send it (masked unless mask: false).
export function frame(payload, { opcode = 1, fin = true, mask = true } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const head = [(fin ? 0x80 : 0) | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (data.length < 126) {
    head.push(maskBit | data.length);
  } else if (data.length < 65536) {
    head.push(maskBit | 126, data.length >> 8, data.length & 255);
  } else {
    head.push(maskBit | 127, 0, 0, 0, 0, (data.length >>> 24) & 255, (data.length >> 16) & 255, (data.length >> 8) & 255, data.length & 255);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = randomBytes(4);
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), key, masked]);
}

// Server frames parsed from conn.data as they arrive: [{ opcode, payload }].
export function parseFrames(conn) {
  const frames = [];
  let data = conn.data;
  for (;;) {
    if (data.length < 2) break;
    const opcode = data[0] & 15;
    let len = data[1] & 127;
    let off = 2;
    if (len === 126) {
      if (data.length < 4) break;
      len = data.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (data.length < 10) break;
      len = Number(data.readBigUInt64BE(2));
      off = 10;
    }
    if (data.length < off + len) break;
    frames.push({ opcode, payload: data.subarray(off, off + len) });
    data = data.subarray(off + len);
  }
  return frames;
}

// Waits for the server's close frame: { code, reason }.
export async function closeFrame(conn, timeoutMs = 5000) {
  const close = await waitFor(() => parseFrames(conn).find((f) => f.opcode === 8), timeoutMs, { message: 'a close frame' });
  return { code: close.payload.length >= 2 ? close.payload.readUInt16BE(0) : null, reason: close.payload.subarray(2).toString() };
}
