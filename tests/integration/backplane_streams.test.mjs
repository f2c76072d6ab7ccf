// Device streams across cloud instances (issue 20, finding 9): a browser on cloud-a listens to
// and talks with a flat whose gateway link cloud-b holds, the frames relayed over one
// Mosquitto (QoS 0, per-stream topics, signed): with a test gateway, and with a real
// flatlinkd and its simulated microphone and speaker (the audio tests' devices). Frames
// arrive in order; a burst beyond the 200 ms bound is dropped and counted; a stream ends on
// both sides when either end goes, when the broker stops delivering, or when the other
// instance goes; a flat's stream cannot be opened by another flat's browser; a broker client
// without the instances' key cannot put a frame into a stream. The same over a nats-server.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { decodeFrame, dominantFrequency, encodeFrame, samplesOf, soundSpanMs, streamBrowser, tone } from './audio.mjs';
import {
  cloudConfig,
  demoDevices,
  flatA,
  flatB,
  flatC,
  gatewayConfig,
  loginA,
  loginB,
  loginC,
  metrics,
  rawGateway,
  startCloud,
  stop,
} from './flatlink.mjs';
import { binaries, freePort, run, startMosquitto, startProcess, tempDir, waitFor } from './harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const capability = (name) => ({ name, type: 'enum', writable: false, options: ['idle', 'live'] });
const devicesC = [
  { id: 'c-mic', name: 'Door mic', kind: 'microphone', capabilities: [capability('audio_capture')], state: {}, online: true },
  { id: 'c-speaker', name: 'Door speaker', kind: 'speaker', capabilities: [capability('audio_playback')], state: {}, online: true },
];
const FRAME_BYTES = 640; // 20 ms of pcm16 at 16 kHz mono

async function startInstance(id, brokerPort) {
  // brokerPort: Mosquitto's, or a nats-server's MQTT listener
  const cfg = await cloudConfig([flatA, flatB, flatC], {
    limits: { max_streams_per_flat: 4, max_stream_kbps_per_flat: 2000 },
    extra: {
      backplane: {
        instance_id: id,
        brokers: [`mqtt://127.0.0.1:${brokerPort}`],
        keepalive_s: 5,
        backoff_base_ms: 100,
        backoff_max_ms: 1000,
      },
    },
  });
  const proc = await startCloud(cfg);
  await proc.waitForLine(`instance=${id} connected;`, 20_000);
  return { cfg, proc, port: cfg.port, id };
}

// The flat's gateway, played by the test on cloud-b: it answers stream_open and collects the
// binary frames it gets.
async function streamGateway(port) {
  const gw = await rawGateway(port, flatC.token);
  gw.frames = [];
  gw.ws.on('message', (data, isBinary) => {
    if (isBinary) gw.frames.push({ ...decodeFrame(Buffer.from(data)), at: Date.now() });
  });
  gw.send({ type: 'hello', gateway: 'gw-c', version: '0', devices: devicesC, next_seq: 1 });
  await gw.next('ack');
  return gw;
}

// The gateway's stream_open for the nth stream it was asked for, answered opened.
async function accept(gw, n) {
  const open = await waitFor(() => gw.of('stream_open')[n], 6000, { message: `stream_open #${n + 1} at the gateway` });
  gw.send({ type: 'stream_opened', stream: open.stream });
  return open;
}

const pcm = (seq) => tone(440, 20, { phase: seq * 320 });

