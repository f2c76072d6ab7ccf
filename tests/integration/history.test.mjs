// The history in the cloud's store through the real binaries (docs/protocol.md "history"):
// every status the cloud accepts is written to the store; after a restart of the cloud the
// `history` request answers each range (1h, 24h, 7d, 30d, custom) from the raw values or the
// rollups; a bad range gets `invalid_range` and nothing else changes. On SQLite and on a
// PostgreSQL server started for this file; there also the database is stopped in the middle
// of a status flood: statuses keep reaching the browser, history writes wait in a bounded
// buffer, are dropped and counted beyond it, and resume when the database is back.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { browser, cloudConfig, flatA, metrics, rawGateway, startCloud, stop, thermoReport as thermo } from './flatlink.mjs';
import { freePort, repoRoot, tempDir, waitFor } from './harness.mjs';

const pgScript = path.join(repoRoot, 'tests', 'postgres.sh');
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

async function gateway(port) {
  const gw = await rawGateway(port, flatA.token);
  gw.send({ type: 'hello', gateway: 'gw-a', version: '0.1.0', devices: [thermo], next_seq: 1, dropped: 0 });
  await gw.next('ack');
  return gw;
}

// Sends statuses in batches of at most 500 and waits for the ack of the last.
async function sendStatuses(gw, statuses) {
  for (let i = 0; i < statuses.length; i += 500) gw.send({ type: 'status', items: statuses.slice(i, i + 500) });
  const last = statuses.at(-1).seq;
  await gw.next('ack', (m) => m.seq >= last, 10_000);
}

let requests = 0;
async function ask(peer, req) {
  const id = `h-${++requests}`;
  peer.send({ type: 'history', id, device: 'thermo-1', capability: 't', ...req });
  const isAnswer = (m) => m.id === id;
  return waitFor(() => peer.messages.find((m) => (m.type === 'history' || m.type === 'error') && isAnswer(m)), 10_000, {
    message: `the answer to history request ${id}`,
  });
}

