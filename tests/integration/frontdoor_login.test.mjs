// Browser logins against an attacker (findings 1, 7 and 10 of #19): failures slow down and
// then ban their address, an operator lifts a ban, a flood from one address does not hold
// back another flat's logins (the password checks are taken in turn per address), `busy`
// closes the link, and the handshake deadline holds until a login succeeds. Logins come
// from several loopback addresses (127.0.0.x) so that "another address" is real.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { waitFor } from './harness.mjs';
import { BROWSER_PROTOCOL, Peer, cloudConfig, flatA, flatB, metrics, startCloud, stop } from './flatlink.mjs';

// A browser from `address` that logs in; resolves with what it got: { msg, closed, ms }.
async function login(port, address, { flat, user, password }, timeoutMs = 10_000) {
  const peer = new Peer(`ws://127.0.0.1:${port}/`, BROWSER_PROTOCOL, { localAddress: address });
  await peer.opened;
  const t0 = Date.now();
  peer.send({ type: 'login', flat, user, password });
  const msg = await waitFor(() => peer.messages.find((m) => m.type === 'snapshot' || m.type === 'error'), timeoutMs, { message: 'an answer to the login' });
  const ms = Date.now() - t0;
  const closed = msg.type === 'error' ? await peer.waitClosed(timeoutMs) : null;
  return { msg, closed, ms, peer };
}

const alice = { flat: flatA.id, user: flatA.user, password: flatA.password };
const bob = { flat: flatB.id, user: flatB.user, password: flatB.password };

describe('bans and delays', () => {
  let cfg, cloud;
  before(async () => {
    cfg = await cloudConfig([flatA, flatB], { extra: { login: { ban_after: 5, ban_s: 60, delay_base_ms: 100, delay_max_ms: 400 } } });
    cloud = await startCloud(cfg);
  });
  after(async () => stop(cloud));

  test('wrong passwords from one address slow it down, then ban it: even the right password is refused 1008, until the operator lifts the ban', async () => {
    const wrong = { ...alice, password: 'guess' };
    const answers = [];
    for (let i = 0; i < 5; i++) {
      const r = await login(cfg.port, '127.0.0.3', wrong);
      assert.equal(r.msg.code, 'unauthorized');
      assert.equal(r.closed.code, 4003);
      answers.push(r.ms);
    }
    // The fourth waited for 100 << 2 = 400 ms after the third failure (the cap).
    assert.ok(answers[3] >= 300, `answers took ${answers.join(', ')} ms`);
    await cloud.waitForLine(/login: address 127\.0\.0\.3 banned for 60 s after 5 failed logins/);
    const banned = await login(cfg.port, '127.0.0.3', alice);
    assert.equal(banned.msg.code, 'banned');
    assert.match(banned.msg.message, /try again in [0-9]+ s/);
    assert.equal(banned.closed.code, 1008);
    // The account is not banned: alice logs in from elsewhere.
    const home = await login(cfg.port, '127.0.0.2', alice);
    assert.equal(home.msg.type, 'snapshot');
    home.peer.close();
    const m = await metrics(cfg.port);
    assert.equal(m.flatlink_login_bans_active, 1);
    assert.ok(m['flatlink_logins_refused_total{reason="banned"}'] >= 1);
    const listed = await (await fetch(`http://127.0.0.1:${cfg.config.metrics.port}/bans`)).text();
    assert.match(listed, /^127\.0\.0\.3 [0-9]+ s left, 5 failed logins/m);
    const lift = await fetch(`http://127.0.0.1:${cfg.config.metrics.port}/bans/lift?address=127.0.0.3`, { method: 'POST' });
    assert.equal(await lift.text(), '1 lifted\n');
    const again = await login(cfg.port, '127.0.0.3', alice);
    assert.equal(again.msg.type, 'snapshot');
    again.peer.close();
    assert.equal((await metrics(cfg.port)).flatlink_login_bans_active, 0);
  });
});

