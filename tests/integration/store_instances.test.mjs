// Two cloud instances sharing one PostgreSQL store and one Mosquitto backplane (issue 21,
// docs/operations.md "The store", docs/scale-out.md), with the real binaries on loopback:
// both start together on the empty database without an error; a user added with
// `flatlink-cloud admin` (A's config) logs in on B within a second; a session made on B and
// revoked by admin, or logged out on A, has its socket on B closed within a second; the
// statuses of a gateway held by A, watched by browsers on A and B, are in the store's history
// once (raw values and rollups, written by A only), and the event log has a command from B,
// the gateway's online/offline and a presence once each; the two never log their accounts as
// different (skipped without PostgreSQL's server package). Then two instances with a SQLite
// store each: a user added to one store only is logged as a difference on the other.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  browser,
  cloudConfig,
  flatA,
  hashPassword,
  lampReport as lamp,
  loginA,
  metrics,
  postSession,
  rawGateway,
  resumeSession,
  startCloud,
  stop,
  thermoReport as thermo,
} from './flatlink.mjs';
import { binaries, run, startMosquitto, startPostgres, tempDir, waitFor } from './harness.mjs';

const MIN = 60_000;

async function admin(cfg, args, input) {
  const r = await run(binaries.cloud, ['--config', cfg.file, 'admin', ...args], { input });
  assert.equal(r.code, 0, `admin ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

// An instance with this store section (store.poll_ms left at its default) on the backplane.
async function startInstance(id, store, broker) {
  const cfg = await cloudConfig([flatA], {
    limits: { command_timeout_ms: 3000 },
    extra: {
      store,
      backplane: { instance_id: id, brokers: [`mqtt://127.0.0.1:${broker.port}`], keepalive_s: 5, backoff_base_ms: 100, backoff_max_ms: 1000 },
    },
  });
  const proc = await startCloud(cfg);
  await proc.waitForLine(`instance=${id} connected;`, 20_000);
  return { cfg, proc, port: cfg.port, id };
}

let requests = 0;
async function ask(peer, type, req) {
  const id = `q-${++requests}`;
  peer.send({ type, id, ...req });
  return waitFor(() => peer.messages.find((m) => (m.type === type || m.type === 'error') && m.id === id), 10_000, {
    message: `the answer to ${type} request ${id}`,
  });
}

