// Capture and playback workers: ALSA or simulated, each on its own thread.
#include "device-adapters/audio/audio_io.h"

#include <alsa/asoundlib.h>
#include <fcntl.h>
#include <opus/opus.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "common/clock.h"
#include "common/log.h"

namespace flatlink::adapters::audio {
namespace {

using SteadyClock = std::chrono::steady_clock;

int64_t wall_ms() { return SystemClock::instance().wall_ms(); }

constexpr opus_int32 kOpusTargetBitrate = 24000;  // VBR target; the protocol counts 32 kbit/s

void put_le32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_le16(unsigned char* p, uint16_t v) {
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
}

// Opens an ALSA PCM for pcm16 mono at `rate`, with a buffer of four periods.
snd_pcm_t* open_alsa(const std::string& name, snd_pcm_stream_t direction, uint32_t rate, uint32_t period_ms,
                     std::string* why) {
  snd_pcm_t* pcm = nullptr;
  int err = snd_pcm_open(&pcm, name.c_str(), direction, 0);
  if (err < 0) {
    *why = "cannot open ALSA PCM " + name + ": " + snd_strerror(err);
    return nullptr;
  }
  err = snd_pcm_set_params(pcm, SND_PCM_FORMAT_S16_LE, SND_PCM_ACCESS_RW_INTERLEAVED, 1, rate, 1,
                           period_ms * 4 * 1000);
  if (err < 0) {
    *why = "ALSA PCM " + name + " refuses pcm16 mono at " + std::to_string(rate) + " Hz: " + snd_strerror(err);
    snd_pcm_close(pcm);
    return nullptr;
  }
  return pcm;
}

}  // namespace

// ---- WAV ----------------------------------------------------------------------------------

WavWriter::~WavWriter() { close(); }

bool WavWriter::open(const std::string& path, uint32_t rate, std::string* why) {
  close();
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    *why = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  data_bytes_ = 0;
  unsigned char header[44] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E', 'f', 'm', 't', ' '};
  put_le32(header + 16, 16);
  put_le16(header + 20, 1);  // PCM
  put_le16(header + 22, 1);  // mono
  put_le32(header + 24, rate);
  put_le32(header + 28, rate * 2);
  put_le16(header + 32, 2);
  put_le16(header + 34, 16);
  std::memcpy(header + 36, "data", 4);
  if (::write(fd_, header, sizeof header) != static_cast<ssize_t>(sizeof header)) {
    *why = std::string("cannot write the WAV header: ") + std::strerror(errno);
    close();
    return false;
  }
  return true;
}

bool WavWriter::write(const std::string& pcm) {
  if (fd_ < 0) return false;
  if (::write(fd_, pcm.data(), pcm.size()) != static_cast<ssize_t>(pcm.size())) return false;
  data_bytes_ += static_cast<uint32_t>(pcm.size());
  return true;
}

void WavWriter::close() {
  if (fd_ < 0) return;
  unsigned char size[4];
  put_le32(size, 36 + data_bytes_);
  (void)::pwrite(fd_, size, 4, 4);
  put_le32(size, data_bytes_);
  (void)::pwrite(fd_, size, 4, 40);
  ::close(fd_);
  fd_ = -1;
}

// ---- capture ------------------------------------------------------------------------------

CaptureWorker::CaptureWorker(EventLoop& loop, const config::AudioDeviceConfig& device, uint32_t rate, bool opus,
                             std::function<void(std::string, int64_t)> chunk, std::function<void(std::string)> ended)
    : loop_(loop), chunk_(std::move(chunk)), ended_(std::move(ended)) {
  thread_ = std::thread([this, device, rate, opus] { run(device, rate, opus); });
}

CaptureWorker::~CaptureWorker() {
  state_->stop = true;
  if (thread_.joinable()) thread_.join();
}

void CaptureWorker::stop() { state_->stop = true; }

void CaptureWorker::run(config::AudioDeviceConfig device, uint32_t rate, bool opus) {
  std::shared_ptr<State> state = state_;
  auto post_ended = [&](std::string why) {
    loop_.post([this, state, why] {
      if (!state->stop) ended_(why);
    });
  };
  const uint32_t frames = rate * device.period_ms / 1000;
  std::string why;
  std::unique_ptr<OpusEncoder, void (*)(OpusEncoder*)> encoder(nullptr, opus_encoder_destroy);
  if (opus) {
    int err = 0;
    encoder.reset(opus_encoder_create(static_cast<opus_int32>(rate), 1, OPUS_APPLICATION_VOIP, &err));
    if (!encoder) {
      post_ended(std::string("cannot start the Opus encoder: ") + opus_strerror(err));
      state->finished = true;
      return;
    }
    opus_encoder_ctl(encoder.get(), OPUS_SET_BITRATE(kOpusTargetBitrate));
  }
  snd_pcm_t* pcm = nullptr;
  if (!device.pcm.empty()) {
    pcm = open_alsa(device.pcm, SND_PCM_STREAM_CAPTURE, rate, device.period_ms, &why);
    if (!pcm) {
      post_ended(why);
      state->finished = true;
      return;
    }
  }
  std::vector<opus_int16> samples(frames);
  std::string packet(4000, '\0');
  const auto period = std::chrono::microseconds(uint64_t{device.period_ms} * 1000);
  const auto start = SteadyClock::now();
  const int64_t start_wall = wall_ms();
  const double step = 2.0 * M_PI * device.tone_hz / rate;
  std::string buf(frames * 2, '\0');
  for (uint64_t n = 0; !state->stop; ++n) {
    buf.resize(frames * 2);  // a short read below made it shorter
    if (pcm) {
      snd_pcm_sframes_t got = snd_pcm_readi(pcm, buf.data(), frames);
      if (got < 0) got = snd_pcm_recover(pcm, static_cast<int>(got), 1);
      if (got < 0) {
        post_ended(std::string("ALSA capture failed: ") + snd_strerror(static_cast<int>(got)));
        break;
      }
      buf.resize(static_cast<size_t>(got) * 2);
    } else {
      // Simulated microphone: the tone for tone_ms, then silence.
      auto* out = reinterpret_cast<unsigned char*>(buf.data());
      for (uint32_t i = 0; i < frames; ++i) {
        const uint64_t k = n * frames + i;
        const bool on = k * 1000 < uint64_t{device.tone_ms} * rate;
        const auto v = static_cast<int16_t>(on ? std::lround(std::sin(step * static_cast<double>(k)) * 16000.0) : 0);
        put_le16(out + 2 * i, static_cast<uint16_t>(v));
      }
    }
    // Real time: a source that returns at once (a simulation, ALSA's null plugin) is paced
    // to one period per period; a real card blocks in readi, so this waits only when the
    // card's clock runs ahead of this one.
    std::this_thread::sleep_until(start + period * (n + 1));
    const int64_t capture = std::max<int64_t>(start_wall + static_cast<int64_t>(n * device.period_ms),
                                              wall_ms() - device.period_ms);
    std::string chunk;
    if (encoder) {
      // Whole periods only: Opus takes 2.5..60 ms frames.
      if (buf.size() != frames * 2) continue;
      const auto* b = reinterpret_cast<const unsigned char*>(buf.data());
      for (uint32_t i = 0; i < frames; ++i) samples[i] = static_cast<opus_int16>(b[2 * i] | b[2 * i + 1] << 8);
      const opus_int32 bytes = opus_encode(encoder.get(), samples.data(), static_cast<int>(frames),
                                           reinterpret_cast<unsigned char*>(packet.data()),
                                           static_cast<opus_int32>(packet.size()));
      if (bytes < 0) {
        post_ended(std::string("Opus encoding failed: ") + opus_strerror(bytes));
        break;
      }
      chunk.assign(packet.data(), static_cast<size_t>(bytes));
    } else {
      chunk = buf;
    }
    loop_.post([this, state, chunk = std::move(chunk), capture]() mutable {
      if (!state->stop) chunk_(std::move(chunk), capture);
    });
  }
  if (pcm) snd_pcm_close(pcm);
  state->finished = true;
}

// ---- playback -----------------------------------------------------------------------------

PlaybackWorker::PlaybackWorker(EventLoop& loop, const config::AudioDeviceConfig& device, uint32_t rate, bool opus,
                               std::function<void(std::string)> ended)
    : loop_(loop), ended_(std::move(ended)), max_us_(int64_t{device.buffer_ms} * 1000) {
  thread_ = std::thread([this, device, rate, opus] { run(device, rate, opus); });
}

PlaybackWorker::~PlaybackWorker() {
  stop();
  if (thread_.joinable()) thread_.join();
}

void PlaybackWorker::stop() {
  *alive_ = false;
  std::lock_guard lock(state_->mutex);
  state_->stop = true;
  state_->wake.notify_one();
}

void PlaybackWorker::play(std::string payload, int64_t capture_ms, uint32_t duration_us) {
  std::lock_guard lock(state_->mutex);
  if (state_->stop) return;
  state_->queued_us += duration_us;
  state_->queue.push_back(Item{std::move(payload), capture_ms, duration_us});
  // Drop the oldest beyond the bound, keeping the newest.
  while (state_->queued_us > max_us_ && state_->queue.size() > 1) {
    state_->queued_us -= state_->queue.front().duration_us;
    state_->queue.pop_front();
    ++state_->stats.dropped;
  }
  state_->wake.notify_one();
}

PlaybackStats PlaybackWorker::stats() {
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

void PlaybackWorker::run(config::AudioDeviceConfig device, uint32_t rate, bool opus) {
  std::shared_ptr<State> state = state_;
  std::shared_ptr<std::atomic<bool>> alive = alive_;
  auto post_ended = [&](std::string why) {
    loop_.post([this, alive, why] {
      if (*alive) ended_(why);
    });
  };
  std::string why;
  std::unique_ptr<OpusDecoder, void (*)(OpusDecoder*)> decoder(nullptr, opus_decoder_destroy);
  if (opus) {
    int err = 0;
    decoder.reset(opus_decoder_create(static_cast<opus_int32>(rate), 1, &err));
    if (!decoder) {
      post_ended(std::string("cannot start the Opus decoder: ") + opus_strerror(err));
      state->finished = true;
      return;
    }
  }
  std::vector<opus_int16> decoded(rate * 120 / 1000);  // the longest Opus packet: 120 ms
  snd_pcm_t* pcm = nullptr;
  WavWriter wav;
  if (!device.pcm.empty()) {
    pcm = open_alsa(device.pcm, SND_PCM_STREAM_PLAYBACK, rate, device.period_ms, &why);
  } else if (!wav.open(device.wav_file, rate, &why)) {
    why = why.empty() ? "cannot open " + device.wav_file : why;
  }
  if (!why.empty()) {
    post_ended(why);
    state->finished = true;
    return;
  }
  for (;;) {
    Item item;
    {
      std::unique_lock lock(state->mutex);
      state->wake.wait(lock, [&] { return state->stop || !state->queue.empty(); });
      if (state->stop) break;
      item = std::move(state->queue.front());
      state->queue.pop_front();
      state->queued_us -= item.duration_us;
      ++state->stats.frames;
      auto& latency = state->stats.latency_us;
      if (latency.size() >= 6000) latency.erase(latency.begin(), latency.begin() + 3000);  // the recent ones
      const int64_t now_us =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
      latency.push_back(now_us - item.capture_ms * 1000);
    }
    if (decoder) {
      const int n = opus_decode(decoder.get(), reinterpret_cast<const unsigned char*>(item.pcm.data()),
                                static_cast<opus_int32>(item.pcm.size()), decoded.data(), static_cast<int>(decoded.size()), 0);
      if (n < 0) continue;  // a bad packet: skipped (counted as played: it arrived)
      item.pcm.resize(static_cast<size_t>(n) * 2);
      auto* out = reinterpret_cast<unsigned char*>(item.pcm.data());
      for (int i = 0; i < n; ++i) put_le16(out + 2 * i, static_cast<uint16_t>(decoded[static_cast<size_t>(i)]));
    }
    if (pcm) {
      const auto frames = static_cast<snd_pcm_uframes_t>(item.pcm.size() / 2);
      snd_pcm_sframes_t n = snd_pcm_writei(pcm, item.pcm.data(), frames);
      if (n < 0) n = snd_pcm_recover(pcm, static_cast<int>(n), 1);
      if (n < 0) {
        post_ended(std::string("ALSA playback failed: ") + snd_strerror(static_cast<int>(n)));
        break;
      }
    } else if (!wav.write(item.pcm)) {
      post_ended(std::string("cannot write ") + device.wav_file + ": " + std::strerror(errno));
      break;
    }
  }
  if (pcm) {
    snd_pcm_drop(pcm);
    snd_pcm_close(pcm);
  }
  wav.close();
  state->finished = true;
}

}  // namespace flatlink::adapters::audio
