// The cloud's routing core through its facade, with fake peers: delivery, dedupe, acks,
// commands, flat isolation and the backplane's election; its parts have their own tests
// (test_flats, test_commands, test_login, test_history).
#include <doctest/doctest.h>

#include "tests/run_until.h"

#include <deque>

#include "cloud-server/auth.h"
#include "cloud-server/router.h"
#include "tests/cloud-server/fake_peer.h"

using namespace flatlink;
using namespace flatlink::cloud;
using flatlink::cloud::test_support::FakePeer;

namespace {

config::CloudConfig two_flats() {
  config::CloudConfig c;
  for (const char* id : {"flat-a", "flat-b"}) {
    config::FlatConfig f;
    f.id = id;
    f.name = id;
    f.gateway_token_sha256 = hash_token(std::string("token-") + id);
    f.users.push_back({"user", hash_password(std::string("pw-") + id, Argon2Params{1, 64, 1})});
    c.flats.push_back(f);
  }
  c.limits.command_timeout_ms = 200;
  return c;
}

proto::DeviceReport lamp(const std::string& id) {
  proto::DeviceReport r;
  r.info.id = id;
  r.info.name = id;
  r.info.kind = "lamp";
  r.info.capabilities = {Capability::boolean("on", true)};
  r.state = Json{{"on", false}};
  r.online = true;
  return r;
}

struct Fixture {
  config::CloudConfig config = two_flats();
  EventLoop loop{{}};
  ManualClock clock;
  Metrics metrics;
  Router router{config, loop, clock, metrics};
  FakePeer gw_a{"gw-a"}, gw_b{"gw-b"}, browser_a{"browser-a"}, browser_b{"browser-b"};

  Fixture() {
    router.gateway_connected(gw_a, "flat-a");
    router.gateway_message(gw_a, proto::Hello{"gw-a", "0.1.0", {lamp("lamp-a")}, 1, 0});
    router.gateway_connected(gw_b, "flat-b");
    router.gateway_message(gw_b, proto::Hello{"gw-b", "0.1.0", {lamp("lamp-b")}, 1, 0});
    login(browser_a, "flat-a", "pw-flat-a");
    login(browser_b, "flat-b", "pw-flat-b");
  }

  void login(FakePeer& browser, const std::string& flat, const std::string& password) {
    router.browser_connected(browser);
    router.browser_message(browser, proto::Login{flat, "user", password});
    run_until([&] { return router.browser_logged_in(browser) || browser.closed_with != 0; });
  }

  template <class F>
  void run_until(F cond, uint32_t max_ms = 3000) {
    testing::run_until(loop, cond, max_ms);
  }

  static proto::StatusBatch batch(int64_t from, int64_t to, const std::string& device) {
    proto::StatusBatch b;
    for (int64_t s = from; s <= to; ++s) b.items.push_back({s, device, Json{{"on", s % 2 == 0}}, 1000 + s});
    return b;
  }
};

}  // namespace

TEST_CASE("hello is answered with the last seq seen, statuses reach the flat's browsers and are acked") {
  Fixture f;
  REQUIRE(f.gw_a.gateway_got<proto::Ack>().size() == 1);
  CHECK(f.gw_a.gateway_got<proto::Ack>()[0].seq == 0);
  CHECK(f.browser_a.browser_got<proto::Snapshot>().at(0).devices.at(0).info.id == "lamp-a");

  f.router.gateway_message(f.gw_a, Fixture::batch(1, 3, "lamp-a"));
  CHECK(f.browser_a.browser_got<proto::Update>().size() == 3);
  CHECK(f.gw_a.gateway_got<proto::Ack>().back().seq == 3);
  CHECK(f.browser_b.browser_got<proto::Update>().empty());
  CHECK(f.metrics.statuses == 3);
}

TEST_CASE("statuses already seen are dropped, and a reconnecting gateway resumes after the last seq") {
  Fixture f;
  f.router.gateway_message(f.gw_a, Fixture::batch(1, 5, "lamp-a"));
  f.router.gateway_message(f.gw_a, Fixture::batch(4, 7, "lamp-a"));  // 4 and 5 again
  CHECK(f.browser_a.browser_got<proto::Update>().size() == 7);
  CHECK(f.metrics.duplicate_statuses == 2);

  f.router.gateway_disconnected(f.gw_a);
  CHECK(f.browser_a.browser_got<proto::GatewayState>().back().online == false);
  FakePeer again("gw-a-again");
  f.router.gateway_connected(again, "flat-a");
  f.router.gateway_message(again, proto::Hello{"gw-a", "0.1.0", {lamp("lamp-a")}, 8, 0});
  CHECK(again.gateway_got<proto::Ack>().at(0).seq == 7);
}

