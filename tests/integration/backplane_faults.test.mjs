// Broker faults across cloud instances (issue 20), with the real binaries on loopback: a
// real flatlinkd with a simulated lamp on cloud-a, a browser of its flat on cloud-b, one
// Mosquitto between them that is killed with SIGKILL (and stopped with SIGSTOP first, so
// that a command has left cloud-b without an answer) and started again on its port. Every
// command's outcome told to the browser is compared with the executions at the device (the
// sim adapter's "command=<id> ok" lines): nothing told `offline`, `expired` or `timeout` may
// run (finding 1). Without a will from the broker, cloud-b notices a killed or hung broker
// itself and shows the flat offline (finding 2). The first browser of a flat on cloud-b gets
// the holder's state in its login snapshot, not "offline" (finding 6).
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  BROWSER_PROTOCOL,
  Peer,
  browser,
  cloudConfig,
  flatA,
  gatewayConfig,
  loginA,
  rawGateway,
  startCloud,
  startGateway,
  stop,
} from './flatlink.mjs';
import { portAccepts, startMosquitto, startProcess, waitFor } from './harness.mjs';

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// A TCP relay in front of the broker that can be shut: while shut, new connections are
// closed at once (the client retries with its backoff), so the test decides which instance
// reconnects to a restarted broker first.
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
    close: () => new Promise((resolve) => {
      for (const pair of pairs) pair.client.destroy();
      server.close(resolve);
    }),
  };
}

async function startInstance(id, port, backplane = {}) {
  const cfg = await cloudConfig([flatA], {
    limits: { command_timeout_ms: 3000 },
    extra: {
      backplane: {
        instance_id: id,
        brokers: [`mqtt://127.0.0.1:${port}`],
        keepalive_s: 5,
        backoff_base_ms: 100,
        backoff_max_ms: 500,
        command_offline_ms: 1000,
        ...backplane,
      },
    },
  });
  const proc = await startCloud(cfg);
  await proc.waitForLine(`instance=${id} connected;`, 20_000);
  return { cfg, proc, port: cfg.port, id };
}

