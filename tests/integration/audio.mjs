// Helpers for the stream tests (docs/protocol.md, "Streams"): the binary frame header,
// tones and their analysis, a browser that opens streams and collects binary frames.
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { browser } from './flatlink.mjs';
import { tempDir, waitFor } from './harness.mjs';

export const HEADER_BYTES = 16;

export function encodeFrame({ stream, seq, captureMs, version = 1, kind = 1 }, pcm) {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(version, 0);
  header.writeUInt8(kind, 1);
  header.writeUInt16BE(stream, 2);
  header.writeUInt32BE(seq >>> 0, 4);
  header.writeBigUInt64BE(BigInt(captureMs), 8);
  return Buffer.concat([header, pcm]);
}

export function decodeFrame(buf) {
  return {
    version: buf.readUInt8(0),
    kind: buf.readUInt8(1),
    stream: buf.readUInt16BE(2),
    seq: buf.readUInt32BE(4),
    captureMs: Number(buf.readBigUInt64BE(8)),
    pcm: buf.subarray(HEADER_BYTES),
  };
}

// pcm16 LE mono: a sine of hz for ms, amplitude amp (0..1), then silenceMs of silence.
export function tone(hz, ms, { rate = 16000, amp = 0.5, silenceMs = 0, phase = 0 } = {}) {
  const n = Math.round((rate * ms) / 1000);
  const total = n + Math.round((rate * silenceMs) / 1000);
  const buf = Buffer.alloc(total * 2);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(Math.sin((2 * Math.PI * hz * (i + phase)) / rate) * amp * 32767), 2 * i);
  return buf;
}

export function samplesOf(buf) {
  const out = new Int16Array(Math.floor(buf.length / 2));
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(2 * i);
  return out;
}

// The frequency (Hz, 10 Hz steps from 50 to 4000) with the most energy (Goertzel).
export function dominantFrequency(samples, rate = 16000) {
  const n = Math.min(samples.length, rate); // a second is plenty
  let best = 0;
  let bestPower = -1;
  for (let f = 50; f <= 4000; f += 10) {
    const coeff = 2 * Math.cos((2 * Math.PI * f) / rate);
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const s = samples[i] + coeff * s1 - s2;
      s2 = s1;
      s1 = s;
    }
    const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if (power > bestPower) {
      bestPower = power;
      best = f;
    }
  }
  return best;
}

// Milliseconds from the first to the last sample louder than threshold (of full scale).
export function soundSpanMs(samples, rate = 16000, threshold = 0.05) {
  const t = threshold * 32767;
  let first = -1;
  let last = -1;
  for (let i = 0; i < samples.length; i++) {
    if (Math.abs(samples[i]) > t) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return first < 0 ? 0 : ((last - first + 1) * 1000) / rate;
}

// A logged-in browser that also collects binary frames (decoded, with their arrival time).
export async function streamBrowser(port, login) {
  const b = await browser(port, login.flat ? login : {});
  b.frames = [];
  b.statusLatency = []; // ms from each update's ts to its arrival
  b.ws.on('message', (data, isBinary) => {
    if (isBinary) {
      b.frames.push({ ...decodeFrame(Buffer.from(data)), at: Date.now() });
    } else if (data.length < 4096 && data.toString().includes('"update"')) {
      const m = JSON.parse(data.toString());
      if (m.type === 'update') b.statusLatency.push(Date.now() - m.ts);
    }
  });
  // Opens a stream; resolves with stream_opened, or stream_closed when refused.
  b.openStream = async (ref, device, direction, { rate = 16000 } = {}) => {
    b.send({ type: 'stream_open', ref, device, direction, codec: 'pcm16', rate, channels: 1 });
    return waitFor(
      () => b.messages.find((m) => (m.type === 'stream_opened' || m.type === 'stream_closed') && m.ref === ref),
      6000,
      { message: `an answer to stream_open ${ref}` },
    );
  };
  return b;
}

// An ALSA configuration (for ALSA_CONFIG_PATH) with file-over-null PCMs:
// `mic` captures from micFile (raw pcm16 LE), `speaker` plays into speakerFile.
export function alsaFileConfig(micFile, speakerFile) {
  const dir = tempDir('flatlink-alsa-');
  const file = path.join(dir, 'asound.conf');
  writeFileSync(
    file,
    `pcm.mic { type file; slave { pcm { type null } } file "/dev/null"; infile "${micFile}"; format "raw" }\n` +
      `pcm.speaker { type file; slave { pcm { type null } } file "${speakerFile}"; format "raw" }\n`,
  );
  return file;
}
