// Cloud instances joined over an MQTT broker (issue 11), with the real binaries
// on loopback: two flatlink-cloud instances over one Mosquitto (status and
// commands across instances, identical snapshots, takeover with 4001, offline
// within the bound, isolation, bad backplane messages refused), then a 3-node
// nats-server cluster (MQTT listener, JetStream) where one broker node and one
// cloud instance are killed with SIGKILL during a numbered status stream from a
// real flatlinkd that knows both cloud URLs.
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  browser,
  cloudConfig,
  flatA,
  flatB,
  flatC,
  gatewayConfig,
  loginA,
  loginB,
  loginC,
  metrics,
  rawGateway,
  signBackplane,
  startCloud,
  startGateway,
  stop,
} from './flatlink.mjs';
import { natsBroker, natsServer } from './faults.mjs';
import { freePort, makeCa, makeServerCert, run, startMosquitto, tempDir, waitFor } from './harness.mjs';

const lamp = (id) => ({
  id,
  name: id,
  kind: 'lamp',
  capabilities: [{ name: 'on', type: 'bool', writable: true }],
  state: { on: false },
  online: true,
});

// Mosquitto for the backplane: `lines` go to its listener (TLS, passwords).
const startBroker = (lines = ['allow_anonymous true']) =>
  startMosquitto([...lines, 'max_queued_messages 100000'], { prefix: 'flatlink-bp-mosquitto-' });

// A cloud instance on the backplane; waits until it has joined.
async function startInstance(id, brokers, { limits = {}, scheme = 'mqtt', backplane = {}, joined = true, flats = [flatA, flatB, flatC] } = {}) {
  const cfg = await cloudConfig(flats, {
    limits: { command_timeout_ms: 3000, ...limits },
    extra: {
      backplane: {
        instance_id: id,
        brokers: brokers.map((port) => `${scheme}://127.0.0.1:${port}`),
        keepalive_s: 5,
        backoff_base_ms: 100,
        backoff_max_ms: 1000,
        command_offline_ms: 1000,
        ...backplane,
      },
    },
  });
  const proc = await startCloud(cfg);
  if (joined) await proc.waitForLine(`instance=${id} connected;`, 20_000);
  return { cfg, proc, port: cfg.port, id };
}

async function mqttPub(port, topic, payload) {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-s'];
  const r = await run('/usr/bin/mosquitto_pub', args, { input: payload });
  assert.equal(r.code, 0, r.stderr);
}

async function helloGateway(port, flat, gateway, devices = [lamp('lamp-1')], nextSeq = 1) {
  const gw = await rawGateway(port, flat.token);
  gw.send({ type: 'hello', gateway, version: '0', devices, next_seq: nextSeq });
  await gw.next('ack');
  return gw;
}

const online = (peer) => peer.next('snapshot', (m) => m.gateway_online === true, 8000);