describe('a gateway on cloud-a, a browser on cloud-b, and the broker killed or hung (#20 findings 1 and 2)', () => {
  let broker, relay, A, B, gw, b;
  let conf;

  // The broker again on its port, with its config (no persistence: sessions and retained
  // messages are gone, as after a crash); cloud-a reconnects first, then cloud-b through the relay.
  async function restartBroker() {
    const connectedA = A.proc.lines.filter((l) => l.includes('instance=cloud-a connected;')).length;
    const connectedB = B.proc.lines.filter((l) => l.includes('instance=cloud-b connected;')).length;
    broker.proc = await startProcess('/usr/sbin/mosquitto', ['-c', conf]);
    await waitFor(() => portAccepts(broker.port), 5000, { intervalMs: 20, message: 'mosquitto to accept connections again' });
    await waitFor(() => A.proc.lines.filter((l) => l.includes('instance=cloud-a connected;')).length > connectedA, 10_000, {
      message: 'cloud-a to reconnect',
    });
    relay.open();
    await waitFor(() => B.proc.lines.filter((l) => l.includes('instance=cloud-b connected;')).length > connectedB, 10_000, {
      message: 'cloud-b to reconnect',
    });
  }

  async function killBroker() {
    relay.shut();
    const lost = B.proc.lines.filter((l) => l.includes('broker connection lost')).length;
    broker.proc.kill('SIGKILL');
    await new Promise((resolve) => (broker.proc.exitCode !== null || broker.proc.signalCode ? resolve() : broker.proc.once('exit', resolve)));
    await waitFor(() => B.proc.lines.filter((l) => l.includes('broker connection lost')).length > lost, 10_000, {
      message: 'cloud-b to notice the broker is gone',
    });
  }

  // The cloud id cloud-b gave a browser command, and how often the device ran it.
  // null: cloud-b answered it without giving it an id (it never left cloud-b).
  const cloudId = (browserId) => {
    for (const l of B.proc.lines) {
      const m = l.match(new RegExp(` command=(\\S+) browser_command=${browserId} device=`));
      if (m) return m[1];
    }
    return null;
  };
  // The simulated device's adapter logs each command it carried out ("adapter=… device=…
  // command=<id> ok"); the gateway's executor logs the same outcome once more, without "adapter=".
  const executions = (id) =>
    id === null ? 0 : gw.lines.filter((l) => l.includes('adapter=') && l.includes(`command=${id} ok`)).length;

  // After the broker is back, a command from cloud-b that comes back `ok` shows the backplane
  // carries commands again; what cloud-b published before it has been delivered by then.
  async function probe(n) {
    b.send({ type: 'command', id: `probe-${n}`, device: 'lamp-1', set: { on: n % 2 === 0 } });
    const r = await b.next('result', (m) => m.id === `probe-${n}`, 15_000);
    assert.equal(r.outcome, 'ok', JSON.stringify(r));
  }

  before(async () => {
    broker = await startMosquitto(['allow_anonymous true', 'max_queued_messages 100000'], { prefix: 'flatlink-bpf-mosquitto-' });
    conf = path.join(broker.dir, 'mosquitto.conf');
    relay = await gatedRelay(broker.port);
    A = await startInstance('cloud-a', broker.port);
    B = await startInstance('cloud-b', relay.port);
    gw = await startGateway(
      gatewayConfig({
        id: 'gw-a',
        flat: 'flat-a',
        token: flatA.token,
        url: `ws://127.0.0.1:${A.port}/`,
        devices: [{ id: 'lamp-1', kind: 'lamp' }],
      }),
    );
    b = await browser(B.port, loginA);
    await b.next('snapshot', (m) => m.gateway_online === true, 8000);
  });

  after(async () => {
    b?.close();
    for (const p of [gw, A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
    await relay?.close();
  });

  test('a command sent while the broker is down never left: offline, and it does not run when the broker is back', async () => {
    await killBroker();
    b.send({ type: 'command', id: 'down-1', device: 'lamp-1', set: { on: true }, ttl_ms: 8000 });
    const told = await b.next('result', (m) => m.id === 'down-1', 12_000);
    await restartBroker(); // within the command's 8 s
    await probe(1);
    const id = cloudId('down-1');
    const ran = executions(id);
    console.log(`# broker killed, command from cloud-b, broker back within the TTL: told ${told.outcome}, executions at the device ${ran}`);
    assert.equal(told.outcome, 'offline', JSON.stringify(told));
    assert.equal(ran, 0, `told ${told.outcome} ("${told.message}"), then it ran ${ran} time(s)`);
  });

  test('a command that left before the broker died is answered by its result once the broker is back within the TTL', async () => {
    broker.proc.kill('SIGSTOP'); // cloud-b's publish goes out, no PUBACK comes
    b.send({ type: 'command', id: 'left-1', device: 'lamp-1', set: { on: true }, ttl_ms: 8000 });
    await B.proc.waitForLine(' browser_command=left-1 device=');
    // Longer than command_offline_ms (1000): the span in which cloud-b used to say offline.
    await delay(1500);
    const early = b.messages.find((m) => m.type === 'result' && m.id === 'left-1');
    await killBroker();
    await restartBroker();
    const told = early ?? (await b.next('result', (m) => m.id === 'left-1', 12_000));
    const id = cloudId('left-1');
    await probe(2);
    const ran = executions(id);
    console.log(`# broker stopped, command from cloud-b, broker killed and back within the TTL: told ${told.outcome}${early ? ' before the broker was back' : ''}, executions at the device ${ran}`);
    assert.ok(!['offline', 'expired', 'timeout'].includes(told.outcome) || ran === 0,
      `told ${told.outcome} ("${told.message}"), then it ran ${ran} time(s)`);
    assert.equal(told.outcome, 'ok', JSON.stringify(told));
    assert.equal(ran, 1);
  });

  test('a command that left before the broker died and is past its deadline when the broker is back is dropped, never run', async () => {
    broker.proc.kill('SIGSTOP');
    b.send({ type: 'command', id: 'late-1', device: 'lamp-1', set: { on: true }, ttl_ms: 1500 });
    await B.proc.waitForLine(' browser_command=late-1 device=');
    const id = cloudId('late-1');
    await delay(2000); // past the command's deadline, the broker still stopped
    await killBroker();
    await restartBroker();
    await probe(3);
    const told = await b.next('result', (m) => m.id === 'late-1', 5000);
    const ran = executions(id);
    const reachedA = A.proc.lines.some((l) => l.includes(`command=${id} from instance=cloud-b`));
    console.log(`# broker stopped, command from cloud-b, broker back after the TTL: told ${told.outcome}, reached cloud-a: ${reachedA}, executions at the device ${ran}`);
    assert.equal(ran, 0);
    // cloud-b's own copy, waiting for its PUBACK, is dropped when the broker is back. libmosquitto
    // also sends the copy it had handed to the dead broker again (a persistent session): where
    // that one arrives, cloud-a answers it `expired` and the gateway never sees it.
    assert.ok(B.proc.lines.some((l) => l.includes('command past its deadline') && l.includes('dropped, not published again')),
      'cloud-b says it dropped its copy');
    if (reachedA) assert.ok(A.proc.lines.some((l) => l.includes(`command=${id} from instance=cloud-b expired`)), 'cloud-a answered it expired');
    assert.ok(['timeout', 'expired'].includes(told.outcome), JSON.stringify(told));
  });

  // #20 finding 2: no will comes from a broker that dies or hangs; cloud-b must notice itself.
  test('a broker that hangs (SIGSTOP: the connection stays open, no will): the flat shows offline on cloud-b within 4 s, a login is told so, and it is back with the broker (#20 finding 2)', async () => {
    const seen = b.messages.length;
    const t0 = Date.now();
    broker.proc.kill('SIGSTOP');
    try {
      await waitFor(() => b.messages.slice(seen).find((m) => m.type === 'gateway' && m.online === false), 6000, {
        message: 'the browser on cloud-b to see the gateway offline while the broker hangs',
      });
      const took = Date.now() - t0;
      const late = await browser(B.port, loginA);
      const snap = late.of('snapshot').at(-1);
      late.send({ type: 'command', id: 'hung-1', device: 'lamp-1', set: { on: true } });
      const told = await late.next('result', (m) => m.id === 'hung-1', 3000);
      late.close();
      console.log(`# broker stopped: the browser on cloud-b saw the gateway offline after ${took} ms; a login then: gateway_online ${snap.gateway_online}, a command: ${told.outcome}`);
      assert.ok(took <= 5000, `offline after ${took} ms (bound 4 s, +1 s for a loaded machine)`);
      assert.equal(snap.gateway_online, false);
      assert.equal(told.outcome, 'offline');
    } finally {
      broker.proc.kill('SIGCONT');
    }
    await b.next('snapshot', (m) => m.gateway_online === true && b.messages.indexOf(m) > seen, 10_000);
    await probe(4);
  });

  test('a broker killed (kill -9, no will): the flat shows offline on cloud-b at once, and online again when it is back (#20 finding 2)', async () => {
    const seen = b.messages.length;
    const t0 = Date.now();
    await killBroker();
    await waitFor(() => b.messages.slice(seen).find((m) => m.type === 'gateway' && m.online === false), 3000, {
      message: 'the browser on cloud-b to see the gateway offline once the broker is gone',
    });
    const took = Date.now() - t0;
    const late = await browser(B.port, loginA);
    assert.equal(late.of('snapshot').at(-1).gateway_online, false, 'a login during the outage is told the gateway is offline');
    late.close();
    console.log(`# broker killed: the browser on cloud-b saw the gateway offline after ${took} ms`);
    await restartBroker();
    await b.next('snapshot', (m) => m.gateway_online === true && b.messages.indexOf(m) > seen, 10_000);
    await probe(5);
  });
});

// #20 finding 6: the first browser of a flat on an instance that does not hold its gateway
// logs in before the holder's retained state has arrived there.
describe('the first browser of a flat held on another instance (#20 finding 6)', () => {
  let broker, A, B, gw;

  before(async () => {
    broker = await startMosquitto(['allow_anonymous true', 'max_queued_messages 100000'], { prefix: 'flatlink-bpf-mosquitto-' });
    [A, B] = await Promise.all([startInstance('cloud-a', broker.port), startInstance('cloud-b', broker.port)]);
    gw = await rawGateway(A.port, flatA.token);
    gw.send({
      type: 'hello',
      gateway: 'gw-a',
      version: '0',
      next_seq: 1,
      devices: [{ id: 'lamp-1', name: 'lamp-1', kind: 'lamp', capabilities: [{ name: 'on', type: 'bool', writable: true }], state: { on: false }, online: true }],
    });
    await gw.next('ack');
  });

  after(async () => {
    gw?.close();
    for (const p of [A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  test("its login snapshot has the holder's state, and a command sent right after the login is held, not refused", async () => {
    const rounds = 5;
    const got = [];
    const answered = new Set();
    for (let round = 1; round <= rounds; ++round) {
      const b = new Peer(`ws://127.0.0.1:${B.port}/`, BROWSER_PROTOCOL);
      await b.opened;
      const logins = B.proc.lines.filter((l) => l.includes('flat=flat-a user=alice logged in')).length;
      b.send({ type: 'login', flat: flatA.id, user: flatA.user, password: flatA.password });
      // Sent as soon as cloud-b has logged the browser in (a command before that is refused:
      // log in first), whether or not the snapshot is there yet.
      await waitFor(() => B.proc.lines.filter((l) => l.includes('flat=flat-a user=alice logged in')).length > logins, 5000, {
        message: 'cloud-b to log the browser in',
      });
      const t0 = Date.now();
      b.send({ type: 'command', id: `first-${round}`, device: 'lamp-1', set: { on: round % 2 === 0 } });
      const snap = await b.next('snapshot', () => true, 3000);
      const ms = Date.now() - t0;
      // Refused on cloud-b, it never reaches the gateway.
      const cmd = await gw.next('command', (m) => !answered.has(m.id), 5000).catch(() => null);
      if (cmd) {
        answered.add(cmd.id);
        gw.send({ type: 'result', id: cmd.id, outcome: 'ok', message: '' });
      }
      const result = await b.next('result', (m) => m.id === `first-${round}`, 8000);
      got.push({ online: snap.gateway_online, ms, outcome: result.outcome });
      const left = B.proc.lines.filter((l) => l.includes('flat=flat-a browser left')).length;
      b.close();
      await waitFor(() => B.proc.lines.filter((l) => l.includes('flat=flat-a browser left')).length > left, 5000, {
        message: 'cloud-b to see the browser leave',
      });
    }
    const held = B.proc.lines.filter((l) => l.includes(' held: the flat')).length;
    console.log(`# first browser on cloud-b, ${rounds} rounds: ${got.map((g) => `online=${g.online} ${g.ms} ms after the login, command ${g.outcome}`).join('; ')}; commands held until the state came: ${held}`);
    for (const g of got) {
      assert.equal(g.online, true, JSON.stringify(got));
      assert.equal(g.outcome, 'ok', JSON.stringify(got));
      assert.ok(g.ms < 2000, `the snapshot waits at most ~1 s after the login: ${JSON.stringify(got)}`);
    }
  });
});
