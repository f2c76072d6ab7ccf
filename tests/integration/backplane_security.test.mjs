// Who may speak on the backplane (issue 20, finding 7: "any broker client can command any
// flat"), with the real binaries on loopback: a real flatlinkd with a simulated lamp on
// cloud-a, and a plain MQTT client (mosquitto_pub) that publishes a command on the flat's
// backplane topic. Executions are counted at the device (the sim adapter's log).
// - With the instances' shared key (backplane.shared_key_file): the injected command, one signed with
//   another key and a legitimate command captured and published again are not run; the first
//   two are counted in flatlink_backplane_rejected_total, the replay is answered by the holder's
//   memory of command ids.
// - With "insecure": true (no key): the injected command runs, what the finding saw.
// - Mosquitto with per-instance credentials and the ACL in packaging/examples/backplane/: the
//   instances work; an anonymous client is refused; a client with other credentials receives
//   nothing of the backplane and what it publishes there is dropped by the broker.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  BACKPLANE_KEY,
  browser,
  cloudConfig,
  flatA,
  gatewayConfig,
  loginA,
  metrics,
  signBackplane,
  startCloud,
  startGateway,
  stop,
} from './flatlink.mjs';
import { freePort, portAccepts, repoRoot, run, startMosquitto, startProcess, tempDir, waitFor } from './harness.mjs';

const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const commandsTopic = 'flatlink/v1/flats/flat-a/commands';
const aclFile = path.join(repoRoot, 'packaging/examples/backplane/mosquitto.acl');

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
        ...backplane,
      },
    },
  });
  const proc = await startCloud(cfg);
  await proc.waitForLine(`instance=${id} connected;`, 20_000);
  return { cfg, proc, port: cfg.port, id };
}

const lampGateway = (port) =>
  startGateway(
    gatewayConfig({
      id: 'gw-a',
      flat: 'flat-a',
      token: flatA.token,
      url: `ws://127.0.0.1:${port}/`,
      devices: [{ id: 'lamp-1', kind: 'lamp' }],
    }),
  );

// The sim adapter logs each command it carried out ("adapter=… command=<id> ok").
const executions = (gw, id) => gw.lines.filter((l) => l.includes('adapter=') && l.includes(`command=${id} ok`)).length;

// A command as an instance puts it on the backplane, from a made-up instance.
const injected = (id, from = 'intruder') =>
  JSON.stringify({
    v: 1,
    flat: 'flat-a',
    from,
    msg: { type: 'command', id, device: 'lamp-1', set: { on: true }, expires: Date.now() + 10_000 },
  });

async function mqttPub(port, topic, payload, auth = []) {
  const r = await run('/usr/bin/mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), ...auth, '-q', '1', '-t', topic, '-s'], {
    input: payload,
  });
  return r;
}

// mosquitto_sub until stopped: the messages it printed (topic and payload per line).
function mqttSub(port, filter, auth = []) {
  const proc = spawn('/usr/bin/mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), ...auth, '-q', '1', '-v', '-t', filter]);
  const lines = [];
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop();
    lines.push(...parts);
  });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  return { lines, exited, stderr: () => stderr, stop: () => (proc.kill('SIGTERM'), exited) };
}

