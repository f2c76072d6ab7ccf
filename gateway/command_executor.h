// Carries out commands from the cloud safely: at most once (ids are remembered for
// at least the longest TTL, within a byte budget), never after their expiry, only on a configured device with a
// capability that allows the value, one at a time per device and in order, and
// always ending in exactly one result. Loop thread only.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/device_model.h"
#include "common/event_loop.h"
#include "gateway/device_registry.h"

namespace flatlink::gateway {

class CommandExecutor {
 public:
  using ResultSink = std::function<void(const std::string& command_id, const CommandResult& result)>;

  // An id is remembered until its command's expiry plus kRememberMarginMs, and at least
  // kRememberMs (the protocol's longest TTL) after it arrived. Memory for ids is bounded by
  // remembered_bytes, not by a count: when it is full of ids still to be remembered, a new
  // command is rejected ("too many commands") rather than an id forgotten early.
  static constexpr int64_t kRememberMs = 600'000;
  static constexpr int64_t kRememberMarginMs = 60'000;
  static constexpr size_t kDefaultRememberedBytes = 2 << 20;

  CommandExecutor(EventLoop& loop, const DeviceRegistry& registry, const Clock& clock, uint32_t timeout_ms,
                  ResultSink sink, size_t remembered_bytes = kDefaultRememberedBytes);
  ~CommandExecutor();

  // Ids seen before this process started (from disk), with the wall ms until which each is
  // remembered, oldest first.
  void preload(const std::vector<std::pair<std::string, int64_t>>& ids);
  // Called with each new id and the wall ms until which it must be remembered, to remember
  // it across restarts.
  void on_remember(std::function<void(const std::string&, int64_t)> fn) { on_remember_ = std::move(fn); }
  // Ids remembered now, and the bytes they take (as counted against the budget).
  size_t remembered() const { return remembered_.size(); }
  size_t remembered_bytes() const { return remembered_bytes_; }

  // Takes a command. Its result goes to the sink, now or later, exactly once.
  // A command id seen before is ignored (its result was already given).
  void submit(const Command& command);
  // Ends every queued and running command of a device that went away.
  void abandon_device(const std::string& device_id, Outcome outcome, const std::string& message);
  // Ends everything still pending (shutdown).
  void abandon_all(const std::string& message);

  size_t pending() const;

 private:
  struct Running;
  struct DeviceQueue {
    std::deque<Command> waiting;
    std::unique_ptr<Running> running;
  };

  enum class Seen { fresh, again, no_room };
  Seen remember(const std::string& id, int64_t until_ms);
  void keep(const std::string& id, int64_t until_ms);
  void forget_old();
  std::optional<CommandResult> validate(const Command& command) const;
  void start_next(const std::string& device_id);
  void finish_running(const std::string& device_id, uint64_t token, const CommandResult& result);
  void finish(const std::string& command_id, const CommandResult& result);

  EventLoop& loop_;
  const DeviceRegistry& registry_;
  const Clock& clock_;
  uint32_t timeout_ms_;
  ResultSink sink_;
  std::function<void(const std::string&, int64_t)> on_remember_;
  size_t remembered_budget_;
  size_t remembered_bytes_ = 0;
  std::deque<std::pair<std::string, int64_t>> remembered_order_;  // (id, until wall ms), by arrival
  std::unordered_set<std::string> remembered_;
  std::map<std::string, DeviceQueue> queues_;
  uint64_t next_token_ = 1;
};

}  // namespace flatlink::gateway
