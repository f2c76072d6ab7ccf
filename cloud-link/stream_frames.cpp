// Stream frame header codec and the bounded real-time queue.
#include "cloud-link/stream_frames.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <iterator>

namespace flatlink::stream {

std::string encode_frame(const FrameHeader& h, std::string_view payload) {
  std::string out(kHeaderBytes + payload.size(), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  p[0] = h.version;
  p[1] = h.kind;
  p[2] = static_cast<unsigned char>(h.stream >> 8);
  p[3] = static_cast<unsigned char>(h.stream);
  for (int i = 0; i < 4; ++i) p[4 + i] = static_cast<unsigned char>(h.seq >> (24 - 8 * i));
  const auto t = static_cast<uint64_t>(h.capture_ms);
  for (int i = 0; i < 8; ++i) p[8 + i] = static_cast<unsigned char>(t >> (56 - 8 * i));
  if (!payload.empty()) out.replace(kHeaderBytes, payload.size(), payload.data(), payload.size());
  return out;
}

std::optional<DecodedFrame> decode_frame(std::string_view frame, std::string* why) {
  auto fail = [&](std::string text) -> std::optional<DecodedFrame> {
    if (why) *why = std::move(text);
    return std::nullopt;
  };
  if (frame.size() < kHeaderBytes) {
    return fail("binary frame of " + std::to_string(frame.size()) + " bytes is shorter than the " +
                std::to_string(kHeaderBytes) + "-byte header");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(frame.data());
  DecodedFrame out;
  out.header.version = p[0];
  out.header.kind = p[1];
  if (p[0] != kHeaderVersion) return fail("binary frame header version " + std::to_string(p[0]) + ", expected 1");
  if (p[1] != kKindAudio) return fail("binary frame kind " + std::to_string(p[1]) + ", expected 1 (audio)");
  out.header.stream = static_cast<uint16_t>(p[2] << 8 | p[3]);
  uint32_t seq = 0;
  for (int i = 0; i < 4; ++i) seq = seq << 8 | p[4 + i];
  out.header.seq = seq;
  uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t = t << 8 | p[8 + i];
  if (t > 9'007'199'254'740'991ull) return fail("binary frame capture time out of range");
  out.header.capture_ms = static_cast<int64_t>(t);
  out.payload = frame.substr(kHeaderBytes);
  if (out.payload.size() > kMaxPayloadBytes) {
    return fail("binary frame payload of " + std::to_string(out.payload.size()) + " bytes is over " +
                std::to_string(kMaxPayloadBytes));
  }
  return out;
}

void limit_unsent(int fd, int bytes) {
  if (fd >= 0) (void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &bytes, sizeof bytes);
}

uint32_t pcm16_duration_us(size_t payload_bytes, uint32_t rate, uint32_t channels) {
  if (rate == 0 || channels == 0) return 0;
  const uint64_t samples = payload_bytes / (2u * channels);
  return static_cast<uint32_t>(samples * 1'000'000ull / rate);
}

uint32_t frame_duration_us(bool opus, size_t payload_bytes, uint32_t rate, uint32_t channels) {
  return opus ? 20'000 : pcm16_duration_us(payload_bytes, rate, channels);
}

size_t FrameQueue::push(uint16_t stream, uint32_t duration_us, std::string frame, int64_t now_ms) {
  frames_.push_back(Item{stream, duration_us, now_ms, std::move(frame)});
  int64_t& queued = queued_us_[stream];
  queued += duration_us;
  size_t dropped = 0;
  // Drop this stream's oldest frames; keep at least the newest, whatever its length.
  while (queued > max_us_) {
    auto it = frames_.begin();
    while (it != frames_.end() && it->stream != stream) ++it;
    if (it == frames_.end() || std::next(it) == frames_.end()) break;
    queued -= it->duration_us;
    frames_.erase(it);
    ++dropped;
  }
  dropped_ += dropped;
  if (dropped) dropped_by_stream_[stream] += dropped;
  return dropped;
}

std::optional<std::string> FrameQueue::pop(int64_t now_ms) {
  while (!frames_.empty()) {
    Item item = std::move(frames_.front());
    frames_.pop_front();
    auto q = queued_us_.find(item.stream);
    if (q != queued_us_.end()) {
      q->second -= item.duration_us;
      if (q->second <= 0 && frames_.empty()) queued_us_.erase(q);
    }
    if (now_ms - item.queued_ms > max_us_ / 1000) {
      ++dropped_;
      ++dropped_by_stream_[item.stream];
      continue;
    }
    return std::move(item.frame);
  }
  queued_us_.clear();
  return std::nullopt;
}

void FrameQueue::forget(uint16_t stream) {
  for (auto it = frames_.begin(); it != frames_.end();) {
    it = it->stream == stream ? frames_.erase(it) : std::next(it);
  }
  queued_us_.erase(stream);
}

void FrameQueue::clear() {
  frames_.clear();
  queued_us_.clear();
}

uint64_t FrameQueue::dropped(uint16_t stream) const {
  auto it = dropped_by_stream_.find(stream);
  return it == dropped_by_stream_.end() ? 0 : it->second;
}

uint64_t FrameQueue::take_dropped(uint16_t stream) {
  auto it = dropped_by_stream_.find(stream);
  if (it == dropped_by_stream_.end()) return 0;
  const uint64_t n = it->second;
  dropped_by_stream_.erase(it);
  return n;
}

int64_t FrameQueue::queued_us(uint16_t stream) const {
  auto it = queued_us_.find(stream);
  return it == queued_us_.end() ? 0 : it->second;
}

}  // namespace flatlink::stream
