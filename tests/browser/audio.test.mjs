// Live audio in the dashboard (issue 12), headless Chromium against the real cloud and a
// gateway with simulated audio devices: "Listen" plays a microphone's tone (the test checks
// the frames the page received: length and dominant frequency), and "Hold to talk" sends
// Chromium's fake microphone (fed a known WAV tone) to a speaker whose WAV file is checked.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { decodeFrame, dominantFrequency, samplesOf, soundSpanMs, tone } from '../integration/audio.mjs';
import { binaries, startProcess, tempDir, waitFor, writeTempConfig } from '../integration/harness.mjs';
import { device, freePort, launchBrowser, login, openPage, screenshot, startCloud, stop } from './fixture.mjs';

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

describe('dashboard audio', () => {
  let cloud, gateway, browser, page, speakerWav;
  const received = []; // binary frames the page's WebSocket received

  before(async () => {
    const port = await freePort();
    cloud = await startCloud({ port, flats: [flat] });
    const dir = tempDir('flatlink-audio-browser-');
    speakerWav = path.join(dir, 'speaker.wav');
    const config = {
      gateway_id: 'gw-a',
      flat: 'flat-a',
      state_dir: dir,
      cloud: { url: `ws://127.0.0.1:${port}/`, token: flat.token, backoff_base_ms: 100, backoff_max_ms: 500 },
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
    // Chromium's fake microphone plays this file (48 kHz, 660 Hz) in a loop.
    const micFile = path.join(dir, 'fake-mic.wav');
    writeFileSync(micFile, wav(tone(660, 4000, { rate: 48000, amp: 0.4 }), 48000));
    browser = await launchBrowser({ fakeMedia: true, fakeAudioFile: micFile });
    page = await openPage(browser, `http://127.0.0.1:${port}/`);
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
    for (const p of [gateway, cloud]) if (p) await stop(p).catch(() => {});
  });

  test('the intercom\'s code (audio.js) is loaded for a flat with a microphone and a speaker (static.test.mjs: not without)', async () => {
    const loaded = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname));
    assert.ok(loaded.includes('/audio.js'), loaded.join(' '));
    await device(page, 'door-mic').card.locator('[data-audio="listen"]').waitFor();
    await device(page, 'hall-speaker').card.locator('[data-audio="talk"]').waitFor();
  });

  test('Listen plays the microphone\'s tone in Opus: 1 s of 440 Hz, the frames decoded and scheduled (at most 2 late)', async (t) => {
    const mic = device(page, 'door-mic');
    const control = mic.card.locator('[data-audio="listen"]');
    await control.getByRole('button', { name: 'Listen' }).click();
    await waitFor(async () => (await control.getAttribute('data-state')) === 'live', 5000, { message: 'listen live' });
    await waitFor(async () => Number(await control.getAttribute('data-frames')) >= 75, 6000, { message: '1.5 s played' });
    await screenshot(page, 'audio-listen', { crop: true });
    await control.getByRole('button', { name: 'Stop' }).click();
    await waitFor(async () => (await control.getAttribute('data-state')) === 'idle', 3000, { message: 'listen stopped' });
    const frames = received.filter(Boolean);
    const scheduled = Number(await control.getAttribute('data-frames'));
    const dropped = Number((await control.getAttribute('data-dropped')) ?? 0);
    t.diagnostic(`${frames.length} frames received, ${scheduled} scheduled for playback, ${dropped} dropped by the jitter bound`);
    assert.ok(frames.length >= 75);
    // Every frame received went to the player, but for the one or two still in flight (or
    // being decoded) when Stop was clicked.
    assert.ok(scheduled + dropped >= frames.length - 2 && scheduled + dropped <= frames.length, 'frames went to the player');
    assert.ok(dropped <= 2, 'the player kept up');
    // Chromium decodes Opus (WebCodecs): the dashboard asks for it, a tenth of pcm16's bitrate.
    assert.equal(await control.getAttribute('data-codec'), 'opus');
    const kbps = (frames.reduce((n, f) => n + f.pcm.length, 0) * 8) / (frames.length * 20);
    // The same packets through Chromium's Opus decoder, for the test to measure.
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
    const span = soundSpanMs(samples, rate);
    const freq = dominantFrequency(samples, rate);
    t.diagnostic(`Opus ${kbps.toFixed(1)} kbit/s; decoded at ${rate} Hz: tone ${span} ms at ${freq} Hz`);
    assert.ok(kbps < 40, `Opus payload ${kbps} kbit/s`);
    assert.ok(Math.abs(span - 1000) <= 40, `the tone lasts 1000 ms, got ${span}`);
    assert.equal(freq, 440);
    // The stream ended at the gateway too.
    await waitFor(async () => /idle/.test(await mic.reading('audio_capture').textContent()), 3000, {
      message: 'the microphone reports idle',
    });
    assert.deepEqual(page.problems, []);
  });

  test('Hold to talk sends the fake microphone in Opus to the speaker, whose WAV holds the 660 Hz tone', async (t) => {
    const speaker = device(page, 'hall-speaker');
    const control = speaker.card.locator('[data-audio="talk"]');
    const button = control.getByRole('button', { name: 'Hold to talk' });
    await button.hover();
    await page.mouse.down();
    await waitFor(async () => (await control.getAttribute('data-state')) === 'live', 5000, { message: 'talk live' });
    await waitFor(async () => Number(await control.getAttribute('data-frames')) >= 100, 8000, { message: '2 s sent' });
    await screenshot(page, 'audio-talk', { crop: true });
    await page.mouse.up();
    await waitFor(async () => (await control.getAttribute('data-state')) === 'idle', 3000, { message: 'talk released' });
    const sent = Number(await control.getAttribute('data-frames'));
    await waitFor(async () => /idle/.test(await speaker.reading('audio_playback').textContent()), 3000, {
      message: 'the speaker reports idle',
    });
    assert.equal(await control.getAttribute('data-codec'), 'opus', 'Chromium encodes Opus: the dashboard uses it');
    const frames = Number(await speaker.reading('frames').textContent());
    const file = readFileSync(speakerWav);
    assert.equal(file.toString('ascii', 0, 4), 'RIFF');
    assert.equal(file.readUInt32LE(24), 16000);
    const samples = samplesOf(file.subarray(44));
    const ms = (samples.length * 1000) / 16000;
    const freq = dominantFrequency(samples.subarray(samples.length > 16000 ? 8000 : 0));
    t.diagnostic(`${sent} frames sent, ${frames} played, ${ms} ms in the WAV, dominant ${freq} Hz`);
    assert.ok(frames >= sent - 2 && frames <= sent, 'what was sent was played');
    assert.equal(ms, frames * 20, 'the WAV holds every frame played');
    assert.ok(Math.abs(freq - 660) <= 10, `the speaker got the 660 Hz tone, got ${freq} Hz`);
    assert.deepEqual(page.problems, []);
  });

  test('a tap released before the stream opened closes that stream once it opens: the next hold talks', async () => {
    const speaker = device(page, 'hall-speaker');
    const control = speaker.card.locator('[data-audio="talk"]');
    // Release in the very task that sends stream_open, so that stream_opened comes after the
    // release for sure; record what the page sends meanwhile.
    await page.evaluate(() => {
      const button = document.querySelector('article[data-device="hall-speaker"] [data-audio="talk"] button');
      const send = WebSocket.prototype.send;
      window.sentText = [];
      window.restoreSend = () => (WebSocket.prototype.send = send);
      WebSocket.prototype.send = function (data) {
        send.call(this, data);
        if (typeof data !== 'string') return;
        window.sentText.push(JSON.parse(data));
        if (data.includes('"stream_open"')) button.dispatchEvent(new KeyboardEvent('keyup', { key: ' ', bubbles: true }));
      };
      button.dispatchEvent(new KeyboardEvent('keydown', { key: ' ', bubbles: true }));
    });
    const sent = () => page.evaluate(() => window.sentText);
    await waitFor(async () => (await sent()).some((m) => m.type === 'stream_close'), 5000, {
      message: 'the page to close the stream once the cloud opened it',
    });
    await page.evaluate(() => window.restoreSend());
    const [open, close] = await sent();
    assert.equal(open.type, 'stream_open');
    assert.equal(close.type, 'stream_close');
    assert.equal(await control.getAttribute('data-state'), 'idle');
    await waitFor(async () => /idle/.test(await speaker.reading('audio_playback').textContent()), 3000, {
      message: 'the speaker idle again',
    });
    // The speaker is free: a hold goes live.
    await control.getByRole('button', { name: 'Hold to talk' }).hover();
    await page.mouse.down();
    await waitFor(async () => (await control.getAttribute('data-state')) === 'live', 5000, { message: 'talk live' });
    await page.mouse.up();
    await waitFor(async () => (await control.getAttribute('data-state')) === 'idle', 3000, { message: 'talk released' });
    assert.deepEqual(page.problems, []);
  });
});
