// Audio stream benchmark (issue 12): the latency flatlink adds from a browser to the speaker
// device, and the bitrate of one stream, beside the same frames over one direct loopback
// WebSocket; and the same pcm16 stream across two instances over one Mosquitto (issue 20).
//
//   node bench/audio.mjs [--smoke] [--seconds S] [--out FILE]
//
// A raw WebSocket peer plays the browser: it logs in, opens a to_device stream to a speaker
// of flatlinkd's audio adapter (the real ALSA code, over ALSA's file plugin on the null
// plugin, so no sound card is needed), and sends 20 ms pcm16 frames at 16 kHz in real time.
// Each frame leaves the moment the wall clock turns a millisecond, with that millisecond as
// its capture time, so that the speaker's µs clock measures the whole path: browser → cloud
// → gateway link → stream hub → playback thread → snd_pcm_writei. The speaker reports p50 and
// p99 as its status when the stream ends. The peer: a WebSocket server in another node
// process, timing the same frames on arrival.
//
// Writes bench/audio.md (the section docs/benchmarks.md includes: bench/run.mjs appends it,
// and this script splices it between its markers there), unless --smoke.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { alsaFileConfig, encodeFrame, streamBrowser, tone } from '../tests/integration/audio.mjs';
import { cloudConfig, gatewayConfig, metrics, startCloud } from '../tests/integration/flatlink.mjs';
import { binaries, freePort, repoRoot, startMosquitto, startProcess, stop, tempDir, waitFor } from '../tests/integration/harness.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const SMOKE = argv.includes('--smoke');
const SECONDS = Number(opt('--seconds', SMOKE ? 2 : 30));
const OUT = opt('--out', SMOKE ? null : path.join(repoRoot, 'bench/audio.md'));
const FRAME_MS = 20;
const FRAMES = Math.round((SECONDS * 1000) / FRAME_MS);

const log = (...a) => console.error(`[bench-audio ${new Date().toISOString().slice(11, 19)}]`, ...a);
const hardStop = setTimeout(() => {
  console.error('bench-audio: hard stop');
  process.exit(2);
}, (SECONDS * 3 + 60) * 1000);
hardStop.unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (x, d = 2) => (typeof x === 'number' ? x.toFixed(d) : String(x));

function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}

// Sends FRAMES frames, each when Date.now() has just turned, with that ms as capture time.
// payloads: the frames' payloads, cycled (default: 20 ms of a 440 Hz tone in pcm16).
async function sendFrames(send, stream, payloads = [tone(440, FRAME_MS)]) {
  const start = Date.now() + 50;
  for (let n = 0; n < FRAMES; n++) {
    const due = start + n * FRAME_MS;
    const wait = due - Date.now() - 2;
    if (wait > 0) await sleep(wait);
    while (Date.now() < due); // spin to the millisecond's start
    send(encodeFrame({ stream, seq: n, captureMs: due }, payloads[n % payloads.length]));
  }
}

// Opens a stream and resolves with stream_opened (throws on a refusal).
async function open(b, ref, device, direction, codec) {
  b.send({ type: 'stream_open', ref, device, direction, codec, rate: 16000, channels: 1 });
  const m = await b.next('stream_opened', (x) => x.ref === ref, 6000).catch(() => null);
  if (!m) throw new Error(`stream ${ref} not opened: ${JSON.stringify(b.messages.filter((x) => x.ref === ref))}`);
  return m;
}

// Streams to the speaker; resolves with its report (frames, dropped, p50, p99).
async function toSpeaker(b, ref, codec, payloads) {
  const opened = await open(b, ref, 'speaker', 'to_device', codec);
  await sendFrames((f) => b.ws.send(f), opened.stream, payloads);
  await sleep(200);
  b.send({ type: 'stream_close', stream: opened.stream });
  const seen = b.messages.length;
  const idle = await waitFor(
    () => b.messages.slice(seen).find((m) => m.type === 'update' && m.device === 'speaker' && 'frames' in m.state),
    5000,
  );
  return idle.state;
}

// The peer: one WebSocket server in its own process that echoes each frame; the sender
// times the round trip on its own monotonic clock and takes half as the one-way latency
// (node has no µs wall clock to compare with the header's capture time across processes).
const PEER = `
const { WebSocketServer } = require(${JSON.stringify(path.join(repoRoot, 'tests/integration/node_modules/ws'))});
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[1]) }, () => console.log('listening'));
wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
`;

