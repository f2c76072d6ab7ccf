// The audio adapter.
#include "device-adapters/audio/audio_adapter.h"

#include <algorithm>

#include "common/log.h"

namespace flatlink::adapters::audio {
namespace {

bool is_capture(const config::AudioDeviceConfig& d) { return d.direction == config::AudioDirection::capture; }

DeviceInfo describe(const config::AudioDeviceConfig& d) {
  DeviceInfo info;
  info.id = d.id;
  info.name = d.name.empty() ? d.id : d.name;
  info.kind = is_capture(d) ? "microphone" : "speaker";
  info.room = d.room;
  info.capabilities.push_back(
      Capability::enumeration(is_capture(d) ? "audio_capture" : "audio_playback", {"idle", "live"}, false));
  info.capabilities.push_back(Capability::integer("frames", 0, 9e15, false));
  info.capabilities.push_back(Capability::integer("dropped", 0, 9e15, false));
  if (!is_capture(d)) {
    auto p50 = Capability::number("latency_p50_ms", -1e6, 1e6, false);
    p50.unit = "ms";
    auto p99 = Capability::number("latency_p99_ms", -1e6, 1e6, false);
    p99.unit = "ms";
    info.capabilities.push_back(p50);
    info.capabilities.push_back(p99);
  }
  return info;
}

// In ms with two decimals, from µs samples.
double percentile_ms(std::vector<int64_t> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5));
  return static_cast<double>(values[index] / 10) / 100.0;
}

}  // namespace

AudioAdapter::AudioAdapter(config::AudioAdapterConfig config, EventLoop& loop, AdapterHost& host, const Clock& clock)
    : config_(std::move(config)), loop_(loop), host_(host), clock_(clock), reaper_(loop, [this] { reap(); }) {}

AudioAdapter::~AudioAdapter() { stop(); }

void AudioAdapter::start() {
  running_ = true;
  for (const auto& d : config_.devices) {
    host_.device_added(describe(d));
    host_.presence(d.id, true);
    host_.status(d.id, Json{{is_capture(d) ? "audio_capture" : "audio_playback", "idle"}}, clock_.wall_ms());
    LOG_INFO("audio") << "adapter=" << config_.name << " device=" << d.id << " "
                      << (is_capture(d) ? "microphone" : "speaker") << " on "
                      << (d.pcm.empty() ? (is_capture(d) ? "a simulated tone" : d.wav_file) : "ALSA " + d.pcm);
  }
}

void AudioAdapter::stop() {
  running_ = false;
  reaper_.cancel();
  live_.clear();  // workers' destructors stop and join their threads
  retired_capture_.clear();
  retired_playback_.clear();
}

void AudioAdapter::execute(const Command& command, CommandDone done) {
  done(CommandResult{Outcome::rejected, "device " + command.device + " has nothing to set; it streams"});
}

