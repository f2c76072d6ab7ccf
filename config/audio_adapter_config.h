// Configuration of the audio adapter (device-adapters/audio): microphones and speakers
// that carry live streams (docs/protocol.md, "Streams"), through ALSA or simulated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flatlink::config {

enum class AudioDirection { capture, playback };

struct AudioDeviceConfig {
  std::string id;
  std::string name;   // defaults to the id
  std::string room;   // may be empty
  AudioDirection direction = AudioDirection::capture;
  // Where the audio comes from or goes to: an ALSA PCM name ("default", "plughw:1,0", or one
  // of an ALSA config file), or, simulated, a tone (capture) or a WAV file (playback).
  std::string pcm;            // ALSA; empty when simulated
  uint32_t tone_hz = 0;       // capture, simulated: a sine of this frequency ...
  uint32_t tone_ms = 1000;    // ... for this long after the stream opens, then silence
  std::string wav_file;       // playback, simulated: each stream is written to this WAV file
  uint32_t rate = 16000;      // the device's sample rate: 8000, 16000, 24000 or 48000
  uint32_t period_ms = 20;    // audio per frame
  uint32_t buffer_ms = 200;   // playback: audio waiting for the device; the oldest beyond is dropped
};

struct AudioAdapterConfig {
  std::string name = "audio";
  std::vector<AudioDeviceConfig> devices;
};

}  // namespace flatlink::config
