// The wifly adapter (device-adapters/wifly): devices behind Roving Networks WiFly
// RN131 modules. It connects out to modules in TCP server mode and listens for
// modules and (legacy) WebSocket clients that connect in. See docs/adapters/wifly.md.
//
// Devices speak JSON lines: {"dev":"t1","temp":21.5} reports state, and a command
// goes out as {"dev":"lamp","set":{"on":true}}, confirmed when the device reports
// the values it was asked to set (or refused with {"dev":"lamp","error":"..."}); the
// outcomes and the busy-device rule are the adapter contract's (adapter_base.h).
// A connection is bound to one device; a device pinned by `address` accepts only that
// address, and a device's live connection is never displaced by another peer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/gateway_config.h"
#include "device-adapters/adapter_base.h"
#include "device-adapters/wifly/session.h"

namespace flatlink::adapters::wifly {

class WiflyAdapter final : public AdapterBase, public SessionOwner {
 public:
  WiflyAdapter(config::WiflyAdapterConfig config, EventLoop& loop, AdapterHost& host,
               const Clock& clock = SystemClock::instance());
  ~WiflyAdapter() override;

  void start() override;
  void stop() override;

  // The port the listener is bound to (useful when configured as 0), or 0.
  uint16_t listen_port() const { return listen_port_; }
  // Open connections, any protocol, for tests and status output.
  size_t session_count() const;

 private:
  struct Device;
  struct Module;

  // AdapterBase
  bool device_known(const std::string& device_id) const override;
  bool device_online(const std::string& device_id) const override;
  Dispatch dispatch(const Command& command) override;

  // SessionOwner
  void on_open(Session& session) override;
  void on_message(Session& session, std::string_view message) override;
  void on_marker(Session& session, Marker marker) override;
  void on_closed(Session& session, std::string_view why) override;
  void on_rfc6455(Session& session, int fd, std::string already_read) override;

  void start_listener();
  void on_listener_events(int events);
  void connect_module(Module& module);
  void on_connect_events(Module& module, int events);
  void connect_timed_out(Module& module);
  void module_connected(Module& module, int fd);
  void retry_module(Module& module, const std::string& why);
  Session& add_session(std::unique_ptr<Session> session);
  // Binds session to device; false (the session refused and closed) when the device is
  // pinned to another address or already carried by another live connection.
  bool bind(Session& session, Device& device, const char* how);
  void unbind(Session& session, const std::string& why);
  void schedule_reap();
  void reap();
  Device* find(const std::string& id);
  const Device* find(const std::string& id) const;

  config::WiflyAdapterConfig config_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<std::unique_ptr<Module>> modules_;
  std::vector<std::unique_ptr<Session>> sessions_;
  int listen_fd_ = -1;
  uint16_t listen_port_ = 0;
  std::unique_ptr<FdWatch> listen_watch_;
  Timer reaper_;
  bool running_ = false;
};

// Null when this build has no wifly adapter.
std::unique_ptr<Adapter> make_wifly_adapter(const config::WiflyAdapterConfig& config, EventLoop& loop, AdapterHost& host,
                                            const Clock& clock);

}  // namespace flatlink::adapters::wifly