async function peerRun() {
  const port = await freePort();
  const peer = await startProcess(process.execPath, ['-e', PEER, String(port)], { readyPattern: 'listening' });
  const { default: WebSocket } = await import(path.join(repoRoot, 'tests/integration/node_modules/ws/index.js'));
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const sentAt = new Map();
  const oneWay = [];
  ws.on('message', (data) => {
    const seq = Buffer.from(data).readUInt32BE(4);
    oneWay.push((performance.now() - sentAt.get(seq)) / 2);
  });
  await sendFrames((f) => {
    sentAt.set(f.readUInt32BE(4), performance.now());
    ws.send(f);
  }, 1);
  await waitFor(() => oneWay.length === FRAMES, 10_000);
  ws.close();
  await stop(peer);
  oneWay.sort((a, b) => a - b);
  const p = (q) => oneWay[Math.min(oneWay.length - 1, Math.round(q * (oneWay.length - 1)))];
  return { frames: oneWay.length, p50: p(0.5), p99: p(0.99) };
}

// across: the browser on cloud-a, the gateway on cloud-b, the two over one Mosquitto (issue 20,
// finding 9: the frames cross the backplane); pcm16 only.
async function flatlinkRun({ across = false } = {}) {
  const flat = { id: 'flat-a', token: 'token-of-flat-a-bench', user: 'bench', password: 'bench' };
  let broker = null;
  let cloudB = null;
  const instance = (id) => ({
    extra: { backplane: { instance_id: id, brokers: [`mqtt://127.0.0.1:${broker.port}`], keepalive_s: 5 } },
  });
  if (across) {
    broker = await startMosquitto(['allow_anonymous true', 'max_queued_messages 100000', 'set_tcp_nodelay true'], {
      prefix: 'flatlink-bench-mosquitto-',
    });
  }
  const cloudCfg = await cloudConfig([flat], across ? instance('cloud-a') : {});
  const cloud = await startCloud(cloudCfg);
  let gwPort = cloudCfg.port;
  if (across) {
    const cfgB = await cloudConfig([flat], instance('cloud-b'));
    cloudB = await startCloud(cfgB);
    gwPort = cfgB.port;
    await Promise.all([cloud.waitForLine('instance=cloud-a connected;', 20_000), cloudB.waitForLine('instance=cloud-b connected;', 20_000)]);
  }
  const dir = tempDir('flatlink-bench-audio-');
  const cfg = gatewayConfig({
    id: 'gw-a',
    flat: 'flat-a',
    token: flat.token,
    url: `ws://127.0.0.1:${gwPort}/`,
    devices: [],
    extra: {
      adapters: [
        {
          type: 'audio',
          name: 'intercom',
          devices: [
            { id: 'speaker', direction: 'playback', pcm: 'speaker' },
            { id: 'mic', direction: 'capture', tone_hz: 440, tone_ms: 3_600_000 },
          ],
        },
      ],
    },
  });
  const alsa = alsaFileConfig('/dev/null', path.join(dir, 'speaker.raw'));
  const gw = await startProcess(binaries.gateway, ['--config', cfg.file], {
    env: { ALSA_CONFIG_PATH: alsa },
    readyPattern: 'streaming from there',
  });
  const b = await streamBrowser(cloudCfg.port, { flat: 'flat-a', user: 'bench', password: 'bench' });
  await waitFor(() => b.messages.find((m) => m.type === 'snapshot' && m.gateway_online), 10_000);
  const opened = await b.openStream('bench', 'speaker', 'to_device');
  if (opened.type !== 'stream_opened') throw new Error(`stream refused: ${opened.reason}`);
  const before = await metrics(cloudCfg.port);
  const cloudTicks = () => cpuTicks(cloud.pid) + (cloudB ? cpuTicks(cloudB.pid) : 0);
  const cpu0 = { gw: cpuTicks(gw.pid), cloud: cloudTicks(), broker: broker ? cpuTicks(broker.proc.pid) : 0, at: Date.now() };
  await sendFrames((f) => b.ws.send(f), opened.stream);
  await sleep(200);
  const cpu1 = { gw: cpuTicks(gw.pid), cloud: cloudTicks(), broker: broker ? cpuTicks(broker.proc.pid) : 0, at: Date.now() };
  const after = await metrics(cloudCfg.port);
  b.send({ type: 'stream_close', stream: opened.stream });
  const idle = await b.next('update', (m) => m.device === 'speaker' && m.state.audio_playback === 'idle' && 'frames' in m.state, 5000);
  const hz = 100; // USER_HZ
  const secs = (cpu1.at - cpu0.at) / 1000;
  if (across) {
    const relayed = after['flatlink_stream_frames_total{result="relayed"}'] - before['flatlink_stream_frames_total{result="relayed"}'];
    b.close();
    for (const p of [gw, cloud, cloudB, broker.proc]) await stop(p);
    return {
      frames: relayed,
      played: idle.state.frames,
      dropped: idle.state.dropped,
      p50: idle.state.latency_p50_ms,
      p99: idle.state.latency_p99_ms,
      gwCpuPct: ((cpu1.gw - cpu0.gw) / hz / secs) * 100,
      cloudCpuPct: ((cpu1.cloud - cpu0.cloud) / hz / secs) * 100,
      brokerCpuPct: ((cpu1.broker - cpu0.broker) / hz / secs) * 100,
    };
  }
  // Opus: the microphone's packets (a tone) for their bitrate, then the same packets to the speaker.
  const listen = await open(b, 'opus-listen', 'mic', 'from_device', 'opus');
  const listenMs = Math.min(SECONDS, 10) * 1000;
  await sleep(listenMs);
  b.send({ type: 'stream_close', stream: listen.stream });
  await b.next('stream_closed', (m) => m.stream === listen.stream);
  const packets = b.frames.filter((f) => f.stream === listen.stream).map((f) => Buffer.from(f.pcm));
  const opusKbps = (packets.reduce((n, p) => n + p.length, 0) * 8) / (packets.length * FRAME_MS);
  const opusSpeaker = await toSpeaker(b, 'opus-talk', 'opus', packets);
  const bytes = after.flatlink_stream_bytes_total - before.flatlink_stream_bytes_total;
  const frames = after['flatlink_stream_frames_total{result="relayed"}'] - before['flatlink_stream_frames_total{result="relayed"}'];
  b.close();
  await stop(gw);
  await stop(cloud);
  return {
    frames,
    played: idle.state.frames,
    dropped: idle.state.dropped,
    p50: idle.state.latency_p50_ms,
    p99: idle.state.latency_p99_ms,
    frameBytes: bytes / frames,
    opus: { packets: packets.length, kbps: opusKbps, frameBytes: opusKbps * 1000 / 8 / 50 + 16, ...opusSpeaker },
    gwCpuPct: ((cpu1.gw - cpu0.gw) / hz / secs) * 100,
    cloudCpuPct: ((cpu1.cloud - cpu0.cloud) / hz / secs) * 100,
  };
}

