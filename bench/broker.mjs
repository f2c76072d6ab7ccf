// A Mosquitto broker for the benchmarks (run.mjs, soak.mjs): loopback, a free port, its own
// temp folder; persistent, with room for a long offline queue (the broker drops QoS 1
// messages silently beyond max_queued_messages per offline client).
import { startMosquitto } from '../tests/integration/harness.mjs';

export function startBroker() {
  return startMosquitto(
    (dir) => [
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'max_queued_messages 1000000',
      'max_inflight_messages 20',
    ],
    { prefix: 'flatlink-bench-broker-' },
  );
}
