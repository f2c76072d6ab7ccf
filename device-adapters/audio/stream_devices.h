// What an adapter with stream devices (microphones, speakers) offers the gateway's
// stream hub (gateway/stream_hub.h), beside the Adapter contract. Loop thread only,
// like the rest of an adapter; the adapter does its audio I/O on threads of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace flatlink::adapters {

struct StreamFormat {
  uint32_t rate = 16000;  // Hz, mono
  uint32_t channels = 1;
  bool opus = false;      // frames are 20 ms Opus packets; otherwise pcm16 little-endian
};

// Captured audio, handed over on the loop thread: one frame's payload (pcm16 LE samples, or
// an Opus packet) and the wall time (ms since the epoch) at which its first sample was captured.
using AudioChunk = std::function<void(std::string pcm, int64_t capture_ms)>;
// The device ended the stream by itself (an ALSA or Opus error); loop thread. Not called
// when the stream is stopped (stop_stream, or the adapter stopping).
using StreamEnded = std::function<void(const std::string& reason)>;

class StreamDevices {
 public:
  virtual ~StreamDevices() = default;
  // Start capturing from `device` for stream `id`; nullopt when started, else why not.
  virtual std::optional<std::string> start_capture(const std::string& device, uint16_t id, const StreamFormat& format,
                                                   AudioChunk chunk, StreamEnded ended) = 0;
  // Start playing stream `id` on `device`; nullopt when started, else why not.
  virtual std::optional<std::string> start_playback(const std::string& device, uint16_t id, const StreamFormat& format,
                                                    StreamEnded ended) = 0;
  // Audio for a playback stream (a frame's payload in its format). Never blocks: the device's queue
  // holds at most its buffer_ms and drops the oldest beyond.
  virtual void play(uint16_t id, std::string_view pcm, int64_t capture_ms) = 0;
  // End a stream; no callback for it after this returns. Unknown ids are ignored.
  // link_dropped: frames of a capture stream that the gateway's link dropped (reported).
  virtual void stop_stream(uint16_t id, uint64_t link_dropped = 0) = 0;
};

}  // namespace flatlink::adapters