describe('two cloud instances on one PostgreSQL store and one Mosquitto', () => {
  let pg, broker, A, B, gw;

  before(async () => {
    pg = await startPostgres();
    if (!pg) return;
    broker = await startMosquitto(['allow_anonymous true']);
    // Started together on the empty database, as a fresh install or an upgrade starts them:
    // the migrations and the seeding from the config happen once, neither start fails.
    await hashPassword(flatA.password); // once: both configs carry the same hash
    const store = { engine: 'postgresql', url: pg.url };
    [A, B] = await Promise.all([startInstance('cloud-a', store, broker), startInstance('cloud-b', store, broker)]);
    const errors = [...A.proc.lines, ...B.proc.lines].filter((l) => / (ERROR|WARN) /.test(l));
    assert.deepEqual(errors, [], 'two instances starting together on an empty store');
    // The flat's gateway, held by A from the start (its retained state is what a first login
    // on B waits for, at most 1 s: docs/scale-out.md, "Snapshot on every instance").
    gw = await rawGateway(A.port, flatA.token);
    gw.send({ type: 'hello', gateway: 'gw-inst', version: '0.1.0', devices: [thermo, lamp], next_seq: 1, dropped: 0 });
    await gw.next('ack');
  });

  after(async () => {
    for (const p of [A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
    if (pg) await pg.stop();
  });

  test('a user added with admin (A\'s config) logs in on B within a second', async (t) => {
    if (!pg) return t.skip('PostgreSQL is not installed');
    await admin(A.cfg, ['user', 'add', 'hanna'], 'pw-hanna\n');
    await admin(A.cfg, ['member', 'add', flatA.id, 'hanna', 'member']);
    const t0 = Date.now();
    const [[version]] = await pg.psql('SELECT version FROM accounts_version');
    // B says when it has taken the accounts of that version; a login before would be a failed
    // one, and the login throttle would delay the next.
    await waitFor(() => B.proc.lines.some((l) => Number(/accounts version (\d+):/.exec(l)?.[1]) >= Number(version)), 3000, {
      message: `B taking accounts version ${version}`,
    });
    const onB = await browser(B.port);
    onB.send({ type: 'login', flat: flatA.id, user: 'hanna', password: 'pw-hanna' });
    assert.equal((await onB.next('welcome')).user, 'hanna');
    const welcomeMs = Date.now() - t0;
    assert.equal((await onB.next('snapshot')).gateway_online, true);
    const ms = Date.now() - t0;
    console.log(`# admin user add + member add on A's config -> hanna logged in on B: welcome ${welcomeMs} ms, snapshot ${ms} ms`);
    assert.ok(ms <= 1000, `hanna's snapshot on B ${ms} ms after the admin command`);
    onB.close();
  });

  test('a session made on B is cut on B within a second when revoked by admin, or logged out on A', async (t) => {
    if (!pg) return t.skip('PostgreSQL is not installed');
    const sessionsOf = async () => (await admin(A.cfg, ['session', 'list', flatA.user])).split('\n').filter(Boolean).map((l) => l.split('\t')[0]);

    // revoked with admin session revoke
    const known = await sessionsOf();
    const made = await postSession(B.port, { flat: flatA.id, user: flatA.user, password: flatA.password });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    const onB = await resumeSession(B.port, made.cookie);
    await onB.next('snapshot');
    const [id] = (await sessionsOf()).filter((s) => !known.includes(s));
    assert.match(id, /^[0-9a-f]{12}$/);
    const t0 = Date.now();
    await admin(A.cfg, ['session', 'revoke', id]);
    await onB.waitClosed(3000);
    const revokedMs = Date.now() - t0;
    console.log(`# admin session revoke (A's config) -> the session's socket on B closed: ${revokedMs} ms`);
    assert.equal(onB.closed.code, 4003);
    assert.ok(revokedMs <= 1000, `closed ${revokedMs} ms after the revocation`);
    const again = await resumeSession(A.port, made.cookie);
    assert.equal((await again.next('error')).code, 'session_expired');

    // logged out on A
    const other = await postSession(B.port, { flat: flatA.id, user: flatA.user, password: flatA.password });
    const stays = await resumeSession(B.port, other.cookie);
    await stays.next('snapshot');
    const onA = await resumeSession(A.port, other.cookie);
    await onA.next('snapshot');
    const t1 = Date.now();
    onA.send({ type: 'logout' });
    await onA.next('logged_out');
    await stays.waitClosed(3000);
    const logoutMs = Date.now() - t1;
    console.log(`# logout on A -> the same session's socket on B closed: ${logoutMs} ms`);
    assert.equal(stays.closed.code, 4003);
    assert.ok(logoutMs <= 1000, `closed ${logoutMs} ms after the logout`);
  });

  test('a gateway held by A, browsers on A and B: each status is in the history once, each event in the log once', async (t) => {
    if (!pg) return t.skip('PostgreSQL is not installed');
    const onA = await browser(A.port, loginA);
    const onB = await browser(B.port, loginA);
    for (const peer of [onA, onB]) await peer.next('snapshot', (m) => m.gateway_online === true, 8000);

    // 300 values of t, one a second over the last 5 minutes, a mode with every 10th
    const now = Date.now();
    const statuses = [];
    for (let i = 0; i < 300; i++) {
      const state = { t: 20 + i / 10 };
      if (i % 10 === 0) state.mode = i % 20 === 0 ? 'eco' : 'heat';
      statuses.push({ seq: i + 1, device: 'thermo-1', state, ts: now - 5 * MIN + i * 1000 });
    }
    for (let i = 0; i < statuses.length; i += 50) gw.send({ type: 'status', items: statuses.slice(i, i + 50) });
    await gw.next('ack', (m) => m.seq === statuses.length, 10_000);
    await onB.next('update', (m) => m.seq === statuses.length, 10_000); // B has applied them all
    gw.send({ type: 'presence', device: 'thermo-1', online: false, ts: Date.now() });
    await onB.next('presence', (m) => m.device === 'thermo-1' && m.online === false);

    // a command from the browser on B runs on the gateway held by A
    onB.send({ type: 'command', id: 'from-b', device: 'lamp-1', set: { on: true } });
    const cmd = await gw.next('command');
    gw.send({ type: 'result', id: cmd.id, outcome: 'ok', message: '' });
    assert.equal((await onB.next('result', (m) => m.id === 'from-b')).outcome, 'ok');
    gw.close();
    // B says it with a snapshot (the holder's retained state) or a `gateway` message
    await waitFor(() => onB.messages.at(-1).gateway_online === false || onB.messages.at(-1).online === false, 5000, {
      message: 'the gateway offline on B',
    });

    // History. A request is answered after the values its instance buffered before it are
    // written: asked on both, whatever either wrote is in.
    const ts = statuses.map((s) => [s.ts, s.state.t]);
    for (const peer of [onA, onB]) {
      const raw = await ask(peer, 'history', { device: 'thermo-1', capability: 't', range: '1h' });
      assert.equal(raw.resolution, 'raw');
      assert.deepEqual(raw.points, ts);
      const minutes = await ask(peer, 'history', { device: 'thermo-1', capability: 't', range: '1h', resolution: '1m' });
      assert.equal(minutes.buckets.reduce((n, b) => n + b[5], 0), statuses.length, 'the 1-minute rollups count each value once');
    }
    // Only the holder's instance writes them (the store would take a second write of a value
    // as the same row, but the write load would double with every instance).
    const values = statuses.length + statuses.filter((s) => s.state.mode).length;
    assert.equal((await metrics(A.port)).flatlink_history_written_total, values);
    assert.equal((await metrics(B.port)).flatlink_history_written_total, 0);
    const counted = async (table, sum) =>
      Number(
        (
          await pg.psql(
            `SELECT COALESCE(${sum}, 0) FROM ${table} h JOIN history_series s ON s.id = h.series` +
              ` WHERE s.flat = '${flatA.id}' AND s.device = 'thermo-1' AND s.capability = 't'`,
          )
        )[0][0],
      );
    assert.equal(await counted('history_raw', 'COUNT(*)'), statuses.length);
    assert.equal(await counted('history_1m', 'SUM(h.n)'), statuses.length);
    assert.equal(await counted('history_1h', 'SUM(h.n)'), statuses.length);
    const [[all]] = await pg.psql('SELECT COUNT(*) FROM history_raw');
    assert.equal(Number(all), values);

    // Events. Each instance writes its events in order; a login on each, once in the store,
    // says that every event either recorded before it is there too.
    const [[last]] = await pg.psql('SELECT COALESCE(MAX(id), 0) FROM events');
    (await browser(A.port, loginA)).close();
    (await browser(B.port, loginA)).close();
    await waitFor(async () => (await pg.psql(`SELECT id FROM events WHERE kind = 'login' AND id > ${last}`)).length === 2, 5000, {
      message: 'the logins on A and B in the event log',
    });
    const page = await ask(onB, 'events', { kinds: ['command', 'gateway', 'presence'] });
    // Each instance numbers its events as it writes its batches: by time, not by id, across instances.
    const seen = page.events.sort((a, b) => a.ts - b.ts).map((e) => [e.kind, e.device, e.user, e.detail, e.outcome]);
    assert.deepEqual(seen, [
      ['gateway', undefined, undefined, { gateway: 'gw-inst', online: true }, undefined],
      ['presence', 'thermo-1', undefined, { online: false }, undefined],
      ['command', 'lamp-1', flatA.user, { set: { on: true } }, 'ok'],
      ['gateway', undefined, undefined, { gateway: 'gw-inst', online: false }, undefined],
    ]);
    const rows = await pg.psql(`SELECT kind, COUNT(*) FROM events WHERE flat = '${flatA.id}' AND kind IN ('command', 'gateway', 'presence') GROUP BY kind ORDER BY kind`);
    assert.deepEqual(rows, [['command', '1'], ['gateway', '2'], ['presence', '1']]);
    onA.close();
    onB.close();
  });

  test('sharing the store, the instances never take their accounts for different ones', async (t) => {
    if (!pg) return t.skip('PostgreSQL is not installed');
    // (after the admin changes above, which the two applied at different polls)
    assert.deepEqual([...A.proc.lines, ...B.proc.lines].filter((l) => /accounts differ/.test(l)), []);
  });
});

describe('two cloud instances with a SQLite store each, on one Mosquitto', () => {
  let broker, A, B;

  before(async () => {
    broker = await startMosquitto(['allow_anonymous true']);
    [A, B] = await Promise.all([startInstance('cloud-sa', { path: `${tempDir('flatlink-sa-')}/cloud.db` }, broker),
      startInstance('cloud-sb', { path: `${tempDir('flatlink-sb-')}/cloud.db` }, broker)]);
  });

  after(async () => {
    for (const p of [A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  test('a user added to one instance\'s store only is logged as a difference on the other', async () => {
    const differ = /instance=cloud-sb other=cloud-sa the instances' accounts differ/;
    const mark = B.proc.lines.length;
    assert.ok(!B.proc.lines.some((l) => differ.test(l)), 'both stores seeded from the same config');
    await admin(A.cfg, ['user', 'add', 'zoe'], 'pw-zoe\n');
    await admin(A.cfg, ['member', 'add', flatA.id, 'zoe', 'member']);
    // zoe would log in on A and not on B: what the accounts' digest is there for
    await waitFor(() => B.proc.lines.slice(mark).some((l) => differ.test(l)), 5000, { message: 'the difference logged on B' });
  });
});
