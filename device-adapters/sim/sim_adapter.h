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
#include "device-adapters/adapter_base.h"

namespace flatlink::adapters::sim {

class SimAdapter final : public AdapterBase {
 public:
  SimAdapter(config::SimAdapterConfig config, EventLoop& loop, AdapterHost& host,
             const Clock& clock = SystemClock::instance());
  ~SimAdapter() override;

  void start() override;
  void stop() override;

  // The capabilities a simulated device of this kind has.
  static DeviceInfo describe(const config::SimDeviceConfig& device);
  // Test hooks: take a device away and bring it back, as if unplugged.
  void set_online(const std::string& device_id, bool online);
  const Json* state_of(const std::string& device_id) const;

 private:
  struct Device;
  struct Pending;
  bool device_known(const std::string& device_id) const override;
  bool device_online(const std::string& device_id) const override;
  Dispatch dispatch(const Command& command) override;
  Device* find(const std::string& id);
  const Device* find(const std::string& id) const;
  void drift(Device& device);
  void finish(Pending* pending);

  config::SimAdapterConfig config_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<std::unique_ptr<Pending>> pending_;
  bool running_ = false;
};

}  // namespace flatlink::adapters::sim