describe('a plain broker client publishes a command on the backplane (#20 finding 7)', () => {
  let broker, A, B, gw, b;

  before(async () => {
    // Anyone may connect and publish: the broker's access control is missing or wrong.
    broker = await startMosquitto(['allow_anonymous true', 'max_queued_messages 100000'], { prefix: 'flatlink-bps-mosquitto-' });
    [A, B] = await Promise.all([startInstance('cloud-a', broker.port), startInstance('cloud-b', broker.port)]);
    gw = await lampGateway(A.port);
    b = await browser(B.port, loginA);
    await b.next('snapshot', (m) => m.gateway_online === true, 8000);
  });

  after(async () => {
    b?.close();
    for (const p of [gw, A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  test('with the shared key: an unsigned command, one signed with another key and a replayed one are not run; the first two are counted', async () => {
    const before = (await metrics(A.port)).flatlink_backplane_rejected_total;
    assert.equal(before, 0);
    // Unsigned: what a plain client publishes.
    assert.equal((await mqttPub(broker.port, commandsTopic, injected('injected-1'))).code, 0);
    // Signed, with a key that is not the instances'.
    const otherKey = 'f'.repeat(64);
    assert.notEqual(otherKey, BACKPLANE_KEY);
    assert.equal((await mqttPub(broker.port, commandsTopic, signBackplane(commandsTopic, injected('injected-2'), otherKey))).code, 0);
    await waitFor(async () => (await metrics(A.port)).flatlink_backplane_rejected_total - before >= 2, 5000, {
      message: 'cloud-a to drop both',
    });
    await A.proc.waitForLine(/backplane: instance=cloud-a topic="flatlink\/v1\/flats\/flat-a\/commands" dropped: no tag/);

    // A legitimate command from the browser on cloud-b, captured on the broker as it went by,
    // then published again as it was (tag and all) once it has run.
    const sniffer = mqttSub(broker.port, commandsTopic);
    await delay(300); // mosquitto_sub has subscribed (it prints nothing until a message comes)
    b.send({ type: 'command', id: 'legit-1', device: 'lamp-1', set: { on: true } });
    assert.equal((await b.next('result', (m) => m.id === 'legit-1', 8000)).outcome, 'ok');
    await waitFor(() => sniffer.lines.length >= 1, 5000, { message: 'the command seen on the broker' });
    await sniffer.stop();
    const captured = sniffer.lines[0].slice(commandsTopic.length + 1);
    assert.match(captured, /^\{"sig":"[0-9a-f]{64}",/);
    const legitId = JSON.parse(captured).msg.id;
    assert.equal(executions(gw, legitId), 1);
    const seenBefore = A.proc.lines.length;
    assert.equal((await mqttPub(broker.port, commandsTopic, captured)).code, 0);
    // A probe after it: whatever cloud-a did with the replay, it has done it by then.
    b.send({ type: 'command', id: 'probe-1', device: 'lamp-1', set: { on: false } });
    assert.equal((await b.next('result', (m) => m.id === 'probe-1', 8000)).outcome, 'ok');

    const m = await metrics(A.port);
    const ran = ['injected-1', 'injected-2'].map((id) => executions(gw, id));
    console.log(
      `# with the key: unsigned command ran ${ran[0]}, other key's ran ${ran[1]}, rejected_total ${m.flatlink_backplane_rejected_total - before}; ` +
        `a captured command published again: executions ${executions(gw, legitId)} (it ran once before)`,
    );
    assert.deepEqual(ran, [0, 0]);
    assert.equal(m.flatlink_backplane_rejected_total - before, 2);
    assert.equal(executions(gw, legitId), 1, `replayed: ${A.proc.lines.slice(seenBefore).join('\n')}`);
    assert.equal(gw.lines.some((l) => l.includes('injected-')), false, 'the gateway never saw them');
  });
});

describe('the same with "insecure": true (no key)', () => {
  let broker, A, gw;

  before(async () => {
    broker = await startMosquitto(['allow_anonymous true'], { prefix: 'flatlink-bps-mosquitto-' });
    A = await startInstance('cloud-a', broker.port, { insecure: true });
    gw = await lampGateway(A.port);
  });

  after(async () => {
    for (const p of [gw, A?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  test('the injected command runs (what the finding saw): insecure is for a broker nobody else can reach', async () => {
    await A.proc.waitForLine('insecure: backplane messages are neither signed nor checked');
    assert.equal((await mqttPub(broker.port, commandsTopic, injected('injected-3'))).code, 0);
    await waitFor(() => executions(gw, 'injected-3') > 0, 5000, { message: 'the injected command to run' }).catch(() => {});
    console.log(`# insecure: a plain client's command ran ${executions(gw, 'injected-3')} time(s) at the device`);
    assert.equal(executions(gw, 'injected-3'), 1);
  });
});

describe("Mosquitto with per-instance credentials and packaging/examples/backplane's ACL", () => {
  let broker, A, B, gw, b;
  // The example ACL names instances cloud-1 and cloud-2.
  const pw = { 'cloud-1': 'secret-of-cloud-1', 'cloud-2': 'secret-of-cloud-2', 'home-adapter': 'secret-of-home' };

  before(async () => {
    broker = await startMosquitto((dir) => {
      const passwd = path.join(dir, 'passwd');
      writeFileSync(passwd, '');
      for (const [user, password] of Object.entries(pw)) execFileSync('/usr/bin/mosquitto_passwd', ['-b', passwd, user, password]);
      return ['allow_anonymous false', `password_file ${passwd}`, `acl_file ${aclFile}`, 'max_queued_messages 100000', 'log_type all'];
    }, { prefix: 'flatlink-bps-acl-' });
    const credentials = async (id) => {
      const file = path.join(broker.dir, `${id}.password`);
      writeFileSync(file, pw[id] + '\n', { mode: 0o600 });
      return { username: id, password_file: file };
    };
    [A, B] = await Promise.all([
      startInstance('cloud-1', broker.port, await credentials('cloud-1')),
      startInstance('cloud-2', broker.port, await credentials('cloud-2')),
    ]);
    gw = await lampGateway(A.port);
    b = await browser(B.port, loginA);
    await b.next('snapshot', (m) => m.gateway_online === true, 8000);
  });

  after(async () => {
    b?.close();
    for (const p of [gw, A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  test('the instances work; an anonymous client is refused; another account receives nothing and its publishes are dropped', async () => {
    const other = ['-u', 'home-adapter', '-P', pw['home-adapter']];
    const sniffer = mqttSub(broker.port, 'flatlink/v1/#', other);
    await delay(300);
    // Across instances, through the ACL: statuses and a command.
    b.send({ type: 'command', id: 'acl-1', device: 'lamp-1', set: { on: true } });
    assert.equal((await b.next('result', (m) => m.id === 'acl-1', 8000)).outcome, 'ok');

    const anonymous = await mqttPub(broker.port, commandsTopic, injected('acl-anon'));
    const otherPub = await mqttPub(broker.port, commandsTopic, injected('acl-other'), other);
    await waitFor(() => readFileSync(path.join(broker.dir, 'mosquitto.log'), 'utf8').includes('Denied PUBLISH from'), 5000, {
      message: "the broker's log to say it denied the publish",
    });
    b.send({ type: 'command', id: 'acl-2', device: 'lamp-1', set: { on: false } });
    assert.equal((await b.next('result', (m) => m.id === 'acl-2', 8000)).outcome, 'ok');
    await sniffer.stop();
    const rejected = (await metrics(A.port)).flatlink_backplane_rejected_total;
    console.log(
      `# ACL: anonymous publish exit code ${anonymous.code} (${anonymous.stderr.trim()}); other account's publish exit code ${otherPub.code}, ` +
        `dropped by the broker (cloud-1 rejected ${rejected}); other account subscribed to flatlink/v1/# got ${sniffer.lines.length} messages ` +
        `while a command crossed twice`,
    );
    assert.notEqual(anonymous.code, 0);
    assert.match(anonymous.stderr, /not authori[sz]ed/);
    assert.equal(sniffer.lines.length, 0, sniffer.lines.slice(0, 3).join('\n'));
    assert.equal(rejected, 0, 'nothing of it reached cloud-1');
    assert.equal(executions(gw, 'acl-anon') + executions(gw, 'acl-other'), 0);
  });
});

// The same over nats-server's MQTT listener (one node here), with the permission blocks of
// packaging/examples/backplane/nats-server.conf.
const natsServer = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p));

describe("nats-server with per-instance users and packaging/examples/backplane's permissions", { skip: !natsServer && 'nats-server is not installed' }, () => {
  let node, A, B, gw, b, natsPort, dir;
  const pw = { 'cloud-1': 'secret-of-cloud-1', 'cloud-2': 'secret-of-cloud-2', 'home-adapter': 'secret-of-home' };

  before(async () => {
    dir = tempDir('flatlink-bps-nats-');
    natsPort = await freePort();
    const example = readFileSync(path.join(repoRoot, 'packaging/examples/backplane/nats-server.conf'), 'utf8');
    const blocks = example.match(/^CLOUD_\d = \{[\s\S]*?\n\}/gm);
    assert.equal(blocks?.length, 2);
    const conf = path.join(dir, 'nats.conf');
    writeFileSync(conf, [
      'server_name: n1',
      `listen: 127.0.0.1:${await freePort()}`,
      `jetstream { store_dir: "${dir}/js" }`,
      `mqtt { listen: 127.0.0.1:${natsPort} }`,
      ...blocks,
      'authorization { users: [',
      `  { user: cloud-1, password: "${pw['cloud-1']}", permissions: $CLOUD_1 }`,
      `  { user: cloud-2, password: "${pw['cloud-2']}", permissions: $CLOUD_2 }`,
      `  { user: home-adapter, password: "${pw['home-adapter']}", permissions: { publish: { allow: ["home.>"] }, subscribe: { allow: ["$MQTT.sub.>", "home.>"] } } }`,
      '] }',
      '',
    ].join('\n'));
    node = await startProcess(natsServer, ['-c', conf]);
    await waitFor(() => portAccepts(natsPort), 10_000, { intervalMs: 50, message: 'nats-server to accept MQTT' });
    const credentials = (id) => {
      const file = path.join(dir, `${id}.password`);
      writeFileSync(file, pw[id] + '\n', { mode: 0o600 });
      return { username: id, password_file: file };
    };
    [A, B] = await Promise.all([
      startInstance('cloud-1', natsPort, credentials('cloud-1')),
      startInstance('cloud-2', natsPort, credentials('cloud-2')),
    ]);
    gw = await lampGateway(A.port);
    b = await browser(B.port, loginA);
    await b.next('snapshot', (m) => m.gateway_online === true, 15_000);
  });

  after(async () => {
    b?.close();
    for (const p of [gw, A?.proc, B?.proc, node]) if (p) await stop(p).catch(() => {});
  });

  test('the instances work; an anonymous client is refused; another user receives nothing and its publishes are dropped', async () => {
    const other = ['-u', 'home-adapter', '-P', pw['home-adapter']];
    const sniffer = mqttSub(natsPort, 'flatlink/v1/#', other);
    await delay(500);
    b.send({ type: 'command', id: 'nats-1', device: 'lamp-1', set: { on: true } });
    assert.equal((await b.next('result', (m) => m.id === 'nats-1', 10_000)).outcome, 'ok');
    const anonymous = await mqttPub(natsPort, commandsTopic, injected('nats-anon'));
    const otherPub = await mqttPub(natsPort, commandsTopic, injected('nats-other'), other);
    await waitFor(() => node.lines.some((l) => l.includes('Publish Violation') && l.includes('home-adapter')), 5000, {
      message: 'nats-server to refuse the publish',
    });
    b.send({ type: 'command', id: 'nats-2', device: 'lamp-1', set: { on: false } });
    assert.equal((await b.next('result', (m) => m.id === 'nats-2', 10_000)).outcome, 'ok');
    await sniffer.stop();
    const rejected = (await metrics(A.port)).flatlink_backplane_rejected_total;
    console.log(
      `# nats permissions: anonymous publish exit code ${anonymous.code}; other user's publish exit code ${otherPub.code}, refused by nats ` +
        `("Publish Violation"; cloud-1 rejected ${rejected}); other user subscribed to flatlink/v1/# got ${sniffer.lines.length} messages ` +
        `(${/128|denied/.test(sniffer.stderr()) ? 'its subscription refused' : 'subscribed'}) while a command crossed twice`,
    );
    assert.notEqual(anonymous.code, 0);
    assert.equal(sniffer.lines.length, 0);
    assert.equal(rejected, 0);
    assert.equal(executions(gw, 'nats-anon') + executions(gw, 'nats-other'), 0);
  });
});
