// The upstream queue: every status gets the next sequence number and waits here
// until the cloud acknowledges it. Bounded; when full, the oldest unsent status
// goes first and every drop is counted. (This is the in-memory outbox; the
// durable SQLite one implements the same interface.) Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "common/device_model.h"

namespace flatlink::gateway {

struct OutboxItem {
  uint64_t seq = 0;
  std::string device;
  std::string state_text;  // the state object, encoded once when taken (compact JSON)
  int64_t ts = 0;          // when observed, wall ms
};

// A state as the outbox keeps it: compact JSON, bad UTF-8 replaced (never throws).
std::string encode_state(const Json& state);

class Outbox {
 public:
  virtual ~Outbox() = default;
  // Takes a status; returns its sequence number.
  virtual uint64_t append(const std::string& device, const Json& state, int64_t ts) = 0;
  // Up to max items with seq > after, in order: those that may be sent now. Fewer
  // than exist when some must first be read back from disk or committed; then
  // the on_available handler runs once they can be.
  virtual std::vector<OutboxItem> read_after(uint64_t after, size_t max) = 0;
  // The cloud holds everything up to seq: forget it.
  virtual void ack(uint64_t seq) = 0;
  // The seq the next append will get.
  virtual uint64_t next_seq() const = 0;
  virtual size_t size() const = 0;
  // Statuses dropped because the outbox was full (over the outbox's lifetime).
  virtual uint64_t dropped() const = 0;
  // Statuses folded into a newer state of the same device because the outbox was full.
  virtual uint64_t coalesced() const { return 0; }
  // Statuses that may have been lost because the store was found gone, damaged or emptied.
  virtual uint64_t lost() const { return 0; }
  // The stream's epoch (proto::valid_epoch): seqs are unique within it.
  virtual const std::string& epoch() const = 0;
  // Drops one waiting status that can never be sent (counted in dropped()).
  virtual void drop(uint64_t seq) = 0;
  // Called (on the loop thread) when statuses that read_after held back can be read.
  virtual void on_available(std::function<void()> handler) { (void)handler; }
  // Empty when all is well; otherwise what is wrong, for the operator.
  virtual std::string health() const { return {}; }
  // The devices that have statuses waiting (in no particular order): the cloud must know
  // them before they are resent, also those no adapter has announced (yet) since a restart.
  virtual std::vector<std::string> waiting_devices() const = 0;
};

// A random 128-bit epoch as 32 lowercase hex digits.
std::string new_epoch();

// Memory only: every instance is a new epoch (nothing of it survives the process).
class MemoryOutbox final : public Outbox {
 public:
  explicit MemoryOutbox(size_t max_items = 100'000, uint64_t first_seq = 1);
  const std::string& epoch() const override { return epoch_; }
  void drop(uint64_t seq) override;
  uint64_t append(const std::string& device, const Json& state, int64_t ts) override;
  std::vector<OutboxItem> read_after(uint64_t after, size_t max) override;
  void ack(uint64_t seq) override;
  uint64_t next_seq() const override { return next_seq_; }
  size_t size() const override { return items_.size(); }
  uint64_t dropped() const override { return dropped_; }
  std::vector<std::string> waiting_devices() const override;

 private:
  std::string epoch_ = new_epoch();
  size_t max_items_;
  uint64_t next_seq_;
  uint64_t dropped_ = 0;
  std::deque<OutboxItem> items_;
};

}  // namespace flatlink::gateway
