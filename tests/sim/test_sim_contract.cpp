// The adapter contract's table (tests/adapter_contract/contract.h) against the sim adapter.
#include <doctest/doctest.h>

#include "../adapter_contract/contract.h"
#include "device-adapters/sim/sim_adapter.h"

using namespace flatlink;

namespace {

class SimHarness final : public contract::Harness, public adapters::AdapterHost {
 public:
  SimHarness() {
    config::SimAdapterConfig c;
    c.latency_ms = 100;  // long enough for a second command to wait behind the first
    c.seed = 1;
    c.devices = {{"lamp-1", "lamp", "Lamp", "", 5000, 21.0}};
    adapter_ = std::make_unique<adapters::sim::SimAdapter>(c, loop_, *this);
    adapter_->start();
  }
  ~SimHarness() override { adapter_->stop(); }

  std::string label() const override { return "sim"; }
  EventLoop& loop() override { return loop_; }
  adapters::Adapter& adapter() override { return *adapter_; }
  std::string device() const override { return "lamp-1"; }
  Json first_set() const override { return {{"on", true}}; }
  Json second_set() const override { return {{"brightness", 40}}; }
  bool host_online() const override { return online_; }
  size_t host_statuses() const override { return statuses_; }

  bool plays_device() const override { return false; }
  void go_offline() override { adapter_->set_online("lamp-1", false); }
  void go_online() override { adapter_->set_online("lamp-1", true); }
  std::vector<Json> received() override { return {}; }
  void report(const Json&) override {}
  void send_raw(const std::string&) override {}
  size_t max_raw_bytes() const override { return 0; }

 private:
  void device_added(const DeviceInfo&) override {}
  void device_removed(const std::string&) override {}
  void status(const std::string&, const Json&, int64_t) override { ++statuses_; }
  void presence(const std::string&, bool online) override { online_ = online; }

  EventLoop loop_{{}};
  std::unique_ptr<adapters::sim::SimAdapter> adapter_;
  bool online_ = false;
  size_t statuses_ = 0;
};

}  // namespace

TEST_CASE("the adapter contract holds for the sim adapter") {
  contract::check_contract([] { return std::make_unique<SimHarness>(); });
}
