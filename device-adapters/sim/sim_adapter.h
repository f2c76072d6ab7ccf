// Simulated devices (a lamp, a thermometer, a door lock) so that the demo and
// the tests need no hardware; also the reference implementation of adapter.h.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/event_loop.h"
#include "config/gateway_config.h"
#include "device-adapters/adapter.h"

namespace flatlink::adapters::sim {

class SimAdapter final : public Adapter {
 public:
  SimAdapter(config::SimAdapterConfig config, EventLoop& loop, AdapterHost& host,
             const Clock& clock = SystemClock::instance());
  ~SimAdapter() override;

  const std::string& name() const override { return config_.name; }
  void start() override;
  void stop() override;
  void execute(const Command& command, CommandDone done) override;

  // The capabilities a simulated device of this kind has.
  static DeviceInfo describe(const config::SimDeviceConfig& device);
  // Test hooks: take a device away and bring it back, as if unplugged.
  void set_online(const std::string& device_id, bool online);
  const Json* state_of(const std::string& device_id) const;

 private:
  struct Device;
  struct Pending;
  Device* find(const std::string& id);
  void drift(Device& device);
  void finish(Pending* pending);

  config::SimAdapterConfig config_;
  EventLoop& loop_;
  AdapterHost& host_;
  const Clock& clock_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<std::unique_ptr<Pending>> pending_;
  bool running_ = false;
};

}  // namespace flatlink::adapters::sim
