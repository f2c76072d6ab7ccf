// The schema of an audio adapter's entry in the gateway configuration.
#include <ostream>

#include "config/adapter_schemas.h"
#include "config/config_files.h"

namespace flatlink::config::detail {
namespace {

void read_audio_device(ObjectReader& r, AdapterContext& ctx, AudioDeviceConfig& device) {
  r.only_keys({"id", "name", "room", "direction", "pcm", "tone_hz", "tone_ms", "wav_file", "rate", "period_ms",
               "buffer_ms"});
  if (r.id("id", device.id, Need::required)) claim_device_id(r.errors(), ctx.device_ids, device.id, r.path("id"));
  if (!r.non_empty_string("name", device.name)) device.name = device.id;
  r.string("room", device.room);
  r.choice("direction", device.direction,
           {{"capture", AudioDirection::capture}, {"playback", AudioDirection::playback}}, Need::required);
  r.non_empty_string("pcm", device.pcm);
  r.integer("tone_hz", device.tone_hz, 20, 8000);
  r.integer("tone_ms", device.tone_ms, 20, 3'600'000);
  if (r.non_empty_string("wav_file", device.wav_file)) device.wav_file = resolve_path(ctx.base_dir, device.wav_file);
  r.choice("rate", device.rate, {8000, 16000, 24000, 48000});
  r.integer("period_ms", device.period_ms, 5, 100);
  r.integer("buffer_ms", device.buffer_ms, 20, 5000);
  if (!r.errors().ok()) return;
  const bool capture = device.direction == AudioDirection::capture;
  const int sources = (device.pcm.empty() ? 0 : 1) + (capture ? (device.tone_hz ? 1 : 0) : (device.wav_file.empty() ? 0 : 1));
  if (sources != 1) {
    r.errors().fail(r.path(), capture ? "a capture device needs exactly one of \"pcm\" (ALSA) and \"tone_hz\" (simulated)"
                                      : "a playback device needs exactly one of \"pcm\" (ALSA) and \"wav_file\" (simulated)");
  } else if (capture && r.has("wav_file")) {
    r.errors().fail(r.path("wav_file"), "only for playback devices");
  } else if (!capture && (r.has("tone_hz") || r.has("tone_ms"))) {
    r.errors().fail(r.path(r.has("tone_hz") ? "tone_hz" : "tone_ms"), "only for capture devices");
  }
}

}  // namespace

void read_audio_adapter(ObjectReader& r, AdapterContext& ctx, AudioAdapterConfig& audio) {
  r.only_keys({"type", "name", "devices"});
  r.id("name", audio.name, Need::required);
  claim_adapter_name(r, ctx.names, audio.name);
  r.objects("devices", 1, Need::required, [&](ObjectReader& device_reader) {
    AudioDeviceConfig device;
    read_audio_device(device_reader, ctx, device);
    audio.devices.push_back(std::move(device));
  });
}

void summarize_adapter(std::ostream& out, const AudioAdapterConfig& audio) {
  out << "  audio '" << audio.name << "' with " << audio.devices.size()
      << (audio.devices.size() == 1 ? " device:" : " devices:");
  for (const auto& d : audio.devices) {
    out << " " << d.id << " (" << (d.direction == AudioDirection::capture ? "capture" : "playback") << ", ";
    if (!d.pcm.empty()) {
      out << "ALSA " << d.pcm;
    } else if (d.direction == AudioDirection::capture) {
      out << "simulated " << d.tone_hz << " Hz tone";
    } else {
      out << "simulated into " << d.wav_file;
    }
    out << ", pcm16 " << d.rate << " Hz mono, " << d.period_ms << " ms frames)";
  }
  out << "\n";
}

}  // namespace flatlink::config::detail
