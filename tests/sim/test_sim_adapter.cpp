// The simulated devices: what they announce, how they drift, how they carry
// out commands.
#include <doctest/doctest.h>

#include <map>
#include <vector>

#include "device-adapters/sim/sim_adapter.h"

using namespace flatlink;
using namespace flatlink::adapters;

namespace {

struct RecordingHost final : AdapterHost {
  std::vector<DeviceInfo> added;
  std::vector<std::pair<std::string, Json>> statuses;
  std::vector<std::pair<std::string, bool>> presences;
  void device_added(const DeviceInfo& d) override { added.push_back(d); }
  void device_removed(const std::string&) override {}
  void status(const std::string& id, const Json& state, int64_t) override { statuses.emplace_back(id, state); }
  void presence(const std::string& id, bool online) override { presences.emplace_back(id, online); }
};

config::SimAdapterConfig demo_config() {
  config::SimAdapterConfig c;
  c.latency_ms = 5;
  c.seed = 7;
  c.devices = {{"lamp-1", "lamp", "Lamp", "Living room", 5000, 21.0},
               {"thermo-1", "thermometer", "", "", 20, 21.0},
               {"door-1", "lock", "Front door", "Hall", 5000, 21.0}};
  return c;
}

}  // namespace

TEST_CASE("the sim adapter announces its devices with their capabilities, state and presence") {
  EventLoop loop({});
  RecordingHost host;
  sim::SimAdapter adapter(demo_config(), loop, host);
  adapter.start();
  REQUIRE(host.added.size() == 3);
  CHECK(host.added[0].capability("brightness")->max == 100);
  CHECK(host.added[1].name == "thermo-1");
  CHECK_FALSE(host.added[1].capability("temperature")->writable);
  CHECK(host.added[2].capability("lock")->confirm);
  CHECK(host.statuses.size() == 3);
  CHECK(host.statuses[0].second == Json{{"on", false}, {"brightness", 100}});
  CHECK(host.presences.size() == 3);
  adapter.stop();
}

TEST_CASE("the simulated thermometer reports a drifting temperature on its interval") {
  EventLoop loop({});
  RecordingHost host;
  sim::SimAdapter adapter(demo_config(), loop, host);
  adapter.start();
  host.statuses.clear();
  Timer stop(loop, [&] { loop.quit(); });
  stop.start(150);
  loop.run();
  adapter.stop();
  CHECK(host.statuses.size() >= 3);
  for (const auto& [id, state] : host.statuses) {
    CHECK(id == "thermo-1");
    const double t = state["temperature"].get<double>();
    CHECK(t > 15.0);
    CHECK(t < 27.0);
  }
}

TEST_CASE("a command to the simulated lamp changes its state, reports it and ends ok") {
  EventLoop loop({});
  RecordingHost host;
  sim::SimAdapter adapter(demo_config(), loop, host);
  adapter.start();
  host.statuses.clear();
  std::vector<CommandResult> results;
  adapter.execute(Command{"c1", "lamp-1", Json{{"on", true}, {"brightness", 40}}, 0},
                  [&](CommandResult r) {
                    results.push_back(r);
                    loop.quit();
                  });
  CHECK(results.empty());  // it takes the device latency_ms
  Timer guard(loop, [&] { loop.quit(); });
  guard.start(2000);
  loop.run();
  REQUIRE(results.size() == 1);
  CHECK(results[0].outcome == Outcome::ok);
  CHECK((*adapter.state_of("lamp-1"))["on"] == true);
  CHECK((*adapter.state_of("lamp-1"))["brightness"] == 40);
  bool reported = false;
  for (const auto& [id, state] : host.statuses) reported |= id == "lamp-1" && state["brightness"] == 40;
  CHECK(reported);
}

TEST_CASE("a simulated device taken offline reports it and fails a command under way") {
  EventLoop loop({});
  RecordingHost host;
  sim::SimAdapter adapter(demo_config(), loop, host);
  adapter.start();
  std::vector<CommandResult> results;
  adapter.execute(Command{"c1", "door-1", Json{{"lock", "unlocked"}}, 0}, [&](CommandResult r) {
    results.push_back(r);
    loop.quit();
  });
  adapter.set_online("door-1", false);
  CHECK(host.presences.back() == std::pair<std::string, bool>{"door-1", false});
  Timer guard(loop, [&] { loop.quit(); });
  guard.start(2000);
  loop.run();
  REQUIRE(results.size() == 1);
  CHECK(results[0].outcome == Outcome::device_error);
  CHECK((*adapter.state_of("door-1"))["lock"] == "locked");
}
