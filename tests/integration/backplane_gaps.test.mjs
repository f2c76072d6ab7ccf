// Statuses at the watching instance after a broker crash (issue 20, finding 3), with the real
// binaries on loopback: a gateway on cloud-a streams numbered statuses, a browser watches on
// cloud-a and one on cloud-b; Mosquitto (no persistence) is killed with SIGKILL while the
// stream goes on, and started again on its port. cloud-b reaches it through a relay in the
// test that opens only once cloud-a has republished its backlog and had it acknowledged, so
// that cloud-a's backlog crosses the broker before cloud-b has subscribed again, as the
// finding saw. Per browser: statuses produced / arrived / counted lost / silently lost /
// duplicated / out of order. Silently lost must be 0: cloud-b notices the broker lost its
// session (CONNACK session-present 0) and asks cloud-a for what it published since the last
// status it saw; what cannot be repaired is counted (flatlink_backplane_gap_lost_total).
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { browser, cloudConfig, flatA, loginA, metrics, rawGateway, startCloud, stop } from './flatlink.mjs';
import { portAccepts, startMosquitto, startProcess, waitFor } from './harness.mjs';

// A TCP relay in front of the broker that can be shut: while shut, new connections are closed
// at once (the client retries with its backoff), so the test decides when cloud-b is back.
async function gatedRelay(brokerPort) {
  const pairs = new Set();
  let open = true;
  const server = net.createServer((client) => {
    if (!open) return client.destroy();
    const upstream = net.connect(brokerPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => client.write(d));
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    shut: () => (open = false),
    open: () => (open = true),
    close: () =>
      new Promise((resolve) => {
        for (const pair of pairs) pair.client.destroy();
        server.close(resolve);
      }),
  };
}

async function startInstance(id, port) {
  const cfg = await cloudConfig([flatA], {
    limits: { command_timeout_ms: 3000, messages_per_s: 20_000 },
    extra: {
      backplane: { instance_id: id, brokers: [`mqtt://127.0.0.1:${port}`], keepalive_s: 5, backoff_base_ms: 100, backoff_max_ms: 500 },
    },
  });
  const proc = await startCloud(cfg);
  await proc.waitForLine(`instance=${id} connected;`, 20_000);
  return { cfg, proc, port: cfg.port, id };
}

const thermometer = {
  id: 'thermo-1',
  name: 'thermo-1',
  kind: 'thermometer',
  capabilities: [{ name: 'temperature', type: 'number', writable: false }],
  state: { temperature: 20 },
  online: true,
};

// What a browser saw of seqs first..last: arrived (distinct), duplicates, out of order.
function tally(peer, first, last) {
  const seqs = peer.of('update').map((u) => u.seq).filter((s) => s >= first && s <= last);
  const distinct = new Set(seqs);
  let outOfOrder = 0;
  for (let i = 1; i < seqs.length; ++i) if (seqs[i] < seqs[i - 1]) ++outOfOrder;
  return { arrived: distinct.size, duplicates: seqs.length - distinct.size, outOfOrder };
}

describe('statuses at the watching instance when the broker crashes and comes back without sessions (#20 finding 3)', () => {
  let broker, relay, A, B, gw, onA, onB, conf;

  before(async () => {
    broker = await startMosquitto(['allow_anonymous true', 'max_queued_messages 100000'], { prefix: 'flatlink-bpg-mosquitto-' });
    conf = path.join(broker.dir, 'mosquitto.conf');
    relay = await gatedRelay(broker.port);
    A = await startInstance('cloud-a', broker.port);
    B = await startInstance('cloud-b', relay.port);
    gw = await rawGateway(A.port, flatA.token);
    gw.send({ type: 'hello', gateway: 'gw-a', version: '0', next_seq: 1, devices: [thermometer] });
    await gw.next('ack');
    onA = await browser(A.port, loginA);
    onB = await browser(B.port, loginA);
    await onB.next('snapshot', (m) => m.gateway_online === true, 8000);
  });

  after(async () => {
    onA?.close();
    onB?.close();
    gw?.close();
    for (const p of [A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
    await relay?.close();
  });

  let seq = 0;
  const send = (n, batch = 20) => {
    for (let sent = 0; sent < n; sent += batch) {
      const items = [];
      for (let i = 0; i < Math.min(batch, n - sent); ++i) {
        ++seq;
        items.push({ seq, device: 'thermo-1', state: { temperature: 20 + (seq % 100) / 10 }, ts: Date.now() });
      }
      gw.send({ type: 'status', items });
    }
  };
  const acked = () => Math.max(0, ...gw.of('ack').map((a) => a.seq));

  test('cloud-b resyncs from cloud-a: every status reaches its browser once, in order, or is counted lost', async () => {
    const t0 = Date.now();
    send(200);
    await waitFor(() => tally(onB, 1, 200).arrived === 200, 8000, { message: 'the first 200 statuses on cloud-b' });

    // The broker dies; the stream goes on (cloud-a's browser sees it live, the gateway's acks wait).
    relay.shut();
    broker.proc.kill('SIGKILL');
    await new Promise((resolve) => (broker.proc.exitCode !== null || broker.proc.signalCode ? resolve() : broker.proc.once('exit', resolve)));
    await B.proc.waitForLine('broker connection lost', 5000);
    send(2000);
    await waitFor(() => tally(onA, 1, seq).arrived === seq, 8000, { message: "cloud-a's browser to see the statuses live" });

    // Back without sessions; cloud-a first: its backlog crosses the broker and is acknowledged
    // to the gateway while cloud-b is not subscribed.
    const connectedB = B.proc.lines.filter((l) => l.includes('instance=cloud-b connected;')).length;
    broker.proc = await startProcess('/usr/sbin/mosquitto', ['-c', conf]);
    await waitFor(() => portAccepts(broker.port), 5000, { intervalMs: 20, message: 'mosquitto to accept connections again' });
    await waitFor(() => acked() >= seq, 15_000, { message: "cloud-a's backlog acknowledged through the restarted broker" });
    relay.open();
    await waitFor(() => B.proc.lines.filter((l) => l.includes('instance=cloud-b connected;')).length > connectedB, 10_000, {
      message: 'cloud-b to reconnect',
    });
    send(200);
    const produced = seq;
    await waitFor(() => tally(onB, 1, produced).arrived === produced, 15_000, { message: 'every status on cloud-b' }).catch(() => {});
    // Whatever is still to come has come once the last one is there (or the wait ran out).
    const m = await metrics(B.port);
    const lost = m.flatlink_backplane_gap_lost_total ?? 0;
    const repaired = m.flatlink_backplane_gap_repaired_total ?? 0;
    const a = tally(onA, 1, produced);
    const b = tally(onB, 1, produced);
    const silent = produced - b.arrived - lost;
    console.log(
      `# broker killed, back without sessions (cloud-a's backlog of 2000 crossed before cloud-b subscribed): produced ${produced}; ` +
        `cloud-a's browser ${a.arrived} arrived, ${a.duplicates} duplicated, ${a.outOfOrder} out of order; ` +
        `cloud-b's browser ${b.arrived} arrived (${repaired} repaired from cloud-a), ${lost} counted lost, ${silent} silently lost, ` +
        `${b.duplicates} duplicated, ${b.outOfOrder} out of order; resyncs ${m.flatlink_backplane_resyncs_total}; ${Date.now() - t0} ms`,
    );
    assert.equal(m.flatlink_backplane_resyncs_total, 1, 'cloud-b saw the broker had no session for it');
    assert.equal(a.arrived, produced);
    assert.equal(silent, 0, `${silent} statuses silently lost at cloud-b`);
    assert.equal(b.duplicates, 0);
    assert.equal(b.outOfOrder, 0);
  });
});
