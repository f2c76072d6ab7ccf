// The backplane's delivery against a real Mosquitto broker: every publish's on_safe runs
// exactly once, in publish order, however many wait (libmosquitto's message ids are 16-bit:
// more than 65,535 outstanding publishes must never share one), and a publish the backplane
// cannot keep is reported, never dropped silently; a command is taken back only while it has
// not left, and one past its deadline is never published.
#include <doctest/doctest.h>

#include <signal.h>

#include <string>
#include <vector>

#include "cloud-server/backplane.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "tests/mqtt/broker.h"
#include "tests/run_until.h"

namespace flatlink::cloud {
namespace {

using testing::run_until;

class QuietListener final : public BackplaneListener {
 public:
  void backplane_up() override { ++ups; }
  bool backplane_knows_flat(const std::string&) const override { return true; }
  std::optional<RemoteState> backplane_state(const std::string&) override { return std::nullopt; }
  void remote_gateway_message(const std::string&, const std::string&, const std::string&,
                              const proto::GatewayToCloud&, const std::string&) override {}
  void remote_state(const std::string&, const RemoteState&) override {}
  void remote_holder(const std::string&, const HolderClaim&) override {}
  void remote_command(const std::string&, const std::string&, const proto::CommandMsg&) override {}
  void remote_result(const std::string&, const std::string&, const proto::Result&, bool) override {}
  void instance_down(const std::string&) override {}
  void backplane_down() override {}
  int ups = 0;
};

config::BackplaneConfig backplane_config(const std::string& instance, int port) {
  config::BackplaneConfig config;
  config.enabled = true;
  config.instance_id = instance;
  config.brokers.push_back(config::BackplaneBroker{"127.0.0.1", static_cast<uint16_t>(port)});
  return config;
}

const std::string kStatus = R"({"type":"status","items":[{"seq":1,"device":"lamp-1","state":{"on":true},"ts":1}]})";

}  // namespace

TEST_CASE("backplane delivery: 70,000 publishes at once complete once each and in order (16-bit ids never reused)") {
  test::Broker& broker = test::Broker::shared();
  EventLoop loop{{}};
  const Clock& clock = SystemClock::instance();
  Metrics metrics;
  QuietListener listener;
  config::LimitsConfig limits;
  const config::BackplaneConfig config = backplane_config("delivery-a", broker.port());
  Backplane backplane(config, limits, loop, clock, metrics, listener);
  REQUIRE(backplane.start());
  run_until(loop, [&] { return backplane.connected(); }, 10'000);
  REQUIRE(backplane.connected());

  constexpr int kCount = 70'000;  // more than 65,535: libmosquitto's mids wrap
  std::vector<int> done;
  done.reserve(kCount);
  int out_of_order = 0;
  for (int i = 0; i < kCount; ++i) {
    backplane.publish_gateway_message("flat-delivery", "gw-1", kStatus, [&done, &out_of_order, i] {
      if (!done.empty() && done.back() != i - 1) ++out_of_order;
      done.push_back(i);
    });
  }
  run_until(loop, [&] { return static_cast<int>(done.size()) >= kCount; }, 60'000);
  INFO("completed " << done.size() << " of " << kCount << ", " << out_of_order << " out of order");
  CHECK(done.size() == static_cast<size_t>(kCount));
  CHECK(out_of_order == 0);
  // Nothing completes twice or late: a little more time changes nothing.
  run_until(loop, [] { return false; }, 200);
  CHECK(done.size() == static_cast<size_t>(kCount));
  backplane.stop();
}

TEST_CASE("backplane delivery: with the broker away, a publish beyond what can wait is refused loudly, not lost silently") {
  EventLoop loop{{}};
  const Clock& clock = SystemClock::instance();
  Metrics metrics;
  QuietListener listener;
  config::LimitsConfig limits;
  // Nothing listens on port 1: the backplane keeps trying while everything waits.
  const config::BackplaneConfig config = backplane_config("delivery-b", 1);
  Backplane backplane(config, limits, loop, clock, metrics, listener);
  REQUIRE(backplane.start());
  int safe = 0;
  int dropped = 0;
  constexpr int kWaiting = 200'000;  // what the backplane keeps for a broker outage (kMaxUnsafe)
  for (int i = 0; i < kWaiting + 3; ++i) {
    backplane.publish_gateway_message("flat-delivery", "gw-1", kStatus, [&safe] { ++safe; }, [&dropped] { ++dropped; });
  }
  CHECK(safe == 0);
  CHECK(dropped == 3);
  CHECK(metrics.backplane_dropped == 3);
  CHECK(metrics.render().find("flatlink_backplane_dropped_total 3") != std::string::npos);
  backplane.stop();
}

TEST_CASE("backplane delivery: a command is taken back only while it has not left; one past its deadline is never published") {
  test::Broker& broker = test::Broker::shared();
  EventLoop loop{{}};
  ManualClock clock;
  Metrics metrics;
  QuietListener listener;
  config::LimitsConfig limits;
  const config::BackplaneConfig config = backplane_config("delivery-c", broker.port());
  Backplane backplane(config, limits, loop, clock, metrics, listener);
  REQUIRE(backplane.start());
  // Not connected yet (the loop has not run): all three wait here.
  const int64_t now = clock.wall_ms();
  const auto command = [](const char* id, int64_t expires) {
    return proto::CommandMsg{id, "lamp-1", Json{{"on", true}}, expires};
  };
  const uint64_t kept = backplane.send_command("flat-delivery", command("c-1", now + 60'000));
  const uint64_t late = backplane.send_command("flat-delivery", command("c-2", now + 1'000));
  const uint64_t taken = backplane.send_command("flat-delivery", command("c-3", now + 60'000));
  REQUIRE((kept != 0 && late != 0 && taken != 0));
  CHECK(backplane.withdraw(taken));
  CHECK_FALSE(backplane.withdraw(taken));
  clock.advance(2'000);  // c-2 is past its deadline when the broker answers
  run_until(loop, [&] { return backplane.connected(); }, 10'000);
  REQUIRE(backplane.connected());
  CHECK(metrics.backplane_messages_out == 1);  // c-1 only
  CHECK_FALSE(backplane.withdraw(kept));       // handed to the connection: it may have left
  CHECK_FALSE(backplane.withdraw(late));       // dropped, never published
  backplane.stop();
}

}  // namespace flatlink::cloud
