// One persistent WebSocket per flat (issue 3), through the real binaries on
// loopback: status up to the flat's browsers, commands down with exactly one
// result, reconnects and resends, replacement, refusal, isolation, limits.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  browser,
  cloudConfig,
  demoDevices,
  flatA,
  flatB,
  flatC,
  gatewayConfig,
  loginA,
  loginB,
  metrics,
  rawGateway,
  startCloud,
  startGateway,
  stop,
} from './flatlink.mjs';
import { waitFor } from './harness.mjs';

describe('gateway, cloud and browsers on one link per flat', () => {
  let cloudCfg, cloud, gwA, gwB, gwACfg, gwBCfg;

  before(async () => {
    cloudCfg = await cloudConfig([flatA, flatB, flatC], {
      limits: { handshake_timeout_s: 2, max_message_bytes: 4096, messages_per_s: 50, burst: 100, command_timeout_ms: 2000 },
    });
    cloud = await startCloud(cloudCfg);
    const url = `ws://127.0.0.1:${cloudCfg.port}/`;
    gwACfg = gatewayConfig({ id: 'gw-a', flat: 'flat-a', token: flatA.token, url, devices: demoDevices() });
    gwBCfg = gatewayConfig({ id: 'gw-b', flat: 'flat-b', token: flatB.token, url, devices: demoDevices('b-') });
    gwA = await startGateway(gwACfg);
    gwB = await startGateway(gwBCfg);
  });

  after(async () => {
    for (const p of [gwA, gwB, cloud]) if (p) await stop(p).catch(() => {});
  });

  test('a status from a sim device reaches a browser of the same flat', async () => {
    const b = await browser(cloudCfg.port, loginA);
    const snapshot = b.of('snapshot')[0];
    assert.equal(snapshot.gateway_online, true);
    assert.deepEqual(snapshot.devices.map((d) => d.id).sort(), ['door-1', 'lamp-1', 'thermo-1']);
    const update = await b.next('update', (m) => m.device === 'thermo-1');
    assert.equal(typeof update.state.temperature, 'number');
    assert.ok(update.seq > 0);
    b.close();
  });

  test('a browser command toggles the sim lamp, and the result and the new state come back', async () => {
    const b = await browser(cloudCfg.port, loginA);
    const before = b.of('snapshot')[0].devices.find((d) => d.id === 'lamp-1').state.on;
    b.send({ type: 'command', id: 'toggle-1', device: 'lamp-1', set: { on: !before } });
    const result = await b.next('result', (m) => m.id === 'toggle-1');
    assert.equal(result.outcome, 'ok', JSON.stringify(result));
    const update = await b.next('update', (m) => m.device === 'lamp-1' && m.state.on === !before);
    assert.ok(update);
    b.send({ type: 'command', id: 'dim-1', device: 'lamp-1', set: { brightness: 33 } });
    assert.equal((await b.next('result', (m) => m.id === 'dim-1')).outcome, 'ok');
    await b.next('update', (m) => m.device === 'lamp-1' && m.state.brightness === 33);
    b.send({ type: 'command', id: 'bad-1', device: 'lamp-1', set: { brightness: 300 } });
    const bad = await b.next('result', (m) => m.id === 'bad-1');
    assert.equal(bad.outcome, 'rejected');
    assert.match(bad.message, /brightness/);
    b.close();
  });

  test('a browser of flat A can neither see nor command flat B, with any message', async () => {
    const a = await browser(cloudCfg.port, loginA);
    const b = await browser(cloudCfg.port, loginB);
    // snapshot: only its own devices
    assert.ok(a.of('snapshot')[0].devices.every((d) => !d.id.startsWith('b-')));
    // command: flat B's device is unknown in flat A
    a.send({ type: 'command', id: 'x-1', device: 'b-lamp-1', set: { on: true } });
    assert.equal((await a.next('result', (m) => m.id === 'x-1')).outcome, 'rejected');
    // history: nothing of flat B
    a.send({ type: 'history', device: 'b-thermo-1', capability: 'temperature' });
    assert.deepEqual((await a.next('history', (m) => m.device === 'b-thermo-1')).points, []);
    // login: a bound link cannot switch flats
    a.send({ type: 'login', ...loginB });
    assert.equal((await a.next('error', (m) => m.code === 'already_logged_in')).code, 'already_logged_in');
    // flat A's credentials do not open flat B
    const intruder = await browser(cloudCfg.port);
    intruder.send({ type: 'login', flat: 'flat-b', user: 'alice', password: 'pw-alice' });
    const closed = await intruder.waitClosed();
    assert.equal(closed.code, 4003);
    assert.equal(intruder.of('snapshot').length, 0);
    // meanwhile each browser saw only its own flat's updates
    await b.next('update', (m) => m.device === 'b-thermo-1');
    await a.next('update', (m) => m.device === 'thermo-1');
    assert.ok(a.of('update').every((m) => !m.device.startsWith('b-')));
    assert.ok(b.of('update').every((m) => m.device.startsWith('b-')));
    assert.ok(b.of('result').length === 0, 'flat B saw a result of flat A');
    a.close();
    b.close();
  });

  test('a wrong or missing token is refused before any data flows, and the token is not logged', async () => {
    await assert.rejects(rawGateway(cloudCfg.port, 'not-a-token-of-any-flat'));
    await assert.rejects(rawGateway(cloudCfg.port, undefined));
    await cloud.waitForLine('missing or unknown token');
    assert.ok(!cloud.output().includes('not-a-token-of-any-flat'));
    assert.ok(!cloud.output().includes(flatA.token));
    assert.ok(!gwA.output().includes(flatA.token));
  });

  test('malformed, oversized and out-of-order gateway messages are refused and close the link; other flats go on', async () => {
    const a = await browser(cloudCfg.port, loginA);
    const raw = await rawGateway(cloudCfg.port, flatC.token);
    // out of order: a status before hello closes the link
    raw.send({ type: 'status', items: [{ seq: 1, device: 'x', state: { on: true }, ts: 1 }] });
    assert.equal((await raw.waitClosed()).code, 1002);

    // A refused gateway frame may hold statuses: the link closes (1002 malformed, 1009 too
    // big), so that nothing after it is ever acknowledged (protocol.md, delivery rule 4a).
    const refused = async (message, code, closeCode) => {
      const gw = await rawGateway(cloudCfg.port, flatC.token);
      gw.send(message);
      await gw.next('error', (m) => m.code === code);
      assert.equal((await gw.waitClosed()).code, closeCode);
    };
    await refused('{"type": "hello", not json', 'invalid_json', 1002);
    await refused({ type: 'hello', gateway: 'raw-c', version: '0', devices: [], next_seq: 1, extra: 1 }, 'invalid_message', 1002);
    await refused({ type: 'status', items: 'x'.repeat(5000) }, 'message_too_big', 1009);
    // a proper hello is acknowledged
    const lamp = { id: 'c-lamp', name: 'c', kind: 'lamp', capabilities: [{ name: 'on', type: 'bool', writable: true }], state: { on: false }, online: true };
    let gw = await rawGateway(cloudCfg.port, flatC.token);
    gw.send({ type: 'hello', gateway: 'raw-c', version: '0', devices: [lamp], next_seq: 1 });
    assert.equal((await gw.next('ack')).seq, 0);
    // seq not increasing inside a batch is refused, and nothing after it is acknowledged
    gw.send({ type: 'status', items: [{ seq: 2, device: 'c-lamp', state: { on: true }, ts: 5 }, { seq: 2, device: 'c-lamp', state: { on: false }, ts: 6 }] });
    gw.send({ type: 'status', items: [{ seq: 3, device: 'c-lamp', state: { on: true }, ts: 7 }] });
    await gw.next('error', (m) => /seq/.test(m.message));
    assert.equal((await gw.waitClosed()).code, 1002);
    assert.deepEqual(gw.of('ack').map((m) => m.seq), [0]);
    gw = await rawGateway(cloudCfg.port, flatC.token);
    gw.send({ type: 'hello', gateway: 'raw-c', version: '0', devices: [lamp], next_seq: 2 });
    assert.equal((await gw.next('ack')).seq, 0);
    gw.send({ type: 'status', items: [{ seq: 1, device: 'c-lamp', state: { on: true }, ts: 5 }] });
    assert.equal((await gw.next('ack', (m) => m.seq === 1)).seq, 1);
    assert.equal(gw.closed, null);

    // a browser's garbage is refused too and closes it (1002), and a command before login closes it (1008)
    const garbage = await browser(cloudCfg.port);
    garbage.send('garbage');
    await garbage.next('error', (m) => m.code === 'invalid_json');
    assert.equal((await garbage.waitClosed()).code, 1002);
    const rude = await browser(cloudCfg.port);
    rude.send({ type: 'command', id: 'c', device: 'lamp-1', set: { on: true } });
    assert.equal((await rude.waitClosed()).code, 1008);

    // flat A kept working all along
    const count = a.of('update').length;
    await waitFor(() => a.of('update').length > count + 2, 5000);
    assert.equal(a.closed, null);
    gw.close();
    a.close();
    const m = await metrics(cloudCfg.port);
    assert.ok(m.flatlink_refused_messages_total >= 4, JSON.stringify(m));
  });

  test('a browser that does not log in in time, or floods, is closed with a clear code', async () => {
    const silent = await browser(cloudCfg.port);
    assert.equal((await silent.waitClosed(5000)).code, 4002);
    const flood = await browser(cloudCfg.port, loginA);
    for (let i = 0; i < 300; i++) flood.send({ type: 'history', device: 'thermo-1', capability: 'temperature' });
    // The cloud sends close code 1008 and drops the link. While the flood is still in
    // flight, the kernel answers the unread rest with a TCP reset, which can overtake the
    // close frame: then the client sees 1006. Either way the cloud closed it for the rate.
    const closed = await flood.waitClosed();
    assert.ok([1008, 1006].includes(closed.code), JSON.stringify(closed));
    if (closed.code === 1008) assert.equal(closed.reason, 'rate limit exceeded');
    await cloud.waitForLine(/exceeded 50 messages\/s; closing/);
    const m = await metrics(cloudCfg.port);
    assert.ok(m.flatlink_rate_limited_total >= 1);
    // A browser that keeps to the rate is not affected.
    const calm = await browser(cloudCfg.port, loginA);
    for (let i = 0; i < 20; i++) calm.send({ type: 'history', device: 'thermo-1', capability: 'temperature' });
    await waitFor(() => calm.of('history').length === 20, 5000);
    assert.equal(calm.closed, null);
    calm.close();
  });

  test('a second gateway with the same flat token replaces the first', async () => {
    const b = await browser(cloudCfg.port, loginB);
    const impostor = await rawGateway(cloudCfg.port, flatB.token);
    await gwB.waitForLine('code=4001');
    // the real gateway reconnects and replaces the raw one in turn
    assert.equal((await impostor.waitClosed(5000)).code, 4001);
    await waitFor(() => gwB.lines.filter((l) => l.includes('streaming from there')).length >= 2, 5000);
    await b.next('update', (m) => m.device === 'b-thermo-1' && m.seq > 0);
    const m = await metrics(cloudCfg.port);
    assert.ok(m.flatlink_replaced_gateways_total >= 2);
    b.close();
  });

  test('/healthz answers and /metrics counts links, statuses and commands', async () => {
    const res = await fetch(`http://127.0.0.1:${cloudCfg.port}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'ok\n');
    const m = await metrics(cloudCfg.port);
    assert.equal(m['flatlink_links{kind="gateway"}'], 2);
    assert.ok(m.flatlink_statuses_total > 0);
    assert.ok(m['flatlink_commands_total{result="ok"}'] >= 2);
    assert.ok(m['flatlink_commands_total{result="rejected"}'] >= 2);
    assert.equal((await fetch(`http://127.0.0.1:${cloudCfg.port}/nope`)).status, 404);
  });

  test('a dead cloud is detected by ping/pong within the configured time, and the link comes back', async () => {
    const downs = () => gwA.lines.filter((l) => l.includes('link to') && l.includes(' down ')).length;
    const before = downs();
    cloud.kill('SIGSTOP');
    const t0 = Date.now();
    try {
      await waitFor(() => downs() > before, 8000, { message: 'the gateway to notice the frozen cloud' });
    } finally {
      cloud.kill('SIGCONT');
    }
    const took = Date.now() - t0;
    // ping after 1 s of silence, hang up 1 s later; lws checks about once a second
    assert.ok(took < 5000, `took ${took} ms`);
    await waitFor(() => gwA.lines.filter((l) => l.includes('streaming from there')).length >= 2, 8000);
  });

  test('kill -9 of the cloud: the gateway reconnects by itself, resends, and the browser sees every status once', async () => {
    let b = await browser(cloudCfg.port, loginA);
    await waitFor(() => b.of('update').length >= 10, 5000);
    const collect = (peer) => peer.of('update').filter((m) => m.seq).map((m) => m.seq);
    cloud.kill('SIGKILL');
    await cloud.exited;
    const seen = collect(b);
    const lastBefore = Math.max(...seen);
    // Statuses keep coming while the cloud is away; they wait in the gateway's outbox.
    // (The thermometer reports every 100 ms: a second away leaves about ten behind.)
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Hold the gateway while the cloud comes back and the browser logs in again, so that
    // the browser is there before the resend starts.
    gwA.kill('SIGSTOP');
    try {
      cloud = await startCloud(cloudCfg);
      b = await browser(cloudCfg.port, loginA);
    } finally {
      gwA.kill('SIGCONT');
    }
    await waitFor(() => gwA.lines.filter((l) => l.includes('streaming from there')).length >= 3, 10000);
    const resumed = gwA.lines.filter((l) => l.includes('link up;')).pop();
    const waiting = Number(/(\d+) statuses waiting/.exec(resumed)[1]);
    assert.ok(waiting >= 5, `only ${waiting} statuses waited in the outbox: ${resumed}`);
    await b.next('update', (m) => m.device === 'thermo-1' && m.seq > lastBefore + waiting + 5, 10000);
    const after = collect(b);
    // Browsers drop a seq they already saw (docs/protocol.md); duplicates can only come
    // from the window the old cloud forwarded but had not acknowledged.
    const all = new Set([...seen, ...after]);
    const missing = [];
    for (let s = Math.min(...all); s <= Math.max(...all); s++) if (!all.has(s)) missing.push(s);
    assert.deepEqual(missing, [], 'statuses lost across the cloud restart');
    assert.equal(new Set(after).size, after.length, 'the new cloud forwarded a status twice');
    const resentAlreadySeen = after.filter((s) => s <= lastBefore).length;
    console.log(
      `cloud kill -9: ${seen.length} statuses before, ${waiting} waited in the outbox, ${after.length} after; ` +
        `${resentAlreadySeen} resent that the browser had already seen (dropped by seq), none missing`,
    );
    b.close();
  });

  test('SIGTERM stops the gateway cleanly with a close frame, and the cloud as well', async () => {
    const b = await browser(cloudCfg.port, loginB);
    // gateway B may still be on its way back after the cloud's restart
    await b.next('snapshot', (m) => m.gateway_online, 5000);
    assert.equal(await stop(gwB), 0);
    await cloud.waitForLine(/flat=flat-b gateway=gw-b offline/);
    assert.equal((await b.next('gateway', (m) => m.online === false)).online, false);
    b.send({ type: 'command', id: 'off-1', device: 'b-lamp-1', set: { on: true } });
    assert.equal((await b.next('result', (m) => m.id === 'off-1')).outcome, 'offline');
    assert.equal(await stop(cloud), 0);
    await gwA.waitForLine(/code=1001/);
    gwB = null;
    cloud = null;
  });
});

// The cloud reads a WebSocket message in pieces of its receive buffer (512 bytes, to keep
// an idle link small) and joins them: messages many times that size arrive whole, up to
// limits.max_message_bytes, and one over it is refused without harm to the link.
describe('messages larger than the receive buffer', () => {
  let cfg, cloud;

  before(async () => {
    cfg = await cloudConfig([flatA], { limits: { max_message_bytes: 65536, messages_per_s: 1000, burst: 1000 } });
    cloud = await startCloud(cfg);
  });

  after(async () => {
    if (cloud) await stop(cloud);
  });

  test('a 40 kB hello and 40 kB status batches arrive whole; a 70 kB message is refused and closes the link', async () => {
    const devices = Array.from({ length: 150 }, (_, i) => ({
      id: `lamp-${i}`,
      name: `Lampe Nr. ${i} — grün, 21 °C`, // multi-byte UTF-8 that falls across the pieces
      kind: 'lamp',
      room: `room-${i % 12}`,
      capabilities: [
        { name: 'on', type: 'bool', writable: true },
        { name: 'brightness', type: 'int', writable: true, min: 0, max: 100, unit: '%' },
      ],
      state: { on: false, brightness: i % 100 },
      online: true,
    }));
    const hello = { type: 'hello', gateway: 'gw-big', version: '0', devices, next_seq: 1 };
    assert.ok(JSON.stringify(hello).length > 30_000, `hello is ${JSON.stringify(hello).length} bytes`);
    const gw = await rawGateway(cfg.port, flatA.token);
    gw.send(hello);
    assert.equal((await gw.next('ack')).seq, 0);
    const b = await browser(cfg.port, loginA);
    const snapshot = b.of('snapshot').at(-1);
    assert.equal(snapshot.devices.length, 150);
    const last = snapshot.devices.find((d) => d.id === 'lamp-149');
    assert.equal(last.name, devices[149].name);
    assert.deepEqual(last.state, { on: false, brightness: 49 });

    const batch = (from) => ({
      type: 'status',
      items: Array.from({ length: 400 }, (_, i) => ({ seq: from + i, device: `lamp-${i % 150}`, state: { brightness: i % 100 }, ts: 1000 + i })),
    });
    for (const from of [1, 401]) {
      assert.ok(JSON.stringify(batch(from)).length > 25_000);
      gw.send(batch(from));
    }
    assert.equal((await gw.next('ack', (m) => m.seq === 800)).seq, 800);
    await waitFor(() => b.of('update').length >= 800, 5000, { message: '800 updates at the browser' });
    assert.deepEqual(b.of('update').map((u) => u.seq), Array.from({ length: 800 }, (_, i) => i + 1));

    gw.send({ type: 'status', items: 'x'.repeat(70_000) });
    await gw.next('error', (m) => m.code === 'message_too_big');
    assert.equal((await gw.waitClosed()).code, 1009);
    const again = await rawGateway(cfg.port, flatA.token);
    again.send({ ...hello, next_seq: 801 });
    assert.equal((await again.next('ack')).seq, 800);
    again.send(batch(801));
    assert.equal((await again.next('ack', (m) => m.seq === 1200)).seq, 1200);
    assert.equal(again.closed, null);
    again.close();
    b.close();
    gw.close();
  });

  test('a browser that falls 2,000 messages behind gets a fresh snapshot instead of them, and keeps its link', async () => {
    const lamp = { id: 'lamp-0', name: 'L', kind: 'lamp', capabilities: [{ name: 'on', type: 'bool', writable: true }, { name: 'level', type: 'int', writable: false, min: 0, max: 100000 }], state: { on: false }, online: true };
    const gw = await rawGateway(cfg.port, flatA.token);
    gw.send({ type: 'hello', gateway: 'gw-burst', version: '0', devices: [lamp], next_seq: 1 });
    const first = (await gw.next('ack')).seq + 1;
    const b = await browser(cfg.port, loginA);
    const { flatlink_browser_resyncs_total: resyncsBefore } = await metrics(cfg.port);
    // 20,000 statuses while the browser reads nothing (its socket paused here): more than the
    // kernel's buffers hold, so the cloud's queue for it passes 2,000.
    b.ws._socket.pause();
    const total = 20_000;
    for (let from = first; from < first + total; from += 50) {
      gw.send({ type: 'status', items: Array.from({ length: 50 }, (_, i) => ({ seq: from + i, device: 'lamp-0', state: { level: from + i - first + 1 }, ts: from + i })) });
    }
    const lastSeq = first + total - 1;
    await gw.next('ack', (m) => m.seq === lastSeq, 20_000);
    await waitFor(async () => (await metrics(cfg.port)).flatlink_browser_resyncs_total > resyncsBefore, 10_000, {
      intervalMs: 50,
      message: 'a resync to be counted',
    });
    b.ws._socket.resume();
    // what the browser knows in the end: its last snapshot, then the updates after it
    const level = () => {
      const i = b.messages.findLastIndex((m) => m.type === 'snapshot');
      let value = b.messages[i].devices.find((d) => d.id === 'lamp-0').state.level;
      for (const m of b.messages.slice(i + 1)) if (m.type === 'update') value = m.state.level;
      return value;
    };
    await waitFor(() => b.closed || level() === total, 20_000, { intervalMs: 50, message: `the browser to show level ${total}` });
    assert.equal(b.closed, null, `the browser was closed: ${JSON.stringify(b.closed)}`);
    assert.equal(level(), total);
    // between two snapshots, updates come in order and none twice
    let last = 0;
    for (const m of b.messages) {
      if (m.type === 'snapshot') last = 0;
      if (m.type !== 'update') continue;
      assert.ok(m.seq > last, `update ${m.seq} after ${last}`);
      last = m.seq;
    }
    // the link still works both ways
    b.send({ type: 'history', device: 'lamp-0', capability: 'level' });
    const history = await b.next('history', (m) => m.device === 'lamp-0', 5000);
    assert.equal(history.points.at(-1)[1], total); // [ts, value]: every status is in the history
    b.close();
    gw.close();
  });
});