function suite(engine, storeSection) {
  describe(`history on ${engine}`, () => {
    let cfg;
    let cloud;
    after(async () => {
      if (cloud) await stop(cloud);
    });

    // 480 values of t, one every 30 s over the last 4 hours, and a mode every 10 minutes.
    const now = Date.now();
    const statuses = [];
    for (let i = 0; i < 480; i++) {
      const state = { t: 20 + (i % 10) / 4 };
      if (i % 20 === 0) state.mode = i % 40 === 0 ? 'eco' : 'heat';
      statuses.push({ seq: i + 1, device: 'thermo-1', state, ts: now - 4 * HOUR + i * 30_000 });
    }
    const inRange = (from, to) => statuses.filter((s) => s.ts >= from && s.ts <= to);

    test('statuses survive a restart of the cloud; each range is answered from raw values or rollups', async (t) => {
      const store = await storeSection();
      if (!store) return t.skip('PostgreSQL is not installed');
      cfg = await cloudConfig([flatA], { extra: { store: { poll_ms: 200, ...store } } });
      cloud = await startCloud(cfg);
      const gw = await gateway(cfg.port);
      await sendStatuses(gw, statuses);
      await stop(cloud); // SIGTERM: what waits for the store is written before the cloud exits
      cloud = await startCloud(cfg);
      const peer = await browser(cfg.port, { flat: flatA.id, user: flatA.user, password: flatA.password });

      const recent = await ask(peer, {});
      assert.deepEqual(recent.points, statuses.map((s) => [s.ts, s.state.t]), 'the recent values, as before ranges');
      assert.equal(recent.resolution, undefined);

      const hour = await ask(peer, { range: '1h' });
      assert.equal(hour.resolution, 'raw');
      assert.equal(hour.range, '1h');
      assert.ok(hour.to >= now && hour.from === hour.to - HOUR);
      assert.deepEqual(hour.points, inRange(hour.from, hour.to).map((s) => [s.ts, s.state.t]));
      assert.ok(hour.points.length >= 100 && hour.points.length <= 121, `${hour.points.length} values in the last hour`);

      const day = await ask(peer, { range: '24h' });
      assert.equal(day.resolution, 'raw');
      assert.equal(day.points.length, statuses.length);

      // more raw values than the limit: auto takes the finest rollup that fits (241 minutes)
      const minutes = await ask(peer, { from: now - 4 * HOUR, to: now, limit: 300 });
      assert.equal(minutes.resolution, '1m');
      assert.ok(minutes.buckets.length >= 240 && minutes.buckets.length <= 241); // 2 values a minute
      assert.equal(minutes.buckets.reduce((n, b) => n + b[5], 0), statuses.length);
      // a day of them does not fit in 300 minutes: hours
      const dayHours = await ask(peer, { range: '24h', limit: 300 });
      assert.equal(dayHours.resolution, '1h');

      const week = await ask(peer, { range: '7d' });
      assert.equal(week.resolution, 'raw');
      assert.equal(week.points.length, statuses.length);

      // 30 days reach beyond the raw values' retention (7 days): hourly rollups
      const month = await ask(peer, { range: '30d' });
      assert.equal(month.resolution, '1h');
      assert.ok(month.buckets.length >= 4 && month.buckets.length <= 5, `${month.buckets.length} hours`);
      assert.equal(month.buckets.reduce((n, b) => n + b[5], 0), statuses.length);
      for (const [start, min, max, avg, last, count] of month.buckets) {
        const values = inRange(start, start + HOUR - 1).map((s) => s.state.t);
        assert.equal(count, values.length);
        assert.equal(min, Math.min(...values));
        assert.equal(max, Math.max(...values));
        assert.ok(Math.abs(avg - values.reduce((a, b) => a + b, 0) / values.length) < 1e-9);
        assert.equal(last, values.at(-1));
      }

      // custom: one minute's rollup, and raw pages that go on at next_from
      const minuteStart = Math.floor((now - 2 * HOUR) / MIN) * MIN;
      const minute = await ask(peer, { range: 'custom', from: minuteStart, to: minuteStart + MIN - 1, resolution: '1m' });
      const values = inRange(minuteStart, minuteStart + MIN - 1).map((s) => s.state.t);
      assert.deepEqual(minute.buckets, [[minuteStart, Math.min(...values), Math.max(...values),
        values.reduce((a, b) => a + b, 0) / values.length, values.at(-1), values.length]]);
      let from = now - 3 * HOUR;
      const paged = [];
      for (let page = 0; page < 10 && from !== undefined; page++) {
        const reply = await ask(peer, { from, to: now - 2 * HOUR, resolution: 'raw', limit: 50 });
        paged.push(...reply.points);
        from = reply.next_from;
      }
      assert.deepEqual(paged, inRange(now - 3 * HOUR, now - 2 * HOUR).map((s) => [s.ts, s.state.t]));

      // every value type is stored: the enum's values too
      const modes = await ask(peer, { capability: 'mode', range: '24h' });
      assert.deepEqual(modes.points, statuses.filter((s) => s.state.mode).map((s) => [s.ts, s.state.mode]));
      peer.close();
      gw.close();
    });

    test('a bad range gets invalid_range naming what is wrong, and nothing else changes', async (t) => {
      if (!cloud) return t.skip('PostgreSQL is not installed');
      const gw = await gateway(cfg.port);
      const peer = await browser(cfg.port, { flat: flatA.id, user: flatA.user, password: flatA.password });
      const bad = [
        [{ range: '2w' }, /range: expected 1h, 24h, 7d, 30d or custom, got "2w"/],
        [{ range: '1h', from: now - HOUR }, /leave out from and to/],
        [{ range: 'custom' }, /from is missing/],
        [{ from: now, to: now - HOUR }, /is after to/],
        [{ range: '24h', resolution: '5m' }, /resolution: expected raw, 1m, 1h or auto/],
        [{ range: '30d', resolution: 'raw' }, /resolution raw is kept 7 days/],
      ];
      for (const [req, message] of bad) {
        const answer = await ask(peer, req);
        assert.equal(answer.type, 'error', JSON.stringify(req));
        assert.equal(answer.code, 'invalid_range');
        assert.match(answer.message, message);
      }
      // the link is open, live statuses still come, and a good request is answered as before
      assert.equal(peer.closed, null);
      gw.send({ type: 'status', items: [{ seq: 481, device: 'thermo-1', state: { t: 30 }, ts: Date.now() }] });
      await peer.next('update', (m) => m.seq === 481);
      const day = await ask(peer, { range: '24h' });
      assert.equal(day.points.length, statuses.length + 1);
      assert.deepEqual(day.points.at(-1).slice(1), [30]);
      const m = await metrics(cfg.port);
      assert.equal(m.flatlink_history_written_total, 1); // since the restart
      assert.equal(m.flatlink_history_dropped_total, 0);
      peer.close();
      gw.close();
    });
  });
}

suite('SQLite', async () => ({ engine: 'sqlite', path: path.join(tempDir('flatlink-history-'), 'cloud.db') }));