TEST_CASE("a gateway whose sequence started over is accepted from its new start") {
  Fixture f;
  f.router.gateway_message(f.gw_a, Fixture::batch(1, 5, "lamp-a"));
  f.router.gateway_disconnected(f.gw_a);
  FakePeer fresh("gw-a-wiped");
  f.router.gateway_connected(fresh, "flat-a");
  f.router.gateway_message(fresh, proto::Hello{"gw-a", "0.1.0", {lamp("lamp-a")}, 1, 0});
  CHECK(fresh.gateway_got<proto::Ack>().at(0).seq == 0);
  f.router.gateway_message(fresh, Fixture::batch(1, 1, "lamp-a"));
  CHECK(f.browser_a.browser_got<proto::Update>().size() == 6);
}

TEST_CASE("a second gateway link for the same flat replaces the first") {
  Fixture f;
  FakePeer newer("gw-a-2");
  f.router.gateway_connected(newer, "flat-a");
  CHECK(f.gw_a.closed_with == proto::close_code::kReplaced);
  // The old link's messages no longer count.
  f.router.gateway_message(f.gw_a, Fixture::batch(1, 1, "lamp-a"));
  CHECK(f.browser_a.browser_got<proto::Update>().empty());
  CHECK(f.metrics.replaced_gateways == 1);
}

TEST_CASE("a browser command reaches its flat's gateway and the result comes back to that browser") {
  Fixture f;
  f.router.browser_message(f.browser_a, proto::BrowserCommand{"b1", "lamp-a", Json{{"on", true}}, 5000});
  auto commands = f.gw_a.gateway_got<proto::CommandMsg>();
  REQUIRE(commands.size() == 1);
  CHECK(commands[0].device == "lamp-a");
  CHECK(commands[0].expires == f.clock.wall_ms() + 5000);
  CHECK(f.gw_b.gateway_got<proto::CommandMsg>().empty());
  f.router.gateway_message(f.gw_a, proto::Result{commands[0].id, Outcome::ok, ""});
  auto results = f.browser_a.browser_got<proto::Result>();
  REQUIRE(results.size() == 1);
  CHECK(results[0].id == "b1");
  CHECK(results[0].outcome == Outcome::ok);
  // A second result for the same command is ignored: exactly one result.
  f.router.gateway_message(f.gw_a, proto::Result{commands[0].id, Outcome::ok, ""});
  CHECK(f.browser_a.browser_got<proto::Result>().size() == 1);
}

TEST_CASE("a browser of flat A can neither see nor command flat B") {
  Fixture f;
  // Commands name devices of its own flat only.
  f.router.browser_message(f.browser_a, proto::BrowserCommand{"b1", "lamp-b", Json{{"on", true}}, 5000});
  CHECK(f.gw_b.gateway_got<proto::CommandMsg>().empty());
  CHECK(f.browser_a.browser_got<proto::Result>().at(0).outcome == Outcome::rejected);
  // History of another flat's device: nothing.
  f.router.gateway_message(f.gw_b, Fixture::batch(1, 2, "lamp-b"));
  f.router.browser_message(f.browser_a, proto::HistoryRequest{"lamp-b", "on"});
  CHECK(f.browser_a.browser_got<proto::HistoryReply>().at(0).points.empty());
  CHECK(f.browser_a.browser_got<proto::Update>().empty());
  // A second login on the same link cannot switch flats.
  f.router.browser_message(f.browser_a, proto::Login{"flat-b", "user", "pw-flat-b"});
  CHECK(f.browser_a.browser_got<proto::Error>().back().code == "already_logged_in");
  // flat B's gateway cannot answer flat A's command.
  f.router.browser_message(f.browser_a, proto::BrowserCommand{"b2", "lamp-a", Json{{"on", true}}, 5000});
  const std::string id = f.gw_a.gateway_got<proto::CommandMsg>().at(0).id;
  f.router.gateway_message(f.gw_b, proto::Result{id, Outcome::ok, "forged"});
  CHECK(f.browser_a.browser_got<proto::Result>().size() == 1);  // only b1's rejection
}

