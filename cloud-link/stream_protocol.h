// Stream control messages (docs/protocol.md, "Streams"): opening and closing a
// device stream, as JSON text frames beside the v1 messages of protocol.h.
//
// Kept apart from protocol.h so that a peer's decoder tries these first and hands
// every other frame to the v1 decoders unchanged. Pure code; never throws.
//
//   browser -> cloud : stream_open {ref, device, direction, codec, rate, channels}
//                      stream_close {stream}
//   cloud -> gateway : stream_open {stream, device, direction, codec, rate, channels}
//                      stream_close {stream, reason}
//   gateway -> cloud : stream_opened {stream}
//                      stream_closed {stream, reason}
//   cloud -> browser : stream_opened {ref, stream, device, direction, codec, rate, channels}
//                      stream_closed {ref, stream, reason}   (stream 0: never opened)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cloud-link/protocol.h"

namespace flatlink::proto {

enum class StreamDirection { from_device, to_device };
std::string_view to_string(StreamDirection direction);

enum class StreamType { open, close, opened, closed };

// Who sends the frame being decoded: decides which types and keys are allowed.
enum class StreamRoute { browser_to_cloud, cloud_to_gateway, gateway_to_cloud, cloud_to_browser };

inline constexpr std::string_view kCodecPcm16 = "pcm16";
inline constexpr std::string_view kCodecOpus = "opus";  // one 20 ms Opus packet per frame
inline constexpr uint32_t kOpusBitrate = 32000;         // what an Opus stream counts against the limits
inline constexpr uint32_t kMaxStreamId = 65535;

struct StreamMessage {
  StreamType type = StreamType::open;
  std::string ref;      // the browser's own name for its request (id alphabet), echoed back
  uint32_t stream = 0;  // 1..65535, chosen by the cloud; 0 in a refusal that never opened
  std::string device;
  StreamDirection direction = StreamDirection::from_device;
  std::string codec = std::string(kCodecPcm16);  // "pcm16" or "opus"
  uint32_t rate = 16000;  // 8000, 16000, 24000 or 48000
  uint32_t channels = 1;  // 1
  std::string reason;     // for a person; may be empty

  bool opus() const { return codec == kCodecOpus; }
  // Bits per second of payload: pcm16's exact rate, Opus's declared ceiling.
  uint32_t bitrate() const { return opus() ? kOpusBitrate : rate * channels * 16; }
  // Microseconds of audio in a frame's payload.
  uint32_t frame_duration_us(size_t payload_bytes) const;
  bool operator==(const StreamMessage&) const = default;
};

std::string encode(const StreamMessage& message, StreamRoute route);

// nullopt: not a stream message for this route (hand the frame to the v1 decoder);
// otherwise the message or why it is refused.
std::optional<Decoded<StreamMessage>> decode_stream(std::string_view text, StreamRoute route);

}  // namespace flatlink::proto
