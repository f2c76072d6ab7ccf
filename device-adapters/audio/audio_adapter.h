// The audio adapter: microphones (capture) and speakers (playback) that carry live
// streams over the cloud link (docs/protocol.md, "Streams"; docs/adapters/audio.md).
// Each device is ALSA (a PCM name) or simulated (a tone; a WAV file). A device carries one
// stream at a time; its audio I/O runs on a thread of its own per stream.
//
// Devices: kind "microphone" with capability audio_capture, kind "speaker" with
// audio_playback (read-only enums "idle"/"live", the stream state), and after each
// stream its counts: frames, dropped, and for speakers latency_p50_ms / latency_p99_ms
// (capture time to the moment the audio is handed to the device).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/event_loop.h"
#include "config/audio_adapter_config.h"
#include "device-adapters/adapter.h"
#include "device-adapters/audio/audio_io.h"
#include "device-adapters/audio/stream_devices.h"

namespace flatlink::adapters::audio {

class AudioAdapter final : public Adapter, public StreamDevices {
 public:
  AudioAdapter(config::AudioAdapterConfig config, EventLoop& loop, AdapterHost& host, const Clock& clock);
  ~AudioAdapter() override;

  const std::string& name() const override { return config_.name; }
  void start() override;
  void stop() override;
  void execute(const Command& command, CommandDone done) override;

  std::optional<std::string> start_capture(const std::string& device, uint16_t id, const StreamFormat& format,
                                           AudioChunk chunk, StreamEnded ended) override;
  std::optional<std::string> start_playback(const std::string& device, uint16_t id, const StreamFormat& format,
                                            StreamEnded ended) override;
  void play(uint16_t id, std::string_view pcm, int64_t capture_ms) override;
  void stop_stream(uint16_t id, uint64_t link_dropped = 0) override;

 private:
  struct Live {
    const config::AudioDeviceConfig* device = nullptr;
    std::unique_ptr<CaptureWorker> capture;
    std::unique_ptr<PlaybackWorker> playback;
    StreamFormat format;
    uint64_t frames = 0;
  };
  const config::AudioDeviceConfig* find(const std::string& id) const;
  std::optional<std::string> check(const std::string& device, config::AudioDirection direction,
                                   const StreamFormat& format) const;
  void finish(uint16_t id, const std::string& reason, uint64_t link_dropped = 0);
  void reap();
  static constexpr int kReapMs = 20;  // how soon an ended stream's thread is looked at again

  config::AudioAdapterConfig config_;
  EventLoop& loop_;
  AdapterHost& host_;
  const Clock& clock_;
  bool running_ = false;
  std::map<uint16_t, Live> live_;
  std::vector<std::unique_ptr<CaptureWorker>> retired_capture_;  // ending on their own; joined once done
  // A speaker's stream is reported idle (with what it played) only once its worker has
  // finished: its last frame written and a WAV file's header complete.
  struct EndedPlayback {
    std::unique_ptr<PlaybackWorker> worker;
    const config::AudioDeviceConfig* device;
    uint16_t id;
    std::string reason;
  };
  std::vector<EndedPlayback> retired_playback_;
  void report_played(const EndedPlayback& ended);
  Timer reaper_;
};

std::unique_ptr<Adapter> make_audio_adapter(const config::AudioAdapterConfig& config, EventLoop& loop,
                                            AdapterHost& host, const Clock& clock);

}  // namespace flatlink::adapters::audio