TEST_CASE("a wrong password closes the browser and a browser that has not logged in gets nothing") {
  Fixture f;
  FakePeer intruder("intruder");
  f.login(intruder, "flat-a", "pw-flat-b");
  CHECK(intruder.closed_with == proto::close_code::kUnauthorized);
  CHECK(intruder.browser_got<proto::Snapshot>().empty());
  FakePeer anonymous("anonymous");
  f.router.browser_connected(anonymous);
  f.router.browser_message(anonymous, proto::BrowserCommand{"b1", "lamp-a", Json{{"on", true}}, 5000});
  CHECK(f.gw_a.gateway_got<proto::CommandMsg>().empty());
  CHECK(anonymous.closed_with == proto::close_code::kPolicyViolation);
  CHECK(f.metrics.auth_failures == 1);
}

TEST_CASE("a command to an offline flat ends offline at once, and one nobody answers ends in timeout") {
  Fixture f;
  f.router.gateway_disconnected(f.gw_b);
  f.router.browser_message(f.browser_b, proto::BrowserCommand{"b1", "lamp-b", Json{{"on", true}}, 5000});
  CHECK(f.browser_b.browser_got<proto::Result>().at(0).outcome == Outcome::offline);

  f.router.browser_message(f.browser_a, proto::BrowserCommand{"b2", "lamp-a", Json{{"on", true}}, 100});
  f.run_until([&] { return !f.browser_a.browser_got<proto::Result>().empty(); });
  CHECK(f.browser_a.browser_got<proto::Result>().at(0).outcome == Outcome::timeout);
}

TEST_CASE("a gateway must say hello before anything else") {
  Fixture f;
  FakePeer rude("rude");
  f.router.gateway_connected(rude, "flat-a");
  f.router.gateway_message(rude, Fixture::batch(1, 1, "lamp-a"));
  CHECK(rude.closed_with == proto::close_code::kProtocolError);
}

// ---- with a backplane (docs/scale-out.md) ------------------------------------------------
// The Backplane here is never started: what the router publishes waits in it (as while the
// broker is away) and what other instances say is handed to the router as the Backplane would.

namespace {

struct BackplaneFixture {
  config::CloudConfig config = [] {
    config::CloudConfig c = two_flats();
    c.backplane.enabled = true;
    c.backplane.instance_id = "cloud-m";
    c.backplane.brokers.push_back({"127.0.0.1", 1883});
    c.backplane.command_offline_ms = 50;
    return c;
  }();
  EventLoop loop{{}};
  ManualClock clock;
  Metrics metrics;
  Router router{config, loop, clock, metrics};
  Backplane backplane{config.backplane, config.limits, loop, clock, metrics, router};
  FakePeer gw{"gw-a"}, browser{"browser-a"};

  BackplaneFixture() {
    router.attach_backplane(&backplane);
    router.browser_connected(browser);
    router.browser_message(browser, proto::Login{"flat-a", "user", "pw-flat-a"});
    testing::run_until(loop, [&] { return router.browser_logged_in(browser); });
  }
  void connect_gateway() {
    router.gateway_connected(gw, "flat-a");
    router.gateway_message(gw, proto::Hello{"gw-a", "0.1.0", {lamp("lamp-a")}, 1, 0});
  }
  RemoteState remote_online(const std::string& from, int64_t since) {
    RemoteState s;
    s.from = from;
    s.gateway = "gw-a";
    s.online = true;
    s.since = since;
    s.devices = {lamp("lamp-a")};
    return s;
  }
};

}  // namespace

TEST_CASE("with a backplane the gateway's ack waits until the broker has the statuses") {
  BackplaneFixture f;
  f.connect_gateway();
  REQUIRE(f.gw.gateway_got<proto::Ack>().size() == 1);  // hello: nothing new to publish
  f.router.gateway_message(f.gw, Fixture::batch(1, 3, "lamp-a"));
  CHECK(f.browser.browser_got<proto::Update>().size() == 3);  // local browsers at once
  CHECK(f.gw.gateway_got<proto::Ack>().size() == 1);          // no PUBACK, no ack
}

