// One load-generator process for bench/links.mjs (cloud capacity and reconnect storm).
// Forked with an IPC channel; holds at most a few thousand WebSocket links (the open-files
// cap is 20,000 per process here), all from one source address on 127.0.0.0/8 so that the
// ephemeral ports of several processes do not collide.
//
// Two kinds of link:
//   gateway  flatlink-gateway.v1 with a Bearer token; sends hello, waits for the cloud's
//            ack; in "reconnect" mode it behaves like flatlinkd's link: on a close it
//            reconnects after an exponential backoff with 50 % jitter, keeps every status
//            the cloud has not acknowledged, and resends those after the cloud's hello ack.
//   mqtt     MQTT 3.1.1 over WebSocket (subprotocol "mqtt"): a hand-written CONNECT, waits
//            for CONNACK, then stays idle.
//
// Parent -> child messages: { cmd: 'open', ... }, { cmd: 'status', n }, { cmd: 'mark' },
// { cmd: 'report' }, { cmd: 'exit' }. Child -> parent: { ev: 'opened' | 'progress' | 'report' }.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const WebSocket = createRequire(path.join(here, '../tests/integration/package.json'))('ws');

const now = () => performance.timeOrigin + performance.now(); // same clock in every process
const send = (m) => process.connected && process.send(m);

let opts = null; // the 'open' command
const links = [];
let markMs = 0; // links whose hello is acked after this count as "back"
let backCount = 0;
let lastBackMs = 0;
const backTimes = [];
let failures = 0; // closes and connect errors
let attempts = 0; // connection attempts (first ones and reconnects)

// ---------------------------------------------------------------------------------------
// gateway links
const DEVICE = {
  id: 'd1',
  name: 'bench counter',
  kind: 'counter',
  capabilities: [{ name: 'n', type: 'int', writable: false }],
  state: {},
  online: true,
};

function gatewayLink(spec) {
  return {
    flat: spec.flat,
    token: spec.token,
    ws: null,
    up: false, // hello acked on the current connection
    everUp: false,
    nextSeq: 1,
    unacked: [], // items not yet acknowledged, in seq order
    acked: 0,
    attempt: 0, // consecutive failed attempts (backoff exponent)
    connAfterMark: false, // the current connection's hello was acked after the mark
    sentAfterMark: 0, // highest seq sent on a connection opened after the mark
    distinctAfterMark: 0, // statuses sent after the mark, each counted once
  };
}

function backoffMs(link) {
  // flatlinkd's Backoff: base * 2^attempt, capped, minus up to 50 % jitter
  let delay = opts.backoffBaseMs;
  for (let i = 0; i < link.attempt && delay < opts.backoffMaxMs; i++) delay *= 2;
  delay = Math.min(delay, opts.backoffMaxMs);
  link.attempt = Math.min(link.attempt + 1, 64);
  return delay - Math.floor(Math.random() * (delay * 0.5 + 1));
}

function sendStatuses(link, items) {
  for (let i = 0; i < items.length; i += 500) {
    const part = items.slice(i, i + 500);
    link.ws.send(JSON.stringify({ type: 'status', items: part }));
    for (const it of part) {
      if (link.connAfterMark && it.seq > link.sentAfterMark) {
        link.sentAfterMark = it.seq;
        link.distinctAfterMark++;
      }
    }
  }
}

function connectGateway(link, onFirst) {
  attempts++;
  let settled = false;
  const ws = new WebSocket(opts.url, 'flatlink-gateway.v1', {
    headers: { Authorization: `Bearer ${link.token}` },
    localAddress: opts.localAddress,
    perMessageDeflate: false,
    handshakeTimeout: 15000,
  });
  link.ws = ws;
  const settle = (ok) => {
    if (settled) return;
    settled = true;
    if (onFirst) onFirst(ok);
  };
  ws.on('open', () => {
    ws.send(
      JSON.stringify({
        type: 'hello',
        gateway: `gw-${link.flat}`,
        version: 'bench',
        devices: opts.withDevice ? [DEVICE] : [],
        next_seq: link.nextSeq,
      }),
    );
  });
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    if (m.type !== 'ack') return;
    link.acked = Math.max(link.acked, m.seq);
    if (!link.up) {
      link.up = true;
      link.everUp = true;
      link.attempt = 0;
      const t = now();
      link.connAfterMark = markMs > 0 && t > markMs;
      if (link.connAfterMark) {
        backCount++;
        lastBackMs = t;
        backTimes.push(t);
      }
      // the cloud's last seq: drop what it has, resend the rest
      link.unacked = link.unacked.filter((it) => it.seq > m.seq);
      if (link.unacked.length) sendStatuses(link, link.unacked);
      settle(true);
    } else {
      let k = 0;
      while (k < link.unacked.length && link.unacked[k].seq <= m.seq) k++;
      if (k) link.unacked.splice(0, k);
    }
  });
  ws.on('error', () => {});
  ws.on('close', () => {
    if (link.ws !== ws) return;
    link.ws = null;
    link.up = false;
    failures++;
    settle(false);
    if (opts.reconnect && !exiting) {
      const t = setTimeout(() => connectGateway(link), backoffMs(link));
      t.unref?.();
    }
  });
}

