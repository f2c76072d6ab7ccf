// Notification webhooks through the real flatlink-cloud (docs/protocol.md "webhook",
// docs/configuration.md "Notifications"): a local HTTP receiver on 127.0.0.1 gets a door
// unlocked, a device offline and the gateway offline as JSON with a valid HMAC-SHA256
// signature; a receiver failing the first two attempts gets the third (counted as retried);
// a URL that is not http(s) is refused (by the owner's message and by the admin command);
// only an owner may set the webhook; another flat's events never reach this flat's hook.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { after, before, describe, test } from 'node:test';

import { browser, cloudConfig, flatA, flatB, loginA, metrics, rawGateway, startCloud, stop } from './flatlink.mjs';
import { binaries, makeCa, makeServerCert, run, tempDir, waitFor } from './harness.mjs';

const lock = {
  id: 'door-1',
  name: 'Front door',
  kind: 'lock',
  capabilities: [{ name: 'lock', type: 'enum', writable: true, options: ['locked', 'unlocked'], confirm: true }],
  state: { lock: 'locked' },
  online: true,
};

// An https receiver with a certificate for localhost and 127.0.0.1 signed by a CA of its own
// (`ca`: the CA's PEM file, for the cloud's webhooks.ca_file); records requests and TLS failures.
async function httpsReceiver() {
  const dir = tempDir('flatlink-hook-tls-');
  const ca = makeCa(dir, 'hook-ca');
  const cert = makeServerCert(dir, 'hook-ca');
  const got = [];
  const tlsErrors = [];
  const server = createHttpsServer({ cert: readFileSync(cert.cert_file), key: readFileSync(cert.key_file) }, (req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.end('ok');
    });
  });
  server.on('tlsClientError', (err) => tlsErrors.push(err.message));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { got, tlsErrors, ca, port: server.address().port, close: () => new Promise((r) => server.close(r)) };
}

// A webhook receiver: records each request (headers, body) and answers `statusFor(n)` to the
// n-th request (1-based).
async function receiver(statusFor = () => 200) {
  const got = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      got.push({ method: req.method, url: req.url, headers: req.headers, body, at: Date.now() });
      const status = statusFor(got.length);
      if (status === 0) return; // never answers
      res.statusCode = status;
      res.end('ok');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(r);
    });
  return { got, server, url: `http://127.0.0.1:${server.address().port}/hook?topic=flat`, close };
}

function signatureOk(request, secret) {
  const want = 'sha256=' + createHmac('sha256', secret).update(request.body).digest('hex');
  return request.headers['x-flatlink-signature'] === want;
}

async function admin(cfg, args) {
  return run(binaries.cloud, ['--config', cfg.file, 'admin', ...args]);
}

// Waits until the running cloud has logged a new line matching `pattern` (after `fn` ran):
// an admin change is taken at the cloud's next poll of the store.
async function taken(cloud, pattern, fn) {
  const seen = cloud.lines.filter((l) => pattern.test(l)).length;
  const result = await fn();
  await waitFor(() => cloud.lines.filter((l) => pattern.test(l)).length > seen, 5000, { message: `a log line ${pattern}` });
  return result;
}

async function gateway(port, flat, id, nextSeq = 1) {
  const gw = await rawGateway(port, flat.token);
  gw.send({ type: 'hello', gateway: id, version: '0', devices: [lock], next_seq: nextSeq });
  await gw.next('ack');
  return gw;
}

