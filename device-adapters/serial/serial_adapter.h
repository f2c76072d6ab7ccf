// The serial adapter: devices on a UART (or a USB serial adapter) that speak
// line protocols, JSON lines or key=value lines. See docs/adapters/serial.md.
//
// One adapter serves one port. The port's descriptor joins the loop through an
// FdWatch; nothing blocks. When the port disappears (unplugged, hung up, read
// error) its devices go offline and the port is reopened with backoff until it
// is back, and the devices come online again.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/gateway_config.h"
#include "device-adapters/adapter.h"
#include "device-adapters/serial/line_framer.h"
#include "device-adapters/serial/line_protocol.h"
#include "device-adapters/serial/serial_port.h"

namespace flatlink::adapters::serial {

class SerialAdapter final : public Adapter {
 public:
  // What happened on the port since start, for tests and status output.
  struct Stats {
    uint64_t lines = 0;     // lines understood
    uint64_t garbage = 0;   // lines ignored: unparsable, unknown device, wrong values
    uint64_t overlong = 0;  // lines longer than max_line_bytes, dropped
    uint64_t opens = 0;     // times the port was opened
    uint64_t losses = 0;    // times it went away
  };

  SerialAdapter(config::SerialAdapterConfig config, EventLoop& loop, AdapterHost& host,
                const Clock& clock = SystemClock::instance());
  ~SerialAdapter() override;

  const std::string& name() const override { return config_.name; }
  void start() override;
  void stop() override;
  void execute(const Command& command, CommandDone done) override;

  bool port_open() const { return port_ != nullptr; }
  const Stats& stats() const { return stats_; }

 private:
  struct Device {
    DeviceInfo info;
    bool learns = false;  // declared without capabilities: learns them from what it reports
  };
  struct Pending {
    Command command;
    CommandDone done;
    std::unique_ptr<Timer> timeout;
  };

  void try_open();
  void schedule_reopen();
  void on_port_events(int events);
  void read_available();
  void flush_output();
  // Reading or writing failed: tear the port down soon (not inside its own callback).
  void port_failed(const std::string& why);
  void close_port(const std::string& why);
  void set_online(bool online);

  void on_line(std::string_view line);
  void on_overlong(size_t dropped_bytes);
  bool accept_values(Device& device, const Json& values, std::string& why);
  void resolve_pending(const std::string& device_id, const DeviceLine& line);
  void finish(std::string device_id, CommandResult result);
  // Bad input is logged, but at most a few lines per window, so a babbling
  // device cannot flood the log.
  void report_bad_line(bool overlong, std::string_view line, const std::string& why);
  Device* find(const std::string& id);

  config::SerialAdapterConfig config_;
  EventLoop& loop_;
  AdapterHost& host_;
  const Clock& clock_;
  std::vector<Device> devices_;
  LineFramer framer_;
  Backoff backoff_;
  std::unique_ptr<SerialPort> port_;
  std::unique_ptr<FdWatch> watch_;
  Timer reopen_timer_;
  Timer teardown_timer_;
  std::string teardown_reason_;
  bool failed_ = false;
  std::string out_;  // bytes waiting for the port
  std::map<std::string, std::unique_ptr<Pending>> pending_;  // by device: one command at a time each
  std::optional<bool> online_;
  std::string last_open_error_;
  bool running_ = false;
  Stats stats_;
  int64_t log_window_start_ms_ = 0;
  uint32_t logged_in_window_ = 0;
  uint64_t unlogged_ = 0;
};

// Null when this build has no serial adapter.
std::unique_ptr<Adapter> make_serial_adapter(const config::SerialAdapterConfig& config, EventLoop& loop, AdapterHost& host,
                                            const Clock& clock);

}  // namespace flatlink::adapters::serial
