// Sessions and the event log through the real binaries (docs/protocol.md, "Sessions" and
// "events"): POST /session sets an HttpOnly SameSite=Strict cookie; a WebSocket carrying it
// (with the page's Origin) resumes the session, also after a restart of the cloud; an
// admin revocation closes the session's socket within a second; logout ends it; a command's
// outcome is in the event log, read in pages. SQLite (the embedded default).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { browser, cloudConfig, flatA, postSession, resumeSession as resume, startCloud, stop } from './flatlink.mjs';
import { binaries, run } from './harness.mjs';

describe('sessions', () => {
  let cfg;
  let cloud;
  let cookie;
  before(async () => {
    cfg = await cloudConfig([flatA], { extra: { store: { poll_ms: 200 } } });
    cloud = await startCloud(cfg);
  });
  after(async () => {
    if (cloud) await stop(cloud);
  });

  test('a login over POST /session sets an HttpOnly SameSite=Strict cookie; a wrong password gets 401 and no cookie', async () => {
    const bad = await postSession(cfg.port, { flat: flatA.id, user: flatA.user, password: 'wrong' });
    assert.equal(bad.status, 401);
    assert.equal(bad.cookie, '');
    const good = await postSession(cfg.port, { flat: flatA.id, user: flatA.user, password: flatA.password });
    assert.equal(good.status, 200, JSON.stringify(good.body));
    assert.match(good.cookie, /^flatlink_session=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+$/);
    assert.equal(good.body.user, flatA.user);
    cookie = good.cookie;
  });

  test('the cookie resumes the session on a new socket (a reload), and again after a restart of the cloud', async () => {
    const first = await resume(cfg.port, cookie);
    const welcome = await first.next('welcome');
    assert.equal(welcome.user, flatA.user);
    assert.ok(welcome.session_expires > Date.now());
    await first.next('snapshot');
    first.close();
    await stop(cloud);
    cloud = await startCloud(cfg);
    const again = await resume(cfg.port, cookie);
    assert.equal((await again.next('snapshot')).flat, flatA.id);
    again.close();
  });

  test('a resume without a cookie, or with an unknown one, is refused with session_expired and 4003', async () => {
    const none = await browser(cfg.port);
    none.send({ type: 'resume' });
    assert.equal((await none.next('error')).code, 'session_expired');
    await none.waitClosed(3000);
    assert.equal(none.closed.code, 4003);
    const unknown = await resume(cfg.port, `flatlink_session=${'0'.repeat(64)}`);
    assert.equal((await unknown.next('error')).code, 'session_expired');
  });

  test('admin session revoke closes the session\'s socket within a second; the cookie no longer resumes', async () => {
    const peer = await resume(cfg.port, cookie);
    await peer.next('snapshot');
    const list = await run(binaries.cloud, ['--config', cfg.file, 'admin', 'session', 'list', flatA.user]);
    assert.equal(list.code, 0, list.stderr);
    const id = list.stdout.trim().split('\n')[0].split('\t')[0];
    assert.match(id, /^[0-9a-f]{12}$/);
    const t0 = Date.now();
    const revoke = await run(binaries.cloud, ['--config', cfg.file, 'admin', 'session', 'revoke', id]);
    assert.equal(revoke.code, 0, revoke.stderr);
    await peer.waitClosed(3000);
    assert.equal(peer.closed.code, 4003);
    assert.ok(Date.now() - t0 < 1500, `closed after ${Date.now() - t0} ms`);
    const after = await resume(cfg.port, cookie);
    assert.equal((await after.next('error')).code, 'session_expired');
  });

  test('logout ends the session: its other socket is closed and the cookie no longer resumes', async () => {
    const fresh = await postSession(cfg.port, { flat: flatA.id, user: flatA.user, password: flatA.password });
    const a = await resume(cfg.port, fresh.cookie);
    await a.next('snapshot');
    const b = await resume(cfg.port, fresh.cookie);
    await b.next('snapshot');
    a.send({ type: 'logout' });
    await a.next('logged_out');
    await b.waitClosed(3000);
    assert.equal(b.closed.code, 4003);
    const c = await resume(cfg.port, fresh.cookie);
    assert.equal((await c.next('error')).code, 'session_expired');
  });

  test('a command\'s outcome is in the event log with who and what, read newest first in pages', async () => {
    const peer = await browser(cfg.port, { flat: flatA.id, user: flatA.user, password: flatA.password });
    peer.send({ type: 'command', id: 'b-1', device: 'lamp-1', set: { on: true } });
    assert.equal((await peer.next('result')).outcome, 'offline');
    // Written off the loop in batches (every 200 ms): ask until it is there.
    let page;
    for (let i = 0; i < 50; ++i) {
      peer.send({ type: 'events', id: `e-${i}`, kinds: ['command'], limit: 1 });
      page = await peer.next('events', (m) => m.id === `e-${i}`);
      if (page.events.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const [event] = page.events;
    assert.equal(event.kind, 'command');
    assert.equal(event.user, flatA.user);
    assert.equal(event.device, 'lamp-1');
    assert.deepEqual(event.detail.set, { on: true });
    assert.equal(event.outcome, 'offline');
    // Logins are events too: a second page exists behind a page of one.
    peer.send({ type: 'events', id: 'all', limit: 1 });
    const first = await peer.next('events', (m) => m.id === 'all');
    assert.ok(first.next, 'a next page');
    peer.send({ type: 'events', id: 'second', limit: 1, before: first.next });
    const second = await peer.next('events', (m) => m.id === 'second');
    assert.equal(second.events.length, 1);
    assert.ok(second.events[0].id < first.events[0].id);
  });
});
