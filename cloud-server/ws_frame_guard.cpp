#include "cloud-server/ws_frame_guard.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <utility>

#include "common/log.h"

namespace flatlink::cloud::ws_guard {

size_t Stream::feed(const uint8_t* data, size_t size) {
  if (refused_) return 0;
  if (framing_) return scan_frames(data, size);
  // HTTP: keep what follows the newest "\r\n\r\n" (an upgrade request has no body, so at the
  // upgrade this is exactly what the client sent behind it).
  static constexpr char kHeadEnd[] = "\r\n\r\n";
  for (size_t i = 0; i < size; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c == kHeadEnd[head_end_]) {
      if (++head_end_ == 4) {
        head_end_ = 0;
        tail_.clear();
        continue;
      }
    } else {
      head_end_ = c == '\r' ? 1 : 0;
    }
    if (tail_.size() < kMaxTailBytes) tail_.push_back(c);
  }
  return size;
}

bool Stream::upgraded() {
  if (framing_) return !refused_;
  framing_ = true;
  std::string tail;
  tail.swap(tail_);
  const auto* bytes = reinterpret_cast<const uint8_t*>(tail.data());
  return scan_frames(bytes, tail.size()) == tail.size() && !refused_;
}

size_t Stream::scan_frames(const uint8_t* data, size_t size) {
  size_t i = 0;
  size_t frame_start = size;  // where the frame being read began, when in these bytes
  while (i < size) {
    switch (at_) {
      case At::first:  // FIN, RSV, opcode: lws checks them
        frame_start = i;
        at_ = At::second;
        ++i;
        break;
      case At::second: {
        const uint8_t b = data[i];
        if ((b & 0x80) == 0) {  // the frame is not masked: nothing from here on goes to lws
          // (A first byte read before is a partial frame lws keeps waiting on: harmless.)
          refused_ = true;
          return frame_start < size ? frame_start : 0;
        }
        const uint8_t len = b & 0x7f;
        length_bytes_ = len == 126 ? 2 : len == 127 ? 8 : 0;
        remaining_ = length_bytes_ ? 0 : len;
        mask_bytes_ = 4;
        at_ = length_bytes_ ? At::length : At::mask;
        ++i;
        break;
      }
      case At::length:
        remaining_ = (remaining_ << 8) | data[i++];
        if (--length_bytes_ == 0) at_ = At::mask;
        break;
      case At::mask:
        ++i;
        if (--mask_bytes_ == 0) at_ = remaining_ ? At::payload : At::first;
        break;
      case At::payload: {
        const uint64_t take = std::min<uint64_t>(remaining_, size - i);
        i += static_cast<size_t>(take);
        remaining_ -= take;
        if (remaining_ == 0) at_ = At::first;
        break;
      }
    }
  }
  return size;
}

namespace {

std::atomic<pthread_t> loop_thread{};
std::atomic<bool> loop_thread_set{false};
std::atomic<uint64_t> refused_count{0};

struct Watched {
  Stream stream;
  std::string peer;
};

// Touched on the loop's thread only.
std::unordered_map<int, Watched>& watched() {
  static std::unordered_map<int, Watched> map;
  return map;
}

void count_refusal(const Watched& w, const char* when) {
  refused_count.fetch_add(1, std::memory_order_relaxed);
  LOG_WARN("server") << "connection from " << w.peer << " sent an unmasked frame " << when
                     << "; closed (RFC 6455 5.1)";
}

}  // namespace

void set_loop_thread() {
  loop_thread.store(pthread_self());
  loop_thread_set.store(true);
}

bool on_loop_thread() {
  return loop_thread_set.load(std::memory_order_relaxed) && pthread_equal(loop_thread.load(), pthread_self());
}

void watch(int fd, std::string peer) {
  if (fd >= 0 && on_loop_thread()) watched()[fd] = Watched{Stream{}, std::move(peer)};
}

bool upgraded(int fd) {
  if (!on_loop_thread()) return true;
  auto it = watched().find(fd);
  if (it == watched().end() || it->second.stream.upgraded()) return true;
  count_refusal(it->second, "behind its upgrade request");
  return false;
}

void forget(int fd) {
  if (on_loop_thread()) watched().erase(fd);
}

size_t received(int fd, const uint8_t* data, size_t size) {
  if (!on_loop_thread()) return size;
  auto it = watched().find(fd);
  if (it == watched().end()) return size;
  Stream& stream = it->second.stream;
  const bool was_refused = stream.refused();
  const size_t pass = stream.feed(data, size);
  if (!was_refused && stream.refused()) count_refusal(it->second, "on its WebSocket");
  return pass;
}

bool refused(int fd) {
  if (!on_loop_thread()) return false;
  auto it = watched().find(fd);
  return it != watched().end() && it->second.stream.refused();
}

uint64_t refused_total() {
  return refused_count.load(std::memory_order_relaxed);
}

}  // namespace flatlink::cloud::ws_guard
