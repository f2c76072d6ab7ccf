// The dashboard's model of a flat (cloud-server/dashboard/flat_state.js), without a
// browser: the update seq rule of docs/protocol.md, snapshots replacing everything, and
// the bounded chart history.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FlatState, MAX_HISTORY_POINTS, chartedCapabilities } from '../../cloud-server/dashboard/flat_state.js';

const thermo = {
  id: 'thermo-1',
  name: 'Thermometer',
  kind: 'thermometer',
  room: 'Living room',
  capabilities: [{ name: 'temperature', type: 'number', writable: false, min: -50, max: 100, unit: '°C' }],
  state: { temperature: 20 },
  online: true,
  last_ts: 1000,
};
const lamp = {
  id: 'lamp-1',
  name: 'Lamp',
  kind: 'lamp',
  capabilities: [
    { name: 'on', type: 'bool', writable: true },
    { name: 'brightness', type: 'int', writable: true, min: 0, max: 100 },
  ],
  state: { on: false },
  online: true,
};
const snapshot = (devices, extra = {}) => ({ type: 'snapshot', flat: 'flat-a', name: 'Demo', gateway_online: true, devices, ...extra });
const update = (device, state, ts, seq) => ({ type: 'update', device, state, ts, seq });

test('an update whose seq is not above the last one since the snapshot is dropped', () => {
  const s = new FlatState();
  s.applySnapshot(snapshot([lamp]));
  assert.ok(s.applyUpdate(update('lamp-1', { on: true }, 2000, 5)));
  assert.equal(s.applyUpdate(update('lamp-1', { on: false }, 2100, 5)), null, 'same seq');
  assert.equal(s.applyUpdate(update('lamp-1', { on: false }, 2200, 4)), null, 'lower seq');
  assert.equal(s.devices.get('lamp-1').state.on, true);
  assert.ok(s.applyUpdate(update('lamp-1', { brightness: 30 }, 2300, 9)), 'gaps are fine');
  assert.deepEqual(s.devices.get('lamp-1').state, { on: true, brightness: 30 });
  assert.equal(s.devices.get('lamp-1').last_ts, 2300);
});

test('a new snapshot replaces everything and starts the seq rule afresh', () => {
  const s = new FlatState();
  s.applySnapshot(snapshot([lamp, thermo]));
  s.applyUpdate(update('lamp-1', { on: true }, 2000, 50));
  s.applySnapshot(snapshot([{ ...lamp, state: { on: false } }], { gateway_online: false }));
  assert.deepEqual([...s.devices.keys()], ['lamp-1']);
  assert.equal(s.gatewayOnline, false);
  assert.equal(s.devices.get('lamp-1').state.on, false);
  assert.ok(s.applyUpdate(update('lamp-1', { on: true }, 3000, 3)), 'seq 3 counts after the new snapshot');
});

test('updates for unknown devices change nothing', () => {
  const s = new FlatState();
  s.applySnapshot(snapshot([lamp]));
  assert.equal(s.applyUpdate(update('other', { on: true }, 1, 1)), null);
  assert.deepEqual([...s.devices.keys()], ['lamp-1']);
});

test('the snapshot state is a copy: the message object is never changed', () => {
  const s = new FlatState();
  const msg = snapshot([lamp]);
  s.applySnapshot(msg);
  s.applyUpdate(update('lamp-1', { on: true }, 1, 1));
  assert.equal(msg.devices[0].state.on, false);
});

test('only read-only numbers are charted', () => {
  assert.deepEqual(chartedCapabilities(thermo).map((c) => c.name), ['temperature']);
  assert.deepEqual(chartedCapabilities(lamp), []);
});

test('history: the reply replaces what came before it, updates append in time order, bounded', () => {
  const s = new FlatState();
  s.applySnapshot(snapshot([thermo]));
  s.trackHistory('thermo-1', 'temperature');
  s.applyUpdate(update('thermo-1', { temperature: 20.5 }, 1500, 1));
  assert.deepEqual(s.points('thermo-1', 'temperature'), [[1500, 20.5]]);
  s.applyHistory({ type: 'history', device: 'thermo-1', capability: 'temperature', points: [[1000, 20], [1500, 20.5]] });
  assert.deepEqual(s.points('thermo-1', 'temperature'), [[1000, 20], [1500, 20.5]]);
  s.applyUpdate(update('thermo-1', { temperature: 21 }, 2000, 2));
  assert.deepEqual(s.points('thermo-1', 'temperature').at(-1), [2000, 21]);
  for (let i = 0; i < MAX_HISTORY_POINTS + 50; i++) s.applyUpdate(update('thermo-1', { temperature: i / 10 }, 3000 + i, 3 + i));
  const points = s.points('thermo-1', 'temperature');
  assert.equal(points.length, MAX_HISTORY_POINTS);
  assert.deepEqual(points.at(-1), [3000 + MAX_HISTORY_POINTS + 49, (MAX_HISTORY_POINTS + 49) / 10]);
  // A history for something not asked for is ignored.
  assert.equal(s.applyHistory({ type: 'history', device: 'lamp-1', capability: 'brightness', points: [[1, 2]] }), null);
});
