// The backplane's delivery against a real Mosquitto broker: every publish's on_safe runs
// exactly once, in publish order, however many wait (libmosquitto's message ids are 16-bit:
// more than 65,535 outstanding publishes must never share one), and a publish the backplane
// cannot keep is reported, never dropped silently; a command is taken back only while it has
// not left, and one past its deadline is never published.
#include <doctest/doctest.h>

#include <signal.h>

#include <string>
#include <vector>

#include "cloud-link/stream_frames.h"
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

namespace {

// Hears a device stream's messages (backplane_streams.test.mjs has them end to end).
class StreamListener final : public BackplaneListener {
 public:
  void backplane_up() override {}
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
  void remote_stream_control(const backplane::StreamControl& m) override { controls.push_back(m); }
  void remote_stream_frame(backplane::StreamData& d) override {
    seqs.push_back(stream::decode_frame(d.frame)->header.seq);
  }
  std::vector<backplane::StreamControl> controls;
  std::vector<uint32_t> seqs;
};

const std::string kNonce = "0123456789abcdef";

std::string frame(uint32_t seq, size_t bytes = 640) {
  return stream::encode_frame(stream::FrameHeader{1, 1, 1, seq, 1700000000000}, std::string(bytes, 'x'));
}

}  // namespace

TEST_CASE("backplane streams: frames cross in order with QoS 0, signed; 70,000 QoS 1 publishes beside them still complete once each (QoS 0 writes never taken for PUBACKs)") {
  test::Broker& broker = test::Broker::shared();
  EventLoop loop{{}};
  const Clock& clock = SystemClock::instance();
  Metrics metrics_a, metrics_b;
  QuietListener quiet;
  StreamListener heard;
  config::LimitsConfig limits;
  config::BackplaneConfig config_a = backplane_config("streams-a", broker.port());
  config::BackplaneConfig config_b = backplane_config("streams-b", broker.port());
  config_a.shared_key = config_b.shared_key = std::string(32, 'k');
  Backplane a(config_a, limits, loop, clock, metrics_a, quiet);
  Backplane b(config_b, limits, loop, clock, metrics_b, heard);
  uint64_t dropped = 0;
  a.on_stream_drops([&dropped](uint64_t n) { dropped += n; });
  b.watch("flat-s");
  REQUIRE(a.start());
  REQUIRE(b.start());
  run_until(loop, [&] { return a.connected() && b.connected(); }, 10'000);
  REQUIRE((a.connected() && b.connected()));

  // The origin (a) asks the holder (b) for stream 1, then sends its frames beside a flood of statuses.
  const std::string topic = backplane::stream_topic("streams-b", "flat-s", "streams-a", 1, kNonce);
  proto::StreamMessage open;
  open.stream = 1;
  open.device = "door-speaker";
  open.direction = proto::StreamDirection::to_device;
  a.send_stream_control(topic, "flat-s", proto::encode(open, proto::StreamRoute::cloud_to_gateway));
  constexpr int kCount = 70'000;
  constexpr uint32_t kFrames = 1'000;
  std::vector<int> done;
  done.reserve(kCount);
  int out_of_order = 0;
  for (int i = 0; i < kCount; ++i) {
    a.publish_gateway_message("flat-delivery", "gw-1", kStatus, [&done, &out_of_order, i] {
      if (!done.empty() && done.back() != i - 1) ++out_of_order;
      done.push_back(i);
    });
    if (i % 70 == 0) a.send_stream_frame(topic, frame(static_cast<uint32_t>(i / 70)));
  }
  run_until(loop, [&] { return static_cast<int>(done.size()) >= kCount && heard.seqs.size() + dropped >= kFrames; }, 60'000);
  run_until(loop, [] { return false; }, 200);
  INFO("statuses completed " << done.size() << ", frames heard " << heard.seqs.size() << ", dropped " << dropped);
  CHECK(done.size() == static_cast<size_t>(kCount));
  CHECK(out_of_order == 0);
  CHECK(heard.seqs.size() + dropped == kFrames);
  CHECK(heard.seqs.size() > 0);
  bool ordered = true;
  for (size_t i = 1; i < heard.seqs.size(); ++i) ordered = ordered && heard.seqs[i] > heard.seqs[i - 1];
  CHECK(ordered);
  REQUIRE(heard.controls.size() == 1);
  CHECK(heard.controls[0].to_holder);
  CHECK(heard.controls[0].message == open);
  MESSAGE("1,000 frames beside 70,000 statuses: " << heard.seqs.size() << " heard in order, " << dropped
                                                   << " dropped by the 200 ms bound");
  a.stop();
  b.stop();
}

TEST_CASE("backplane streams: a frame that waited longer than stream_buffer_ms is dropped and counted, not published") {
  test::Broker& broker = test::Broker::shared();
  EventLoop loop{{}};
  ManualClock clock;
  Metrics metrics_a, metrics_b;
  QuietListener quiet;
  StreamListener heard;
  config::LimitsConfig limits;  // stream_buffer_ms 200
  const config::BackplaneConfig config_a = backplane_config("streams-c", broker.port());
  const config::BackplaneConfig config_b = backplane_config("streams-d", broker.port());
  Backplane a(config_a, limits, loop, clock, metrics_a, quiet);
  Backplane b(config_b, limits, loop, clock, metrics_b, heard);
  uint64_t dropped = 0;
  a.on_stream_drops([&dropped](uint64_t n) { dropped += n; });
  b.watch("flat-s");
  REQUIRE(a.start());
  REQUIRE(b.start());
  run_until(loop, [&] { return a.connected() && b.connected(); }, 10'000);
  REQUIRE((a.connected() && b.connected()));
  const std::string topic = backplane::stream_topic("streams-d", "flat-s", "streams-c", 1, kNonce);
  // 30 frames of 1 KiB at once: about 8 KiB go to the broker connection, the rest wait here ...
  for (uint32_t seq = 0; seq < 30; ++seq) a.send_stream_frame(topic, frame(seq, 1024));
  // ... longer than the bound, by the clock the backplane reads.
  clock.advance(201);
  run_until(loop, [&] { return heard.seqs.size() + dropped >= 30; }, 5'000);
  run_until(loop, [] { return false; }, 200);
  INFO("heard " << heard.seqs.size() << ", dropped " << dropped);
  CHECK(heard.seqs.size() + dropped == 30);
  CHECK(dropped >= 20);
  CHECK(heard.seqs.size() >= 1);
  for (size_t i = 0; i < heard.seqs.size(); ++i) CHECK(heard.seqs[i] == i);  // the oldest went out, the rest aged here
  // Without a broker connection a frame is dropped at once, counted.
  a.stop();
  const uint64_t before = dropped;
  a.send_stream_frame(topic, frame(99));
  CHECK(dropped == before + 1);
  b.stop();
}

}  // namespace flatlink::cloud
