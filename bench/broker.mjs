// A Mosquitto broker for the benchmarks (run.mjs, soak.mjs): loopback, a free port, its own
// temp folder; persistent, with room for a long offline queue (the broker drops QoS 1
// messages silently beyond max_queued_messages per offline client).
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { freePort, startProcess, tempDir, waitFor } from '../tests/integration/harness.mjs';

// True once something accepts TCP connections on 127.0.0.1:port.
export function portAccepts(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startBroker() {
  const dir = tempDir('flatlink-bench-broker-');
  const port = await freePort();
  writeFileSync(
    path.join(dir, 'mosquitto.conf'),
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'max_queued_messages 1000000',
      'max_inflight_messages 20',
      `log_dest file ${dir}/mosquitto.log`,
      `user ${os.userInfo().username}`, // as root it would switch to "mosquitto" and not write its folder
      '',
    ].join('\n'),
  );
  const proc = await startProcess('/usr/sbin/mosquitto', ['-c', path.join(dir, 'mosquitto.conf')]);
  await waitFor(() => portAccepts(port), 5000, { intervalMs: 20, message: 'mosquitto to accept connections' });
  return { proc, port, dir };
}
