// Live audio in the dashboard (docs/protocol.md, "Streams"): "Listen" plays a microphone's
// stream through Web Audio with a small jitter buffer; "Hold to talk" sends this browser's
// microphone to a speaker, resampled to 16 kHz. Both in Opus (a tenth of pcm16's bitrate)
// where the browser has it (WebCodecs AudioDecoder / AudioEncoder, e.g. Chromium), else pcm16. Both show the stream's state and stop
// cleanly: on release, on a second click, when the cloud or the gateway ends the stream,
// and when the link to the cloud is lost.

import { t } from './i18n.js';
import { h } from './dom.js';

const HEADER_BYTES = 16;
const RATE = 16000;
const FRAME_SAMPLES = 320; // 20 ms
const JITTER_S = 0.08; // audio held back before it plays: absorbs uneven arrival
const MAX_AHEAD_S = 0.3; // more than this scheduled ahead: frames are dropped (bounded latency)

let nextRef = 1;

// A binary frame: header + payload (a Uint8Array), or header + pcm16 of float samples.
export function encodeFrame(stream, seq, captureMs, { payload, samples }) {
  const size = payload ? payload.byteLength : samples.length * 2;
  const buf = new ArrayBuffer(HEADER_BYTES + size);
  const view = new DataView(buf);
  view.setUint8(0, 1);
  view.setUint8(1, 1);
  view.setUint16(2, stream);
  view.setUint32(4, seq >>> 0);
  view.setBigUint64(8, BigInt(captureMs));
  if (payload) {
    new Uint8Array(buf, HEADER_BYTES).set(payload);
  } else {
    for (let i = 0; i < samples.length; i++) {
      view.setInt16(HEADER_BYTES + 2 * i, Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32767))), true);
    }
  }
  return buf;
}

export function decodeFrame(buf) {
  const view = new DataView(buf);
  if (buf.byteLength < HEADER_BYTES || view.getUint8(0) !== 1 || view.getUint8(1) !== 1) return null;
  return {
    stream: view.getUint16(2),
    seq: view.getUint32(4),
    captureMs: Number(view.getBigUint64(8)),
    payload: new Uint8Array(buf, HEADER_BYTES),
  };
}

function pcm16Samples(payload) {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const samples = new Float32Array(payload.byteLength >> 1);
  for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(2 * i, true) / 32768;
  return samples;
}

const OPUS_CONFIG = { codec: 'opus', sampleRate: RATE, numberOfChannels: 1 };

const OPUS_ENCODER_CONFIG = { ...OPUS_CONFIG, bitrate: 24_000, opus: { frameDuration: 20_000 } };

// Whether WebCodecs' Codec (AudioEncoder or AudioDecoder, undefined without WebCodecs)
// takes that config.
const supports = (Codec, config) =>
  Codec ? Codec.isConfigSupported(config).then((r) => Boolean(r.supported), () => false) : Promise.resolve(false);

// Whether this browser encodes / decodes Opus (asked once); pcm16 otherwise.
let opusEncoding = null;
let opusDecoding = null;
export const canEncodeOpus = () => (opusEncoding ??= supports(globalThis.AudioEncoder, OPUS_ENCODER_CONFIG));
export const canDecodeOpus = () => (opusDecoding ??= supports(globalThis.AudioDecoder, OPUS_CONFIG));

// Linear resampling of a mono Float32 block from `from` Hz to 16 kHz, carrying state across blocks.
class Resampler {
  constructor(from) {
    this.step = from / RATE;
    this.pos = 0;
    this.last = 0;
  }

  push(input) {
    const out = [];
    while (this.pos < input.length) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = i === 0 ? (frac === 0 ? input[0] : this.last) : input[i - 1];
      const b = input[i];
      out.push(i === 0 && frac === 0 ? b : a + (b - a) * frac);
      this.pos += this.step;
    }
    this.pos -= input.length;
    this.last = input[input.length - 1];
    return out;
  }
}

// All audio streams of one page. conn: the Connection (request(), sendBinary()).
export class AudioStreams {
  constructor(conn) {
    this.conn = conn;
    this.byRef = new Map(); // ref -> session
    this.byStream = new Map(); // stream id -> session
  }

  // A control for a stream device's card, or null for other devices.
  controlFor(device) {
    const caps = new Set(device.capabilities.map((c) => c.name));
    if (caps.has('audio_capture')) return this.listenControl(device);
    if (caps.has('audio_playback')) return this.talkControl(device);
    return null;
  }

  // The cloud said something about a stream (stream_opened / stream_closed).
  message(msg) {
    const session = this.byRef.get(msg.ref);
    if (!session) return;
    if (msg.type === 'stream_opened') {
      if (session.cancelled) {
        // Let go of (released, stopped) before the cloud opened it: close it now.
        this.conn.request({ type: 'stream_close', stream: msg.stream });
        this.forget(session);
        return;
      }
      session.stream = msg.stream;
      this.byStream.set(msg.stream, session);
      session.opened(msg);
    } else if (msg.type === 'stream_closed') {
      this.forget(session);
      session.ended(msg.reason || t('audio.closed'));
    }
  }

