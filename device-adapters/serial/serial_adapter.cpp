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

AdapterBase::Limits limits_of(const config::SerialAdapterConfig& config) {
  AdapterBase::Limits limits;
  limits.command_timeout_ms = config.command_timeout_ms;
  return limits;
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
    : AdapterBase(config.name, "serial", loop, host, clock, limits_of(config)),
      config_(std::move(config)),
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
  drop_commands();  // the core ends the commands still pending
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

const SerialAdapter::Device* SerialAdapter::find(const std::string& id) const {
  for (const auto& device : devices_) {
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
  for (const auto& device : devices_) device_lost(device.info.id, "the serial port " + config_.port + " went away: " + why);
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
  const std::string& id = device->info.id;
  if (!parsed->values.empty()) host_.status(id, parsed->values, clock_.wall_ms());
  // The line-device contract (docs/adapters/contract.md): an error refuses the command under
  // way; values confirm it, in one line or several; ok acknowledges it.
  if (parsed->error) {
    if (command_running(id)) {
      refuse(id, *parsed->error);
    } else {
      warn_bad_input("port", "adapter=" + config_.name + " port=" + config_.port + " device=" + id +
                                 " reports an error with no command under way: " + log::quote(*parsed->error));
    }
    return;
  }
  confirm_values(id, parsed->values);
  if (parsed->ok) acknowledge(id);
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
  if (!learned.empty() && device.info.capabilities.size() + learned.size() > limits_.max_capabilities) {
    why = device.info.id + " would learn more than " + std::to_string(limits_.max_capabilities) + " capabilities";
    return false;
  }
  if (!learned.empty()) {
    for (auto& cap : learned) {
      LOG_INFO("serial") << "adapter=" << config_.name << " device=" << device.info.id << " learned capability "
                         << log::q(cap.name) << " (" << to_string(cap.type) << ", read-only)";
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
  const std::string where = "adapter=" + config_.name + " port=" + config_.port;
  warn_bad_input("port", overlong ? where + " " + why : where + " ignored line " + log::quote(line) + ": " + why);
}

// ---------------------------------------------------------------- commands

bool SerialAdapter::device_known(const std::string& device_id) const { return find(device_id) != nullptr; }

bool SerialAdapter::device_online(const std::string&) const { return running_ && port_ && !failed_; }

AdapterBase::Dispatch SerialAdapter::dispatch(const Command& command) {
  std::string why;
  const std::string line = encode_command(config_.protocol, command.device, command.set, why);
  if (line.empty()) return {CommandResult{Outcome::rejected, why}, nullptr};
  if (out_.size() + line.size() > kMaxOutputBytes) {
    return {CommandResult{Outcome::device_error,
                          "the serial port " + config_.port + " is not taking data (check the flow control and wiring)"},
            nullptr};
  }
  LOG_DEBUG("serial") << "adapter=" << config_.name << " device=" << command.device << " command=" << command.id
                      << " sends " << log::q(line);
  out_ += line;
  flush_output();
  return {};
}

std::unique_ptr<Adapter> make_serial_adapter(const config::SerialAdapterConfig& config, EventLoop& loop,
                                            AdapterHost& host, const Clock& clock) {
  return std::make_unique<SerialAdapter>(config, loop, host, clock);
}

}  // namespace flatlink::adapters::serial