describe('a flood from one address', () => {
  let cfg, cloud;
  before(async () => {
    // Bans and delays off: the fair pool alone must keep flat B's logins going.
    cfg = await cloudConfig([flatA, flatB], {
      limits: { max_unauthenticated_per_ip: 1000, max_browsers_per_ip: 1000 },
      extra: { login: { ban_after: 1_000_000, delay_base_ms: 0, workers: 2, queue_per_source: 4 } },
    });
    cloud = await startCloud(cfg);
  });
  after(async () => stop(cloud));

  test('30 wrong logins kept in flight for flat A from one address never make flat B\'s logins from another fail or wait long', async () => {
    // The peer from the same run: flat B's logins with no flood (one password check each).
    const quiet = [];
    for (let i = 0; i < 4; i++) {
      const r = await login(cfg.port, '127.0.0.2', bob);
      assert.equal(r.msg.type, 'snapshot');
      quiet.push(r.ms);
      r.peer.close();
    }
    let flooding = true;
    let guesses = 0;
    let busy = 0;
    const attacker = async () => {
      while (flooding) {
        const r = await login(cfg.port, '127.0.0.3', { ...alice, password: `guess-${guesses++}` }).catch(() => null);
        if (r?.msg.code === 'busy') {
          busy++;
          assert.equal(r.closed.code, 1013, 'busy closes the link');
        }
      }
    };
    const attackers = Array.from({ length: 30 }, attacker);
    await waitFor(() => guesses > 60, 10_000, { message: 'the flood to get going' });
    const times = [];
    for (let i = 0; i < 16; i++) {
      const r = await login(cfg.port, '127.0.0.2', bob);
      assert.equal(r.msg.type, 'snapshot', `login ${i} of flat B: ${JSON.stringify(r.msg)}`);
      times.push(r.ms);
      r.peer.close();
    }
    flooding = false;
    await Promise.all(attackers);
    assert.ok(busy > 0, 'the attacker was told busy (its share of the pool is full)');
    // With the pool taken in turn per address, B waits for at most the checks already running
    // (one per worker) before its own: a few checks' time, whatever the flood. The bound is
    // relative to B's logins without it, for a loaded 2-core machine; bench/frontdoor.mjs
    // measures the p99. Before: 11 of 16 of B's logins failed "busy".
    // (4 x + 500 ms was missed once in the whole suite at load 9: 1941 ms against 1752; the
    // flood's sockets share this process's event loop with B's, which the bench avoids.)
    const bound = 6 * Math.max(...quiet) + 1000;
    assert.ok(Math.max(...times) < bound, `flat B's logins took ${times.join(', ')} ms (without the flood ${quiet.join(', ')} ms)`);
  });
});

describe('the handshake deadline', () => {
  let cfg, cloud;
  before(async () => {
    cfg = await cloudConfig([flatA], {
      // 3 s: the first (wrong) password's check must end within it even on a loaded machine or
      // under the sanitizers (CI once saw it take longer than 1 s: closed 4002, no answer).
      limits: { handshake_timeout_s: 3 },
      extra: { login: { ban_after: 100, delay_base_ms: 6000, delay_max_ms: 10000 } },
    });
    cloud = await startCloud(cfg);
  });
  after(async () => stop(cloud));

  test('holds until a login succeeds: a login held back past it is closed 4002', async () => {
    const first = await login(cfg.port, '127.0.0.4', { ...alice, password: 'wrong' });
    assert.equal(first.closed.code, 4003);
    // The next check from that address waits 6 s, longer than the 3 s deadline.
    const peer = new Peer(`ws://127.0.0.1:${cfg.port}/`, BROWSER_PROTOCOL, { localAddress: '127.0.0.4' });
    await peer.opened;
    peer.send({ type: 'login', ...alice });
    assert.equal((await peer.waitClosed(10_000)).code, 4002);
    assert.equal(peer.of('snapshot').length, 0);
  });
});

describe('shutdown with work in flight (finding 12)', () => {
  test('a cloud stopped with a command pending, a login being checked and a paced gateway exits cleanly', async () => {
    const { rawGateway, browser } = await import('./flatlink.mjs');
    const cfg = await cloudConfig([flatA], { limits: { messages_per_s: 5, burst: 5 } });
    const cloud = await startCloud(cfg);
    const gw = await rawGateway(cfg.port, flatA.token);
    const lamp = { id: 'a-lamp', name: 'lamp', kind: 'lamp', capabilities: [{ name: 'on', type: 'bool', writable: true }], state: { on: false }, online: true };
    gw.send({ type: 'hello', gateway: 'gw-a', version: '0', devices: [lamp], next_seq: 1 });
    await gw.next('ack');
    const a = await browser(cfg.port, alice);
    a.send({ type: 'command', id: 'b-1', device: 'a-lamp', set: { on: true } });
    await gw.next('command'); // the gateway never answers: the command's timer is pending
    for (let seq = 1; seq <= 50; seq++) gw.send({ type: 'status', items: [{ seq, device: 'a-lamp', state: { on: true }, ts: 1_700_000_000_000 + seq }] });
    const late = new Peer(`ws://127.0.0.1:${cfg.port}/`, BROWSER_PROTOCOL);
    await late.opened;
    late.send({ type: 'login', ...alice }); // its check runs on a worker while we stop
    cloud.kill('SIGTERM');
    const { code, signal } = await cloud.exited;
    assert.equal(signal, null);
    assert.equal(code, 0, cloud.output().split('\n').slice(-10).join('\n'));
    assert.ok(!/AddressSanitizer|runtime error/.test(cloud.output()), cloud.output().slice(-2000));
  });
});