TEST_CASE("a newer claim on another instance closes the local link with 4001; an older one does not") {
  BackplaneFixture f;
  f.connect_gateway();
  const int64_t since = f.clock.wall_ms();
  f.router.remote_holder("flat-a", HolderClaim{"cloud-b", "cloud-b", since - 1, "gw-a"});
  CHECK(f.gw.closed_with == 0);
  f.router.remote_holder("flat-a", HolderClaim{"cloud-b", "cloud-b", since + 1, "gw-a"});
  CHECK(f.gw.closed_with == proto::close_code::kReplaced);
  CHECK(f.browser.browser_got<proto::GatewayState>().back().online == false);
  CHECK(f.metrics.backplane_takeovers == 1);
}

TEST_CASE("two claims made in the same millisecond: the larger instance id wins, on every instance") {
  BackplaneFixture f;  // this instance is cloud-m
  f.connect_gateway();
  const int64_t since = f.clock.wall_ms();
  f.router.remote_holder("flat-a", HolderClaim{"cloud-a", "cloud-a", since, "gw-a"});
  CHECK(f.gw.closed_with == 0);  // cloud-a would close its own
  f.router.remote_holder("flat-a", HolderClaim{"cloud-z", "cloud-z", since, "gw-a"});
  CHECK(f.gw.closed_with == proto::close_code::kReplaced);
}

TEST_CASE("a gateway held elsewhere: snapshot online here, commands over the backplane, offline when nobody takes them") {
  BackplaneFixture f;
  f.router.remote_holder("flat-a", HolderClaim{"cloud-b", "cloud-b", 5, "gw-a"});
  f.router.remote_state("flat-a", f.remote_online("cloud-b", 5));
  REQUIRE_FALSE(f.browser.browser_got<proto::Snapshot>().empty());
  CHECK(f.browser.browser_got<proto::Snapshot>().back().gateway_online);

  // statuses from the holder reach the browsers here once
  proto::StatusBatch batch = Fixture::batch(1, 2, "lamp-a");
  f.router.remote_gateway_message("flat-a", "cloud-b", "gw-a", batch);
  f.router.remote_gateway_message("flat-a", "cloud-b", "gw-a", batch);
  CHECK(f.browser.browser_got<proto::Update>().size() == 2);

  // nobody accepts: offline after command_offline_ms
  f.router.browser_message(f.browser, proto::BrowserCommand{"c1", "lamp-a", Json{{"on", true}}, 5000});
  testing::run_until(f.loop, [&] { return !f.browser.browser_got<proto::Result>().empty(); }, 2000);
  REQUIRE(f.browser.browser_got<proto::Result>().size() == 1);
  CHECK(f.browser.browser_got<proto::Result>()[0].outcome == Outcome::offline);

  // a result for no command of this instance changes nothing
  f.router.remote_result("flat-a", "cloud-b", proto::Result{"not-ours", Outcome::ok, ""}, false);
  CHECK(f.browser.browser_got<proto::Result>().size() == 1);
  f.router.instance_down("cloud-b");
  CHECK(f.browser.browser_got<proto::GatewayState>().back().online == false);
  f.router.browser_message(f.browser, proto::BrowserCommand{"c3", "lamp-a", Json{{"on", true}}, 5000});
  CHECK(f.browser.browser_got<proto::Result>().back().outcome == Outcome::offline);  // at once: its holder is dead
}

TEST_CASE("a command from another instance runs once though delivered twice; an expired one never reaches the gateway") {
  BackplaneFixture f;
  f.connect_gateway();
  const proto::CommandMsg command{"cx-1", "lamp-a", Json{{"on", true}}, f.clock.wall_ms() + 5000};
  f.router.remote_command("flat-a", "cloud-b", command);
  f.router.remote_command("flat-a", "cloud-b", command);
  CHECK(f.gw.gateway_got<proto::CommandMsg>().size() == 1);
  f.router.remote_command("flat-a", "cloud-b", proto::CommandMsg{"cx-2", "lamp-a", Json{{"on", true}}, f.clock.wall_ms() - 1});
  CHECK(f.gw.gateway_got<proto::CommandMsg>().size() == 1);
  // the gateway's result goes back to cloud-b, not to a local browser
  f.router.gateway_message(f.gw, proto::Result{"cx-1", Outcome::ok, ""});
  CHECK(f.browser.browser_got<proto::Result>().empty());
}