let pgDir = null;
let pgPort = 0;
async function postgres() {
  if (spawnSync(pgScript, ['available']).status !== 0) return null;
  if (!pgDir) {
    pgDir = mkdtempSync('/tmp/flatlink-pg-'); // directly in /tmp: the postgres user must reach it
    pgPort = await freePort();
    const started = spawnSync(pgScript, ['start', pgDir, String(pgPort)], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(started.status, 0, `tests/postgres.sh start: ${started.stderr}`);
  }
  return { engine: 'postgresql', url: `host=127.0.0.1 port=${pgPort} user=flatlink dbname=postgres` };
}
suite('PostgreSQL', postgres);
after(() => {
  if (pgDir) spawnSync(pgScript, ['stop', pgDir], { timeout: 60_000 });
});

describe('history on PostgreSQL while the database stops in the middle of a status flood', () => {
  let cloud;
  after(async () => {
    if (cloud) await stop(cloud);
  });

  test('statuses keep reaching the browser; history waits bounded, drops are counted and logged; writes resume', async (t) => {
    const store = await postgres();
    if (!store) return t.skip('PostgreSQL is not installed');
    // its own database on the same server: the tables of the suite above are not in the way
    const created = spawnSync('psql', ['-h', '127.0.0.1', '-p', String(pgPort), '-U', 'flatlink', '-d', 'postgres', '-c',
      'CREATE DATABASE flood'], { encoding: 'utf8' });
    assert.equal(created.status, 0, created.stderr);
    const cfg = await cloudConfig([flatA], {
      extra: { store: { ...store, url: store.url.replace('dbname=postgres', 'dbname=flood'), poll_ms: 200,
        history: { buffer_max: 1000 } } },
    });
    cloud = await startCloud(cfg);
    const gw = await gateway(cfg.port);
    const peer = await browser(cfg.port, { flat: flatA.id, user: flatA.user, password: flatA.password });
    const base = Date.now() - HOUR;
    let seq = 0;
    const flood = async (batches) => {
      for (let b = 0; b < batches; b++) {
        const items = [];
        for (let i = 0; i < 100; i++) {
          seq++;
          items.push({ seq, device: 'thermo-1', state: { t: seq }, ts: base + seq });
        }
        await sendStatuses(gw, items);
      }
      await peer.next('update', (m) => m.seq === seq, 10_000);
    };

    await flood(20); // 2,000 with the database up
    await waitFor(async () => (await metrics(cfg.port)).flatlink_history_written_total === 2000, 10_000);

    const halted = spawnSync(pgScript, ['halt', pgDir], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(halted.status, 0, halted.stderr);
    const before = peer.of('update').length;
    await flood(50); // 5,000 with the database stopped: every one still reaches the browser
    assert.equal(peer.of('update').length - before, 5000);
    await cloud.waitForLine(/history.*cannot write status values: the store is unreachable/, 10_000);
    await cloud.waitForLine(/history.*status values dropped so far, not stored: 1000 wait already/, 10_000);
    const down = await metrics(cfg.port);
    assert.ok(down.flatlink_history_waiting <= 1000, `${down.flatlink_history_waiting} waiting`);
    assert.ok(down.flatlink_history_dropped_total >= 4000 - 1, `${down.flatlink_history_dropped_total} dropped`);

    const resumed = spawnSync(pgScript, ['resume', pgDir, String(pgPort)], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(resumed.status, 0, resumed.stderr);
    await cloud.waitForLine(/history.*the store takes status values again/, 20_000);
    await flood(10); // 1,000 more after it came back
    let up;
    await waitFor(async () => {
      up = await metrics(cfg.port);
      return up.flatlink_history_waiting === 0 && up.flatlink_history_written_total + up.flatlink_history_dropped_total === 8000;
    }, 20_000, { message: 'every status value written or counted as dropped' });

    // what was written is in the history: the first 2,000, the newest 1,000 waiting at the
    // outage's end (the oldest were dropped), and the 1,000 after it
    const hours = await ask(peer, { from: base, to: base + seq, resolution: '1m' });
    const stored = hours.buckets.reduce((n, b) => n + b[5], 0);
    assert.equal(stored, up.flatlink_history_written_total);
    const raw = await ask(peer, { from: base + 7001, to: base + 8000, resolution: 'raw' });
    assert.equal(raw.points.length, 1000);
    const first = await ask(peer, { from: base + 1, to: base + 2000, resolution: 'raw' });
    assert.equal(first.points.length, 2000);
    peer.close();
    gw.close();
  });
});
