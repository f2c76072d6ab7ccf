// Stream epochs and limits at the cloud, with a raw gateway (docs/protocol.md, "Delivery
// rules"): the cloud keeps its last seq per (gateway, epoch) and never acknowledges a seq of
// an epoch it has not received; its answer to hello states its limits; a gateway frame it
// refuses closes the link, so that nothing after it is acknowledged; /metrics shows what
// the gateways report lost and coalesced.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { browser, cloudConfig, flatA, flatB, gatewayConfig, loginB, metrics, rawGateway, startCloud, startGateway } from './flatlink.mjs';
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
  ({ gw, answer } = await connect({ epoch: EPOCH_A, next_seq: 31, lost: 4 }));
  assert.equal(answer.seq, 30, 'the first epoch resumes where it was');
  gw.close();
  await gw.waitClosed();

  const m = await metrics(cfg.port);
  assert.equal(m.flatlink_gateway_lost_statuses, 4);
});

test("the answer to hello states the cloud's limits", async () => {
  const { gw, answer } = await connect({ epoch: EPOCH_A, next_seq: 31 });
  assert.deepEqual(answer.limits, { max_message_bytes: 65536, max_batch: 500, max_devices: 1000, max_state_keys: 64, max_string: 256 });
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