// A gateway moves here from cloud-b, which had statuses 3..10 acknowledged (after the
// broker's PUBACK) that the broker has not delivered here yet.
namespace {
std::vector<int64_t> update_seqs(FakePeer& browser) {
  std::vector<int64_t> seqs;
  for (const auto& u : browser.browser_got<proto::Update>()) seqs.push_back(u.seq);
  return seqs;
}
void held_elsewhere_up_to_2(BackplaneFixture& f) {
  f.router.remote_holder("flat-a", HolderClaim{"cloud-b", "cloud-b", 5, "gw-a"});
  f.router.remote_state("flat-a", f.remote_online("cloud-b", 5));
  f.router.remote_gateway_message("flat-a", "cloud-b", "gw-a", Fixture::batch(1, 2, "lamp-a"));
  f.router.gateway_connected(f.gw, "flat-a");
}
// The gateway's hello: the seq of its next status, and the highest its last holder acknowledged.
proto::Hello moved_hello(int64_t next_seq, int64_t acked) { return {"gw-a", "0.1.0", {lamp("lamp-a")}, next_seq, 0, acked}; }
}  // namespace

TEST_CASE("a gateway that moved here is answered once its last holder's acknowledged statuses have arrived") {
  BackplaneFixture f;
  held_elsewhere_up_to_2(f);
  f.router.gateway_message(f.gw, moved_hello(11, 10));
  CHECK(f.gw.gateway_got<proto::Ack>().empty());  // not yet: 3..10 are on their way
  // meanwhile a command is answered offline: the gateway is not online here yet
  f.router.browser_message(f.browser, proto::BrowserCommand{"c1", "lamp-a", Json{{"on", true}}, 5000});
  REQUIRE(f.browser.browser_got<proto::Result>().size() == 1);
  CHECK(f.browser.browser_got<proto::Result>()[0].outcome == Outcome::offline);
  CHECK(f.gw.gateway_got<proto::CommandMsg>().empty());

  f.router.remote_gateway_message("flat-a", "cloud-b", "gw-a", Fixture::batch(3, 6, "lamp-a"));
  CHECK(f.gw.gateway_got<proto::Ack>().empty());
  f.router.remote_gateway_message("flat-a", "cloud-b", "gw-a", Fixture::batch(7, 10, "lamp-a"));
  REQUIRE(f.gw.gateway_got<proto::Ack>().size() == 1);
  CHECK(f.gw.gateway_got<proto::Ack>()[0].seq == 10);
  CHECK(f.browser.browser_got<proto::Snapshot>().back().gateway_online);

  // the gateway goes on from 11; what cloud-b still sends is ignored now
  f.router.gateway_message(f.gw, Fixture::batch(11, 12, "lamp-a"));
  f.router.remote_gateway_message("flat-a", "cloud-b", "gw-a", Fixture::batch(9, 13, "lamp-a"));
  CHECK(update_seqs(f.browser) == std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  CHECK(f.metrics.backplane_catch_up_gaps == 0);
  // a second hello on the link is refused as before
  f.router.gateway_message(f.gw, moved_hello(13, 12));
  CHECK(f.gw.gateway_got<proto::Ack>().size() == 1);
}

TEST_CASE("what never arrives is waited for at most catch_up_ms, then counted as a gap") {
  BackplaneFixture f;
  f.config.backplane.catch_up_ms = 30;
  held_elsewhere_up_to_2(f);
  f.router.gateway_message(f.gw, moved_hello(21, 20));
  CHECK(f.gw.gateway_got<proto::Ack>().empty());
  f.router.remote_gateway_message("flat-a", "cloud-b", "gw-a", Fixture::batch(3, 5, "lamp-a"));
  testing::run_until(f.loop, [&] { return !f.gw.gateway_got<proto::Ack>().empty(); }, 2000);
  REQUIRE(f.gw.gateway_got<proto::Ack>().size() == 1);
  CHECK(f.gw.gateway_got<proto::Ack>()[0].seq == 5);  // resumes after what arrived
  CHECK(f.metrics.backplane_catch_up_gaps == 15);    // 6..20
  f.router.gateway_message(f.gw, Fixture::batch(21, 21, "lamp-a"));
  CHECK(update_seqs(f.browser) == std::vector<int64_t>{1, 2, 3, 4, 5, 21});
}

TEST_CASE("no wait without browsers here, for a restarted stream, or when the link goes") {
  SUBCASE("no browser: the backplane was not bringing the flat's statuses") {
    BackplaneFixture f;
    f.router.browser_disconnected(f.browser);
    f.router.gateway_connected(f.gw, "flat-a");
    f.router.gateway_message(f.gw, moved_hello(11, 10));
    CHECK(f.gw.gateway_got<proto::Ack>().size() == 1);
  }
  SUBCASE("the gateway lost its store: its stream starts again below what was seen") {
    BackplaneFixture f;
    held_elsewhere_up_to_2(f);
    f.router.gateway_message(f.gw, moved_hello(2, 1));
    CHECK(f.gw.gateway_got<proto::Ack>().size() == 1);
  }
  SUBCASE("the link closes while its hello waits: nothing is answered later") {
    BackplaneFixture f;
    f.config.backplane.catch_up_ms = 20;
    held_elsewhere_up_to_2(f);
    f.router.gateway_message(f.gw, moved_hello(11, 10));
    f.router.gateway_disconnected(f.gw);
    f.router.remote_gateway_message("flat-a", "cloud-b", "gw-a", Fixture::batch(3, 10, "lamp-a"));
    bool fired = false;
    Timer later(f.loop, [&] { fired = true; });
    later.start(60);
    testing::run_until(f.loop, [&] { return fired; }, 2000);
    CHECK(f.gw.gateway_got<proto::Ack>().empty());
    CHECK(f.metrics.backplane_catch_up_gaps == 0);
    CHECK(update_seqs(f.browser).size() == 10);  // shown as an earlier holder's statuses
  }
}

TEST_CASE("a holder's retained state is not a status received: the statuses it covers still come through, and only what arrived is acked") {
  BackplaneFixture f;
  f.router.remote_holder("flat-a", HolderClaim{"cloud-b", "cloud-b", 5, "gw-a"});
  RemoteState state = f.remote_online("cloud-b", 5);
  state.seq = 10;  // cloud-b had statuses up to 10 from its gateway
  state.devices[0].state = Json{{"on", true}};
  f.router.remote_state("flat-a", state);

  SUBCASE("statuses up to the state's seq arriving after it reach the browsers once, without turning the state back") {
    f.router.remote_gateway_message("flat-a", "cloud-b", "gw-a", Fixture::batch(1, 9, "lamp-a"));  // seq 9 says off
    f.router.remote_gateway_message("flat-a", "cloud-b", "gw-a", Fixture::batch(1, 9, "lamp-a"));  // again: duplicates
    CHECK(update_seqs(f.browser) == std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9});
    FakePeer late{"browser-late"};
    f.router.browser_connected(late);
    f.router.browser_message(late, proto::Login{"flat-a", "user", "pw-flat-a"});
    testing::run_until(f.loop, [&] { return !late.browser_got<proto::Snapshot>().empty(); });
    REQUIRE(late.browser_got<proto::Snapshot>().size() == 1);
    CHECK(late.browser_got<proto::Snapshot>()[0].devices.at(0).state == Json{{"on", true}});
    // the gateway moves here: acked up to what arrived (9), not to what the state covered (10)
    f.router.gateway_connected(f.gw, "flat-a");
    f.router.gateway_message(f.gw, moved_hello(11, 0));
    REQUIRE(f.gw.gateway_got<proto::Ack>().size() == 1);
    CHECK(f.gw.gateway_got<proto::Ack>()[0].seq == 9);
  }
  SUBCASE("none arrived: a gateway moving here resends them all") {
    f.router.gateway_connected(f.gw, "flat-a");
    f.router.gateway_message(f.gw, moved_hello(11, 0));
    REQUIRE(f.gw.gateway_got<proto::Ack>().size() == 1);
    CHECK(f.gw.gateway_got<proto::Ack>()[0].seq == 0);
    f.router.gateway_message(f.gw, Fixture::batch(1, 10, "lamp-a"));
    CHECK(update_seqs(f.browser).size() == 10);
  }
}