  binary(data) {
    const frame = decodeFrame(data);
    if (!frame) return;
    const session = this.byStream.get(frame.stream);
    if (session && session.frame) session.frame(frame);
  }

  // The link to the cloud changed: a lost link ends every stream (the cloud ended them too).
  link(state) {
    if (state === 'open') return;
    for (const session of [...this.byRef.values()]) {
      this.forget(session);
      session.ended(t('audio.lost'));
    }
  }

  open(session, device, direction, codec = 'pcm16') {
    session.ref = `a-${nextRef++}`;
    this.byRef.set(session.ref, session);
    const sent = this.conn.request({
      type: 'stream_open',
      ref: session.ref,
      device: device.id,
      direction,
      codec,
      rate: RATE,
      channels: 1,
    });
    if (!sent) {
      this.forget(session);
      session.ended(t('audio.notConnected'));
    }
  }

  close(session) {
    if (session.stream) {
      this.conn.request({ type: 'stream_close', stream: session.stream });
    } else if (this.byRef.has(session.ref)) {
      session.cancelled = true; // asked for, not opened yet: closed as soon as it is (message())
      return;
    }
    this.forget(session);
  }

  forget(session) {
    this.byRef.delete(session.ref);
    if (session.stream) this.byStream.delete(session.stream);
  }

  // ---- Listen ---------------------------------------------------------------------------