describe('device streams across two cloud instances over one Mosquitto', () => {
  let broker, A, B, gw;

  before(async () => {
    broker = await startMosquitto(['allow_anonymous true', 'max_queued_messages 100000'], { prefix: 'flatlink-bp-mosquitto-' });
    [A, B] = await Promise.all([startInstance('cloud-a', broker.port), startInstance('cloud-b', broker.port)]);
    gw = await streamGateway(B.port);
  });

  after(async () => {
    for (const p of [A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  test('a browser on A listens to and talks with the gateway on B: frames in order, none lost at real-time pace', async () => {
    const b = await streamBrowser(A.port, loginC);
    await b.next('snapshot', (m) => m.gateway_online === true, 8000);

    // Listen: the gateway's microphone frames reach the browser on A, renumbered to A's stream.
    const listening = b.openStream('listen', 'c-mic', 'from_device');
    const open = await accept(gw, 0);
    assert.equal(open.device, 'c-mic');
    assert.equal(open.direction, 'from_device');
    const listen = await listening;
    assert.equal(listen.type, 'stream_opened', JSON.stringify(listen));
    const start = Date.now();
    for (let seq = 0; seq < 100; ++seq) {
      gw.ws.send(encodeFrame({ stream: open.stream, seq, captureMs: Date.now() }, pcm(seq)));
      const wait = start + (seq + 1) * 20 - Date.now();
      if (wait > 0) await sleep(wait);
    }
    await waitFor(() => b.frames.length >= 100, 3000, { message: '100 frames on A' }).catch(() => {});
    const got = b.frames.filter((f) => f.stream === listen.stream);
    assert.equal(got.length, 100, `frames at the browser: ${got.length} of 100`);
    assert.deepEqual(got.map((f) => f.seq), Array.from({ length: 100 }, (_, i) => i));
    assert.ok(got.every((f) => f.pcm.equals(pcm(f.seq))), 'the audio arrives unchanged');
    const latency = got.map((f) => f.at - f.captureMs).sort((x, y) => x - y);
    console.log(`# listen across instances: 100/100 frames in order; gateway -> B -> broker -> A -> browser p50 ${latency[50]} ms, max ${latency[99]} ms`);

    // Talk: the browser's frames reach the gateway on B, renumbered to B's stream.
    const talking = b.openStream('talk', 'c-speaker', 'to_device');
    const talkOpen = await accept(gw, 1);
    assert.equal(talkOpen.direction, 'to_device');
    const talk = await talking;
    assert.equal(talk.type, 'stream_opened', JSON.stringify(talk));
    const t0 = Date.now();
    for (let seq = 0; seq < 50; ++seq) {
      b.ws.send(encodeFrame({ stream: talk.stream, seq, captureMs: Date.now() }, pcm(seq)));
      const wait = t0 + (seq + 1) * 20 - Date.now();
      if (wait > 0) await sleep(wait);
    }
    await waitFor(() => gw.frames.length >= 50, 3000, { message: '50 frames at the gateway' }).catch(() => {});
    assert.equal(gw.frames.length, 50, `frames at the gateway: ${gw.frames.length} of 50`);
    assert.ok(gw.frames.every((f) => f.stream === talkOpen.stream));
    assert.deepEqual(gw.frames.map((f) => f.seq), Array.from({ length: 50 }, (_, i) => i));
    const talkLatency = gw.frames.map((f) => f.at - f.captureMs).sort((x, y) => x - y);
    console.log(`# talk across instances: 50/50 frames in order; browser -> A -> broker -> B -> gateway p50 ${talkLatency[25]} ms, max ${talkLatency[49]} ms`);

    // The browser closes the listen stream: the gateway is told, for its own stream id.
    b.send({ type: 'stream_close', stream: listen.stream });
    const closeAtGw = await gw.next('stream_close', (m) => m.stream === open.stream, 5000);
    assert.ok(closeAtGw);
    // The gateway ends the talk stream: the browser on A is told, for A's stream id.
    gw.send({ type: 'stream_closed', stream: talkOpen.stream, reason: 'speaker busy' });
    const closed = await b.next('stream_closed', (m) => m.stream === talk.stream, 5000);
    assert.equal(closed.ref, 'talk');
    assert.match(closed.reason, /speaker busy/);
    await waitFor(async () => (await metrics(A.port)).flatlink_streams_open === 0 && (await metrics(B.port)).flatlink_streams_open === 0, 3000, {
      message: 'no stream open on either instance',
    });
    b.close();
  });

  test('a burst beyond the bound is dropped oldest first and counted; the rest arrives in order', async () => {
    const b = await streamBrowser(A.port, loginC);
    await b.next('snapshot', (m) => m.gateway_online === true, 8000);
    const n = gw.of('stream_open').length;
    const listening = b.openStream('burst', 'c-mic', 'from_device');
    const open = await accept(gw, n);
    const listen = await listening;
    assert.equal(listen.type, 'stream_opened');
    const before = { a: await metrics(A.port), b: await metrics(B.port) };
    // 3 s of audio at once (150 frames): the bitrate check lets about a second and a quarter through.
    for (let seq = 0; seq < 150; ++seq) gw.ws.send(encodeFrame({ stream: open.stream, seq, captureMs: Date.now() }, pcm(seq)));
    await sleep(1000);
    const got = b.frames.filter((f) => f.stream === listen.stream);
    const seqs = got.map((f) => f.seq);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), 'in order');
    const after = { a: await metrics(A.port), b: await metrics(B.port) };
    const delta = (side, result) =>
      after[side][`flatlink_stream_frames_total{result="${result}"}`] - before[side][`flatlink_stream_frames_total{result="${result}"}`];
    const dropped = delta('a', 'dropped') + delta('b', 'dropped');
    const refused = delta('a', 'refused') + delta('b', 'refused');
    console.log(
      `# burst of 150 frames (3 s of audio) across instances: ${got.length} arrived in order, ${dropped} dropped by the 200 ms bounds (A ${delta('a', 'dropped')}, B ${delta('b', 'dropped')}), ${refused} over the bitrate (A ${delta('a', 'refused')}, B ${delta('b', 'refused')})`,
    );
    assert.equal(got.length + dropped + refused, 150, 'every frame arrived or was counted');
    assert.ok(got.length <= 150 - refused);
    assert.ok(dropped + refused > 0, 'the burst did not all go through');
    b.close();
    await gw.next('stream_close', (m) => m.stream === open.stream, 5000);
  });

  test('a stream ends on both sides when either end goes', async () => {
    // The browser goes: the gateway on B is told to close.
    const b1 = await streamBrowser(A.port, loginC);
    await b1.next('snapshot', (m) => m.gateway_online === true, 8000);
    let n = gw.of('stream_open').length;
    const p1 = b1.openStream('leaving', 'c-mic', 'from_device');
    const open1 = await accept(gw, n);
    assert.equal((await p1).type, 'stream_opened');
    b1.close();
    await gw.next('stream_close', (m) => m.stream === open1.stream, 5000);

    // The gateway's link goes: the browser on A is told.
    const b2 = await streamBrowser(A.port, loginC);
    await b2.next('snapshot', (m) => m.gateway_online === true, 8000);
    n = gw.of('stream_open').length;
    const p2 = b2.openStream('staying', 'c-speaker', 'to_device');
    await accept(gw, n);
    const opened = await p2;
    assert.equal(opened.type, 'stream_opened');
    gw.close();
    const closed = await b2.next('stream_closed', (m) => m.stream === opened.stream, 5000);
    assert.match(closed.reason, /gateway link closed/);
    gw = await streamGateway(B.port);
    await waitFor(async () => (await metrics(A.port)).flatlink_streams_open === 0 && (await metrics(B.port)).flatlink_streams_open === 0, 3000, {
      message: 'no stream open on either instance',
    });
    b2.close();
  });

  test("another flat's browser cannot open this flat's stream across instances, and a broker client cannot inject frames", async () => {
    // Flat B's gateway is on cloud-b too: its browser on cloud-a asks cloud-b, which checks
    // the device against flat B's own link.
    const gwB = await rawGateway(B.port, flatB.token);
    gwB.send({ type: 'hello', gateway: 'gw-b', version: '0', devices: [{ ...devicesC[0], id: 'b-mic' }], next_seq: 1 });
    await gwB.next('ack');
    const opensBefore = gw.of('stream_open').length;
    const other = await streamBrowser(A.port, loginB);
    await other.next('snapshot', (m) => m.gateway_online === true, 8000);
    const refused = await other.openStream('steal', 'c-mic', 'from_device');
    // Refused by the holder, as a gateway's refusal is: with the stream id the origin had given it, never opened.
    assert.equal(refused.type, 'stream_closed');
    assert.match(refused.reason, /unknown device c-mic/);
    assert.equal(gwB.of('stream_open').length, 0);
    assert.equal(gw.of('stream_open').length, opensBefore);

    // A stream of flat C open across instances; a plain broker client publishes a frame on its
    // topic (it can guess the layout, not the nonce or the key): dropped, never at the browser.
    const b = await streamBrowser(A.port, loginC);
    await b.next('snapshot', (m) => m.gateway_online === true, 8000);
    const p = b.openStream('guarded', 'c-mic', 'from_device');
    const open = await accept(gw, opensBefore);
    const listen = await p;
    assert.equal(listen.type, 'stream_opened');
    assert.equal(gw.of('stream_open').length, opensBefore + 1, 'only flat C\'s own browser reached the gateway');
    const rejectedBefore = (await metrics(A.port)).flatlink_backplane_rejected_total;
    const forged = Buffer.concat([Buffer.alloc(64, 0x30), encodeFrame({ stream: listen.stream, seq: 7, captureMs: Date.now() }, pcm(7))]);
    const topic = `flatlink/v1/streams/cloud-a/flat-c/cloud-a/${listen.stream}/0123456789abcdef`;
    const r = await run('/usr/bin/mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', topic, '-s'], { input: forged });
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await metrics(A.port)).flatlink_backplane_rejected_total > rejectedBefore, 3000, {
      message: 'the forged frame rejected',
    });
    assert.equal(b.frames.filter((f) => f.stream === listen.stream).length, 0);
    // The real frames still flow.
    gw.ws.send(encodeFrame({ stream: open.stream, seq: 1, captureMs: Date.now() }, pcm(1)));
    await waitFor(() => b.frames.find((f) => f.stream === listen.stream && f.seq === 1), 3000);
    other.close();
    gwB.close();
    b.close();
  });

  test('a broker that stops delivering ends the stream on both sides, each told by its own instance', async () => {
    const b = await streamBrowser(A.port, loginC);
    await b.next('snapshot', (m) => m.gateway_online === true, 8000);
    const n = gw.of('stream_open').length;
    const p = b.openStream('broker-hangs', 'c-mic', 'from_device');
    const open = await accept(gw, n);
    const listen = await p;
    assert.equal(listen.type, 'stream_opened');
    const t0 = Date.now();
    broker.proc.kill('SIGSTOP');
    try {
      const [closedAtBrowser, closeAtGateway] = await Promise.all([
        b.next('stream_closed', (m) => m.stream === listen.stream, 10_000),
        gw.next('stream_close', (m) => m.stream === open.stream, 10_000),
      ]);
      console.log(`# broker stopped (SIGSTOP): the stream ended at the browser and at the gateway after ${Date.now() - t0} ms`);
      assert.match(closedAtBrowser.reason, /backplane is down/);
      assert.match(closeAtGateway.reason, /backplane is down/);
      // Meanwhile a new stream for the flat held elsewhere is refused, saying why.
      const refused = await b.openStream('while-down', 'c-mic', 'from_device');
      assert.equal(refused.type, 'stream_closed');
      assert.match(refused.reason, /connected to instance cloud-b and the backplane is down/);
    } finally {
      broker.proc.kill('SIGCONT');
    }
    await A.proc.waitForLine('instance=cloud-a the broker delivers again', 15_000).catch(() => {});
    await waitFor(async () => (await metrics(A.port)).flatlink_streams_open === 0 && (await metrics(B.port)).flatlink_streams_open === 0, 5000);
    b.close();
  });

  test('a stream ends at the browser when the holder instance goes', async () => {
    const b = await streamBrowser(A.port, loginC);
    await b.next('snapshot', (m) => m.gateway_online === true, 8000);
    const n = gw.of('stream_open').length;
    const p = b.openStream('holder-dies', 'c-mic', 'from_device');
    await accept(gw, n);
    const listen = await p;
    assert.equal(listen.type, 'stream_opened');
    B.proc.kill('SIGKILL');
    const closed = await b.next('stream_closed', (m) => m.stream === listen.stream, 15_000);
    assert.match(closed.reason, /cloud-b left|backplane/);
    assert.equal((await metrics(A.port)).flatlink_streams_open, 0);
    b.close();
  });
});