// ---- with a store whose database cannot be reached ----------------------------------------

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

TEST_CASE("with a store that cannot be reached, a login gets `unavailable` and the link stays open") {
  config::CloudConfig config = two_flats();
  config.store.enabled = true;
  config.store.engine = "postgresql";
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // a port nothing listens on
  config.store.url = "host=127.0.0.1 port=" + std::to_string(ntohs(addr.sin_port)) + " user=flatlink dbname=x connect_timeout=2";
  EventLoop loop{{}};
  ManualClock clock;
  Metrics metrics;
  Router router{config, loop, clock, metrics};
  FakePeer browser("browser");
  router.browser_connected(browser);
  router.browser_message(browser, proto::Login{"flat-a", "user", "pw-flat-a"});
  REQUIRE(browser.browser_got<proto::Error>().size() == 1);
  CHECK(browser.browser_got<proto::Error>()[0].code == "unavailable");
  CHECK(browser.closed_with == 0);
  CHECK_FALSE(router.browser_logged_in(browser));
  CHECK_FALSE(router.flat_for_token("token-flat-a"));  // nothing admitted without the store's accounts
}

// #20 finding 3: a watching instance checks the holder's continuity (each batch names the seq
// its previous one reached) and repairs a gap from the holder before it shows what follows.
TEST_CASE("a gap in the holder's batches is filled from the holder before later statuses are shown; what it cannot send is counted lost") {
  BackplaneFixture f;
  f.router.remote_holder("flat-a", HolderClaim{"cloud-b", "cloud-b", 5, "gw-a"});
  f.router.remote_state("flat-a", f.remote_online("cloud-b", 5));
  const auto status = [&](int64_t from, int64_t to, int64_t prev, bool resent = false) {
    f.router.remote_status(backplane::GatewayMessage{"flat-a", "cloud-b", "gw-a",
                                                     proto::GatewayToCloud{Fixture::batch(from, to, "lamp-a")}, "", prev,
                                                     resent});
  };
  const auto seqs = [](int64_t from, int64_t to) {
    std::vector<int64_t> out;
    for (int64_t s = from; s <= to; ++s) out.push_back(s);
    return out;
  };
  status(1, 2, 0);
  status(6, 7, 5);  // 3..5 never arrived: 6 and 7 wait, and so do the batches after them
  status(8, 9, 7);
  CHECK(update_seqs(f.browser) == seqs(1, 2));
  status(3, 5, 2, /*resent=*/true);
  f.router.remote_repaired(backplane::RepairDone{"flat-a", "cloud-b", "gw-a", "", 2, 5, 0});
  CHECK(update_seqs(f.browser) == seqs(1, 9));
  CHECK(f.metrics.backplane_gap_repaired == 3);
  CHECK(f.metrics.backplane_gap_lost == 0);

  // The holder no longer has 10 and 11: counted, and 12 is shown.
  status(12, 12, 11);
  f.router.remote_repaired(backplane::RepairDone{"flat-a", "cloud-b", "gw-a", "", 9, 11, 2});
  CHECK(update_seqs(f.browser).back() == 12);
  CHECK(f.metrics.backplane_gap_lost == 2);
  // An answer to a request already answered changes nothing.
  f.router.remote_repaired(backplane::RepairDone{"flat-a", "cloud-b", "gw-a", "", 9, 11, 2});
  CHECK(f.metrics.backplane_gap_lost == 2);

  // The broker lost this instance's session: the holder is asked for all after 12; what comes
  // meanwhile waits behind its answer.
  f.router.backplane_session_lost();
  status(16, 16, 15);
  CHECK(update_seqs(f.browser).back() == 12);
  status(13, 15, 12, true);
  f.router.remote_repaired(backplane::RepairDone{"flat-a", "cloud-b", "gw-a", "", 12, 15, 0});
  CHECK(update_seqs(f.browser).back() == 16);
  CHECK(update_seqs(f.browser).size() == 14);  // 1..9, 12, 13..16: each once, in order
  CHECK(f.metrics.backplane_gap_repaired == 6);

  // No answer at all: after the wait the missing ones are counted and the rest is shown.
  status(20, 20, 19);
  testing::run_until(f.loop, [&] { return update_seqs(f.browser).back() == 20; }, 5000);
  CHECK(update_seqs(f.browser).back() == 20);
  CHECK(f.metrics.backplane_gap_lost == 2 + 3);
}
