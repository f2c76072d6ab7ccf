// The serial adapter: port lifecycle (open, watch, lose, reopen), lines to
// statuses, commands to lines and their confirmation.
#include "device-adapters/serial/serial_adapter.h"

#include <algorithm>

#include "common/log.h"

namespace flatlink::adapters::serial {
namespace {

constexpr size_t kReadChunk = 4096;
// Per readable callback, so that a port that never stops talking cannot starve the loop.
constexpr size_t kMaxReadPerEvent = 64 * 1024;
// Commands waiting for a port that does not take bytes (flow control held off).
constexpr size_t kMaxOutputBytes = 64 * 1024;
constexpr int64_t kLogWindowMs = 10'000;
constexpr uint32_t kLogsPerWindow = 5;

// Whether a reported value confirms a value that was set: numbers by value
// (21 == 21.0), everything else exactly.
bool same_value(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

const char* parity_letter(config::Parity parity) {
  switch (parity) {
    case config::Parity::odd: return "O";
    case config::Parity::even: return "E";
    case config::Parity::none: break;
  }
  return "N";
}

}  // namespace

SerialAdapter::SerialAdapter(config::SerialAdapterConfig config, EventLoop& loop, AdapterHost& host,
                             const Clock& clock)
    : config_(std::move(config)),
      loop_(loop),
      host_(host),
      clock_(clock),
      framer_(
          config_.max_line_bytes, [this](std::string_view line) { on_line(line); },
          [this](size_t dropped) { on_overlong(dropped); }),
      backoff_(BackoffPolicy{config_.reopen_min_ms, config_.reopen_max_ms, 25}),
      reopen_timer_(loop, [this] { try_open(); }),
      teardown_timer_(loop, [this] { close_port(teardown_reason_); }) {
  for (const auto& dc : config_.devices) devices_.push_back(Device{describe_declared(dc), dc.capabilities.empty()});
}

SerialAdapter::~SerialAdapter() { stop(); }

void SerialAdapter::start() {
  running_ = true;
  for (const auto& device : devices_) host_.device_added(device.info);
  LOG_INFO("serial") << "adapter=" << config_.name << " port=" << config_.port << " " << config_.baud << " "
                     << static_cast<unsigned>(config_.data_bits) << parity_letter(config_.parity)
                     << static_cast<unsigned>(config_.stop_bits) << " with " << devices_.size() << " device(s)";
  try_open();
}

void SerialAdapter::stop() {
  if (!running_) return;
  running_ = false;
  reopen_timer_.cancel();
  teardown_timer_.cancel();
  pending_.clear();  // the core ends the commands still pending
  watch_.reset();
  port_.reset();
  out_.clear();
  framer_.reset();
}

SerialAdapter::Device* SerialAdapter::find(const std::string& id) {
  for (auto& device : devices_) {
    if (device.info.id == id) return &device;
  }
  return nullptr;
}

// ---------------------------------------------------------------- the port

void SerialAdapter::try_open() {
  if (!running_ || port_) return;
  OpenResult opened = open_serial_port(config_);
  if (opened.port) {
    auto watch = std::make_unique<FdWatch>(loop_, opened.port->fd(), [this](int events) { on_port_events(events); });
    if (!watch->ok()) {
      opened.port.reset();
      opened.error = "cannot watch the port on the event loop";
    } else {
      port_ = std::move(opened.port);
      watch_ = std::move(watch);
    }
  }
  if (!port_) {
    // The first failure, and any change of reason, is worth a warning; a port
    // that stays unplugged is not worth one every retry.
    const bool news = opened.error != last_open_error_;
    last_open_error_ = opened.error;
    const uint32_t delay = backoff_.next_delay_ms();
    if (news) {
      LOG_WARN("serial") << "adapter=" << config_.name << " port=" << config_.port << " " << opened.error
                         << (opened.absent ? "; its devices are offline until it is back" : "")
                         << "; retrying (next in " << delay << " ms)";
    } else {
      LOG_DEBUG("serial") << "adapter=" << config_.name << " port=" << config_.port << " still unavailable: "
                          << opened.error << "; next try in " << delay << " ms";
    }
    set_online(false);
    reopen_timer_.start(delay);
    return;
  }
  failed_ = false;
  last_open_error_.clear();
  backoff_.reset();
  ++stats_.opens;
  LOG_INFO("serial") << "adapter=" << config_.name << " port=" << config_.port << " opened " << port_->path()
                     << " (" << port_->backend() << ")";
  set_online(true);
}

void SerialAdapter::on_port_events(int events) {
  if (!port_ || failed_) return;
  if (events & FdWatch::readable) read_available();
  if ((events & FdWatch::writable) && !failed_) flush_output();
  if ((events & FdWatch::hangup) && !failed_) port_failed("the line hung up");
}

void SerialAdapter::read_available() {
  char buf[kReadChunk];
  size_t total = 0;
  while (port_ && !failed_ && total < kMaxReadPerEvent) {
    std::string why;
    const ptrdiff_t n = port_->read_some(buf, sizeof buf, why);
    if (n < 0) {
      port_failed(why);
      return;
    }
    if (n == 0) return;
    total += static_cast<size_t>(n);
    framer_.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

void SerialAdapter::flush_output() {
  while (port_ && !failed_ && !out_.empty()) {
    std::string why;
    const ptrdiff_t n = port_->write_some(out_.data(), out_.size(), why);
    if (n < 0) {
      port_failed(why);
      return;
    }
    out_.erase(0, static_cast<size_t>(n));
    if (n == 0 || !out_.empty()) {
      watch_->want_write();
      return;
    }
  }
}

void SerialAdapter::port_failed(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  teardown_reason_ = why;
  // We may be inside the watch's own callback: destroying it here would pull the
  // function we are running from under us.
  teardown_timer_.start(0);
}

void SerialAdapter::close_port(const std::string& why) {
  if (!port_) return;
  LOG_WARN("serial") << "adapter=" << config_.name << " port=" << config_.port << " (" << port_->path()
                     << ") went away: " << why << "; its devices are offline, reopening";
  watch_.reset();
  port_.reset();
  out_.clear();
  framer_.reset();
  ++stats_.losses;
  // Commands under way end here, with the reason, before the core hears "offline".
  std::vector<std::string> waiting;
  for (const auto& [id, pending] : pending_) waiting.push_back(id);
  for (const auto& id : waiting) {
    finish(id, CommandResult{Outcome::device_error, "the serial port " + config_.port + " went away: " + why});
  }
  set_online(false);
  last_open_error_.clear();
  reopen_timer_.start(backoff_.next_delay_ms());
}

void SerialAdapter::set_online(bool online) {
  if (online_ == online) return;
  online_ = online;
  for (const auto& device : devices_) host_.presence(device.info.id, online);
}

// ---------------------------------------------------------------- lines from devices

void SerialAdapter::on_line(std::string_view line) {
  std::string why;
  const CapabilityLookup lookup = [this](const std::string& device_id, const std::string& cap) -> const Capability* {
    Device* device = find(device_id);
    return device ? device->info.capability(cap) : nullptr;
  };
  std::optional<DeviceLine> parsed = parse_line(config_.protocol, line, config_.device, lookup, why);
  if (!parsed) {
    report_bad_line(false, line, why);
    return;
  }
  Device* device = find(parsed->device);
  if (device == nullptr) {
    report_bad_line(false, line, "unknown device " + parsed->device + " (not declared in this port's \"devices\")");
    return;
  }
  if (!accept_values(*device, parsed->values, why)) {
    report_bad_line(false, line, why);
    return;
  }
  ++stats_.lines;
  if (!parsed->values.empty()) host_.status(device->info.id, parsed->values, clock_.wall_ms());
  resolve_pending(device->info.id, *parsed);
}

// Checks every value against its capability; a device that learns gains a
// read-only capability for a name it reports for the first time. All or nothing.
bool SerialAdapter::accept_values(Device& device, const Json& values, std::string& why) {
  std::vector<Capability> learned;
  for (const auto& [name, value] : values.items()) {
    const Capability* cap = device.info.capability(name);
    Capability guess;
    if (cap == nullptr) {
      if (!device.learns) {
        why = device.info.id + " has no capability " + name;
        return false;
      }
      guess.name = name;
      if (value.is_boolean()) {
        guess.type = ValueType::boolean;
      } else if (value.is_number()) {
        guess.type = ValueType::number;
      } else if (value.is_string()) {
        guess.type = ValueType::text;
      } else {
        why = name + ": expected a boolean, a number or a string, got " + std::string(value.type_name());
        return false;
      }
      cap = &guess;
    }
    if (auto problem = check_value(*cap, value)) {
      why = *problem;
      return false;
    }
    if (cap == &guess) learned.push_back(guess);
  }
  if (!learned.empty()) {
    for (auto& cap : learned) {
      LOG_INFO("serial") << "adapter=" << config_.name << " device=" << device.info.id << " learned capability "
                         << cap.name << " (" << to_string(cap.type) << ", read-only)";
      device.info.capabilities.push_back(std::move(cap));
    }
    host_.device_added(device.info);
  }
  return true;
}

void SerialAdapter::on_overlong(size_t dropped_bytes) {
  ++stats_.overlong;
  report_bad_line(true, {},
                  "line of " + std::to_string(dropped_bytes) + " bytes is longer than max_line_bytes " +
                      std::to_string(config_.max_line_bytes) + "; dropped, reading on from the next newline");
}

void SerialAdapter::report_bad_line(bool overlong, std::string_view line, const std::string& why) {
  if (!overlong) ++stats_.garbage;
  const int64_t now = clock_.mono_ms();
  if (now - log_window_start_ms_ >= kLogWindowMs) {
    if (unlogged_ > 0) {
      LOG_WARN("serial") << "adapter=" << config_.name << " port=" << config_.port << " " << unlogged_
                         << " more bad line(s) were not logged";
    }
    log_window_start_ms_ = now;
    logged_in_window_ = 0;
    unlogged_ = 0;
  }
  if (logged_in_window_ >= kLogsPerWindow) {
    ++unlogged_;
    return;
  }
  ++logged_in_window_;
  constexpr size_t kShown = 120;
  if (overlong) {
    LOG_ERROR("serial") << "adapter=" << config_.name << " port=" << config_.port << " " << why;
  } else {
    LOG_WARN("serial") << "adapter=" << config_.name << " port=" << config_.port << " ignored line "
                       << log::q(line.substr(0, kShown)) << (line.size() > kShown ? "..." : "") << ": " << why;
  }
}

// ---------------------------------------------------------------- commands

void SerialAdapter::execute(const Command& command, CommandDone done) {
  if (!running_) return;
  Device* device = find(command.device);
  if (device == nullptr) {
    done(CommandResult{Outcome::rejected, "unknown device " + command.device});
    return;
  }
  if (!port_ || failed_) {
    done(CommandResult{Outcome::device_error, "the serial port " + config_.port + " is not open"});
    return;
  }
  if (pending_.count(command.device)) {
    // The core runs one command per device at a time: a new one means it has given
    // up on the old one (its own timeout came first). The old answer goes nowhere.
    finish(command.device, CommandResult{Outcome::timeout, "superseded by command " + command.id});
  }
  std::string why;
  const std::string line = encode_command(config_.protocol, command.device, command.set, why);
  if (line.empty()) {
    done(CommandResult{Outcome::rejected, why});
    return;
  }
  if (out_.size() + line.size() > kMaxOutputBytes) {
    done(CommandResult{Outcome::device_error, "the serial port " + config_.port +
                                                  " is not taking data (check the flow control and wiring)"});
    return;
  }
  auto pending = std::make_unique<Pending>();
  pending->command = command;
  pending->done = std::move(done);
  const std::string device_id = command.device;
  pending->timeout = std::make_unique<Timer>(loop_, [this, device_id] {
    finish(device_id, CommandResult{Outcome::timeout, "device " + device_id + " did not confirm within " +
                                                          std::to_string(config_.command_timeout_ms) + " ms"});
  });
  pending->timeout->start(config_.command_timeout_ms);
  pending_[device_id] = std::move(pending);
  LOG_DEBUG("serial") << "adapter=" << config_.name << " device=" << device_id << " command " << command.id
                      << " sends " << log::q(line);
  out_ += line;
  flush_output();
}

void SerialAdapter::resolve_pending(const std::string& device_id, const DeviceLine& line) {
  auto it = pending_.find(device_id);
  if (it == pending_.end()) return;
  if (line.error) {
    finish(device_id, CommandResult{Outcome::device_error, *line.error});
    return;
  }
  if (line.ok) {
    finish(device_id, CommandResult{Outcome::ok, ""});
    return;
  }
  // A state echo confirms when it shows every value the command set.
  for (const auto& [name, value] : it->second->command.set.items()) {
    const auto reported = line.values.find(name);
    if (reported == line.values.end() || !same_value(*reported, value)) return;
  }
  finish(device_id, CommandResult{Outcome::ok, ""});
}

void SerialAdapter::finish(std::string device_id, CommandResult result) {
  auto it = pending_.find(device_id);
  if (it == pending_.end()) return;
  std::unique_ptr<Pending> pending = std::move(it->second);
  pending_.erase(it);
  LOG_DEBUG("serial") << "adapter=" << config_.name << " device=" << device_id << " command " << pending->command.id
                      << " " << to_string(result.outcome) << (result.message.empty() ? "" : ": ") << result.message;
  pending->done(std::move(result));
}

std::unique_ptr<Adapter> make_serial_adapter(const config::SerialAdapterConfig& config, EventLoop& loop,
                                            AdapterHost& host, const Clock& clock) {
  return std::make_unique<SerialAdapter>(config, loop, host, clock);
}

}  // namespace flatlink::adapters::serial
