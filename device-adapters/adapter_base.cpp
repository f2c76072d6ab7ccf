// The adapter contract held once: command outcomes, the busy-device queue, confirmation,
// bounded bad-input warnings, device caps and deferred teardown.
#include "device-adapters/adapter_base.h"

#include <algorithm>
#include <cmath>

#include "common/json_depth.h"
#include "common/log.h"
#include "common/utf8.h"

namespace flatlink::adapters {

bool parse_device_json(std::string_view text, Json& out, std::string& why, size_t max_bytes) {
  if (text.size() > max_bytes) {
    why = "JSON of " + std::to_string(text.size()) + " bytes, over the cap of " + std::to_string(max_bytes);
    return false;
  }
  // Before parsing: a deep tree is never built, so nothing later walks, dumps or frees it recursively.
  if (nested_deeper_than(text, kMaxDeviceJsonDepth)) {
    why = "JSON nested deeper than " + std::to_string(kMaxDeviceJsonDepth) + " levels";
    return false;
  }
  out = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    why = "not JSON";
    return false;
  }
  return true;
}

bool valid_utf8(std::string_view text) { return utf8::valid(text); }

bool same_device_value(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return std::fabs(a.get<double>() - b.get<double>()) < 1e-9;
  return a == b;
}

bool WarningThrottle::admit(const std::string& key, uint64_t& suppressed) {
  const int64_t now = clock_.mono_ms();
  auto it = windows_.find(key);
  if (it == windows_.end()) {
    // Keys come from outside (peers, topics): the table is bounded, and starting it over
    // only lets a few more lines through.
    if (windows_.size() >= kMaxKeys) windows_.clear();
    it = windows_.emplace(key, Window{now, 0, 0}).first;
  }
  Window& w = it->second;
  if (now - w.start_ms >= window_ms_) {
    w.start_ms = now;
    w.logged = 0;
  }
  if (w.logged >= per_window_) {
    ++w.suppressed;
    return false;
  }
  ++w.logged;
  suppressed = w.suppressed;
  w.suppressed = 0;
  return true;
}

struct AdapterBase::Running {
  Running(EventLoop& loop, std::function<void()> on_timeout) : timer(loop, std::move(on_timeout)) {}
  Command command;
  CommandDone done;
  Json unconfirmed;  // values the device has not reported back yet
  Timer timer;
};

struct AdapterBase::Waiting {
  Waiting(AdapterBase& base, const std::string& device_id)
      : timer(base.loop_, [&base, device_id, this] {
          base.finish_waiting(device_id, this, CommandResult{Outcome::expired, "expired while waiting for the device"});
        }) {}
  Command command;
  CommandDone done;
  Timer timer;
};

AdapterBase::AdapterBase(std::string name, const char* log_tag, EventLoop& loop, AdapterHost& host, const Clock& clock,
                         Limits limits)
    : loop_(loop),
      host_(host),
      clock_(clock),
      tag_(log_tag),
      limits_(limits),
      name_(std::move(name)),
      next_timer_(loop, [this] { start_next(); }),
      reaper_(loop, [this] { graveyard_.clear(); }),
      throttle_(clock) {}

AdapterBase::~AdapterBase() = default;

size_t AdapterBase::commands_in_flight() const {
  size_t n = 0;
  for (const auto& [id, c] : commands_) n += (c.running ? 1 : 0) + c.waiting.size();
  return n;
}

bool AdapterBase::command_running(const std::string& device_id) const {
  const auto it = commands_.find(device_id);
  return it != commands_.end() && it->second.running != nullptr;
}

void AdapterBase::execute(const Command& command, CommandDone done) {
  if (!device_known(command.device)) {
    done(CommandResult{Outcome::rejected, "unknown device " + command.device});
    return;
  }
  if (!device_online(command.device)) {
    done(CommandResult{Outcome::offline, "device " + command.device + " is offline"});
    return;
  }
  DeviceCommands& slot = commands_[command.device];
  if (!slot.running) {
    run(command.device, command, std::move(done));
    return;
  }
  if (slot.waiting.size() >= limits_.max_queued) {
    done(CommandResult{Outcome::rejected, "device " + command.device + " is busy: " +
                                              std::to_string(slot.waiting.size()) + " commands are waiting"});
    return;
  }
  const std::string device_id = command.device;
  auto waiting = std::make_unique<Waiting>(*this, device_id);
  waiting->command = command;
  waiting->done = std::move(done);
  if (command.expires_ms > 0) {
    const int64_t left = std::max<int64_t>(0, command.expires_ms - clock_.wall_ms());
    waiting->timer.start(static_cast<uint32_t>(std::min<int64_t>(left, UINT32_MAX)));
  }
  LOG_DEBUG(tag_) << "adapter=" << name_ << " device=" << device_id << " command=" << command.id << " waits for command "
                  << slot.running->command.id;
  slot.waiting.push_back(std::move(waiting));
}

void AdapterBase::run(const std::string& device_id, Command command, CommandDone done) {
  DeviceCommands& slot = commands_[device_id];
  auto running = std::make_unique<Running>(loop_, [this, device_id] {
    end_running(device_id, CommandResult{Outcome::timeout, "device " + device_id + " did not confirm within " +
                                                               std::to_string(limits_.command_timeout_ms) + " ms"});
  });
  running->command = std::move(command);
  running->done = std::move(done);
  Running* raw = running.get();
  slot.running = std::move(running);
  raw->timer.start(limits_.command_timeout_ms);
  Dispatch dispatched = dispatch(raw->command);
  // dispatch() may have ended it already (a synchronous refusal from the device side).
  auto it = commands_.find(device_id);
  if (it == commands_.end() || it->second.running.get() != raw) return;
  if (dispatched.result) {
    end_running(device_id, std::move(*dispatched.result));
    return;
  }
  raw->unconfirmed = dispatched.expect.is_null() ? raw->command.set : std::move(dispatched.expect);
  if (raw->unconfirmed.empty()) end_running(device_id, CommandResult{Outcome::ok, ""});
}