describe('a real flatlinkd on cloud-b, a browser on cloud-a', () => {
  let broker, A, B, gw, wavFile;

  before(async () => {
    broker = await startMosquitto(['allow_anonymous true', 'max_queued_messages 100000'], { prefix: 'flatlink-bp-mosquitto-' });
    [A, B] = await Promise.all([startInstance('cloud-a', broker.port), startInstance('cloud-b', broker.port)]);
    wavFile = path.join(tempDir('flatlink-audio-'), 'speaker.wav');
    const audio = {
      type: 'audio',
      name: 'intercom',
      devices: [
        { id: 'door-mic', name: 'Door microphone', direction: 'capture', tone_hz: 440, tone_ms: 1000 },
        { id: 'hall-speaker', direction: 'playback', wav_file: wavFile },
      ],
    };
    const cfg = gatewayConfig({
      id: 'gw-a',
      flat: 'flat-a',
      token: flatA.token,
      url: `ws://127.0.0.1:${B.port}/`,
      devices: demoDevices(),
      extra: { adapters: [{ type: 'sim', latency_ms: 10, seed: 1, devices: demoDevices() }, audio] },
    });
    gw = await startProcess(binaries.gateway, ['--config', cfg.file], { readyPattern: 'streaming from there' });
  });

  after(async () => {
    for (const p of [gw, A?.proc, B?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  test('listen: the simulated microphone\'s tone reaches the browser on the other instance, whole', async () => {
    const b = await streamBrowser(A.port, loginA);
    await waitFor(() => b.messages.find((m) => (m.type === 'snapshot' || m.type === 'devices') && m.devices?.some((d) => d.id === 'door-mic')), 8000, {
      message: 'the microphone on A',
    });
    const opened = await b.openStream('listen-across', 'door-mic', 'from_device');
    assert.equal(opened.type, 'stream_opened', JSON.stringify(opened));
    await waitFor(() => b.frames.length >= 75, 6000, { message: '1.5 s of audio on A' });
    b.send({ type: 'stream_close', stream: opened.stream });
    await b.next('stream_closed', (m) => m.stream === opened.stream);
    const frames = b.frames.filter((f) => f.stream === opened.stream);
    for (let i = 1; i < frames.length; i++) assert.equal(frames[i].seq, frames[i - 1].seq + 1, 'no gap on loopback, across the broker');
    const samples = samplesOf(Buffer.concat(frames.map((f) => f.pcm)));
    const span = soundSpanMs(samples);
    assert.ok(Math.abs(span - 1000) <= 25, `the tone lasts 1000 ms, got ${span}`);
    assert.equal(dominantFrequency(samples), 440);
    const latency = frames.map((f) => f.at - f.captureMs).sort((x, y) => x - y);
    console.log(`# flatlinkd on B -> browser on A: ${frames.length} frames, no gap, tone 440 Hz for ${span} ms; capture -> browser p50 ${latency[Math.floor(latency.length / 2)]} ms, max ${latency[latency.length - 1]} ms`);
    const idle = await b.next('update', (m) => m.device === 'door-mic' && m.state.audio_capture === 'idle' && 'frames' in m.state);
    assert.ok(idle.state.frames >= 75);
    b.close();
  });

  test('talk: the browser on the other instance talks to the simulated speaker, whose WAV file holds exactly what was sent', async () => {
    const b = await streamBrowser(A.port, loginA);
    await waitFor(() => b.messages.find((m) => (m.type === 'snapshot' || m.type === 'devices') && m.devices?.some((d) => d.id === 'hall-speaker')), 8000);
    const opened = await b.openStream('talk-across', 'hall-speaker', 'to_device');
    assert.equal(opened.type, 'stream_opened', JSON.stringify(opened));
    const pcm = tone(1000, 600);
    const bytes = 640;
    const start = Date.now();
    for (let i = 0, seq = 0; i < pcm.length; i += bytes, seq++) {
      b.ws.send(encodeFrame({ stream: opened.stream, seq, captureMs: Date.now() }, pcm.subarray(i, i + bytes)));
      const wait = start + (seq + 1) * 20 - Date.now();
      if (wait > 0) await sleep(wait);
    }
    await b.next('update', (m) => m.device === 'hall-speaker' && m.state.audio_playback === 'live');
    await sleep(200);
    b.send({ type: 'stream_close', stream: opened.stream });
    const idle = await b.next('update', (m) => m.device === 'hall-speaker' && m.state.audio_playback === 'idle' && 'frames' in m.state);
    assert.equal(idle.state.frames, 30);
    assert.equal(idle.state.dropped, 0);
    console.log(`# browser on A -> flatlinkd on B: 30/30 frames played, 0 dropped, speaker latency p50 ${idle.state.latency_p50_ms} ms, p99 ${idle.state.latency_p99_ms} ms`);
    const data = readFileSync(wavFile).subarray(44);
    assert.equal(data.length, pcm.length);
    assert.ok(data.equals(pcm), 'the WAV holds the samples sent');
    b.close();
  });
});

const natsServer = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p));

describe('over a nats-server (MQTT listener, JetStream) instead', { skip: !natsServer && 'nats-server is not installed (scripts/install-deps.sh)' }, () => {
  let nats, A, B, gw;

  before(async () => {
    const dir = tempDir('flatlink-streams-nats-');
    mkdirSync(path.join(dir, 'js'));
    const mqtt = await freePort();
    const conf = path.join(dir, 'nats.conf');
    writeFileSync(conf, [`server_name: n1`, `listen: 127.0.0.1:${await freePort()}`, `jetstream { store_dir: "${path.join(dir, 'js')}" }`, `mqtt { listen: 127.0.0.1:${mqtt} }`, ''].join('\n'));
    nats = await startProcess(natsServer, ['-c', conf], { readyPattern: 'Server is ready', timeoutMs: 15_000 });
    [A, B] = await Promise.all([startInstance('cloud-a', mqtt), startInstance('cloud-b', mqtt)]);
    gw = await streamGateway(B.port);
  });

  after(async () => {
    for (const p of [A?.proc, B?.proc, nats]) if (p) await stop(p).catch(() => {});
  });

  test('listen and talk across instances through nats: frames in order, none lost at real-time pace', async () => {
    const b = await streamBrowser(A.port, loginC);
    await b.next('snapshot', (m) => m.gateway_online === true, 8000);
    const listening = b.openStream('listen', 'c-mic', 'from_device');
    const open = await accept(gw, 0);
    const listen = await listening;
    assert.equal(listen.type, 'stream_opened', JSON.stringify(listen));
    const talking = b.openStream('talk', 'c-speaker', 'to_device');
    const talkOpen = await accept(gw, 1);
    const talk = await talking;
    assert.equal(talk.type, 'stream_opened', JSON.stringify(talk));
    const start = Date.now();
    for (let seq = 0; seq < 100; ++seq) {
      gw.ws.send(encodeFrame({ stream: open.stream, seq, captureMs: Date.now() }, pcm(seq)));
      b.ws.send(encodeFrame({ stream: talk.stream, seq, captureMs: Date.now() }, pcm(seq)));
      const wait = start + (seq + 1) * 20 - Date.now();
      if (wait > 0) await sleep(wait);
    }
    await waitFor(() => b.frames.length >= 100 && gw.frames.length >= 100, 3000).catch(() => {});
    const heard = b.frames.filter((f) => f.stream === listen.stream);
    const played = gw.frames.filter((f) => f.stream === talkOpen.stream);
    const p50 = (frames) => frames.map((f) => f.at - f.captureMs).sort((x, y) => x - y)[Math.floor(frames.length / 2)];
    console.log(`# over nats: listen ${heard.length}/100, talk ${played.length}/100, in order; p50 ${p50(heard)} / ${p50(played)} ms`);
    assert.deepEqual(heard.map((f) => f.seq), Array.from({ length: 100 }, (_, i) => i));
    assert.deepEqual(played.map((f) => f.seq), Array.from({ length: 100 }, (_, i) => i));
    b.close();
    await gw.next('stream_close', (m) => m.stream === open.stream, 5000);
    await gw.next('stream_close', (m) => m.stream === talkOpen.stream, 5000);
  });
});
