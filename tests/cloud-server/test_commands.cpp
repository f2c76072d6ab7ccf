// Command routing alone: checks before anything is sent, the result back to the browser
// that asked (once), never across flats, and a browser that left.
#include <doctest/doctest.h>

#include "cloud-server/commands.h"
#include "tests/cloud-server/fake_peer.h"
#include "tests/run_until.h"

using namespace flatlink;
using namespace flatlink::cloud;
using flatlink::cloud::test_support::FakePeer;

namespace {

struct Fixture {
  config::CloudConfig config = [] {
    config::CloudConfig c;
    c.limits.command_timeout_ms = 100;
    return c;
  }();
  config::FlatConfig fa, fb;
  EventLoop loop{{}};
  ManualClock clock;
  Metrics metrics;
  Commands commands{config, loop, clock, metrics};
  LiveFlat a, b;
  FakePeer gw_a{"gw-a"}, gw_b{"gw-b"}, browser{"browser"};

  Fixture() {
    fa.id = "flat-a";
    fb.id = "flat-b";
    a.config = &fa;
    b.config = &fb;
    proto::DeviceReport dimmer;
    dimmer.info.id = "dimmer";
    dimmer.info.capabilities = {Capability::integer("level", 0, 100, true), Capability::number("w", 0, 500, false)};
    a.devices["dimmer"] = dimmer;
    b.devices["dimmer"] = dimmer;
    a.gateway = &gw_a;
    a.hello = true;
    b.gateway = &gw_b;
    b.hello = true;
  }
  void send(const std::string& id, Json set) {
    commands.from_browser(a, browser, proto::BrowserCommand{id, "dimmer", std::move(set), 50}, true, false);
  }
};

}  // namespace

TEST_CASE("a command is checked against the device before anything reaches the gateway") {
  Fixture f;
  f.send("c1", Json{{"w", 3}});          // read-only
  f.send("c2", Json{{"level", 101}});    // out of range
  f.send("c3", Json{{"colour", "red"}}); // no such capability
  f.commands.from_browser(f.a, f.browser, proto::BrowserCommand{"c4", "ghost", Json{{"level", 1}}, 5000}, true, false);
  f.commands.from_browser(f.a, f.browser, proto::BrowserCommand{"c5", "dimmer", Json{{"level", 1}}, 5000}, false, false);
  CHECK(f.gw_a.gateway_got<proto::CommandMsg>().empty());
  const auto results = f.browser.browser_got<proto::Result>();
  REQUIRE(results.size() == 5);
  for (int i = 0; i < 4; ++i) CHECK(results[i].outcome == Outcome::rejected);
  CHECK(results[4].outcome == Outcome::offline);
  CHECK(f.commands.pending() == 0);
}

TEST_CASE("each command gets its own id; its result reaches the browser once, and never from another flat") {
  Fixture f;
  f.send("c1", Json{{"level", 10}});
  f.send("c2", Json{{"level", 20}});
  const auto sent = f.gw_a.gateway_got<proto::CommandMsg>();
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].id != sent[1].id);
  f.commands.gateway_result(f.b, proto::Result{sent[0].id, Outcome::ok, "forged"});
  CHECK(f.browser.browser_got<proto::Result>().empty());
  CHECK(f.metrics.refused_messages == 1);
  f.commands.gateway_result(f.a, proto::Result{sent[1].id, Outcome::device_error, "jammed"});
  f.commands.gateway_result(f.a, proto::Result{sent[1].id, Outcome::ok, ""});
  const auto results = f.browser.browser_got<proto::Result>();
  REQUIRE(results.size() == 1);
  CHECK(results[0].id == "c2");
  CHECK(results[0].outcome == Outcome::device_error);
  CHECK(f.commands.pending() == 1);
}

TEST_CASE("a browser that left gets nothing; its command still ends (timeout) and is forgotten") {
  Fixture f;
  f.send("c1", Json{{"level", 10}});
  f.commands.browser_left(f.browser);
  testing::run_until(f.loop, [&] { return f.commands.pending() == 0; });
  CHECK(f.commands.pending() == 0);
  CHECK(f.browser.browser_got<proto::Result>().empty());
}
