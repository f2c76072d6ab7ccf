// Stream epochs and limits at the cloud, with a raw gateway (docs/protocol.md, "Delivery
// rules"): the cloud keeps its last seq per (gateway, epoch) and never acknowledges a seq of
// an epoch it has not received; its answer to hello states its limits; a gateway frame it
// refuses closes the link, so that nothing after it is acknowledged; /metrics shows what
// the gateways report lost and coalesced.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { browser, cloudConfig, flatA, flatB, flatC, gatewayConfig, loginB, loginC, metrics, rawGateway, startCloud, startGateway } from './flatlink.mjs';
import { stop } from './harness.mjs';

const EPOCH_A = '0123456789abcdef0123456789abcdef';
const EPOCH_B = 'fedcba9876543210fedcba9876543210';
const lamp = {
  id: 'lamp-1',
  name: 'Lamp',
  kind: 'lamp',
  capabilities: [{ name: 'brightness', type: 'int', min: 0, max: 100, writable: true }],
  state: {},
  online: true,
};

let cfg;
let cfgB;
let cloud;

before(async () => {
  cfg = await cloudConfig([flatA, flatB]);
  cfgB = cfg;
  cloud = await startCloud(cfg);
});

after(async () => {
  await stop(cloud);
});

function hello(extra) {
  return { type: 'hello', gateway: 'gw-a', version: '0.1.0', devices: [lamp], ...extra };
}

function status(from, to) {
  const items = [];
  for (let seq = from; seq <= to; seq++) items.push({ seq, device: 'lamp-1', state: { brightness: seq % 100 }, ts: 1_700_000_000_000 + seq });
  return { type: 'status', items };
}

// Says hello and returns the gateway and the cloud's answer to it.
async function connect(helloExtra) {
  const gw = await rawGateway(cfg.port, flatA.token);
  gw.send(hello(helloExtra));
  const answer = await gw.next('ack');
  return { gw, answer };
}

test('a new epoch is a new stream from its first seq; an epoch seen before resumes where it was', async () => {
  let { gw, answer } = await connect({ epoch: EPOCH_A, next_seq: 1 });
  assert.equal(answer.seq, 0);
  gw.send(status(1, 30));
  await gw.next('ack', (m) => m.seq === 30);
  gw.close();
  await gw.waitClosed();

  // The store was lost: a new epoch whose seqs restart below the old stream's. Before
  // epochs the cloud answered "resume after 30" to a gateway whose new statuses 1..30 it
  // had never received.
  ({ gw, answer } = await connect({ epoch: EPOCH_B, next_seq: 12, lost: 4 }));
  assert.equal(answer.seq, 0, 'nothing of the new epoch was received');
  gw.send(status(1, 11));
  await gw.next('ack', (m) => m.seq === 11);
  gw.close();
  await gw.waitClosed();

  // (A gateway's counts are over its life: it still reports what it lost.)
  ({ gw, answer } = await connect({ epoch: EPOCH_A, next_seq: 31, lost: 4, coalesced: 6 }));
  assert.equal(answer.seq, 30, 'the first epoch resumes where it was');
  gw.close();
  await gw.waitClosed();

  const m = await metrics(cfg.port);
  assert.equal(m.flatlink_gateway_lost_statuses, 4);
  assert.equal(m.flatlink_gateway_coalesced_statuses, 6, 'coalescing is counted where the cloud shows it');
});

test("the answer to hello states the cloud's limits", async () => {
  const { gw, answer } = await connect({ epoch: EPOCH_A, next_seq: 31 });
  assert.deepEqual(answer.limits, {
    max_message_bytes: 65536,
    max_batch: 500,
    max_devices: 1000,
    max_state_keys: 64,
    max_string: 256,
    messages_per_s: 200,
    burst: 400,
  });
  gw.close();
  await gw.waitClosed();
});

test('a gateway frame the cloud refuses closes the link, and nothing after it is acknowledged', async () => {
  // Too big: 1009.
  let { gw, answer } = await connect({ epoch: EPOCH_A, next_seq: 31 });
  const big = status(31, 31);
  big.items[0].state = { brightness: 1, note: 'x'.repeat(70_000) };
  gw.send(big);
  gw.send(status(32, 32));
  let closed = await gw.waitClosed();
  assert.equal(closed.code, 1009);
  assert.ok(!gw.of('ack').some((m) => m.seq >= 31), 'nothing past the refused frame is acknowledged');
  assert.equal(gw.of('error')[0]?.code, 'message_too_big');

  // Malformed: 1002.
  ({ gw, answer } = await connect({ epoch: EPOCH_A, next_seq: 31 }));
  assert.equal(answer.seq, 30);
  const bad = status(31, 32);
  bad.items[1].seq = 31; // seq must increase within a batch
  gw.send(bad);
  gw.send(status(33, 33));
  closed = await gw.waitClosed();
  assert.equal(closed.code, 1002);
  assert.ok(!gw.of('ack').some((m) => m.seq >= 31), 'nothing past the refused frame is acknowledged');

  ({ gw, answer } = await connect({ epoch: EPOCH_A, next_seq: 34 }));
  assert.equal(answer.seq, 30, 'the refused statuses are still to come');
  gw.close();
  await gw.waitClosed();
});

