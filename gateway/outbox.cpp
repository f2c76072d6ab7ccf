// The in-memory outbox.
#include "gateway/outbox.h"

#include <sys/random.h>

#include <algorithm>
#include <random>

#include "common/log.h"

namespace flatlink::gateway {

std::string new_epoch() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got < sizeof bytes) {  // no getrandom(): the C++ library's source
    std::random_device rd;
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string encode_state(const Json& state) {
  return state.dump(-1, ' ', false, Json::error_handler_t::replace);
}

MemoryOutbox::MemoryOutbox(size_t max_items, uint64_t first_seq)
    : max_items_(std::max<size_t>(max_items, 1)), next_seq_(std::max<uint64_t>(first_seq, 1)) {}

uint64_t MemoryOutbox::append(const std::string& device, const Json& state, int64_t ts) {
  if (items_.size() >= max_items_) {
    ++dropped_;
    // Powers of two keep the log readable under a flood while still showing it grows.
    if ((dropped_ & (dropped_ - 1)) == 0) {
      LOG_WARN("outbox") << "full at " << max_items_ << " statuses; dropped the oldest (device="
                         << items_.front().device << " seq=" << items_.front().seq << "), " << dropped_
                         << " dropped so far";
    }
    items_.pop_front();
  }
  const uint64_t seq = next_seq_++;
  items_.push_back(OutboxItem{seq, device, encode_state(state), ts});
  return seq;
}

std::vector<OutboxItem> MemoryOutbox::read_after(uint64_t after, size_t max) {
  std::vector<OutboxItem> out;
  auto it = std::upper_bound(items_.begin(), items_.end(), after,
                             [](uint64_t seq, const OutboxItem& item) { return seq < item.seq; });
  for (; it != items_.end() && out.size() < max; ++it) out.push_back(*it);
  return out;
}

void MemoryOutbox::ack(uint64_t seq) {
  while (!items_.empty() && items_.front().seq <= seq) items_.pop_front();
}

void MemoryOutbox::drop(uint64_t seq) {
  auto it = std::lower_bound(items_.begin(), items_.end(), seq,
                             [](const OutboxItem& item, uint64_t s) { return item.seq < s; });
  if (it == items_.end() || it->seq != seq) return;
  LOG_ERROR("outbox") << "device=" << it->device << " seq=" << seq << " dropped: it can never be sent";
  items_.erase(it);
  ++dropped_;
}

std::vector<std::string> MemoryOutbox::waiting_devices() const {
  std::vector<std::string> out;
  for (const auto& item : items_) {
    if (std::find(out.begin(), out.end(), item.device) == out.end()) out.push_back(item.device);
  }
  return out;
}

}  // namespace flatlink::gateway
