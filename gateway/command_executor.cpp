// Command safety: dedupe, expiry, validation, per-device order, timeout.
#include "gateway/command_executor.h"

#include <algorithm>

#include "common/log.h"

namespace flatlink::gateway {

// The command a device is carrying out now, with its timeout. The token tells a
// late answer from the adapter apart from the answer to a newer command.
struct CommandExecutor::Running {
  Command command;
  uint64_t token = 0;
  std::unique_ptr<Timer> timeout;
};

CommandExecutor::CommandExecutor(EventLoop& loop, const DeviceRegistry& registry, const Clock& clock,
                                 uint32_t timeout_ms, ResultSink sink, size_t remembered_bytes)
    : loop_(loop),
      registry_(registry),
      clock_(clock),
      timeout_ms_(timeout_ms),
      sink_(std::move(sink)),
      remembered_budget_(remembered_bytes) {}

CommandExecutor::~CommandExecutor() = default;

namespace {
// What one remembered id costs: its text and the set's and deque's bookkeeping, roughly.
size_t cost_of(const std::string& id) { return id.size() + 96; }
}  // namespace

void CommandExecutor::keep(const std::string& id, int64_t until_ms) {
  if (!remembered_.insert(id).second) return;
  remembered_order_.emplace_back(id, until_ms);
  remembered_bytes_ += cost_of(id);
}

// Ids arrive in time order and are kept about as long each: the oldest leave first. One
// with a later expiry than those behind it holds them a little longer, never shorter.
void CommandExecutor::forget_old() {
  const int64_t now = clock_.wall_ms();
  while (!remembered_order_.empty() && remembered_order_.front().second < now) {
    remembered_.erase(remembered_order_.front().first);
    remembered_bytes_ -= cost_of(remembered_order_.front().first);
    remembered_order_.pop_front();
  }
}

void CommandExecutor::preload(const std::vector<std::pair<std::string, int64_t>>& ids) {
  for (const auto& [id, until] : ids) keep(id, until);
  forget_old();
}

CommandExecutor::Seen CommandExecutor::remember(const std::string& id, int64_t until_ms) {
  forget_old();
  if (remembered_.count(id)) return Seen::again;
  if (remembered_bytes_ + cost_of(id) > remembered_budget_) return Seen::no_room;
  keep(id, until_ms);
  if (on_remember_) on_remember_(id, until_ms);
  return Seen::fresh;
}

std::optional<CommandResult> CommandExecutor::validate(const Command& command) const {
  const DeviceEntry* device = registry_.find(command.device);
  if (!device) return CommandResult{Outcome::rejected, "unknown device " + command.device};
  if (!command.set.is_object() || command.set.empty()) {
    return CommandResult{Outcome::rejected, "nothing to set"};
  }
  for (const auto& [key, value] : command.set.items()) {
    const Capability* cap = device->info.capability(key);
    if (!cap) return CommandResult{Outcome::rejected, command.device + " has no capability " + key};
    if (!cap->writable) return CommandResult{Outcome::rejected, key + " of " + command.device + " is read-only"};
    if (auto why = check_value(*cap, value)) return CommandResult{Outcome::rejected, *why};
  }
  return std::nullopt;
}

void CommandExecutor::submit(const Command& command) {
  const int64_t until = std::max(command.expires_ms, clock_.wall_ms() + kRememberMs - kRememberMarginMs) +
                        kRememberMarginMs;
  switch (remember(command.id, until)) {
    case Seen::fresh: break;
    case Seen::again:
      LOG_WARN("command") << "command=" << command.id << " device=" << command.device
                          << " seen before; not run again";
      return;
    case Seen::no_room:
      // Forgetting a younger id could let it run twice: refuse this one instead.
      LOG_ERROR("command") << "command=" << command.id << " device=" << command.device << " rejected: "
                           << remembered_.size() << " command ids must still be remembered ("
                           << remembered_bytes_ << " bytes of " << remembered_budget_ << ")";
      finish(command.id, CommandResult{Outcome::rejected, "too many commands: the gateway cannot remember more ids "
                                                          "for now; try again later"});
      return;
  }
  if (command.expires_ms <= clock_.wall_ms()) {
    finish(command.id, CommandResult{Outcome::expired, "expired " + std::to_string(clock_.wall_ms() - command.expires_ms) +
                                                           " ms before it arrived"});
    return;
  }
  if (auto refusal = validate(command)) {
    finish(command.id, *refusal);
    return;
  }
  auto& queue = queues_[command.device];
  queue.waiting.push_back(command);
  if (!queue.running) start_next(command.device);
}

void CommandExecutor::start_next(const std::string& device_id) {
  auto qit = queues_.find(device_id);
  if (qit == queues_.end()) return;
  DeviceQueue& queue = qit->second;
  while (!queue.running && !queue.waiting.empty()) {
    Command command = std::move(queue.waiting.front());
    queue.waiting.pop_front();
    // Checked again: it may have waited behind a slow command past its expiry,
    // or the device may have changed meanwhile.
    if (command.expires_ms <= clock_.wall_ms()) {
      finish(command.id, CommandResult{Outcome::expired, "expired while waiting for the device"});
      continue;
    }
    if (auto refusal = validate(command)) {
      finish(command.id, *refusal);
      continue;
    }
    const DeviceEntry* device = registry_.find(device_id);
    if (!device->online) {
      finish(command.id, CommandResult{Outcome::device_error, "device " + device_id + " is offline"});
      continue;
    }
    auto running = std::make_unique<Running>();
    running->command = command;
    running->token = next_token_++;
    const uint64_t token = running->token;
    running->timeout = std::make_unique<Timer>(loop_, [this, device_id, token] {
      finish_running(device_id, token,
                     CommandResult{Outcome::timeout, "no answer from the device within " + std::to_string(timeout_ms_) + " ms"});
    });
    running->timeout->start(timeout_ms_);
    queue.running = std::move(running);
    LOG_DEBUG("command") << "command=" << command.id << " device=" << device_id << " running";
    device->adapter->execute(command, [this, device_id, token](CommandResult result) {
      finish_running(device_id, token, result);
    });
  }
  if (!queue.running && queue.waiting.empty()) queues_.erase(qit);
}

void CommandExecutor::finish_running(const std::string& device_id, uint64_t token, const CommandResult& result) {
  auto qit = queues_.find(device_id);
  if (qit == queues_.end() || !qit->second.running || qit->second.running->token != token) {
    return;  // a late answer to a command that already ended (timed out or abandoned)
  }
  std::unique_ptr<Running> running = std::move(qit->second.running);
  finish(running->command.id, result);
  // The adapter may answer synchronously from inside execute(); start the next
  // command from the loop, not from inside start_next's own call.
  loop_.post([this, device_id] { start_next(device_id); });
}

void CommandExecutor::finish(const std::string& command_id, const CommandResult& result) {
  if (result.outcome == Outcome::ok) {
    LOG_INFO("command") << "command=" << command_id << " ok";
  } else {
    LOG_INFO("command") << "command=" << command_id << " " << to_string(result.outcome) << ": " << result.message;
  }
  sink_(command_id, result);
}

void CommandExecutor::abandon_device(const std::string& device_id, Outcome outcome, const std::string& message) {
  auto qit = queues_.find(device_id);
  if (qit == queues_.end()) return;
  DeviceQueue queue = std::move(qit->second);
  queues_.erase(qit);
  if (queue.running) finish(queue.running->command.id, CommandResult{outcome, message});
  for (const auto& command : queue.waiting) finish(command.id, CommandResult{outcome, message});
}

void CommandExecutor::abandon_all(const std::string& message) {
  while (!queues_.empty()) abandon_device(queues_.begin()->first, Outcome::device_error, message);
}

size_t CommandExecutor::pending() const {
  size_t n = 0;
  for (const auto& [id, queue] : queues_) n += queue.waiting.size() + (queue.running ? 1 : 0);
  return n;
}

}  // namespace flatlink::gateway
