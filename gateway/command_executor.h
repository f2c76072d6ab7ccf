// Carries out commands from the cloud safely: at most once (recent ids are
// remembered), never after their expiry, only on a configured device with a
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

  CommandExecutor(EventLoop& loop, const DeviceRegistry& registry, const Clock& clock, uint32_t timeout_ms,
                  ResultSink sink, size_t remembered_ids = 4096);
  ~CommandExecutor();

  // Ids seen before this process started (from disk), oldest first.
  void preload(const std::vector<std::string>& ids);
  // Called with each new id, to remember it across restarts.
  void on_remember(std::function<void(const std::string&)> fn) { on_remember_ = std::move(fn); }

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

  bool remember(const std::string& id);
  std::optional<CommandResult> validate(const Command& command) const;
  void start_next(const std::string& device_id);
  void finish_running(const std::string& device_id, uint64_t token, const CommandResult& result);
  void finish(const std::string& command_id, const CommandResult& result);

  EventLoop& loop_;
  const DeviceRegistry& registry_;
  const Clock& clock_;
  uint32_t timeout_ms_;
  ResultSink sink_;
  std::function<void(const std::string&)> on_remember_;
  size_t remembered_max_;
  std::deque<std::string> remembered_order_;
  std::unordered_set<std::string> remembered_;
  std::map<std::string, DeviceQueue> queues_;
  uint64_t next_token_ = 1;
};

}  // namespace flatlink::gateway