function generate(link, n) {
  const items = [];
  for (let i = 0; i < n; i++) {
    const seq = link.nextSeq++;
    const it = { seq, device: 'd1', state: { n: seq }, ts: Date.now() };
    link.unacked.push(it);
    items.push(it);
  }
  if (link.up && link.ws && link.ws.readyState === WebSocket.OPEN) sendStatuses(link, items);
}

// ---------------------------------------------------------------------------------------
// MQTT over WebSocket links
function mqttConnectPacket(clientId) {
  const id = Buffer.from(clientId);
  // protocol name "MQTT", level 4 (3.1.1), flags: clean session, keep-alive 600 s
  const vh = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0x02, 0x58]);
  const rem = vh.length + 2 + id.length; // < 128: one length byte
  return Buffer.concat([Buffer.from([0x10, rem]), vh, Buffer.from([id.length >> 8, id.length & 255]), id]);
}

function connectMqtt(link, onFirst) {
  attempts++;
  let settled = false;
  const ws = new WebSocket(opts.url, 'mqtt', { localAddress: opts.localAddress, perMessageDeflate: false, handshakeTimeout: 15000 });
  link.ws = ws;
  const settle = (ok) => {
    if (!settled) {
      settled = true;
      onFirst(ok);
    }
  };
  ws.on('open', () => ws.send(mqttConnectPacket(link.clientId)));
  ws.on('message', (data) => {
    const b = Buffer.from(data);
    if (b[0] === 0x20 && b[3] === 0) {
      link.up = true;
      settle(true);
    } else settle(false);
  });
  ws.on('error', () => {});
  ws.on('close', () => {
    link.up = false;
    failures++;
    settle(false);
  });
}

// ---------------------------------------------------------------------------------------
let exiting = false;

async function open(o) {
  opts = o;
  const t0 = now();
  const kind = o.kind;
  if (kind === 'gateway') for (const spec of o.links) links.push(gatewayLink(spec));
  else for (let i = 0; i < o.count; i++) links.push({ clientId: `${o.idPrefix}-${i}`, ws: null, up: false });
  // at most `concurrency` links in their handshake at once
  let next = 0;
  let ok = 0;
  let failed = 0;
  await new Promise((resolve) => {
    let active = 0;
    const pump = () => {
      while (active < o.concurrency && next < links.length) {
        const link = links[next++];
        active++;
        const done = (good) => {
          active--;
          good ? ok++ : failed++;
          if (ok + failed === links.length) resolve();
          else pump();
        };
        kind === 'gateway' ? connectGateway(link, done) : connectMqtt(link, done);
      }
    };
    if (!links.length) resolve();
    else pump();
  });
  send({ ev: 'opened', ok, failed, ms: now() - t0 });
}

function report() {
  let up = 0;
  let unacked = 0;
  let linksWithUnacked = 0;
  let generated = 0;
  let distinctAfterMark = 0;
  for (const l of links) {
    if (l.up) up++;
    if (l.unacked) {
      unacked += l.unacked.length;
      if (l.unacked.length) linksWithUnacked++;
      generated += l.nextSeq - 1;
      distinctAfterMark += l.distinctAfterMark;
    }
  }
  return { ev: 'report', links: links.length, up, unacked, linksWithUnacked, generated, distinctAfterMark, back: backCount, lastBackMs, backTimes: markMs ? backTimes : [], failures, attempts };
}

let progressTimer = null;
process.on('message', (m) => {
  if (m.cmd === 'open') open(m).catch((err) => send({ ev: 'error', message: String(err.stack || err) }));
  else if (m.cmd === 'status') {
    for (const l of links) generate(l, m.n);
  } else if (m.cmd === 'mark') {
    markMs = m.at;
    backCount = 0;
    backTimes.length = 0;
    for (const l of links) {
      l.sentAfterMark = 0;
      l.distinctAfterMark = 0;
    }
    if (!progressTimer) {
      progressTimer = setInterval(() => {
        let up = 0;
        for (const l of links) if (l.up) up++;
        send({ ev: 'progress', up, back: backCount, lastBackMs, failures, attempts });
      }, 100);
    }
  } else if (m.cmd === 'report') send(report());
  else if (m.cmd === 'exit') {
    exiting = true;
    clearInterval(progressTimer);
    for (const l of links) l.ws?.terminate();
    setTimeout(() => process.exit(0), 50);
  }
});
process.on('disconnect', () => process.exit(0)); // the parent went away: do not linger