void AdapterBase::confirm_values(const std::string& device_id, const Json& values) {
  auto it = commands_.find(device_id);
  if (it == commands_.end() || !it->second.running || !values.is_object()) return;
  Json& unconfirmed = it->second.running->unconfirmed;
  if (!unconfirmed.is_object()) return;
  for (const auto& [key, value] : values.items()) {
    const auto e = unconfirmed.find(key);
    if (e != unconfirmed.end() && same_device_value(*e, value)) unconfirmed.erase(e);
  }
  if (unconfirmed.empty()) end_running(device_id, CommandResult{Outcome::ok, ""});
}

void AdapterBase::acknowledge(const std::string& device_id) { end_running(device_id, CommandResult{Outcome::ok, ""}); }

void AdapterBase::refuse(const std::string& device_id, const std::string& what_the_device_said) {
  end_running(device_id, CommandResult{Outcome::device_error, "device says: " + what_the_device_said});
}

void AdapterBase::end_running(const std::string& device_id, CommandResult result) {
  auto it = commands_.find(device_id);
  if (it == commands_.end() || !it->second.running) return;
  std::unique_ptr<Running> running = std::move(it->second.running);
  running->timer.cancel();
  LOG_INFO(tag_) << "adapter=" << name_ << " device=" << device_id << " command=" << running->command.id << " "
                 << to_string(result.outcome) << (result.message.empty() ? "" : ": " + log::quote(result.message));
  forget_if_idle(device_id);
  start_next_soon();
  running->done(std::move(result));
}

void AdapterBase::device_lost(const std::string& device_id, const std::string& why) {
  end_running(device_id, CommandResult{Outcome::device_error, "connection to the device lost: " + why});
  auto it = commands_.find(device_id);
  if (it == commands_.end()) return;
  std::deque<std::unique_ptr<Waiting>> waiting = std::move(it->second.waiting);
  commands_.erase(it);
  for (auto& w : waiting) {
    w->timer.cancel();
    w->done(CommandResult{Outcome::offline, "device " + device_id + " is offline"});
  }
}

void AdapterBase::drop_commands() {
  commands_.clear();
  next_timer_.cancel();
}

void AdapterBase::finish_waiting(const std::string& device_id, Waiting* waiting, CommandResult result) {
  auto it = commands_.find(device_id);
  if (it == commands_.end()) return;
  auto& queue = it->second.waiting;
  const auto w = std::find_if(queue.begin(), queue.end(), [&](const auto& p) { return p.get() == waiting; });
  if (w == queue.end()) return;
  std::unique_ptr<Waiting> owned = std::move(*w);
  queue.erase(w);
  forget_if_idle(device_id);
  LOG_INFO(tag_) << "adapter=" << name_ << " device=" << device_id << " command=" << owned->command.id << " "
                 << to_string(result.outcome) << ": " << result.message;
  owned->done(std::move(result));
}

void AdapterBase::forget_if_idle(const std::string& device_id) {
  // The table is keyed by device ids from outside (discovery): an idle device holds no entry.
  auto it = commands_.find(device_id);
  if (it != commands_.end() && !it->second.running && it->second.waiting.empty()) commands_.erase(it);
}

void AdapterBase::start_next_soon() {
  // Not inside the callback that ended the last command (a device's report, a timer):
  // the next one starts from the loop.
  if (!next_timer_.active()) next_timer_.start(0);
}

void AdapterBase::start_next() {
  std::vector<std::string> idle;
  for (const auto& [id, c] : commands_) {
    if (!c.running && !c.waiting.empty()) idle.push_back(id);
  }
  for (const auto& device_id : idle) {
    auto it = commands_.find(device_id);
    if (it == commands_.end() || it->second.running || it->second.waiting.empty()) continue;
    std::unique_ptr<Waiting> next = std::move(it->second.waiting.front());
    it->second.waiting.pop_front();
    next->timer.cancel();
    if (next->command.expires_ms > 0 && clock_.wall_ms() >= next->command.expires_ms) {
      forget_if_idle(device_id);
      next->done(CommandResult{Outcome::expired, "expired while waiting for the device"});
      start_next_soon();
      continue;
    }
    if (!device_online(device_id)) {
      forget_if_idle(device_id);
      next->done(CommandResult{Outcome::offline, "device " + device_id + " is offline"});
      start_next_soon();
      continue;
    }
    run(device_id, std::move(next->command), std::move(next->done));
  }
}

bool AdapterBase::admit_device(const DeviceInfo& info, size_t known) {
  if (info.capabilities.size() > limits_.max_capabilities) {
    warn_bad_input("caps", "adapter=" + name_ + " device " + log::quote(info.id) + " has " +
                               std::to_string(info.capabilities.size()) + " capabilities, over the cap of " +
                               std::to_string(limits_.max_capabilities) + "; not added");
    return false;
  }
  if (known >= limits_.max_devices) {
    warn_bad_input("caps", "adapter=" + name_ + " already has " + std::to_string(known) +
                               " devices, the cap; device " + log::quote(info.id) + " not added");
    return false;
  }
  return true;
}

void AdapterBase::warn_bad_input(const std::string& key, const std::string& message) {
  uint64_t suppressed = 0;
  if (!throttle_.admit(key, suppressed)) return;
  FL_LOG(log::Level::warn, tag_) << message
                                 << (suppressed ? " (" + std::to_string(suppressed) + " more like it not logged)"
                                                : std::string());
}

}  // namespace flatlink::adapters
