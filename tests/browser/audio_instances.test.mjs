// Live audio in the dashboard across cloud instances (issue 20, finding 9): headless Chromium
// logged in on cloud-a, the flat's gateway (simulated audio devices) linked to cloud-b, the two
// instances over one Mosquitto. "Listen" plays the microphone's tone and "Hold to talk" sends
// Chromium's fake microphone to the speaker, as on one instance (audio.test.mjs), with every
// frame relayed over the backplane.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { decodeFrame, dominantFrequency, samplesOf, tone } from '../integration/audio.mjs';
import { binaries, startMosquitto, startProcess, tempDir, waitFor, writeTempConfig } from '../integration/harness.mjs';
import { device, freePort, launchBrowser, login, openPage, startCloud, stop } from './fixture.mjs';

const flat = { id: 'flat-a', name: 'Intercom flat', token: 'token-of-flat-a', users: [{ name: 'demo', password: 'demo' }] };
const loginA = { flat: 'flat-a', user: 'demo', password: 'demo' };

function wav(pcm, rate) {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}

describe('dashboard audio across instances', () => {
  let broker, cloudA, cloudB, gateway, browser, page, speakerWav;
  const received = []; // binary frames the page's WebSocket received

  before(async () => {
    const dir = tempDir('flatlink-audio-instances-');
    const keyFile = path.join(dir, 'backplane.key');
    writeFileSync(keyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    broker = await startMosquitto(['allow_anonymous true', 'max_queued_messages 100000'], { prefix: 'flatlink-bp-mosquitto-' });
    const instance = async (id) => {
      const port = await freePort();
      const backplane = { instance_id: id, brokers: [`mqtt://127.0.0.1:${broker.port}`], shared_key_file: keyFile, keepalive_s: 5 };
      const proc = await startCloud({ port, flats: [flat], backplane });
      await proc.waitForLine(`instance=${id} connected;`, 20_000);
      return { proc, port };
    };
    [cloudA, cloudB] = await Promise.all([instance('cloud-a'), instance('cloud-b')]);
    speakerWav = path.join(dir, 'speaker.wav');
    const config = {
      gateway_id: 'gw-a',
      flat: 'flat-a',
      state_dir: dir,
      cloud: { url: `ws://127.0.0.1:${cloudB.port}/`, token: flat.token, backoff_base_ms: 100, backoff_max_ms: 500 },
      adapters: [
        {
          type: 'audio',
          name: 'intercom',
          devices: [
            { id: 'door-mic', name: 'Door microphone', room: 'Hall', direction: 'capture', tone_hz: 440, tone_ms: 1000 },
            { id: 'hall-speaker', name: 'Hall speaker', room: 'Hall', direction: 'playback', wav_file: speakerWav },
          ],
        },
      ],
    };
    gateway = await startProcess(binaries.gateway, ['--config', await writeTempConfig(config, { name: 'gateway.json' })], {
      readyPattern: 'streaming from there',
    });
    const micFile = path.join(dir, 'fake-mic.wav');
    writeFileSync(micFile, wav(tone(660, 4000, { rate: 48000, amp: 0.4 }), 48000));
    browser = await launchBrowser({ fakeMedia: true, fakeAudioFile: micFile });
    page = await openPage(browser, `http://127.0.0.1:${cloudA.port}/`);
    page.on('websocket', (ws) =>
      ws.on('framereceived', (f) => {
        if (typeof f.payload !== 'string') received.push(decodeFrame(Buffer.from(f.payload)));
      }),
    );
    await page.reload();
    await login(page, loginA);
    await device(page, 'door-mic').card.waitFor();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    for (const p of [gateway, cloudA?.proc, cloudB?.proc, broker?.proc]) if (p) await stop(p).catch(() => {});
  });

  test('Listen on cloud-a plays the microphone of the gateway on cloud-b: Opus frames of 1 s of 440 Hz', async (t) => {
    const mic = device(page, 'door-mic');
    const control = mic.card.locator('[data-audio="listen"]');
    await control.getByRole('button', { name: 'Listen' }).click();
    await waitFor(async () => (await control.getAttribute('data-state')) === 'live', 5000, { message: 'listen live' });
    await waitFor(async () => Number(await control.getAttribute('data-frames')) >= 75, 6000, { message: '1.5 s played' });
    await control.getByRole('button', { name: 'Stop' }).click();
    await waitFor(async () => (await control.getAttribute('data-state')) === 'idle', 3000, { message: 'listen stopped' });
    const frames = received.filter(Boolean);
    const scheduled = Number(await control.getAttribute('data-frames'));
    const dropped = Number((await control.getAttribute('data-dropped')) ?? 0);
    t.diagnostic(`${frames.length} frames received across instances, ${scheduled} scheduled for playback, ${dropped} dropped by the jitter bound`);
    assert.ok(frames.length >= 75);
    for (let i = 1; i < frames.length; i++) assert.equal(frames[i].seq, frames[i - 1].seq + 1, 'in order, no gap');
    assert.ok(dropped <= 2, 'the player kept up');
    assert.equal(await control.getAttribute('data-codec'), 'opus');
    const { rate, data } = await page.evaluate(async (packets) => {
      const out = [];
      let rate = 0;
      const decoder = new AudioDecoder({
        output: (d) => {
          const s = new Float32Array(d.numberOfFrames);
          d.copyTo(s, { planeIndex: 0, format: 'f32-planar' });
          rate = d.sampleRate;
          out.push(...s);
          d.close();
        },
        error: () => {},
      });
      decoder.configure({ codec: 'opus', sampleRate: 16000, numberOfChannels: 1 });
      packets.forEach((p, i) => decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: i * 20000, data: new Uint8Array(p) })));
      await decoder.flush();
      return { rate, data: out };
    }, frames.map((f) => Array.from(f.pcm)));
    const samples = Int16Array.from(data, (v) => Math.round(v * 32767));
    assert.equal(dominantFrequency(samples, rate), 440);
    await waitFor(async () => /idle/.test(await mic.reading('audio_capture').textContent()), 3000, {
      message: 'the microphone reports idle',
    });
    assert.deepEqual(page.problems, []);
  });

  test('Hold to talk on cloud-a reaches the speaker of the gateway on cloud-b: its WAV holds the 660 Hz tone', async (t) => {
    const speaker = device(page, 'hall-speaker');
    const control = speaker.card.locator('[data-audio="talk"]');
    const button = control.getByRole('button', { name: 'Hold to talk' });
    await button.hover();
    await page.mouse.down();
    await waitFor(async () => (await control.getAttribute('data-state')) === 'live', 5000, { message: 'talk live' });
    await waitFor(async () => Number(await control.getAttribute('data-frames')) >= 100, 8000, { message: '2 s sent' });
    await page.mouse.up();
    await waitFor(async () => (await control.getAttribute('data-state')) === 'idle', 3000, { message: 'talk released' });
    const sent = Number(await control.getAttribute('data-frames'));
    await waitFor(async () => /idle/.test(await speaker.reading('audio_playback').textContent()), 3000, {
      message: 'the speaker reports idle',
    });
    const frames = Number(await speaker.reading('frames').textContent());
    const samples = samplesOf(readFileSync(speakerWav).subarray(44));
    const ms = (samples.length * 1000) / 16000;
    const freq = dominantFrequency(samples.subarray(samples.length > 16000 ? 8000 : 0));
    t.diagnostic(`${sent} frames sent on cloud-a, ${frames} played on the gateway of cloud-b, ${ms} ms in the WAV, dominant ${freq} Hz`);
    assert.ok(frames >= sent - 2 && frames <= sent, 'what was sent was played');
    assert.equal(ms, frames * 20, 'the WAV holds every frame played');
    assert.ok(Math.abs(freq - 660) <= 10, `the speaker got the 660 Hz tone, got ${freq} Hz`);
    assert.deepEqual(page.problems, []);
  });
});