const config::AudioDeviceConfig* AudioAdapter::find(const std::string& id) const {
  for (const auto& d : config_.devices) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

std::optional<std::string> AudioAdapter::check(const std::string& device, config::AudioDirection direction,
                                               const StreamFormat& format) const {
  const config::AudioDeviceConfig* d = find(device);
  if (!d) return "unknown device " + device;
  if (!running_) return "the audio adapter is stopping";
  if (d->direction != direction) {
    return "device " + device + (is_capture(*d) ? " is a microphone" : " is a speaker");
  }
  if (format.rate != d->rate || format.channels != 1) {
    return "device " + device + " streams mono at " + std::to_string(d->rate) + " Hz only";
  }
  if (format.opus && d->period_ms != 20) {
    return "device " + device + " has " + std::to_string(d->period_ms) + " ms periods; Opus streams take 20 ms frames";
  }
  for (const auto& [id, live] : live_) {
    if (live.device == d) return "device " + device + " is busy with stream " + std::to_string(id);
  }
  return std::nullopt;
}

std::optional<std::string> AudioAdapter::start_capture(const std::string& device, uint16_t id,
                                                       const StreamFormat& format, AudioChunk chunk,
                                                       StreamEnded ended) {
  if (auto why = check(device, config::AudioDirection::capture, format)) return why;
  stop_stream(id);
  Live& live = live_[id];
  live.device = find(device);
  live.format = format;
  live.capture = std::make_unique<CaptureWorker>(
      loop_, *live.device, format.rate, format.opus,
      [this, id, chunk = std::move(chunk)](std::string pcm, int64_t capture_ms) {
        auto it = live_.find(id);
        if (it != live_.end()) ++it->second.frames;
        chunk(std::move(pcm), capture_ms);
      },
      [this, id, ended = std::move(ended)](std::string why) {
        finish(id, why);
        ended(why);
      });
  host_.status(device, Json{{"audio_capture", "live"}}, clock_.wall_ms());
  LOG_INFO("audio") << "device=" << device << " stream=" << id << " capturing";
  return std::nullopt;
}

std::optional<std::string> AudioAdapter::start_playback(const std::string& device, uint16_t id,
                                                        const StreamFormat& format, StreamEnded ended) {
  if (auto why = check(device, config::AudioDirection::playback, format)) return why;
  stop_stream(id);
  Live& live = live_[id];
  live.device = find(device);
  live.format = format;
  live.playback = std::make_unique<PlaybackWorker>(loop_, *live.device, format.rate, format.opus,
                                                   [this, id, ended = std::move(ended)](std::string why) {
                                                     finish(id, why);
                                                     ended(why);
                                                   });
  host_.status(device, Json{{"audio_playback", "live"}}, clock_.wall_ms());
  LOG_INFO("audio") << "device=" << device << " stream=" << id << " playing";
  return std::nullopt;
}

void AudioAdapter::play(uint16_t id, std::string_view pcm, int64_t capture_ms) {
  auto it = live_.find(id);
  if (it == live_.end() || !it->second.playback) return;
  ++it->second.frames;
  const StreamFormat& f = it->second.format;
  const uint32_t duration_us =
      f.opus ? 20'000u : static_cast<uint32_t>(pcm.size() / 2 * 1'000'000ull / f.rate);
  it->second.playback->play(std::string(pcm), capture_ms, duration_us);
}

void AudioAdapter::stop_stream(uint16_t id, uint64_t link_dropped) { finish(id, "stopped", link_dropped); }

void AudioAdapter::finish(uint16_t id, const std::string& reason, uint64_t link_dropped) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  Live live = std::move(it->second);
  live_.erase(it);
  const auto& d = *live.device;
  Json state;
  if (live.capture) {
    live.capture->stop();
    state = Json{{"audio_capture", "idle"}, {"frames", live.frames}, {"dropped", link_dropped}};
    retired_capture_.push_back(std::move(live.capture));
    LOG_INFO("audio") << "device=" << d.id << " stream=" << id << " ended (" << reason << ") after " << live.frames
                      << " frames captured, " << link_dropped << " dropped by the link";
  } else if (live.playback) {
    live.playback->stop();
    retired_playback_.push_back(EndedPlayback{std::move(live.playback), live.device, id, reason});
  }
  if (running_) {
    if (!state.is_null()) host_.status(d.id, state, clock_.wall_ms());
    reaper_.start(kReapMs);
  }
}

void AudioAdapter::report_played(const EndedPlayback& ended) {
  const auto& d = *ended.device;
  PlaybackStats stats = ended.worker->stats();
  Json state{{"frames", stats.frames},
             {"dropped", stats.dropped},
             {"latency_p50_ms", percentile_ms(stats.latency_us, 0.50)},
             {"latency_p99_ms", percentile_ms(stats.latency_us, 0.99)}};
  // A stream opened on the device since then keeps it "live".
  const bool again = std::any_of(live_.begin(), live_.end(), [&](const auto& l) { return l.second.device == ended.device; });
  if (!again) state["audio_playback"] = "idle";
  LOG_INFO("audio") << "device=" << d.id << " stream=" << ended.id << " ended (" << ended.reason << ") after "
                    << stats.frames << " frames played, " << stats.dropped << " dropped, latency p50 "
                    << state["latency_p50_ms"] << " ms p99 " << state["latency_p99_ms"] << " ms";
  host_.status(d.id, state, clock_.wall_ms());
}

// Threads of ended streams are joined once they have finished, so that the loop never waits.
void AudioAdapter::reap() {
  std::erase_if(retired_capture_, [](const auto& w) { return w->finished(); });
  std::erase_if(retired_playback_, [this](const EndedPlayback& e) {
    if (!e.worker->finished()) return false;
    if (running_) report_played(e);
    return true;
  });
  if (!retired_capture_.empty() || !retired_playback_.empty()) reaper_.start(kReapMs);
}

std::unique_ptr<Adapter> make_audio_adapter(const config::AudioAdapterConfig& config, EventLoop& loop,
                                            AdapterHost& host, const Clock& clock) {
  return std::make_unique<AudioAdapter>(config, loop, host, clock);
}

}  // namespace flatlink::adapters::audio