async function main() {
  log(`${FRAMES} frames of 20 ms (${SECONDS} s), pcm16 16 kHz mono`);
  const peer = await peerRun();
  log('direct WebSocket:', JSON.stringify(peer));
  const fl = await flatlinkRun();
  log('flatlink:', JSON.stringify(fl));
  if (fl.played !== FRAMES || fl.frames !== FRAMES) throw new Error(`frames lost: relayed ${fl.frames}, played ${fl.played} of ${FRAMES}`);
  const ax = await flatlinkRun({ across: true });
  log('flatlink across instances:', JSON.stringify(ax));
  const payloadKbps = (16000 * 16) / 1000;
  const frameKbps = (fl.frameBytes * 8 * (1000 / FRAME_MS)) / 1000;
  // WebSocket framing: 4 bytes server → client (126 + 16-bit length), 8 browser → server (+ mask).
  const wireUp = ((fl.frameBytes + 8) * 8 * (1000 / FRAME_MS)) / 1000;
  const wireDown = ((fl.frameBytes + 4) * 8 * (1000 / FRAME_MS)) / 1000;
  const lines = [
    ['browser → speaker latency p50 (ms)', fmt(fl.p50), 'direct loopback WebSocket, one hop (echo RTT / 2)', fmt(peer.p50, 3)],
    ['browser → speaker latency p99 (ms)', fmt(fl.p99), 'direct loopback WebSocket, one hop (echo RTT / 2)', fmt(peer.p99, 3)],
    ['frames played / sent', `${fl.played} / ${FRAMES} (${fl.dropped} dropped)`, 'frames received / sent', `${peer.frames} / ${FRAMES}`],
    ['across instances (browser on cloud-a, gateway on cloud-b, one Mosquitto): browser → speaker latency p50 / p99 (ms)', `${fmt(ax.p50)} / ${fmt(ax.p99)}`, 'one instance, as above', `${fmt(fl.p50)} / ${fmt(fl.p99)}`],
    ['across instances: frames played / sent', `${ax.played} / ${FRAMES} (${ax.dropped} dropped at the speaker)`, '', ''],
    ['across instances: CPU while streaming (% of one core)', `flatlinkd ${fmt(ax.gwCpuPct, 1)}, both flatlink-cloud ${fmt(ax.cloudCpuPct, 1)}, Mosquitto ${fmt(ax.brokerCpuPct, 1)}`, '', ''],
    ['browser → speaker latency p50 / p99 in Opus, decoding included (ms)', `${fmt(fl.opus.latency_p50_ms)} / ${fmt(fl.opus.latency_p99_ms)}`, '', ''],
    ['bitrate per stream in Opus, payload, microphone → browser (kbit/s)', fmt(fl.opus.kbps, 1), 'pcm16 payload', fmt((16000 * 16) / 1000, 1)],
    ['bitrate per stream in Opus, frames with header (kbit/s)', fmt((fl.opus.frameBytes * 8 * 50) / 1000, 1), 'pcm16 frames with header', fmt((fl.frameBytes * 8 * 50) / 1000, 1)],
    ['bitrate per stream, payload (kbit/s)', fmt(payloadKbps, 1), '', ''],
    ['bitrate per stream, frames with header (kbit/s)', fmt(frameKbps, 1), '', ''],
    ['bitrate per stream, WebSocket frames (kbit/s)', `${fmt(wireUp, 1)} browser → cloud, ${fmt(wireDown, 1)} cloud → gateway`, '', ''],
    ['CPU while streaming (% of one core)', `flatlinkd ${fmt(fl.gwCpuPct, 1)}, flatlink-cloud ${fmt(fl.cloudCpuPct, 1)}`, '', ''],
  ];
  for (const l of lines) log(l.join(' | '));
  if (!OUT) return;
  const md = [
    '<!-- audio:begin — written by bench/audio.mjs -->',
    '## Audio streams (issue 12)',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`bench/run.sh --audio\` (\`node bench/audio.mjs\`): ` +
      `${FRAMES} frames of 20 ms pcm16 at 16 kHz mono (${SECONDS} s) from a raw WebSocket peer playing the browser to a ` +
      `speaker of flatlinkd's audio adapter (ALSA: the file plugin over the null plugin), through flatlink-cloud, all on loopback; ` +
      `the peer is the same frames over one direct loopback WebSocket to a node \`ws\` server in another process. ` +
      `Latency: from the capture time in the frame's header (sent as the wall clock turns that millisecond) to the moment the ` +
      `playback thread hands the frame to \`snd_pcm_writei\`, on the gateway's CLOCK_REALTIME in µs; the header's capture time has ` +
      `millisecond resolution and node's \`Date.now()\` is the sender's clock, so a single frame is good to about ±1 ms, the ` +
      `percentiles over many frames better. It does not include the sound card's own buffer. The peer's figure is half the round ` +
      `trip of the same frames echoed by the peer (one clock). Machine: ${os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the end.`,
    '',
    '| what | flatlink | peer | peer value |',
    '| --- | --- | --- | --- |',
    ...lines.map((l) => '| ' + l.join(' | ') + ' |'),
    '',
    'Opus: the simulated microphone\'s continuous 440 Hz tone, encoded by libopus on the gateway (VOIP, 24 kbit/s VBR ' +
      'target, one 20 ms packet per frame), received by the peer playing the browser for ' + Math.min(SECONDS, 10) + ' s; then the same ' +
      'packets sent to the speaker, which decodes them before `snd_pcm_writei` (the latency includes the decoding).',
    '',
    'flatlink crosses two WebSocket hops (browser → cloud, cloud → gateway) and one thread hand-off (loop → playback ' +
      'thread); the peer crosses one hop. Under load each hop keeps at most `stream_buffer_ms` (200 ms) of audio per ' +
      'stream and drops the oldest beyond it, and each link socket holds at most 8 KiB unsent (`TCP_NOTSENT_LOWAT`): ' +
      'the throttled-link test (tests/integration/audio.test.mjs) shows the latency it keeps.',
    '<!-- audio:end -->',
  ].join('\n');
  writeFileSync(OUT, md + '\n');
  log(`wrote ${path.relative(repoRoot, OUT)}`);
  const doc = path.join(repoRoot, 'docs/benchmarks.md');
  if (existsSync(doc)) {
    const text = readFileSync(doc, 'utf8');
    const re = /<!-- audio:begin[\s\S]*?<!-- audio:end -->\n?/;
    const next = re.test(text) ? text.replace(re, md + '\n') : text.replace(/\n## How the figures are made/, `\n${md}\n\n## How the figures are made`);
    writeFileSync(doc, next);
    log('updated docs/benchmarks.md');
  }
}

main().catch((err) => {
  console.error('bench-audio failed:', err.stack || err);
  process.exit(1);
});
