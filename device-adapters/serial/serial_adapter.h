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
#include "device-adapters/adapter_base.h"
#include "device-adapters/serial/line_framer.h"
#include "device-adapters/serial/line_protocol.h"
#include "device-adapters/serial/serial_port.h"

namespace flatlink::adapters::serial {

class SerialAdapter final : public AdapterBase {
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

  void start() override;
  void stop() override;

  bool port_open() const { return port_ != nullptr; }
  const Stats& stats() const { return stats_; }

 private:
  struct Device {
    DeviceInfo info;
    bool learns = false;  // declared without capabilities: learns them from what it reports
  };

  // AdapterBase
  bool device_known(const std::string& device_id) const override;
  bool device_online(const std::string& device_id) const override;
  Dispatch dispatch(const Command& command) override;

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
  // Bad input is logged through the contract's throttle, so a babbling device cannot flood the log.
  void report_bad_line(bool overlong, std::string_view line, const std::string& why);
  Device* find(const std::string& id);
  const Device* find(const std::string& id) const;

  config::SerialAdapterConfig config_;
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
  std::optional<bool> online_;
  std::string last_open_error_;
  bool running_ = false;
  Stats stats_;
};

// Null when this build has no serial adapter.
std::unique_ptr<Adapter> make_serial_adapter(const config::SerialAdapterConfig& config, EventLoop& loop, AdapterHost& host,
                                            const Clock& clock);

}  // namespace flatlink::adapters::serial