describe('webhooks', () => {
  let cfg;
  let cloud;
  const receivers = [];
  before(async () => {
    cfg = await cloudConfig([flatA, flatB], { extra: { store: { poll_ms: 200 } } });
    cloud = await startCloud(cfg);
    for (const f of [flatA, flatB]) {
      const r = await taken(cloud, /accounts version/, () => admin(cfg, ['member', 'role', f.id, f.user, 'owner']));
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    if (cloud) await stop(cloud);
    for (const r of receivers) await r.close();
  });

  test('a member who is not an owner may not read or set the webhook', async () => {
    const r = await taken(cloud, /accounts version/, () => admin(cfg, ['member', 'role', flatA.id, flatA.user, 'member']));
    assert.equal(r.code, 0, r.stderr);
    const peer = await browser(cfg.port, loginA);
    peer.send({ type: 'webhook', action: 'get' });
    assert.equal((await peer.next('error')).code, 'forbidden');
    peer.close();
    assert.equal((await taken(cloud, /accounts version/, () => admin(cfg, ['member', 'role', flatA.id, flatA.user, 'owner']))).code, 0);
  });

  test('a URL that is not http or https is refused, by the owner\'s message and by the admin command', async () => {
    const peer = await browser(cfg.port, loginA);
    await peer.next('welcome', (m) => m.role === 'owner');
    for (const url of ['ftp://127.0.0.1/x', 'file:///etc/passwd', 'javascript:alert(1)', 'http://user:pw@127.0.0.1/', 'http:///nohost']) {
      peer.messages.length = 0;
      peer.send({ type: 'webhook', action: 'set', url, events: ['door_unlocked'] });
      const err = await peer.next('error');
      assert.equal(err.code, 'bad_url', `${url}: ${JSON.stringify(err)}`);
    }
    peer.close();
    const cli = await admin(cfg, ['webhook', 'set', flatA.id, 'gopher://127.0.0.1/']);
    assert.equal(cli.code, 2);
    assert.match(cli.stderr, /only http:\/\/ and https:\/\/ URLs are accepted/);
    assert.equal((await admin(cfg, ['webhook', 'show'])).stdout, '');
  });

  test('a door unlocked reaches the webhook as signed JSON; flat B\'s events never reach flat A\'s hook', async () => {
    const hookA = await receiver();
    const hookB = await receiver();
    receivers.push(hookA, hookB);
    // Flat A's owner sets the hook over the WebSocket; the secret comes back once.
    const owner = await browser(cfg.port, loginA);
    await owner.next('welcome', (m) => m.role === 'owner');
    owner.send({ type: 'webhook', action: 'set', url: hookA.url, events: ['door_unlocked', 'device_offline', 'gateway_offline'] });
    const set = await owner.next('webhook');
    assert.equal(set.url, hookA.url);
    assert.match(set.secret, /^[0-9a-f]{64}$/);
    const secretA = set.secret;
    owner.messages.length = 0;
    owner.send({ type: 'webhook', action: 'get' });
    const got = await owner.next('webhook');
    assert.equal(got.url, hookA.url);
    assert.equal(got.secret, undefined, 'the secret is shown once only');
    // Flat B's hook by the admin command.
    const cliB = await taken(cloud, /flat=flat-b webhook set/, () => admin(cfg, ['webhook', 'set', flatB.id, hookB.url, 'door_unlocked']));
    assert.equal(cliB.code, 0, cliB.stderr);
    const secretB = cliB.stdout.match(/secret[^:]*: ([0-9a-f]{64})/)[1];

    const gwA = await gateway(cfg.port, flatA, 'gw-a');
    const gwB = await gateway(cfg.port, flatB, 'gw-b');
    gwB.send({ type: 'status', items: [{ seq: 1, device: 'door-1', state: { lock: 'unlocked' }, ts: Date.now() }] });
    await waitFor(() => hookB.got.length === 1, 5000, { message: "flat B's webhook" });
    gwA.send({ type: 'status', items: [{ seq: 1, device: 'door-1', state: { lock: 'unlocked' }, ts: Date.now() }] });
    await waitFor(() => hookA.got.length === 1, 5000, { message: "flat A's webhook" });
    // Unlocked again (no change) is no new event; locked then unlocked is.
    gwA.send({ type: 'status', items: [{ seq: 2, device: 'door-1', state: { lock: 'unlocked' }, ts: Date.now() }] });
    gwA.send({ type: 'status', items: [{ seq: 3, device: 'door-1', state: { lock: 'locked' }, ts: Date.now() }] });
    gwA.send({ type: 'status', items: [{ seq: 4, device: 'door-1', state: { lock: 'unlocked' }, ts: Date.now() }] });
    await waitFor(() => hookA.got.length === 2, 5000, { message: 'the second unlock' });
    gwA.send({ type: 'presence', device: 'door-1', online: false, ts: Date.now() });
    await waitFor(() => hookA.got.length === 3, 5000, { message: 'device offline' });
    gwA.close();
    await waitFor(() => hookA.got.length === 4, 5000, { message: 'gateway offline' });

    for (const request of hookA.got) {
      assert.equal(request.method, 'POST');
      assert.equal(request.url, '/hook?topic=flat');
      assert.equal(request.headers['content-type'], 'application/json');
      assert.ok(signatureOk(request, secretA), `signature of ${request.body}`);
      assert.ok(!signatureOk(request, secretB));
      assert.ok(Math.abs(Number(request.headers['x-flatlink-timestamp']) - request.at / 1000) < 5);
      assert.equal(JSON.parse(request.body).flat, flatA.id, 'only flat A in flat A\'s hook');
    }
    const bodies = hookA.got.map((r) => JSON.parse(r.body));
    assert.deepEqual(bodies.map((b) => b.event), ['door_unlocked', 'door_unlocked', 'device_offline', 'gateway_offline']);
    assert.equal(bodies[0].device, 'door-1');
    assert.equal(bodies[0].name, 'Front door');
    assert.equal(bodies[3].gateway, 'gw-a');
    assert.equal(new Set(bodies.map((b) => b.id)).size, 4, 'each delivery has its own id');
    // Flat B's hook: its one unlock, signed with B's secret, never an event of flat A.
    assert.equal(hookB.got.length, 1);
    assert.ok(signatureOk(hookB.got[0], secretB));
    assert.equal(JSON.parse(hookB.got[0].body).flat, flatB.id);
    for (const secret of [secretA, secretB]) assert.ok(!cloud.output().includes(secret), 'the secret is never logged');
    const m = await metrics(cfg.port);
    assert.equal(m.flatlink_webhook_sent_total, 5);
    assert.equal(m.flatlink_webhook_failed_total, 0);
    gwB.close();
    owner.close();
  });

  test('a receiver failing the first two attempts gets the third; the retries are counted', async () => {
    const failing = await receiver((n) => (n <= 2 ? 503 : 200));
    receivers.push(failing);
    const before = await metrics(cfg.port);
    const set = await taken(cloud, /flat=flat-a webhook changed/, () => admin(cfg, ['webhook', 'set', flatA.id, failing.url, 'door_unlocked']));
    assert.equal(set.code, 0, set.stderr);
    assert.doesNotMatch(set.stdout, /secret/, 'the secret is kept when the flat had one');
    const gw = await gateway(cfg.port, flatA, 'gw-a', 5);
    gw.send({ type: 'status', items: [{ seq: 5, device: 'door-1', state: { lock: 'locked' }, ts: Date.now() }] });
    gw.send({ type: 'status', items: [{ seq: 6, device: 'door-1', state: { lock: 'unlocked' }, ts: Date.now() }] });
    const t0 = Date.now();
    await waitFor(() => failing.got.length === 3, 10_000, { message: 'the third attempt' });
    const gaps = [failing.got[1].at - failing.got[0].at, failing.got[2].at - failing.got[1].at];
    // Backoff 1 s then 2 s, ±20 % jitter.
    assert.ok(gaps[0] >= 750 && gaps[0] <= 1500, `first backoff ${gaps[0]} ms`);
    assert.ok(gaps[1] >= 1550 && gaps[1] <= 2700, `second backoff ${gaps[1]} ms`);
    assert.equal(new Set(failing.got.map((r) => r.body)).size, 1, 'the same body each time');
    await waitFor(async () => (await metrics(cfg.port)).flatlink_webhook_sent_total === before.flatlink_webhook_sent_total + 1, 3000);
    const m = await metrics(cfg.port);
    assert.equal(m.flatlink_webhook_retried_total - before.flatlink_webhook_retried_total, 2);
    assert.equal(m.flatlink_webhook_failed_total, 0);
    console.log(`# retried twice, delivered at attempt 3 after ${Date.now() - t0} ms (gaps ${gaps.join(', ')} ms)`);
    gw.close();
  });

  test('a receiver that does not answer holds one delivery; behind it at most 32 wait, the oldest dropped and counted', async () => {
    const hanging = await receiver(() => 0);
    receivers.push(hanging);
    const before = await metrics(cfg.port);
    const set = await taken(cloud, /flat=flat-b webhook changed/, () => admin(cfg, ['webhook', 'set', flatB.id, hanging.url, 'door_unlocked']));
    assert.equal(set.code, 0, set.stderr);
    const gw = await gateway(cfg.port, flatB, 'gw-b', 2);
    let seq = 1;
    for (let frame = 0; frame < 4; frame++) {
      const items = [];
      for (let i = 0; i < 10; i++) {
        items.push({ seq: ++seq, device: 'door-1', state: { lock: 'unlocked' }, ts: Date.now() });
        items.push({ seq: ++seq, device: 'door-1', state: { lock: 'locked' }, ts: Date.now() });
      }
      gw.send({ type: 'status', items });
    }
    await gw.next('ack', (m) => m.seq === seq);
    await waitFor(() => hanging.got.length === 1, 5000, { message: 'the one delivery under way' });
    const m = await metrics(cfg.port);
    // 40 unlocks: one under way, 31 waiting behind it, 8 dropped.
    assert.equal(m.flatlink_webhook_dropped_total - before.flatlink_webhook_dropped_total, 8);
    assert.ok(cloud.lines.some((l) => /webhook: flat=flat-b queue full \(32\): the oldest notification dropped/.test(l)));
    assert.equal(hanging.got.length, 1);
    gw.close();
    // Removed with events waiting: they are dropped and counted too.
    const removed = await taken(cloud, /flat=flat-b webhook removed; 32 notifications not sent/, () => admin(cfg, ['webhook', 'remove', flatB.id]));
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal((await metrics(cfg.port)).flatlink_webhook_dropped_total - before.flatlink_webhook_dropped_total, 40);
  });

  test('the admin command shows the webhook without its secret and removes it', async () => {
    const show = await admin(cfg, ['webhook', 'show']);
    assert.equal(show.code, 0);
    assert.match(show.stdout, /^flat-a http:\/\/127\.0\.0\.1:\d+\/hook\?topic=flat door_unlocked$/m);
    assert.doesNotMatch(show.stdout, /[0-9a-f]{64}/);
    assert.equal((await admin(cfg, ['webhook', 'remove', flatA.id])).code, 0);
    assert.doesNotMatch((await admin(cfg, ['webhook', 'show'])).stdout, /flat-a/);
  });
});

describe('webhooks over https', () => {
  let cfg;
  let cloud;
  let trusted;
  let untrusted;
  before(async () => {
    trusted = await httpsReceiver();
    untrusted = await httpsReceiver();
    cfg = await cloudConfig([flatA, flatB], { extra: { store: { poll_ms: 200 }, webhooks: { ca_file: trusted.ca } } });
    cloud = await startCloud(cfg);
  });
  after(async () => {
    if (cloud) await stop(cloud);
    await trusted?.close();
    await untrusted?.close();
  });

  test('a receiver whose certificate verifies gets the event (a host name, looked up off the loop); one signed by an unknown CA never does', async () => {
    let r = await taken(cloud, /flat=flat-a webhook set/, () => admin(cfg, ['webhook', 'set', flatA.id, `https://localhost:${trusted.port}/hook`, 'door_unlocked']));
    assert.equal(r.code, 0, r.stderr);
    const secret = r.stdout.match(/secret[^:]*: ([0-9a-f]{64})/)[1];
    r = await taken(cloud, /flat=flat-b webhook set/, () => admin(cfg, ['webhook', 'set', flatB.id, `https://127.0.0.1:${untrusted.port}/hook`, 'door_unlocked']));
    assert.equal(r.code, 0, r.stderr);
    const gwA = await gateway(cfg.port, flatA, 'gw-a');
    const gwB = await gateway(cfg.port, flatB, 'gw-b');
    for (const gw of [gwA, gwB]) gw.send({ type: 'status', items: [{ seq: 1, device: 'door-1', state: { lock: 'unlocked' }, ts: Date.now() }] });
    await waitFor(() => trusted.got.length === 1, 5000, { message: 'the trusted receiver' });
    assert.equal(trusted.got[0].headers['x-flatlink-signature'], 'sha256=' + createHmac('sha256', secret).update(trusted.got[0].body).digest('hex'));
    assert.equal(trusted.got[0].headers.host, `localhost:${trusted.port}`);
    // The untrusted one: the handshake fails on the cloud's side, the attempt is retried.
    await waitFor(async () => (await metrics(cfg.port)).flatlink_webhook_retried_total >= 1, 5000, { message: 'a retry' });
    await waitFor(() => untrusted.tlsErrors.length >= 1, 3000, { message: 'the refused handshake' });
    assert.equal(untrusted.got.length, 0);
    assert.ok(cloud.lines.some((l) => /webhook: flat=flat-b event=door_unlocked attempt 1 failed/.test(l)), cloud.output());
    gwA.close();
    gwB.close();
  });
});