test('a gateway with more devices than one hello frame holds refuses the rest at its boundary and still gets through', async () => {
  // 700 lamps: their hello passed 64 KiB, the cloud refused it, and every reconnect ended in
  // a handshake timeout, for ever.
  const devices = [];
  for (let i = 0; i < 700; i++) devices.push({ id: `lamp-${i}`, kind: 'lamp', name: `Lamp number ${i}`, room: 'A room with a long name' });
  const gwCfg = gatewayConfig({ id: 'gw-many', flat: flatB.id, token: flatB.token, url: `ws://127.0.0.1:${cfgB.port}/`, devices });
  // 700 devices, each checked against the whole list: seconds under the sanitizers.
  const gateway = await startGateway(gwCfg, { timeoutMs: 60_000 });
  try {
    assert.ok(gateway.lines.some((l) => /ERROR gateway: adapter=\S+ device=lamp-\d+ refused: the device list would take/.test(l)));
    const b = await browser(cfgB.port, loginB);
    const snapshot = b.of('snapshot')[0];
    assert.ok(snapshot.gateway_online);
    assert.ok(snapshot.devices.length > 50 && snapshot.devices.length < 700, `${snapshot.devices.length} devices`);
    b.close();
  } finally {
    await stop(gateway);
  }
});

test('a gateway paces its frames to the rate the cloud announces: a backlog larger than the burst drains on one link, none lost', async () => {
  // The cloud takes 5 messages/s (burst 5) and frames of 8 KiB (about 100 statuses). Before
  // the gateway paced itself, it wrote its backlog as fast as the socket took it, and the cloud
  // stopped reading its socket to hold it to its rate (flatlink_gateway_paced_total): the
  // gateway's pings and every other frame then wait behind the backlog.
  const cfgR = await cloudConfig([flatC], { limits: { messages_per_s: 5, burst: 5, max_message_bytes: 8192 } });
  const devices = [];
  for (let i = 1; i <= 20; i++) devices.push({ id: `thermo-${i}`, kind: 'thermometer', interval_ms: 100 });
  const gwCfg = gatewayConfig({
    id: 'gw-paced',
    flat: flatC.id,
    token: flatC.token,
    url: `ws://127.0.0.1:${cfgR.port}/`,
    devices,
    cloud: { backoff_base_ms: 200, backoff_max_ms: 200 },
  });
  // A backlog first: the cloud is not there yet (about 200 statuses/s for several seconds).
  let gateway = await startGateway(gwCfg, { ready: /retry 35 in/ });
  await stop(gateway);
  const cloud2 = await startCloud(cfgR);
  let b;
  try {
    b = await browser(cfgR.port, loginC);  // logged in before the gateway comes: every update
    gateway = await startGateway(gwCfg);
    const answer = gateway.lines.find((l) => /cloud holds statuses up to seq=0; streaming from there \(frames up to 8192 bytes, \d+ statuses, 5 messages\/s, burst 5\)/.test(l));
    assert.ok(answer, 'the gateway took the announced rate');
    const [, waiting, next] = /opened .*?, (\d+) statuses waiting, next seq=(\d+)/.exec(gateway.lines.find((l) => /outbox.*opened/.test(l)));
    const backlog = Number(waiting);
    assert.ok(backlog > 600, `a backlog of ${backlog} statuses: more frames than the burst`);
    // Everything waiting (seqs 1..backlog), and what came meanwhile (from the restart's next
    // seq), reaches the browser once and in order.
    await b.next('update', (m) => m.seq >= Number(next) + 200, 30_000);
    const seqs = b.of('update').map((m) => m.seq);
    const last = seqs[seqs.length - 1];
    const expected = Array.from({ length: backlog }, (_, i) => i + 1);
    for (let seq = Number(next); seq <= last; seq++) expected.push(seq);
    assert.deepEqual(seqs, expected, 'every seq, once, in order');
    const m = await metrics(cfgR.port);
    assert.equal(m.flatlink_gateway_paced_total, 0, 'the cloud never had to hold the gateway back');
    assert.equal(gateway.lines.filter((l) => /connected to .*saying hello/.test(l)).length, 1, 'one link throughout');
    assert.ok(!gateway.lines.some((l) => /link to .* down/.test(l)), gateway.lines.filter((l) => /down/.test(l)).join('\n'));
  } finally {
    b?.close();
    await stop(gateway);
    await stop(cloud2);
  }
});