  listenControl(device) {
    const button = h('button', { type: 'button', class: 'audio-button', 'aria-pressed': 'false', text: t('audio.listen') });
    const status = h('span', { class: 'audio-state', role: 'status', text: t('audio.idle') });
    const root = h('div', { class: 'control audio', 'data-audio': 'listen', 'data-state': 'idle', 'data-frames': '0' }, button, status);
    let session = null;
    const show = (state, text) => {
      root.dataset.state = state;
      status.textContent = text;
      button.textContent = state === 'idle' || state === 'ended' ? t('audio.listen') : t('audio.stop');
      button.setAttribute('aria-pressed', String(!(state === 'idle' || state === 'ended')));
    };
    const stop = (why) => {
      if (!session) return;
      const s = session;
      session = null;
      this.close(s);
      if (s.ctx) s.ctx.close().catch(() => {});
      if (s.decoder && s.decoder.state !== 'closed') s.decoder.close();
      show(why ? 'ended' : 'idle', why ? t('audio.ended', { why }) : t('audio.idle'));
    };
    button.addEventListener('click', async () => {
      if (session) return stop();
      const s = { frames: 0, dropped: 0, nextTime: 0 };
      session = s;
      try {
        s.ctx = new AudioContext({ sampleRate: RATE, latencyHint: 'interactive' });
      } catch {
        s.ctx = new AudioContext();
      }
      show('opening', t('audio.opening'));
      const opus = await canDecodeOpus();
      if (session !== s) return;
      root.dataset.codec = opus ? 'opus' : 'pcm16';
      s.opened = () => show('live', t('audio.live', { codec: root.dataset.codec }));
      s.ended = (why) => {
        if (session !== s) return;
        session = s; // let stop() close the context
        this.forget(s);
        s.stream = 0;
        stop(why);
      };
      const schedule = (samples, rate) => {
        const ctx = s.ctx;
        const now = ctx.currentTime;
        if (s.nextTime < now) s.nextTime = now + JITTER_S; // first frame, or after a gap: re-buffer
        if (s.nextTime - now > MAX_AHEAD_S) {
          s.dropped += 1; // arriving faster than it plays: keep the delay bounded
          root.dataset.dropped = String(s.dropped);
          return;
        }
        const buffer = ctx.createBuffer(1, samples.length, rate);
        buffer.copyToChannel(samples, 0);
        const source = ctx.createBufferSource();
        source.buffer = buffer;
        source.connect(ctx.destination);
        source.start(s.nextTime);
        s.nextTime += buffer.duration;
        s.frames += 1;
        root.dataset.frames = String(s.frames);
        if (s.frames % 25 === 1) {
          status.textContent = t('audio.buffered', { codec: root.dataset.codec, ms: Math.round((s.nextTime - now) * 1000) });
        }
      };
      if (opus) {
        s.decoder = new AudioDecoder({
          output: (data) => {
            const samples = new Float32Array(data.numberOfFrames);
            data.copyTo(samples, { planeIndex: 0, format: 'f32-planar' });
            const rate = data.sampleRate;
            data.close();
            if (session === s) schedule(samples, rate);
          },
          error: (err) => s.ended(t('audio.decodeFailed', { message: err.message })),
        });
        s.decoder.configure(OPUS_CONFIG);
        s.frame = (frame) => {
          if (s.decoder.state !== 'configured') return;
          s.decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: frame.seq * 20_000, data: frame.payload }));
        };
      } else {
        s.frame = (frame) => schedule(pcm16Samples(frame.payload), RATE);
      }
      this.open(s, device, 'from_device', opus ? 'opus' : 'pcm16');
    });
    return { root, update() {}, stop };
  }

  // ---- Hold to talk ---------------------------------------------------------------------

  talkControl(device) {
    const button = h('button', { type: 'button', class: 'audio-button', 'aria-pressed': 'false', text: t('audio.talk') });
    const status = h('span', { class: 'audio-state', role: 'status', text: t('audio.idle') });
    const root = h('div', { class: 'control audio', 'data-audio': 'talk', 'data-state': 'idle', 'data-frames': '0' }, button, status);
    let session = null;
    const show = (state, text) => {
      root.dataset.state = state;
      status.textContent = text;
      button.setAttribute('aria-pressed', String(state === 'opening' || state === 'live'));
    };
    const release = (why) => {
      if (!session) return;
      const s = session;
      session = null;
      this.close(s);
      if (s.processor) s.processor.disconnect();
      if (s.source) s.source.disconnect();
      if (s.media) for (const track of s.media.getTracks()) track.stop();
      if (s.ctx) s.ctx.close().catch(() => {});
      if (s.encoder && s.encoder.state !== 'closed') s.encoder.close();
      show(why ? 'ended' : 'idle', why ? t('audio.ended', { why }) : t('audio.idle'));
    };
    const press = async () => {
      if (session) return;
      const s = { seq: 0, pending: [], frames: 0 };
      session = s;
      show('opening', t('audio.opening'));
      s.ended = (why) => {
        if (session !== s) return;
        s.stream = 0;
        release(why);
      };
      s.opened = () => {
        if (session === s) show('live', t('audio.talking'));
      };
      const opus = await canEncodeOpus();
      if (session !== s) return;
      root.dataset.codec = opus ? 'opus' : 'pcm16';
      this.open(s, device, 'to_device', root.dataset.codec);
      try {
        s.media = await navigator.mediaDevices.getUserMedia({
          audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
        });
      } catch (err) {
        if (session === s) release(t('audio.noMic', { name: err.name }));
        return;
      }
      if (session !== s) {
        for (const track of s.media.getTracks()) track.stop();
        return;
      }
      s.ctx = new AudioContext({ latencyHint: 'interactive' });
      s.source = s.ctx.createMediaStreamSource(s.media);
      // ScriptProcessor: no extra module to load; 1024 samples at 48 kHz are ~21 ms.
      s.processor = s.ctx.createScriptProcessor(1024, 1, 1);
      const resampler = new Resampler(s.ctx.sampleRate);
      const sent = () => {
        s.frames += 1;
        root.dataset.frames = String(s.frames);
      };
      if (opus) {
        // One 20 ms packet per frame; its capture time from the samples' own timestamps.
        s.encoder = new AudioEncoder({
          output: (chunk) => {
            if (session !== s || !s.stream) return;
            const payload = new Uint8Array(chunk.byteLength);
            chunk.copyTo(payload);
            this.conn.sendBinary(encodeFrame(s.stream, s.seq++, s.t0 + Math.round(chunk.timestamp / 1000), { payload }));
            sent();
          },
          error: (err) => release(t('audio.encodeFailed', { message: err.message })),
        });
        s.encoder.configure(OPUS_ENCODER_CONFIG);
      }
      s.samples = 0; // 16 kHz samples taken so far
      s.processor.onaudioprocess = (event) => {
        if (session !== s || !s.stream) return; // not open yet: nothing is sent, nothing piles up
        const input = event.inputBuffer.getChannelData(0);
        for (const v of resampler.push(input)) s.pending.push(v);
        if (s.t0 === undefined) s.t0 = Date.now() - Math.round((s.pending.length / RATE) * 1000);
        while (s.pending.length >= FRAME_SAMPLES) {
          const samples = Float32Array.from(s.pending.splice(0, FRAME_SAMPLES));
          if (s.encoder) {
            const data = new AudioData({
              format: 'f32-planar',
              sampleRate: RATE,
              numberOfFrames: FRAME_SAMPLES,
              numberOfChannels: 1,
              timestamp: Math.round((s.samples / RATE) * 1e6),
              data: samples,
            });
            s.encoder.encode(data);
            data.close();
          } else {
            const captureMs = s.t0 + Math.round((s.samples / RATE) * 1000);
            this.conn.sendBinary(encodeFrame(s.stream, s.seq++, captureMs, { samples }));
            sent();
          }
          s.samples += FRAME_SAMPLES;
        }
      };
      s.source.connect(s.processor);
      s.processor.connect(s.ctx.destination); // a ScriptProcessor runs only when connected
    };
    button.addEventListener('pointerdown', (event) => {
      button.setPointerCapture?.(event.pointerId);
      press();
    });
    button.addEventListener('pointerup', () => release());
    button.addEventListener('pointercancel', () => release());
    button.addEventListener('keydown', (event) => {
      if ((event.key === ' ' || event.key === 'Enter') && !event.repeat) {
        event.preventDefault();
        press();
      }
    });
    button.addEventListener('keyup', (event) => {
      if (event.key === ' ' || event.key === 'Enter') release();
    });
    const leaving = new AbortController(); // the card goes: no listener left on the window
    window.addEventListener('blur', () => release(), { signal: leaving.signal });
    const stop = () => {
      release();
      leaving.abort();
    };
    return { root, update() {}, stop };
  }
}
