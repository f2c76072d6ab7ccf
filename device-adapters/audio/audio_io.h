// The audio I/O behind the audio adapter's devices, each on a thread of its own:
// a capture worker (ALSA snd_pcm_readi, or a simulated tone) and a playback worker
// (ALSA snd_pcm_writei, or a simulated speaker writing a WAV file). Workers never call
// into the loop themselves: they post() to it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"
#include "config/audio_adapter_config.h"

namespace flatlink::adapters::audio {

// A WAV file (pcm16 mono) written as audio arrives; the header's sizes are fixed on close.
class WavWriter {
 public:
  WavWriter() = default;
  ~WavWriter();
  bool open(const std::string& path, uint32_t rate, std::string* why);
  bool write(const std::string& pcm);
  void close();

 private:
  int fd_ = -1;
  uint32_t data_bytes_ = 0;
};

// Latency and loss of one playback stream, as the speaker reports them when it ends.
struct PlaybackStats {
  uint64_t frames = 0;
  uint64_t dropped = 0;           // by the bounded queue
  std::vector<int64_t> latency_us;  // per frame: handed to the device minus capture time (µs; the
                                    // capture time has ms resolution, so one frame is ±1 ms)
};

class CaptureWorker {
 public:
  // `chunk` and `ended` run on the loop, and never after stop().
  // opus: each period is encoded as one Opus packet (on this worker's thread).
  CaptureWorker(EventLoop& loop, const config::AudioDeviceConfig& device, uint32_t rate, bool opus,
                std::function<void(std::string pcm, int64_t capture_ms)> chunk, std::function<void(std::string)> ended);
  ~CaptureWorker();  // joins the thread (at most one period)
  void stop();       // no callback after this; the thread ends by itself
  bool finished() const { return state_->finished.load(); }

 private:
  struct State {
    std::atomic<bool> stop{false};
    std::atomic<bool> finished{false};
  };
  void run(config::AudioDeviceConfig device, uint32_t rate, bool opus);

  EventLoop& loop_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::function<void(std::string, int64_t)> chunk_;
  std::function<void(std::string)> ended_;
  std::thread thread_;
};

class PlaybackWorker {
 public:
  // opus: frames are Opus packets, decoded on this worker's thread.
  PlaybackWorker(EventLoop& loop, const config::AudioDeviceConfig& device, uint32_t rate, bool opus,
                 std::function<void(std::string)> ended);
  ~PlaybackWorker();
  // Loop thread: queue a frame of duration_us; drops the oldest beyond buffer_ms. Never
  // blocks for long.
  void play(std::string payload, int64_t capture_ms, uint32_t duration_us);
  void stop();  // the thread plays what is queued no more, closes the device and ends
  bool finished() const { return state_->finished.load(); }
  PlaybackStats stats();

 private:
  struct Item {
    std::string pcm;
    int64_t capture_ms;
    uint32_t duration_us;
  };
  struct State {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<Item> queue;
    int64_t queued_us = 0;
    bool stop = false;
    std::atomic<bool> finished{false};
    PlaybackStats stats;
  };
  void run(config::AudioDeviceConfig device, uint32_t rate, bool opus);

  EventLoop& loop_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::function<void(std::string)> ended_;
  int64_t max_us_;
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
  std::thread thread_;
};

}  // namespace flatlink::adapters::audio
