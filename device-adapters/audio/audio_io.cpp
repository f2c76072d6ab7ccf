// Capture and playback workers: ALSA or simulated, each on its own thread.
#include "device-adapters/audio/audio_io.h"

#include <alsa/asoundlib.h>
#include <fcntl.h>
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
  rate_ = rate;
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

CaptureWorker::CaptureWorker(EventLoop& loop, const config::AudioDeviceConfig& device, uint32_t rate,
                             std::function<void(std::string, int64_t)> chunk, std::function<void(std::string)> ended)
    : loop_(loop), chunk_(std::move(chunk)), ended_(std::move(ended)) {
  thread_ = std::thread([this, device, rate] { run(device, rate); });
}

CaptureWorker::~CaptureWorker() {
  state_->stop = true;
  if (thread_.joinable()) thread_.join();
}

void CaptureWorker::stop() { state_->stop = true; }

void CaptureWorker::run(config::AudioDeviceConfig device, uint32_t rate) {
  std::shared_ptr<State> state = state_;
  auto post_ended = [&](std::string why) {
    loop_.post([this, state, why] {
      if (!state->stop) ended_(why);
    });
  };
  const uint32_t frames = rate * device.period_ms / 1000;
  std::string why;
  snd_pcm_t* pcm = nullptr;
  if (!device.pcm.empty()) {
    pcm = open_alsa(device.pcm, SND_PCM_STREAM_CAPTURE, rate, device.period_ms, &why);
    if (!pcm) {
      post_ended(why);
      state->finished = true;
      return;
    }
  }
  const auto period = std::chrono::microseconds(uint64_t{device.period_ms} * 1000);
  const auto start = SteadyClock::now();
  const int64_t start_wall = wall_ms();
  const double step = 2.0 * M_PI * device.tone_hz / rate;
  std::string buf(frames * 2, '\0');
  for (uint64_t n = 0; !state->stop; ++n) {
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
      auto* samples = reinterpret_cast<unsigned char*>(buf.data());
      for (uint32_t i = 0; i < frames; ++i) {
        const uint64_t k = n * frames + i;
        const bool on = k * 1000 < uint64_t{device.tone_ms} * rate;
        const auto v = static_cast<int16_t>(on ? std::lround(std::sin(step * static_cast<double>(k)) * 16000.0) : 0);
        put_le16(samples + 2 * i, static_cast<uint16_t>(v));
      }
    }
    // Real time: a source that returns at once (a file, a simulation) is paced to one
    // period per period; a real device blocks in readi and is never ahead.
    std::this_thread::sleep_until(start + period * (n + 1));
    const int64_t capture = std::max<int64_t>(start_wall + static_cast<int64_t>(n * device.period_ms),
                                              wall_ms() - device.period_ms);
    std::string chunk = buf;
    buf.resize(frames * 2);
    loop_.post([this, state, chunk = std::move(chunk), capture]() mutable {
      if (!state->stop) chunk_(std::move(chunk), capture);
    });
  }
  if (pcm) snd_pcm_close(pcm);
  state->finished = true;
}

// ---- playback -----------------------------------------------------------------------------

PlaybackWorker::PlaybackWorker(EventLoop& loop, const config::AudioDeviceConfig& device, uint32_t rate,
                               std::function<void(std::string)> ended)
    : loop_(loop), ended_(std::move(ended)), max_bytes_(size_t{device.buffer_ms} * rate / 1000 * 2) {
  thread_ = std::thread([this, device, rate] { run(device, rate); });
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

void PlaybackWorker::play(std::string pcm, int64_t capture_ms) {
  std::lock_guard lock(state_->mutex);
  if (state_->stop) return;
  state_->queued_bytes += pcm.size();
  state_->queue.push_back(Item{std::move(pcm), capture_ms});
  // Drop the oldest beyond the bound, keeping the newest.
  while (state_->queued_bytes > max_bytes_ && state_->queue.size() > 1) {
    state_->queued_bytes -= state_->queue.front().pcm.size();
    state_->queue.pop_front();
    ++state_->stats.dropped;
  }
  state_->wake.notify_one();
}

PlaybackStats PlaybackWorker::stats() {
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

void PlaybackWorker::run(config::AudioDeviceConfig device, uint32_t rate) {
  std::shared_ptr<State> state = state_;
  std::shared_ptr<std::atomic<bool>> alive = alive_;
  auto post_ended = [&](std::string why) {
    loop_.post([this, alive, why] {
      if (*alive) ended_(why);
    });
  };
  std::string why;
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
      state->queued_bytes -= item.pcm.size();
      ++state->stats.frames;
      auto& latency = state->stats.latency_us;
      if (latency.size() >= 6000) latency.erase(latency.begin(), latency.begin() + 3000);  // the recent ones
      const int64_t now_us =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
      latency.push_back(now_us - item.capture_ms * 1000);
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
