// Device streams on the wire (docs/protocol.md, "Streams"): the binary frame
// header, and the bounded real-time queue every hop keeps for stream data.
//
// Pure code: no sockets. Used by flatlinkd (cloud-link, gateway) and flatlink-cloud.
// Stream data is never stored or resent: a queue holds at most a bounded time
// of audio per stream and drops the oldest beyond it, counting what it drops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace flatlink::stream {

inline constexpr uint8_t kHeaderVersion = 1;
inline constexpr uint8_t kKindAudio = 1;
inline constexpr size_t kHeaderBytes = 16;
inline constexpr size_t kMaxPayloadBytes = 8192;  // 256 ms of pcm16 at 16 kHz mono

// All integers big-endian on the wire.
struct FrameHeader {
  uint8_t version = kHeaderVersion;
  uint8_t kind = kKindAudio;
  uint16_t stream = 0;
  uint32_t seq = 0;         // per stream, wraps
  int64_t capture_ms = 0;   // wall clock at capture, ms since the epoch

  bool operator==(const FrameHeader&) const = default;
};

// Header followed by payload.
std::string encode_frame(const FrameHeader& header, std::string_view payload);

// The header of a binary frame, or why it is refused (too short, unknown version or kind,
// payload over kMaxPayloadBytes).
struct DecodedFrame {
  FrameHeader header;
  std::string_view payload;
};
std::optional<DecodedFrame> decode_frame(std::string_view frame, std::string* why = nullptr);

// Microseconds of audio in a payload of pcm16 at `rate` Hz with `channels` channels.
uint32_t pcm16_duration_us(size_t payload_bytes, uint32_t rate, uint32_t channels);
// Microseconds of audio in one frame's payload: an Opus packet is 20 ms (the protocol's
// frame size), pcm16 as above.
uint32_t frame_duration_us(bool opus, size_t payload_bytes, uint32_t rate, uint32_t channels);

// Caps the bytes a TCP socket holds unsent (TCP_NOTSENT_LOWAT): it reports writable only
// below this, so audio waits in the bounded FrameQueue, where old frames are dropped,
// rather than in the kernel, where they would only grow the latency. Best effort.
inline constexpr int kUnsentBytes = 8 * 1024;
void limit_unsent(int fd, int bytes = kUnsentBytes);

// A connection's outgoing stream frames: drop-oldest, bounded per stream by the audio
// time queued (sum of durations) and by age (a frame queued longer than the bound is
// dropped instead of sent). Not thread-safe.
class FrameQueue {
 public:
  explicit FrameQueue(uint32_t max_ms = 200) : max_us_(static_cast<int64_t>(max_ms) * 1000) {}

  void set_max_ms(uint32_t max_ms) { max_us_ = static_cast<int64_t>(max_ms) * 1000; }
  // Queues a frame; drops the stream's oldest frames while it holds more than the bound.
  // Returns how many frames were dropped.
  size_t push(uint16_t stream, uint32_t duration_us, std::string frame, int64_t now_ms);
  // The next frame fresh enough to send (older ones are dropped and counted), or nullopt.
  std::optional<std::string> pop(int64_t now_ms);
  // Forgets a closed stream's frames (not counted as drops).
  void forget(uint16_t stream);
  void clear();

  bool empty() const { return frames_.empty(); }
  size_t size() const { return frames_.size(); }
  int64_t queued_us(uint16_t stream) const;
  uint64_t dropped() const { return dropped_; }
  // Frames of this stream dropped so far (kept after forget(), until take_dropped()).
  uint64_t dropped(uint16_t stream) const;
  // The stream's drop count, forgotten.
  uint64_t take_dropped(uint16_t stream);

 private:
  struct Item {
    uint16_t stream;
    uint32_t duration_us;
    int64_t queued_ms;
    std::string frame;
  };
  void drop_oldest_of(uint16_t stream);

  int64_t max_us_;
  std::deque<Item> frames_;
  std::map<uint16_t, int64_t> queued_us_;
  std::map<uint16_t, uint64_t> dropped_by_stream_;
  uint64_t dropped_ = 0;
};

}  // namespace flatlink::stream
