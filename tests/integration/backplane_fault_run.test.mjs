// A short fault run across cloud instances (issue 20, the last "Done when"): the bench's own
// code (faults.mjs; the full run is bench/faults.mjs) with three flatlink-cloud instances,
// a real flatlinkd streaming ~40 statuses/s, a browser on every instance and a command from
// the browsers in turn every 300 ms, during the faults too. Per fault, per browser: no status
// silently lost (produced − arrived − counted lost = 0), none twice, none out of order; per
// command: none told `offline` or `expired` ran, none ran after `timeout`, none ran twice,
// every one answered, and every `ok` ran. Faults: Mosquitto kill -9 and restart, Mosquitto
// SIGTERM and restart, the holding instance killed (the gateway moves), and on a 3-node
// nats-server cluster the node under the holding instance killed.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { broken, faults, formatPhase, natsServer, phase, startRun, stopRun } from './faults.mjs';

const opts = { beforeMs: 1000, afterMs: 1000 };

function check(p) {
  console.log(formatPhase(p).replace(/^## /, ''));
  const problems = broken(p);
  assert.deepEqual(problems, [], `${p.name}: ${problems.join('; ')}`);
  assert.ok(p.commands.rows.length >= 3, `${p.name}: commands were sent during the phase`);
  for (const s of p.statuses) if (!s.note) assert.ok(s.produced >= 20, `${p.name}: statuses flowed (${s.produced})`);
}

// The first browser of the flat on each instance logs in while the gateway is online on
// cloud-a: every login's snapshot says so, on the instances that watch the flat from afar too
// (#20 finding 6: on nats a first login there was told offline, p50 478 ms, up to 3.5 s).
function firstSnapshots(r) {
  for (const b of r.browsers) assert.equal(b.snapshot.gateway_online, true, `the login snapshot on ${b.instance.id}`);
}

describe('a fault run over Mosquitto: kill -9, SIGTERM, the holding instance killed', () => {
  let r;
  after(() => stopRun(r));

  test('every status at every browser once or counted, every command told the truth', async () => {
    r = await startRun({ broker: 'mosquitto', instances: 3 });
    firstSnapshots(r);
    check(await phase(r, faults.broker('SIGKILL', 1500), opts));
    check(await phase(r, faults.broker('SIGTERM', 1500), opts));
    check(await phase(r, faults.holder(), opts));
  });
});

describe('a fault run over a 3-node nats-server cluster: the node under the holding instance killed', { skip: !natsServer && 'nats-server is not installed (scripts/install-deps.sh)' }, () => {
  let r;
  after(() => stopRun(r));

  test('every status at every browser once or counted, every command told the truth', async () => {
    r = await startRun({ broker: 'nats', instances: 3 });
    // cloud-a holds the gateway and prefers n1
    const p = await phase(r, faults.natsNode(0, { currentMs: 0 }), opts);
    check(p);
    console.log(`nats node n1 killed: statuses live at every browser again after ${p.recoveryMs} ms`);
  });

  // On nats the holder's retained state reached cloud-b 1.14 s after its first login, past the
  // 1 s the login waited then: the snapshot said offline (2026-12-06); the wait is 4 s now.
  test('the first login on each instance is told the gateway is online (#20 finding 6)', () => firstSnapshots(r));
});
