// Live audio over the flat's one link (issue 12): streams opened by a browser of the flat,
// relayed by the cloud, played or captured by the gateway's audio adapter (simulated, and
// real ALSA code over ALSA's file/null plugins); isolation, limits, priorities, drops.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  alsaFileConfig,
  dominantFrequency,
  encodeFrame,
  samplesOf,
  soundSpanMs,
  streamBrowser,
  tone,
} from './audio.mjs';
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
import { binaries, freePort, startProcess, tempDir, waitFor } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

const capture = (name) => ({ name, type: 'enum', writable: false, options: ['idle', 'live'] });
const helloC = {
  type: 'hello',
  gateway: 'gw-c',
  version: '0.1.0',
  next_seq: 1,
  devices: [
    { id: 'c-mic', name: 'Mic', kind: 'microphone', capabilities: [capture('audio_capture')], state: {}, online: true },
    { id: 'c-sensor', name: 'Sensor', kind: 'sensor', capabilities: [{ name: 'value', type: 'int', writable: false }], state: {}, online: true },
  ],
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Sends pcm to a stream in 20 ms frames at real-time pace; resolves when all are sent.
async function talk(b, stream, pcm, { frameMs = 20, rate = 16000 } = {}) {
  const bytes = ((rate * frameMs) / 1000) * 2;
  const start = Date.now();
  for (let i = 0, seq = 0; i < pcm.length; i += bytes, seq++) {
    b.ws.send(encodeFrame({ stream, seq, captureMs: Date.now() }, pcm.subarray(i, i + bytes)));
    const wait = start + (seq + 1) * frameMs - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

function wavData(file) {
  const buf = readFileSync(file);
  assert.equal(buf.toString('ascii', 0, 4), 'RIFF');
  assert.equal(buf.toString('ascii', 8, 12), 'WAVE');
  assert.equal(buf.readUInt32LE(24), 16000, 'sample rate');
  assert.equal(buf.readUInt16LE(22), 1, 'mono');
  assert.equal(buf.readUInt32LE(40), buf.length - 44, 'data size in the header');
  return buf.subarray(44);
}

describe('audio streams between browsers and the flat', () => {
  let cloudCfg, cloud, gwA, gwB, gwC, wavFile, alsaOut, alsaIn;

  before(async () => {
    cloudCfg = await cloudConfig([flatA, flatB, flatC], {
      limits: { handshake_timeout_s: 2, max_streams_per_flat: 2, max_stream_kbps_per_flat: 600 },
    });
    cloud = await startCloud(cloudCfg);
    const url = `ws://127.0.0.1:${cloudCfg.port}/`;
    const dir = tempDir('flatlink-audio-');
    wavFile = path.join(dir, 'speaker.wav');
    alsaIn = path.join(dir, 'alsa-in.raw');
    alsaOut = path.join(dir, 'alsa-out.raw');
    // The ALSA microphone's file: 600 Hz for 1.5 s then silence (the file plugin reads it as the capture).
    writeFileSync(alsaIn, tone(600, 1500, { silenceMs: 3000 }));
    const audio = {
      type: 'audio',
      name: 'intercom',
      devices: [
        { id: 'door-mic', name: 'Door microphone', room: 'Hall', direction: 'capture', tone_hz: 440, tone_ms: 1000 },
        { id: 'hall-speaker', room: 'Hall', direction: 'playback', wav_file: wavFile },
        { id: 'alsa-mic', direction: 'capture', pcm: 'mic' },
        { id: 'alsa-speaker', direction: 'playback', pcm: 'speaker' },
        { id: 'broken-mic', direction: 'capture', pcm: 'no-such-pcm' },
      ],
    };
    const cfgA = gatewayConfig({
      id: 'gw-a',
      flat: 'flat-a',
      token: flatA.token,
      url,
      devices: demoDevices(),
      extra: { adapters: [{ type: 'sim', latency_ms: 10, seed: 1, devices: demoDevices() }, audio] },
    });
    gwA = await startProcess(binaries.gateway, ['--config', cfgA.file], {
      readyPattern: 'streaming from there',
      env: { ALSA_CONFIG_PATH: alsaFileConfig(alsaIn, alsaOut) },
    });
    const cfgB = gatewayConfig({ id: 'gw-b', flat: 'flat-b', token: flatB.token, url, devices: demoDevices('b-') });
    gwB = await startProcess(binaries.gateway, ['--config', cfgB.file], { readyPattern: 'streaming from there' });
    // Flat C's gateway is played by the test: it floods and streams at will.
    gwC = await rawGateway(cloudCfg.port, flatC.token);
    gwC.send(helloC);
    await gwC.next('ack');
  });

  after(async () => {
    gwC?.close();
    for (const p of [gwA, gwB, cloud]) if (p) await stop(p).catch(() => {});
  });

  // Opens a from_device stream on flat C's raw gateway; resolves with the stream id.
  async function openC(b, ref) {
    const pending = b.openStream(ref, 'c-mic', 'from_device');
    const open = await gwC.next('stream_open', (m) => !gwC.answered?.has(m.stream));
    (gwC.answered ??= new Set()).add(open.stream);
    gwC.send({ type: 'stream_opened', stream: open.stream });
    const opened = await pending;
    assert.equal(opened.type, 'stream_opened');
    return opened.stream;
  }

  test('under a status flood with a stream running, no status is lost or held up by audio', async (t) => {
    const b = await streamBrowser(cloudCfg.port, loginC);
    const stream = await openC(b, 'flood');
    const frame = tone(300, 20);
    let seq = 1;
    const sentAt = new Map();
    const start = Date.now();
    let frames = 0;
    // 3 s: 50 audio frames/s and 20 statuses every 10 ms (2000 statuses/s, 100 messages/s).
    while (Date.now() - start < 3000) {
      const tick = Date.now();
      const items = [];
      for (let i = 0; i < 20; i++, seq++) items.push({ seq, device: 'c-sensor', state: { value: seq }, ts: tick });
      gwC.send({ type: 'status', items });
      if ((tick - start) / 20 >= frames) {
        gwC.ws.send(encodeFrame({ stream, seq: frames, captureMs: tick }, frame));
        frames++;
      }
      sentAt.set(seq - 1, tick);
      await sleep(10);
    }
    const last = seq - 1;
    await waitFor(() => b.of('update').some((m) => m.seq === last), 10_000, { message: 'every status' });
    const updates = b.of('update');
    assert.equal(updates.length, last, 'no status lost');
    updates.forEach((u, i) => assert.equal(u.seq, i + 1, 'in order'));
    assert.ok(b.frames.length >= frames * 0.8, `audio flowed too: ${b.frames.length} of ${frames} frames`);
    const lat = b.statusLatency.sort((x, y) => x - y);
    const p99 = lat[Math.floor(lat.length * 0.99)];
    t.diagnostic(`${last} statuses, status latency p50 ${lat[Math.floor(lat.length / 2)]} ms p99 ${p99} ms max ${lat[lat.length - 1]} ms; ${b.frames.length} of ${frames} audio frames`);
    assert.ok(p99 < 500, `status p99 latency ${p99} ms with audio on the same connection`);
    b.close();
  });

  test('a throttled browser link: audio is dropped (counted), its latency stays bounded, statuses all arrive', async (t) => {
    const proxyPort = await freePort();
    const proxy = await startProcess('python3', [path.join(here, 'throttle_proxy.py'), String(proxyPort), String(cloudCfg.port), '20000'], { readyPattern: 'listening' });
    try {
      const b = await streamBrowser(proxyPort, loginC);
      const stream = await openC(b, 'throttled');
      const before = await metrics(cloudCfg.port);
      const frame = tone(300, 20);
      const start = Date.now();
      let statusSeq = 100_000;
      // 6 s of 33 kB/s audio into a 20 kB/s link, with a status every 100 ms.
      for (let n = 0; Date.now() - start < 6000; n++) {
        gwC.ws.send(encodeFrame({ stream, seq: n, captureMs: Date.now() }, frame));
        if (n % 5 === 0) gwC.send({ type: 'status', items: [{ seq: ++statusSeq, device: 'c-sensor', state: { value: n }, ts: Date.now() }] });
        const wait = start + (n + 1) * 20 - Date.now();
        if (wait > 0) await sleep(wait);
      }
      const lastStatus = statusSeq;
      await waitFor(() => b.of('update').some((m) => m.seq === lastStatus), 10_000, { message: 'every status' });
      const after = await metrics(cloudCfg.port);
      const dropped = after['flatlink_stream_frames_total{result="dropped"}'] - before['flatlink_stream_frames_total{result="dropped"}'];
      assert.ok(dropped > 50, `the cloud dropped and counted audio (${dropped} frames)`);
      const late = b.frames.filter((f) => f.at - start > 3000);
      assert.ok(late.length > 20, `audio still arrives (${late.length} frames in the last 3 s)`);
      const latency = late.map((f) => f.at - f.captureMs).sort((x, y) => x - y);
      const worst = latency[latency.length - 1];
      t.diagnostic(`${dropped} frames dropped by the cloud; ${late.length} frames in the last 3 s, latency p50 ${latency[Math.floor(latency.length / 2)]} ms worst ${worst} ms`);
      assert.ok(worst < 1500, `latency stays bounded: worst ${worst} ms over the last 3 s`);
      const updates = b.of('update').filter((u) => u.seq > 100_000);
      assert.equal(updates.length, lastStatus - 100_000, 'no status lost');
      b.close();
    } finally {
      await stop(proxy, 'SIGKILL').catch(() => {});
    }
  });

  test('a gateway that never answers a stream_open: the browser is told after 5 s', async () => {
    const b = await streamBrowser(cloudCfg.port, loginC);
    const pending = b.openStream('unanswered', 'c-mic', 'from_device');
    const open = await gwC.next('stream_open', (m) => !gwC.answered?.has(m.stream));
    (gwC.answered ??= new Set()).add(open.stream); // never answered, and not to be answered later
    const closed = await pending;
    assert.equal(closed.type, 'stream_closed');
    assert.match(closed.reason, /the gateway did not answer within 5000 ms/);
    await gwC.next('stream_close', (m) => m.stream === open.stream);
    b.close();
  });

  test('isolation: a browser of flat B cannot open a stream to flat A\'s devices, nor send into one', async () => {
    const a = await streamBrowser(cloudCfg.port, loginA);
    const opened = await a.openStream('talk-a', 'hall-speaker', 'to_device');
    assert.equal(opened.type, 'stream_opened');
    const b = await streamBrowser(cloudCfg.port, loginB);
    const refused = await b.openStream('steal', 'door-mic', 'from_device');
    assert.equal(refused.type, 'stream_closed');
    assert.equal(refused.stream, 0);
    assert.match(refused.reason, /unknown device door-mic/);
    const toSpeaker = await b.openStream('steal-2', 'hall-speaker', 'to_device');
    assert.match(toSpeaker.reason, /unknown device hall-speaker/);
    // A browser without a stream of its own that sends a binary frame (here with A's stream id)
    // is closed as before: binary frames are refused from anyone without an open stream.
    b.ws.send(encodeFrame({ stream: opened.stream, seq: 0, captureMs: Date.now() }, tone(500, 20)));
    const closed = await b.waitClosed();
    assert.equal(closed.code, 1003);
    a.send({ type: 'stream_close', stream: opened.stream });
    const idle = await a.next('update', (m) => m.device === 'hall-speaker' && m.state.audio_playback === 'idle' && 'frames' in m.state);
    assert.equal(idle.state.frames, 0, 'nothing of B reached A\'s speaker');
    a.close();
  });

  test('refusals: limits per flat, capability and direction, codec, login first', async () => {
    const streamsBefore = await metrics(cloudCfg.port);
    const a = await streamBrowser(cloudCfg.port, loginA);
    const one = await a.openStream('one', 'door-mic', 'from_device');
    const two = await a.openStream('two', 'hall-speaker', 'to_device');
    assert.equal(one.type, 'stream_opened');
    assert.equal(two.type, 'stream_opened');
    const three = await a.openStream('three', 'alsa-mic', 'from_device');
    assert.equal(three.type, 'stream_closed');
    assert.match(three.reason, /the flat has 2 streams open; its limit is 2/);
    a.send({ type: 'stream_close', stream: two.stream });
    await a.next('stream_closed', (m) => m.stream === two.stream);
    const wide = await a.openStream('wide', 'alsa-mic', 'from_device', { rate: 48000 });
    assert.match(wide.reason, /768 kbit\/s would bring the flat to 1024 kbit\/s; its limit is 600 kbit\/s/);
    const wrongWay = await a.openStream('wrong-way', 'alsa-mic', 'to_device');
    assert.match(wrongWay.reason, /device alsa-mic has no audio_playback capability/);
    const lamp = await a.openStream('lamp', 'lamp-1', 'from_device');
    assert.match(lamp.reason, /device lamp-1 has no audio_capture capability/);
    // A binary frame in the wrong direction (into a microphone's stream) is dropped, not relayed.
    const before = await metrics(cloudCfg.port);
    a.ws.send(encodeFrame({ stream: one.stream, seq: 0, captureMs: Date.now() }, tone(500, 20)));
    await waitFor(async () => (await metrics(cloudCfg.port))['flatlink_stream_frames_total{result="refused"}'] > before['flatlink_stream_frames_total{result="refused"}'], 3000);
    assert.equal(a.closed, null);
    // A malformed stream_open is a refused frame: answered, then the link closes 1002 (protocol.md).
    a.send({ type: 'stream_open', ref: 'mp3', device: 'door-mic', direction: 'from_device', codec: 'mp3', rate: 16000, channels: 1 });
    const error = await a.next('error', (m) => m.message.includes('codec'));
    assert.equal(error.code, 'invalid_message');
    assert.equal((await a.waitClosed()).code, 1002);
    const counted = await metrics(cloudCfg.port);
    const delta = (result) => counted[`flatlink_streams_total{result="${result}"}`] - streamsBefore[`flatlink_streams_total{result="${result}"}`];
    assert.equal(delta('opened'), 2, 'one and two opened');
    assert.equal(delta('refused'), 4, 'three, wide, wrong-way and lamp refused (mp3 is not a stream_open)');
    // Closing the browser ends its streams at the gateway too.
    await waitFor(async () => (await metrics(cloudCfg.port)).flatlink_streams_open === 0, 3000, { message: 'no stream open' });

    const anonymous = await streamBrowser(cloudCfg.port, {});
    anonymous.send({ type: 'stream_open', ref: 'x', device: 'door-mic', direction: 'from_device', codec: 'pcm16', rate: 16000, channels: 1 });
    const refused = await anonymous.next('stream_closed');
    assert.match(refused.reason, /log in/);
    assert.equal((await anonymous.waitClosed()).code, 1008);
  });

  test('an ALSA device that cannot be opened ends the stream with ALSA\'s reason, and is free again', async () => {
    const b = await streamBrowser(cloudCfg.port, loginA);
    b.send({ type: 'stream_open', ref: 'broken', device: 'broken-mic', direction: 'from_device', codec: 'pcm16', rate: 16000, channels: 1 });
    const closed = await b.next('stream_closed', (m) => m.ref === 'broken');
    assert.match(closed.reason, /cannot open ALSA PCM no-such-pcm/);
    const again = await b.openStream('broken-2', 'broken-mic', 'from_device');
    assert.equal(again.type === 'stream_closed' ? again.reason.includes('busy') : false, false, 'not left busy');
    await b.next('stream_closed', (m) => m.ref === 'broken-2');
    await waitFor(async () => (await metrics(cloudCfg.port)).flatlink_streams_open === 0, 3000, { message: 'no stream open' });
    b.close();
  });

  test('Opus: the microphone\'s tone, relayed by a browser to the speaker, arrives at a tenth of the bitrate', async (t) => {
    const b = await streamBrowser(cloudCfg.port, loginA);
    const opus = (ref, device, direction) => {
      b.send({ type: 'stream_open', ref, device, direction, codec: 'opus', rate: 16000, channels: 1 });
      return b.next('stream_opened', (m) => m.ref === ref, 6000);
    };
    const speaker = await opus('opus-talk', 'hall-speaker', 'to_device');
    assert.equal(speaker.codec, 'opus');
    const droppedByCloud = async () => (await metrics(cloudCfg.port))['flatlink_stream_frames_total{result="dropped"}'];
    const cloudDroppedBefore = await droppedByCloud();
    // Every packet from the microphone goes straight back out to the speaker.
    let relayed = 0;
    b.ws.on('message', (data, isBinary) => {
      if (!isBinary) return;
      const f = Buffer.from(data);
      if (f.readUInt16BE(2) === speaker.stream) return;
      f.writeUInt16BE(speaker.stream, 2);
      b.ws.send(f);
      relayed++;
    });
    const mic = await opus('opus-listen', 'door-mic', 'from_device');
    await waitFor(() => relayed >= 75, 5000, { message: '1.5 s of Opus' });
    b.send({ type: 'stream_close', stream: mic.stream });
    await b.next('stream_closed', (m) => m.stream === mic.stream);
    const micIdle = await b.next('update', (m) => m.device === 'door-mic' && m.state.audio_capture === 'idle' && 'frames' in m.state);
    await sleep(200);
    b.send({ type: 'stream_close', stream: speaker.stream });
    const idle = await b.next('update', (m) => m.device === 'hall-speaker' && m.state.audio_playback === 'idle' && 'frames' in m.state && m.state.frames > 0);
    // On a loaded machine a hop may drop the oldest frames to keep its 200 ms bound: each is
    // counted (the microphone's link, the cloud), and each shortens the tone by 20 ms.
    const droppedOnTheWay = (micIdle.state.dropped ?? 0) + ((await droppedByCloud()) - cloudDroppedBefore);
    const packets = b.frames.filter((f) => f.stream === mic.stream);
    const kbps = (packets.reduce((n, f) => n + f.pcm.length, 0) * 8) / (packets.length * 20);
    const samples = samplesOf(wavData(wavFile));
    const span = soundSpanMs(samples);
    const freq = dominantFrequency(samples);
    t.diagnostic(`${packets.length} Opus packets, ${kbps.toFixed(1)} kbit/s payload (pcm16: 256); speaker played ${idle.state.frames}; tone ${span} ms at ${freq} Hz; ${droppedOnTheWay} frames dropped on the way`);
    assert.ok(kbps < 40 && kbps > 8, `Opus payload ${kbps} kbit/s`);
    assert.equal(idle.state.frames, packets.length);
    assert.equal(samples.length, packets.length * 320, 'every packet decoded to 20 ms');
    assert.ok(droppedOnTheWay <= 10, `${droppedOnTheWay} of 75 frames dropped on the way`);
    const expected = 1000 - 20 * droppedOnTheWay;
    assert.ok(Math.abs(span - expected) <= 40, `the tone lasts ${expected} ms (1000, less ${droppedOnTheWay} dropped frames), got ${span}`);
    assert.equal(freq, 440);
    b.close();
  });

  test('a browser sending faster than its stream\'s bitrate has the excess dropped, counted, not relayed', async () => {
    const b = await streamBrowser(cloudCfg.port, loginA);
    const opened = await b.openStream('flood-talk', 'hall-speaker', 'to_device');
    assert.equal(opened.type, 'stream_opened');
    const before = await metrics(cloudCfg.port);
    const pcm = tone(500, 20);
    for (let seq = 0; seq < 200; seq++) b.ws.send(encodeFrame({ stream: opened.stream, seq, captureMs: Date.now() }, pcm));
    // and tiny frames: each costs at least 5 ms of audio
    for (let seq = 200; seq < 1200; seq++) b.ws.send(encodeFrame({ stream: opened.stream, seq, captureMs: Date.now() }, Buffer.alloc(2)));
    await sleep(300);
    b.send({ type: 'stream_close', stream: opened.stream });
    const idle = await b.next('update', (m) => m.device === 'hall-speaker' && m.state.audio_playback === 'idle' && 'frames' in m.state);
    const after = await metrics(cloudCfg.port);
    const refused = after['flatlink_stream_frames_total{result="refused"}'] - before['flatlink_stream_frames_total{result="refused"}'];
    assert.ok(idle.state.frames <= 75, `about a second's burst reached the speaker (${idle.state.frames} frames)`);
    assert.ok(refused >= 1100, `the rest was refused and counted (${refused})`);
    assert.equal(b.closed, null, 'the browser stays connected');
    b.close();
  });

  test('a simulated microphone streams its tone to a browser of the flat: length and frequency', async () => {
    const b = await streamBrowser(cloudCfg.port, loginA);
    const mic = b.of('snapshot')[0].devices.find((d) => d.id === 'door-mic');
    assert.equal(mic.kind, 'microphone');
    assert.ok(mic.capabilities.some((c) => c.name === 'audio_capture'));
    const opened = await b.openStream('listen-1', 'door-mic', 'from_device');
    assert.equal(opened.type, 'stream_opened', JSON.stringify(opened));
    assert.equal(opened.device, 'door-mic');
    assert.equal(opened.codec, 'pcm16');
    assert.equal(opened.rate, 16000);
    await waitFor(() => b.frames.length >= 75, 5000, { message: '1.5 s of audio' });
    b.send({ type: 'stream_close', stream: opened.stream });
    await b.next('stream_closed', (m) => m.stream === opened.stream);
    const frames = b.frames.filter((f) => f.stream === opened.stream);
    for (let i = 1; i < frames.length; i++) assert.equal(frames[i].seq, frames[i - 1].seq + 1, 'no gap on loopback');
    assert.ok(frames.every((f) => f.version === 1 && f.kind === 1 && f.pcm.length === 640), '20 ms pcm16 frames');
    const now = Date.now();
    assert.ok(frames.every((f) => f.captureMs > now - 20_000 && f.captureMs <= now), 'capture times are wall clock');
    const samples = samplesOf(Buffer.concat(frames.map((f) => f.pcm)));
    const span = soundSpanMs(samples);
    assert.ok(Math.abs(span - 1000) <= 25, `the tone lasts 1000 ms, got ${span}`);
    assert.equal(dominantFrequency(samples), 440);
    // The device reports its stream ended, with its frame count.
    const idle = await b.next('update', (m) => m.device === 'door-mic' && m.state.audio_capture === 'idle' && 'frames' in m.state);
    assert.ok(idle.state.frames >= 75);
    b.close();
  });

  test('a browser talks to a simulated speaker, whose WAV file holds exactly what was sent', async () => {
    const b = await streamBrowser(cloudCfg.port, loginA);
    const opened = await b.openStream('talk-1', 'hall-speaker', 'to_device');
    assert.equal(opened.type, 'stream_opened', JSON.stringify(opened));
    const pcm = tone(1000, 600);
    await talk(b, opened.stream, pcm);
    await b.next('update', (m) => m.device === 'hall-speaker' && m.state.audio_playback === 'live');
    await sleep(200);
    b.send({ type: 'stream_close', stream: opened.stream });
    const idle = await b.next('update', (m) => m.device === 'hall-speaker' && m.state.audio_playback === 'idle' && 'frames' in m.state);
    assert.equal(idle.state.frames, 30);
    assert.equal(idle.state.dropped, 0);
    assert.ok(idle.state.latency_p99_ms < 500, `latency ${idle.state.latency_p99_ms}`);
    const data = wavData(wavFile);
    assert.equal(data.length, pcm.length);
    assert.ok(data.equals(pcm), 'the WAV holds the samples sent');
    b.close();
  });

  test('ALSA (file plugin over null): capture reaches the browser, playback reaches the file', async () => {
    const b = await streamBrowser(cloudCfg.port, loginA);
    const listen = await b.openStream('alsa-listen', 'alsa-mic', 'from_device');
    assert.equal(listen.type, 'stream_opened', JSON.stringify(listen));
    await waitFor(() => b.frames.length >= 100, 6000, { message: '2 s of ALSA capture' });
    b.send({ type: 'stream_close', stream: listen.stream });
    await b.next('stream_closed', (m) => m.stream === listen.stream);
    const captured = samplesOf(Buffer.concat(b.frames.map((f) => f.pcm)));
    assert.equal(dominantFrequency(captured), 600);
    const span = soundSpanMs(captured);
    assert.ok(Math.abs(span - 1500) <= 25, `the ALSA tone lasts 1500 ms, got ${span}`);

    const talkStream = await b.openStream('alsa-talk', 'alsa-speaker', 'to_device');
    assert.equal(talkStream.type, 'stream_opened', JSON.stringify(talkStream));
    const pcm = tone(700, 400);
    await talk(b, talkStream.stream, pcm);
    await sleep(200);
    b.send({ type: 'stream_close', stream: talkStream.stream });
    await b.next('update', (m) => m.device === 'alsa-speaker' && m.state.audio_playback === 'idle' && 'frames' in m.state);
    await waitFor(() => statSync(alsaOut).size >= pcm.length, 3000, { message: 'the ALSA file to fill' });
    const out = readFileSync(alsaOut);
    assert.ok(out.subarray(0, pcm.length).equals(pcm), 'the ALSA file holds the samples sent');
    b.close();
  });
});

describe('audio on flatlinkd\'s own link: status flood and a throttled uplink', () => {
  const flatD = { id: 'flat-d', token: 'token-of-flat-d-0123456789', user: 'dave', password: 'pw-dave' };
  const flatE = { id: 'flat-e', token: 'token-of-flat-e-0123456789', user: 'erin', password: 'pw-erin' };
  let cloudCfg, cloud, gwD, gwE, proxy;

  const audio = { type: 'audio', name: 'intercom', devices: [{ id: 'door-mic', direction: 'capture', tone_hz: 440, tone_ms: 600_000 }] };
  const thermometers = (n, intervalMs) =>
    Array.from({ length: n }, (_, i) => ({ id: `thermo-${i}`, kind: 'thermometer', interval_ms: intervalMs }));

  before(async () => {
    cloudCfg = await cloudConfig([flatD, flatE], { limits: { messages_per_s: 2000, burst: 4000 } });
    cloud = await startCloud(cloudCfg);
    const url = `ws://127.0.0.1:${cloudCfg.port}/`;
    // Flat D: 100 thermometers every 100 ms (1,000 statuses/s through the outbox and the link).
    const cfgD = gatewayConfig({
      id: 'gw-d',
      flat: 'flat-d',
      token: flatD.token,
      url,
      devices: [],
      extra: { adapters: [{ type: 'sim', seed: 1, devices: thermometers(100, 100) }, audio] },
    });
    gwD = await startProcess(binaries.gateway, ['--config', cfgD.file], { readyPattern: 'streaming from there' });
    // Flat E: its gateway reaches the cloud through a proxy that passes 20 kB/s upstream.
    const proxyPort = await freePort();
    proxy = await startProcess('python3', [path.join(here, 'throttle_proxy.py'), String(proxyPort), String(cloudCfg.port), '20000', 'up'], {
      readyPattern: 'listening',
    });
    const cfgE = gatewayConfig({
      id: 'gw-e',
      flat: 'flat-e',
      token: flatE.token,
      url: `ws://127.0.0.1:${proxyPort}/`,
      devices: [],
      extra: { adapters: [{ type: 'sim', seed: 1, devices: thermometers(2, 100) }, audio] },
    });
    gwE = await startProcess(binaries.gateway, ['--config', cfgE.file], { readyPattern: 'streaming from there' });
  });

  after(async () => {
    for (const p of [gwD, gwE, cloud]) if (p) await stop(p).catch(() => {});
    if (proxy) await stop(proxy, 'SIGKILL').catch(() => {});
  });

  // Updates seen in a window: none missing between the first and the last, and their latency.
  function checkUpdates(b, fromIndex) {
    const updates = b.messages.slice(fromIndex).filter((m) => m.type === 'update');
    for (let i = 1; i < updates.length; i++) assert.equal(updates[i].seq, updates[i - 1].seq + 1, 'no status missing');
    return updates.filter((u) => u.device.startsWith('thermo-')).length;
  }

  test('1,000 statuses/s through flatlinkd beside a stream: none lost, none held up, audio flows', async (t) => {
    const b = await streamBrowser(cloudCfg.port, { flat: 'flat-d', user: 'dave', password: 'pw-dave' });
    await b.next('update', (m) => m.device.startsWith('thermo-'));
    const from = b.messages.length;
    b.statusLatency.length = 0;
    const opened = await b.openStream('flood', 'door-mic', 'from_device');
    assert.equal(opened.type, 'stream_opened');
    await sleep(3000);
    b.send({ type: 'stream_close', stream: opened.stream });
    await b.next('stream_closed', (m) => m.stream === opened.stream);
    const n = checkUpdates(b, from);
    const lat = [...b.statusLatency].sort((x, y) => x - y);
    const p99 = lat[Math.floor(lat.length * 0.99)];
    const frames = b.frames.length;
    t.diagnostic(`${n} statuses in ~3 s, latency p50 ${lat[Math.floor(lat.length / 2)]} ms p99 ${p99} ms; ${frames} audio frames`);
    assert.ok(n > 1500, `the flood went on (${n} statuses)`);
    assert.ok(p99 < 500, `status p99 ${p99} ms`);
    assert.ok(frames >= 120, `audio flowed beside it (${frames} of ~150 frames)`);
    const idle = await b.next('update', (m) => m.device === 'door-mic' && m.state.audio_capture === 'idle' && 'frames' in m.state);
    assert.ok(idle.state.frames >= frames);
    b.close();
  });

  test('a throttled gateway uplink: the gateway drops audio (reported), latency stays bounded, statuses keep arriving with none missing between them', async (t) => {
    const b = await streamBrowser(cloudCfg.port, { flat: 'flat-e', user: 'erin', password: 'pw-erin' });
    await b.next('update', (m) => m.device.startsWith('thermo-'));
    const from = b.messages.length;
    const opened = await b.openStream('throttled', 'door-mic', 'from_device');
    assert.equal(opened.type, 'stream_opened');
    const start = Date.now();
    await sleep(6000);
    b.send({ type: 'stream_close', stream: opened.stream });
    const idle = await b.next('update', (m) => m.device === 'door-mic' && m.state.audio_capture === 'idle' && 'frames' in m.state, 8000);
    const late = b.frames.filter((f) => f.at - start > 3000);
    const latency = late.map((f) => f.at - f.captureMs).sort((x, y) => x - y);
    const worst = latency[latency.length - 1];
    const n = checkUpdates(b, from);
    t.diagnostic(
      `${idle.state.frames} frames captured, ${idle.state.dropped} dropped by the gateway's link, ${b.frames.length} received; ` +
        `last 3 s: ${late.length} frames, latency p50 ${latency[Math.floor(latency.length / 2)]} ms worst ${worst} ms; ${n} statuses`,
    );
    assert.ok(idle.state.dropped > 50, `the gateway dropped and reported audio (${idle.state.dropped})`);
    assert.ok(late.length > 20, `audio still arrives (${late.length} frames in the last 3 s)`);
    assert.ok(worst < 1500, `latency stays bounded: worst ${worst} ms`);
    assert.ok(n >= 80, `statuses kept coming (${n})`);
    b.close();
  });
});
