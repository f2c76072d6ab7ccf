// Live audio over the flat's one link (issue 12): streams opened by a browser of the flat,
// relayed by the cloud, played or captured by the gateway's audio adapter (simulated, and
// real ALSA code over ALSA's file/null plugins); isolation, limits, priorities, drops.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  alsaFileConfig,
  dominantFrequency,
  encodeFrame,
  samplesOf,
  soundSpanMs,
  streamBrowser,
  tone,
} from './audio.mjs';
import { cloudConfig, demoDevices, gatewayConfig, metrics, rawGateway, startCloud, stop } from './flatlink.mjs';
import { binaries, startProcess, tempDir, waitFor } from './harness.mjs';

const flatA = { id: 'flat-a', token: 'token-of-flat-a-0123456789', user: 'alice', password: 'pw-alice' };
const flatB = { id: 'flat-b', token: 'token-of-flat-b-0123456789', user: 'bob', password: 'pw-bob' };
const flatC = { id: 'flat-c', token: 'token-of-flat-c-0123456789', user: 'carol', password: 'pw-carol' };
const loginA = { flat: 'flat-a', user: 'alice', password: 'pw-alice' };
const loginB = { flat: 'flat-b', user: 'bob', password: 'pw-bob' };
const loginC = { flat: 'flat-c', user: 'carol', password: 'pw-carol' };

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
  let cloudCfg, cloud, gwA, gwB, wavFile, alsaOut, alsaIn;

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
  });

  after(async () => {
    for (const p of [gwA, gwB, cloud]) if (p) await stop(p).catch(() => {});
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
    const idle = await b.next('update', (m) => m.device === 'door-mic' && m.state.audio_capture === 'idle');
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
    const idle = await b.next('update', (m) => m.device === 'hall-speaker' && m.state.audio_playback === 'idle');
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
    await b.next('update', (m) => m.device === 'alsa-speaker' && m.state.audio_playback === 'idle');
    await waitFor(() => statSync(alsaOut).size >= pcm.length, 3000, { message: 'the ALSA file to fill' });
    const out = readFileSync(alsaOut);
    assert.ok(out.subarray(0, pcm.length).equals(pcm), 'the ALSA file holds the samples sent');
    b.close();
  });
});