describe('two cloud instances over one Mosquitto', () => {
  let broker, A, B;

  before(async () => {
    broker = await startBroker();
    [A, B] = await Promise.all([startInstance('cloud-a', [broker.port]), startInstance('cloud-b', [broker.port])]);
  });

  after(async () => {
    for (const p of [A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  test('a browser on A sees the statuses of a gateway on B, in order, and commands it', async () => {
    const gw = await helloGateway(B.port, flatA, 'gw-a');
    const b = await browser(A.port, loginA);
    await online(b);
    for (let seq = 1; seq <= 20; ++seq) {
      gw.send({ type: 'status', items: [{ seq, device: 'lamp-1', state: { on: seq % 2 === 0 }, ts: Date.now() }] });
    }
    await waitFor(() => b.of('update').length >= 20, 8000, { message: '20 updates on A' });
    assert.deepEqual(b.of('update').map((u) => u.seq), Array.from({ length: 20 }, (_, i) => i + 1));
    await gw.next('ack', (m) => m.seq === 20);

    const t0 = Date.now();
    b.send({ type: 'command', id: 'from-a-1', device: 'lamp-1', set: { on: true } });
    const cmd = await gw.next('command');
    assert.deepEqual(cmd.set, { on: true });
    assert.ok(cmd.expires > Date.now());
    gw.send({ type: 'result', id: cmd.id, outcome: 'ok', message: '' });
    const result = await b.next('result', (m) => m.id === 'from-a-1');
    assert.equal(result.outcome, 'ok');
    console.log(`# command browser on A -> gateway on B -> result on A: ${Date.now() - t0} ms`);
    // a bad value is refused on A already, never reaching B
    b.send({ type: 'command', id: 'from-a-2', device: 'lamp-1', set: { on: 'yes' } });
    assert.equal((await b.next('result', (m) => m.id === 'from-a-2')).outcome, 'rejected');
    assert.equal(gw.of('command').length, 1);

    // a burst across the backplane: 2,000 statuses in batches of 50, timed until the last reaches A
    const t1 = Date.now();
    for (let first = 21; first <= 2020; first += 50) {
      const items = [];
      for (let seq = first; seq < first + 50; ++seq) items.push({ seq, device: 'lamp-1', state: { on: seq % 2 === 0 }, ts: Date.now() });
      gw.send({ type: 'status', items });
    }
    await b.next('update', (u) => u.seq === 2020, 15_000);
    const burstMs = Date.now() - t1;
    await gw.next('ack', (m) => m.seq === 2020);
    const seqs = b.of('update').map((u) => u.seq);
    assert.deepEqual(seqs, Array.from({ length: 2020 }, (_, i) => i + 1));
    console.log(`# 2,000 statuses gateway on B -> browser on A in ${burstMs} ms (${Math.round(2000 / (burstMs / 1000))}/s), in order, none twice`);

    const m = await metrics(A.port);
    assert.equal(m.flatlink_backplane_connected, 1);
    assert.equal(m.flatlink_backplane_command_round_trips_total, 1);
    assert.ok(m['flatlink_backplane_messages_total{direction="in"}'] >= 20);
    b.close();
    gw.close();
  });

  test('the gateway is acknowledged only once the broker holds its status (PUBACK)', async () => {
    const gw = await helloGateway(B.port, flatB, 'gw-b', [lamp('b-lamp')]);
    gw.send({ type: 'status', items: [{ seq: 1, device: 'b-lamp', state: { on: true }, ts: Date.now() }] });
    await gw.next('ack', (m) => m.seq === 1);
    broker.proc.kill('SIGSTOP');
    try {
      gw.send({ type: 'status', items: [{ seq: 2, device: 'b-lamp', state: { on: false }, ts: Date.now() }] });
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(gw.of('ack').filter((a) => a.seq === 2).length, 0, 'acked before the broker had it');
    } finally {
      broker.proc.kill('SIGCONT');
    }
    await gw.next('ack', (m) => m.seq === 2, 8000);
    gw.close();
  });

  test('a snapshot is the same on both instances', async () => {
    const gw = await helloGateway(A.port, flatC, 'gw-c', [lamp('c-lamp'), lamp('c-lamp-2')]);
    gw.send({ type: 'status', items: [{ seq: 1, device: 'c-lamp', state: { on: true }, ts: 1700000000000 }] });
    gw.send({ type: 'presence', device: 'c-lamp-2', online: false, ts: 1700000000001 });
    await gw.next('ack', (m) => m.seq === 1);
    await new Promise((r) => setTimeout(r, 300)); // the retained state is published at most every 100 ms
    const onA = await browser(A.port, loginC);
    const onB = await browser(B.port, loginC);
    const snapA = await online(onA);
    const snapB = await waitFor(
      () => onB.of('snapshot').find((s) => s.gateway_online && s.devices.find((d) => d.id === 'c-lamp-2')?.online === false),
      8000,
    );
    assert.deepEqual(snapB, snapA);
    assert.equal(snapA.devices.find((d) => d.id === 'c-lamp').state.on, true);
    onA.close();
    onB.close();
    gw.close();
  });

  test('a device stream opened on another instance than the gateway\'s reaches the gateway (relayed over the backplane)', async () => {
    const mic = {
      id: 'c-mic',
      name: 'Mic',
      kind: 'microphone',
      capabilities: [{ name: 'audio_capture', type: 'enum', writable: false, options: ['idle', 'live'] }],
      state: {},
      online: true,
    };
    const gw = await helloGateway(B.port, flatC, 'gw-c', [lamp('c-lamp'), mic], 5);
    const onA = await browser(A.port, loginC);
    await online(onA);
    onA.send({ type: 'stream_open', ref: 'across', device: 'c-mic', direction: 'from_device', codec: 'pcm16', rate: 16000, channels: 1 });
    const across = await gw.next('stream_open');
    assert.equal(across.device, 'c-mic');
    gw.send({ type: 'stream_opened', stream: across.stream });
    assert.equal((await onA.next('stream_opened', (m) => m.ref === 'across')).device, 'c-mic');
    // on the holder's instance the same request reaches the gateway
    const onB = await browser(B.port, loginC);
    await online(onB);
    onB.send({ type: 'stream_open', ref: 'here', device: 'c-mic', direction: 'from_device', codec: 'pcm16', rate: 16000, channels: 1 });
    const open = await gw.next('stream_open', (m) => m.stream !== across.stream);
    assert.equal(open.device, 'c-mic');
    // backplane_streams.test.mjs has the frames, the bounds and the ends across instances
    onA.close();
    onB.close();
    gw.close();
  });

  test('a gateway that reconnects to B takes the flat over: A closes the old link with 4001', async () => {
    const takeoversBefore = (await metrics(A.port)).flatlink_backplane_takeovers_total;
    const old = await helloGateway(A.port, flatC, 'gw-c', [lamp('c-lamp')], 10);
    const watcher = await browser(A.port, loginC);
    await online(watcher);
    const fresh = await helloGateway(B.port, flatC, 'gw-c', [lamp('c-lamp')], 10);
    const closed = await old.waitClosed(5000);
    assert.equal(closed.code, 4001);
    assert.equal(fresh.closed, null);
    // the browser on A follows: statuses now come from B, commands go to B
    fresh.send({ type: 'status', items: [{ seq: 10, device: 'c-lamp', state: { on: false }, ts: Date.now() }] });
    await watcher.next('update', (u) => u.seq === 10, 5000);
    watcher.send({ type: 'command', id: 'after-takeover', device: 'c-lamp', set: { on: true } });
    const cmd = await fresh.next('command').catch((e) => {
      console.log(A.proc.output());
      console.log(B.proc.output());
      throw e;
    });
    fresh.send({ type: 'result', id: cmd.id, outcome: 'ok', message: '' });
    assert.equal((await watcher.next('result', (m) => m.id === 'after-takeover')).outcome, 'ok');
    assert.equal(old.of('command').length, 0);
    assert.equal((await metrics(A.port)).flatlink_backplane_takeovers_total, takeoversBefore + 1);

    // two connects at once, one on each instance: exactly one link survives
    fresh.close();
    await new Promise((r) => setTimeout(r, 300));
    const [onA, onB] = await Promise.all([rawGateway(A.port, flatC.token), rawGateway(B.port, flatC.token)]);
    for (const gw of [onA, onB]) gw.send({ type: 'hello', gateway: 'gw-c', version: '0', devices: [lamp('c-lamp')], next_seq: 11 });
    await waitFor(() => onA.closed || onB.closed, 5000, { message: 'one of two racing links to close' });
    await new Promise((r) => setTimeout(r, 500));
    const losers = [onA, onB].filter((p) => p.closed);
    assert.equal(losers.length, 1, 'exactly one of the racing links is closed');
    assert.equal(losers[0].closed.code, 4001);
    watcher.close();
    onA.close();
    onB.close();
  });

  test('no instance holds the gateway: a command ends offline within the bound', async () => {
    const b = await browser(A.port, loginB);
    const t0 = Date.now();
    b.send({ type: 'command', id: 'nobody', device: 'b-lamp', set: { on: true } });
    const result = await b.next('result', (m) => m.id === 'nobody', 3000);
    assert.equal(result.outcome, 'offline');
    assert.ok(Date.now() - t0 < 2000);
    b.close();
  });

  test('isolation holds across instances: a browser of flat-b on A sees nothing of flat-a on B (and a restarted stream is followed)', async () => {
    const gw = await helloGateway(B.port, flatA, 'gw-a', [lamp('lamp-1')], 100);
    const bobOnA = await browser(A.port, loginB);
    const aliceOnA = await browser(A.port, loginA);
    await online(aliceOnA);
    gw.send({ type: 'status', items: [{ seq: 100, device: 'lamp-1', state: { on: true }, ts: Date.now() }] });
    await aliceOnA.next('update', (u) => u.seq === 100);
    // gw-a came back at seq 100 after 2020 (as a gateway whose store was wiped): B said so and A followed
    await A.proc.waitForLine('gateway=gw-a restarted its sequence at instance=cloud-b');
    bobOnA.send({ type: 'command', id: 'bob-1', device: 'lamp-1', set: { on: false } });
    assert.equal((await bobOnA.next('result', (m) => m.id === 'bob-1')).outcome, 'offline');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(bobOnA.of('update').length, 0);
    assert.equal(gw.of('command').length, 0);
    bobOnA.close();
    aliceOnA.close();
    gw.close();
  });

  test('bad backplane messages are refused and logged, and change nothing', async () => {
    const gw = await helloGateway(B.port, flatA, 'gw-a', [lamp('lamp-1')], 200);
    const b = await browser(A.port, loginA);
    await online(b);
    const before = (await metrics(A.port)).flatlink_backplane_refused_total;
    const status = (seq) => ({ type: 'status', items: [{ seq, device: 'lamp-1', state: { on: true }, ts: 1 }] });
    const envelope = { v: 1, flat: 'flat-a', from: 'cloud-b', gateway: 'gw-a', msg: status(900) };
    const bad = [
      ['flatlink/v1/flats/flat-a/status', '{not json at all'],
      ['flatlink/v1/flats/flat-a/status', JSON.stringify({ ...envelope, v: 2 })], // not ours
      ['flatlink/v1/flats/flat-a/status', JSON.stringify({ ...envelope, flat: 'flat-b' })], // crossing flats
      ['flatlink/v1/flats/flat-a/status', JSON.stringify({ ...envelope, extra: 1 })],
      ['flatlink/v1/flats/flat-a/status', JSON.stringify({ ...envelope, msg: { type: 'status', items: [] } })],
      ['flatlink/v1/flats/flat-a/status', JSON.stringify({ ...envelope, msg: { type: 'hello' } })],
      ['flatlink/v1/flats/flat-a/commands', JSON.stringify({ v: 1, flat: 'flat-a', from: 'x', msg: { type: 'ack', seq: 1 } })],
      ['flatlink/v1/flats/flat-a/holder', JSON.stringify({ v: 1, flat: 'flat-a', from: 'evil', instance: 'cloud-b', since: 1, gateway: '' })],
    ];
    // Signed with the instances' key (a broker client without it is dropped before any check:
    // backplane_security.test.mjs): the checks hold even for a holder of the key.
    for (const [topic, payload] of bad) await mqttPub(broker.port, topic, signBackplane(topic, payload));
    await mqttPub(broker.port, 'flatlink/v1/flats/flat-a/status', 'x'.repeat(200_000)); // over the cap
    await waitFor(async () => (await metrics(A.port)).flatlink_backplane_refused_total - before >= bad.length + 1, 5000, {
      message: 'every bad message refused',
    });
    await A.proc.waitForLine(/backplane: instance=cloud-a topic=.* refused: the flat in the payload is not the topic's flat/);
    // nothing changed: no update with a forged seq, the link still works end to end
    gw.send({ type: 'status', items: [{ seq: 201, device: 'lamp-1', state: { on: false }, ts: Date.now() }] });
    await b.next('update', (u) => u.seq === 201, 5000);
    assert.equal(b.of('update').filter((u) => u.seq === 900).length, 0);
    assert.equal(gw.closed, null);
    b.close();
    gw.close();
  });

  test('a reload that changes the backplane (same number of brokers) says it applies at a restart; the instance stays joined', async () => {
    const original = JSON.stringify(A.cfg.config, null, 2);
    const next = structuredClone(A.cfg.config);
    next.backplane.brokers = [`mqtt://127.0.0.1:${broker.port + 1}`];
    next.backplane.keepalive_s = 7;
    writeFileSync(A.cfg.file, JSON.stringify(next, null, 2));
    const seen = A.proc.lines.length;
    A.proc.kill('SIGHUP');
    await waitFor(() => A.proc.lines.slice(seen).find((l) => l.includes('reload applied')), 5000, { message: 'the reload' });
    writeFileSync(A.cfg.file, original);
    assert.match(A.proc.lines.slice(seen).find((l) => l.includes('reload applied')), /applied only at a restart: backplane/);
    assert.equal((await metrics(A.port)).flatlink_backplane_connected, 1);
  });

  test('an instance that dies is noticed through its will: its flat shows offline on the others', async () => {
    const gw = await helloGateway(B.port, flatA, 'gw-a', [lamp('lamp-1')], 300);
    const b = await browser(A.port, loginA);
    await online(b);
    const seen = b.messages.length;
    B.proc.kill('SIGKILL');
    await waitFor(() => b.messages.slice(seen).find((m) => m.type === 'gateway' && m.online === false), 5000, {
      message: 'the browser on A to see the gateway go offline',
    });
    await A.proc.waitForLine('instance=cloud-b left or died (its will)');
    const t0 = Date.now();
    b.send({ type: 'command', id: 'after-death', device: 'lamp-1', set: { on: true } });
    assert.equal((await b.next('result', (m) => m.id === 'after-death')).outcome, 'offline');
    assert.ok(Date.now() - t0 < 500, 'answered at once: the holder is known dead');
    // a fresh browser gets the same picture
    const late = await browser(A.port, loginA);
    assert.equal(late.of('snapshot').at(-1).gateway_online, false);
    late.close();
    b.close();
    gw.close();
  });
});

// A TCP relay in front of the broker whose broker-to-client direction can be held:
// what the broker sends waits, in order, until release().
async function holdingRelay(brokerPort) {
  const port = await freePort();
  const pairs = new Set();
  let holding = false;
  const server = net.createServer((client) => {
    const broker = net.connect(brokerPort, '127.0.0.1');
    const pair = { client, held: [] };
    pairs.add(pair);
    client.on('data', (d) => broker.write(d));
    broker.on('data', (d) => (holding ? pair.held.push(d) : client.write(d)));
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      broker.destroy();
    };
    client.on('error', end).on('close', end);
    broker.on('error', end).on('close', end);
  });
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  return {
    port,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const pair of pairs) for (const d of pair.held.splice(0)) pair.client.write(d);
    },
    held: () => [...pairs].reduce((n, p) => n + p.held.length, 0),
    close: () => new Promise((resolve) => {
      for (const pair of pairs) pair.client.destroy();
      server.close(resolve);
    }),
  };
}

// Issue 17: a status relayed between instances carries its stream epoch, so that an
// instance that does not hold the link follows (gateway, epoch, seq) exactly as the holder
// does: when the gateway moves to it, its hello is answered with the last seq of the hello's
// own epoch (not of another epoch it saw over the backplane, which would acknowledge the
// gateway's waiting statuses unsent), and it shows the same lost count.
describe('stream epochs across instances', () => {
  let broker, A, B;
  const E1 = '1'.repeat(32);
  const E2 = '2'.repeat(32);

  before(async () => {
    broker = await startBroker();
    [A, B] = await Promise.all([startInstance('cloud-ea', [broker.port]), startInstance('cloud-eb', [broker.port])]);
  });

  after(async () => {
    for (const p of [A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  const hello = async (port, fields) => {
    const gw = await rawGateway(port, flatA.token);
    gw.send({ type: 'hello', gateway: 'gw-e', version: '0', devices: [lamp('lamp-1')], ...fields });
    return { gw, answer: await gw.next('ack') };
  };
  const send = (gw, from, to) => {
    const items = [];
    for (let seq = from; seq <= to; ++seq) items.push({ seq, device: 'lamp-1', state: { on: seq % 2 === 0 }, ts: Date.now() });
    gw.send({ type: 'status', items });
  };

  test('a gateway that moves to another instance resumes its own epoch there, and the lost count is the same on both', async () => {
    const b = await browser(B.port, loginA);
    // Epoch 1 on A: 1..30 acknowledged; 31..60 will wait in the gateway (its link drops).
    let { gw, answer } = await hello(A.port, { epoch: E1, next_seq: 1 });
    assert.equal(answer.seq, 0);
    send(gw, 1, 30);
    await gw.next('ack', (m) => m.seq === 30);
    await b.next('update', (u) => u.seq === 30, 8000);
    gw.close();
    // Its store gone: epoch 2 on A, 1..50, 7 statuses counted maybe lost.
    ({ gw, answer } = await hello(A.port, { epoch: E2, next_seq: 1, lost: 7 }));
    assert.equal(answer.seq, 0, 'a new epoch is a new stream');
    send(gw, 1, 50);
    await gw.next('ack', (m) => m.seq === 50);
    await waitFor(() => b.of('update').filter((u) => u.seq === 50).length === 1, 8000, { message: 'epoch 2 on B' });
    gw.close();
    await waitFor(async () => (await metrics(B.port)).flatlink_gateway_lost_statuses === 7, 8000,
      { message: "B shows the lost count A shows (A's: 7)" });
    assert.equal((await metrics(A.port)).flatlink_gateway_lost_statuses, 7);
    // Back to epoch 1 (its store readable again), now on B: 31..60 wait. B must answer 30, the
    // last of epoch 1, not 50, the last seq it saw of epoch 2.
    ({ gw, answer } = await hello(B.port, { epoch: E1, next_seq: 61, acked: 30, lost: 7 }));
    assert.equal(answer.seq, 30, 'resume after the last seq of the hello\'s own epoch');
    send(gw, 31, 60);
    await gw.next('ack', (m) => m.seq === 60, 8000);
    await b.next('update', (u) => u.seq === 60, 8000);
    const m = await metrics(B.port);
    assert.equal(m.flatlink_gateway_lost_statuses, 7, 'the move counts nothing twice');
    gw.close();
    b.close();
  });
});

describe('instances that must not share a broker this way: one instance_id twice, accounts that differ', () => {
  let broker, P;

  before(async () => {
    broker = await startBroker();
    P = await startInstance('cloud-p', [broker.port]);
  });

  after(async () => {
    for (const p of [P?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  test('a second process with a running instance_id leaves with a clear error; the first stays joined', async () => {
    const twin = await startInstance('cloud-p', [broker.port], { joined: false });
    const result = await Promise.race([
      twin.proc.exited,
      new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000)),
    ]);
    if (result === 'still running') await stop(twin.proc, 'SIGKILL');
    assert.notEqual(result, 'still running', `the twin kept running:\n${twin.proc.output().slice(-2000)}`);
    assert.equal(result.code, 1, twin.proc.output().slice(-2000));
    assert.match(twin.proc.output(), /instance_id cloud-p is already used by a running flatlink-cloud \(run [0-9a-f]{16}\): each instance needs an instance_id of its own/);
    await P.proc.waitForLine(/another process started later with this instance_id \(run [0-9a-f]{16}\)/, 5000);
    // The first one is still there and joined (it takes its session back).
    assert.equal(P.proc.exitCode, null);
    await waitFor(async () => (await metrics(P.port)).flatlink_backplane_connected === 1, 10_000, { message: 'cloud-p joined again' });
  });

  test('an instance killed and started again at once with its instance_id joins as usual (its last run is not a twin)', async () => {
    const Q = await startInstance('cloud-q', [broker.port]);
    await stop(Q.proc, 'SIGKILL');
    const again = await startCloud(Q.cfg);
    try {
      await again.waitForLine(/instance=cloud-q connected; run=[0-9a-f]{16}/, 20_000);
      // Its earlier run's online message is still retained in the broker; give a false alarm a moment.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(again.exitCode, null, again.output().slice(-2000));
      assert.doesNotMatch(again.output(), /already used by a running flatlink-cloud/);
    } finally {
      await stop(again);
    }
  });

  test('instances whose flats, tokens or users differ are logged on both sides', async () => {
    const R = await startInstance('cloud-r', [broker.port], { flats: [flatA, flatB] });
    try {
      const warning = /instance=cloud-p other=cloud-r the instances' accounts differ \(flats, gateway tokens or users; digest [0-9a-f]{16} there, [0-9a-f]{16} here\)/;
      await P.proc.waitForLine(warning, 10_000);
      await R.proc.waitForLine(/instance=cloud-r other=cloud-p the instances' accounts differ/, 10_000);
    } finally {
      await stop(R.proc);
    }
  });
});

describe('the gateway moves while the broker still holds statuses its last holder had acknowledged', () => {
  let broker, relay, A, B, gw;

  before(async () => {
    broker = await startBroker();
    relay = await holdingRelay(broker.port);
    // B hears the broker through the relay; catch_up_ms stays at its default.
    [A, B] = await Promise.all([startInstance('cloud-a', [broker.port]), startInstance('cloud-b', [relay.port])]);
  });

  after(async () => {
    for (const p of [gw, A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
    await relay?.close();
  });

  test('the new holder answers hello once they have arrived: the browser misses none and sees them in order', async () => {
    gw = await startGateway(
      gatewayConfig({
        id: 'gw-a',
        flat: 'flat-a',
        token: flatA.token,
        url: [`ws://127.0.0.1:${A.port}/`, `ws://127.0.0.1:${B.port}/`],
        devices: [1, 2, 3].map((i) => ({ id: `counter-${i}`, kind: 'thermometer', interval_ms: 100 })),
      }),
    );
    await A.proc.waitForLine('flat=flat-a gateway=gw-a version=');
    const b = await browser(B.port, loginA);
    await online(b);
    const seqs = () => b.of('update').map((u) => u.seq);
    await waitFor(() => seqs().length >= 5, 5000, { message: 'the stream on B' });

    // B stops hearing the broker; A goes on publishing, and the gateway gets A's acks.
    relay.hold();
    const acksBefore = (await metrics(A.port)).flatlink_acks_total;
    await waitFor(async () => (await metrics(A.port)).flatlink_acks_total >= acksBefore + 8, 5000, {
      message: 'A to acknowledge more statuses while B hears nothing',
    });
    A.proc.kill('SIGKILL');
    await B.proc.waitForLine('flat=flat-a gateway=gw-a had statuses up to seq=', 10_000);
    const waiting = B.proc.lines.find((l) => l.includes('acknowledged elsewhere, seen here up to seq='));
    const [, acked, seenHere] = waiting.match(/up to seq=(\d+) acknowledged elsewhere, seen here up to seq=(\d+)/).map(Number);
    assert.ok(acked > seenHere, waiting);
    const { flatlink_backplane_catch_up_gaps_total: gapsBefore } = await metrics(B.port);

    await new Promise((r) => setTimeout(r, 500)); // the broker "re-forms"
    assert.equal(seqs().at(-1), seenHere, 'the browser has what cloud-b had seen, no more');
    assert.equal((await metrics(B.port)).flatlink_acks_total, 0, "cloud-b has not answered the gateway's hello");
    relay.release();
    await B.proc.waitForLine(`arrived over the backplane; answering its hello`, 5000);
    await waitFor(() => seqs().at(-1) >= acked + 10, 8000, { message: 'the stream to go on from B' });

    const got = seqs();
    const expected = Array.from({ length: got.at(-1) - got[0] + 1 }, (_, i) => got[0] + i);
    assert.deepEqual(got, expected, 'every status once, in order');
    assert.equal((await metrics(B.port)).flatlink_backplane_catch_up_gaps_total, gapsBefore);
    console.log(`# moved with seq ${seenHere + 1}..${acked} still in the broker: the browser on B saw ${got[0]}..${got.at(-1)}, none missing`);
    b.close();
  });
});

describe('the backplane over TLS with a user and a password file', () => {
  let dir, broker;
  const started = [];

  before(async () => {
    dir = tempDir('flatlink-bp-tls-');
    makeCa(dir, 'test-ca');
    makeCa(dir, 'other-ca');
    const cert = makeServerCert(dir, 'test-ca');
    const passwd = path.join(dir, 'passwd');
    const r = await run('/usr/bin/mosquitto_passwd', ['-b', '-c', passwd, 'cloud', 'right-password']);
    assert.equal(r.code, 0, r.stderr);
    chmodSync(passwd, 0o644);
    for (const [name, text] of [['right.txt', 'right-password\n'], ['wrong.txt', 'wrong-password\n']]) {
      writeFileSync(path.join(dir, name), text);
      chmodSync(path.join(dir, name), 0o600);
    }
    broker = await startBroker([
      `cafile ${path.join(dir, 'test-ca.pem')}`,
      `certfile ${cert.cert_file}`,
      `keyfile ${cert.key_file}`,
      'allow_anonymous false',
      `password_file ${passwd}`,
    ]);
  });

  after(async () => {
    for (const p of [...started, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  const tlsInstance = async (id, ca, passwordFile, joined) => {
    const instance = await startInstance(id, [broker.port], {
      scheme: 'mqtts',
      joined,
      backplane: { tls: { ca_file: path.join(dir, ca) }, username: 'cloud', password_file: path.join(dir, passwordFile) },
    });
    started.push(instance.proc);
    return instance;
  };

  test("the right CA and password join; the broker's certificate is verified and a wrong password is refused", async () => {
    const good = await tlsInstance('tls-good', 'test-ca.pem', 'right.txt', true);
    assert.equal((await metrics(good.port)).flatlink_backplane_connected, 1);

    const wrongCa = await tlsInstance('tls-wrong-ca', 'other-ca.pem', 'right.txt', false);
    await wrongCa.proc.waitForLine(/backplane instance=tls-wrong-ca cannot connect to 127.0.0.1:\d+: .*certificate verify failed/, 10_000);
    const wrongPassword = await tlsInstance('tls-wrong-pw', 'test-ca.pem', 'wrong.txt', false);
    await wrongPassword.proc.waitForLine(/backplane instance=tls-wrong-pw broker 127.0.0.1:\d+ refused the connection/, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    for (const bad of [wrongCa, wrongPassword]) {
      assert.equal((await metrics(bad.port)).flatlink_backplane_connected, 0);
      assert.equal(bad.proc.lines.some((l) => l.includes('connected;')), false);
      // the password is never logged
      assert.equal(bad.proc.lines.some((l) => l.includes('password\n') || l.includes('-password')), false);
    }
  });
});

// ---------------------------------------------------------------------------------------
// A 3-node nats-server cluster with JetStream and an MQTT listener on every node (faults.mjs).
const startNatsCluster = async () => (await natsBroker()).nodes;

describe('a 3-node nats-server cluster: a broker node and a cloud instance die during a status stream', { skip: !natsServer && 'nats-server is not installed (scripts/install-deps.sh)' }, () => {
  let nodes, A, B, gw, b;

  before(async () => {
    nodes = await startNatsCluster();
    // A prefers n1, B prefers n2; both know every node.
    A = await startInstance('cloud-a', [nodes[0].mqtt, nodes[1].mqtt, nodes[2].mqtt]).catch(explain);
    B = await startInstance('cloud-b', [nodes[1].mqtt, nodes[2].mqtt, nodes[0].mqtt]).catch(explain);
  });

  after(async () => {
    for (const p of [gw, A?.proc, B?.proc, ...(nodes ?? []).map((n) => n.proc)]) if (p) await stop(p).catch(() => {});
  });

  // What the instances and the surviving broker nodes said, for a failure's message (the end
  // of the output, where CI's excerpt shows it).
  function explain(err) {
    const pick = (proc, re) => (proc?.lines ?? []).filter((l) => re.test(l)).slice(-6).map((l) => `  ${l}`).join('\n');
    err.message +=
      `\ncloud-a:\n${pick(A?.proc, /backplane|mqtt:|gateway=/)}\ncloud-b:\n${pick(B?.proc, /backplane|mqtt:|gateway=/)}` +
      `\ngateway:\n${pick(gw, /WARN|ERROR|connect/)}` +
      (nodes ?? []).slice(1).map((n) => `\n${n.name}:\n${pick(n.proc, /\[(WRN|ERR)\]/)}`).join('');
    throw err;
  }

  test('the gateway moves to the surviving instance and the browser sees every status at most once, in order, with none missing but at the broker node kill (#20 finding 4)', () => movesToSurvivor().catch(explain));

  async function movesToSurvivor() {
    const t0 = Date.now();
    const gwCfg = gatewayConfig({
      id: 'gw-a',
      flat: 'flat-a',
      token: flatA.token,
      url: [`ws://127.0.0.1:${A.port}/`, `ws://127.0.0.1:${B.port}/`],
      // four thermometers at 10 statuses/s each: one numbered stream (the gateway's seq) of ~40/s
      devices: [1, 2, 3, 4].map((i) => ({ id: `counter-${i}`, kind: 'thermometer', interval_ms: 100 })),
    });
    gw = await startGateway(gwCfg);
    await A.proc.waitForLine('flat=flat-a gateway=gw-a version=');
    b = await browser(B.port, loginA);
    await online(b);
    const seqs = () => b.of('update').map((u) => u.seq);
    await waitFor(() => seqs().length >= 20, 20_000, { message: 'a first part of the stream on B' });

    const atBrokerKill = seqs().length;
    const tBrokerKill = Date.now();
    nodes[0].proc.kill('SIGKILL'); // the broker node cloud-a is connected to
    // The survivors refuse sessions (after 4 s each) until their JetStream leaders are elected
    // again: from a fraction of a second to ~10 s here, and > 15 s seen on a loaded machine.
    await waitFor(() => A.proc.lines.filter((l) => l.includes('instance=cloud-a connected;')).length >= 2, 60_000, {
      intervalMs: 20,
      message: 'cloud-a to reconnect to another broker node',
    });
    const tMoved = Date.now();
    const atMoved = seqs().length;
    await waitFor(() => seqs().length >= atMoved + 20, 45_000, { message: 'the stream to go on after the broker node died' });
    const tResumed = Date.now();
    const atResumed = seqs().length;

    const atCloudKill = seqs().length;
    const tCloudKill = Date.now();
    A.proc.kill('SIGKILL'); // the instance holding the gateway
    await gw.waitForLine(`connected to ws://127.0.0.1:${B.port}/`, 10_000);
    const tGatewayMoved = Date.now();
    // (cloud-b may hold the hello up to backplane.catch_up_ms, 10 s, for statuses still in the cluster)
    await waitFor(() => seqs().length >= atCloudKill + 30, 30_000, { message: 'the stream to go on from the surviving instance' });

    await stop(gw); // (after() finds it stopped; explain() can still read its lines)
    await new Promise((r) => setTimeout(r, 300));
    const got = seqs();
    const first = got[0];
    const last = got[got.length - 1];
    const duplicates = got.length - new Set(got).size;
    const outOfOrder = got.filter((s, i) => i > 0 && s <= got[i - 1]).length;
    const missing = last - first + 1 - new Set(got).size;
    const held = B.proc.lines.find((l) => l.includes('acknowledged elsewhere'));
    console.log(
      held
        ? `# cloud-b held the gateway's hello: ${held.replace(/.*gateway=gw-a /, '')}`
        : '# cloud-b had every status the gateway had been acknowledged when it moved: hello answered at once',
    );
    const summary =
      `nats cluster: browser on cloud-b saw ${got.length} statuses, seq ${first}..${last}: ` +
        `${atBrokerKill} when broker node n1 was killed (cloud-a on another node ${tMoved - tBrokerKill} ms later, ` +
        `the stream through the cluster again ${tResumed - tMoved} ms after that, ${atResumed} seen then), ${atCloudKill} when cloud-a was killed ` +
        `(gateway on cloud-b ${tGatewayMoved - tCloudKill} ms later); duplicates ${duplicates}, out of order ${outOfOrder}, ` +
        `missing ${missing}; ${Date.now() - t0} ms in all`;
    console.log(`# ${summary}`);
    const gaps = [];
    for (let i = 1; i < got.length; ++i) if (got[i] > got[i - 1] + 1) gaps.push(`${got[i - 1] + 1}..${got[i] - 1}`);
    assert.equal(duplicates, 0, summary);
    assert.equal(outOfOrder, 0, summary);
    // Issue #20, finding 4: when the broker node under cloud-a dies, nats-server itself may drop
    // QoS 1 messages in flight. cloud-b checks cloud-a's continuity (each batch names the seq its
    // previous one reached) and asks cloud-a for a gap (docs/scale-out.md, "Gaps"); what it cannot
    // get is counted (flatlink_backplane_gap_lost_total, and catch_up_gaps_total for a moved
    // gateway's hello). Nothing may be missing that is not counted.
    const m = await metrics(B.port);
    const counted = (m.flatlink_backplane_gap_lost_total ?? 0) + (m.flatlink_backplane_catch_up_gaps_total ?? 0);
    const repaired = m.flatlink_backplane_gap_repaired_total ?? 0;
    console.log(`# issue #20 finding 4: missing ${missing} (gaps ${gaps.join(', ') || 'none'}), counted lost at cloud-b ${counted}, ` +
      `repaired from cloud-a ${repaired}, silently lost ${Math.max(0, missing - counted)}`);
    assert.ok(missing <= counted, `${summary}; gaps ${gaps.join(', ')}; counted ${counted}; ${held ?? 'hello answered at once'}`);
    // the surviving instance is on the backplane (nats-server may have moved its session meanwhile)
    await waitFor(async () => (await metrics(B.port)).flatlink_backplane_connected === 1, 45_000, {
      intervalMs: 100,
      message: 'cloud-b connected to the cluster',
    });
    b.close();
  }
});
