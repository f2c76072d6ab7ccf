// The flats' live state alone: links and their replacement, statuses (dedupe, unknown
// devices, a newer state from a holder), browsers, and a reload of the config's flats.
#include <doctest/doctest.h>

#include "cloud-server/auth.h"
#include "cloud-server/flats.h"
#include "cloud-server/history.h"
#include "tests/cloud-server/fake_peer.h"

using namespace flatlink;
using namespace flatlink::cloud;
using flatlink::cloud::test_support::FakePeer;

namespace {

config::FlatConfig flat_config(const std::string& id) {
  config::FlatConfig f;
  f.id = id;
  f.name = id;
  f.gateway_token_sha256 = hash_token("token-" + id);
  f.users.push_back({"user", "pbkdf2-sha256$1000$00$00"});
  return f;
}

proto::DeviceReport meter(const std::string& id) {
  proto::DeviceReport r;
  r.info.id = id;
  r.info.name = id;
  r.info.kind = "meter";
  r.info.capabilities = {Capability::number("w", 0, 10000, false)};
  r.state = Json{{"w", 0}};
  return r;
}

struct Fixture {
  config::CloudConfig config = [] {
    config::CloudConfig c;
    c.flats = {flat_config("flat-a"), flat_config("flat-b")};
    return c;
  }();
  Metrics metrics;
  ManualClock clock;
  History history{config, clock, metrics};
  Flats flats{config.flats, metrics, history};
  FakePeer gw{"gw"}, browser{"browser"}, other{"browser-b"};

  Fixture() {
    LiveFlat& a = flats.at("flat-a");
    flats.link_gateway(gw, a);
    a.hello = true;
    a.devices = devices_by_id({meter("m1")});
    flats.browser_connected(browser);
    flats.bind_browser(browser, a);
    flats.browser_connected(other);
    flats.bind_browser(other, flats.at("flat-b"));
  }
  proto::StatusItem item(int64_t seq, const std::string& device, double w) { return {seq, device, Json{{"w", w}}, seq}; }
};

}  // namespace

TEST_CASE("a status is applied once: a seen seq is a duplicate, an unknown device raises the seq but changes nothing") {
  Fixture f;
  LiveFlat& a = f.flats.at("flat-a");
  int64_t& last = a.last_seq["gw"];
  CHECK(f.flats.apply_status(a, f.item(1, "m1", 5), last) == Flats::StatusFate::applied);
  CHECK(f.flats.apply_status(a, f.item(1, "m1", 6), last) == Flats::StatusFate::duplicate);
  CHECK(f.flats.apply_status(a, f.item(2, "ghost", 7), last) == Flats::StatusFate::unknown_device);
  CHECK(last == 2);
  CHECK(a.devices.at("m1").state["w"] == Json(5));
  CHECK(f.browser.browser_got<proto::Update>().size() == 1);
  CHECK(f.other.browser_got<proto::Update>().empty());
  CHECK(f.history.points("flat-a", "m1", "w").size() == 1);
  CHECK(f.metrics.duplicate_statuses == 1);
  CHECK(f.metrics.statuses == 1);
}

TEST_CASE("a status older than the holder's state it is covered by is shown and kept, but does not turn the state back") {
  Fixture f;
  LiveFlat& a = f.flats.at("flat-a");
  a.devices.at("m1").state["w"] = 50;
  int64_t last = 0;
  CHECK(f.flats.apply_status(a, f.item(3, "m1", 1), last, 10) == Flats::StatusFate::applied);
  CHECK(a.devices.at("m1").state["w"] == Json(50));
  CHECK(f.browser.browser_got<proto::Update>().size() == 1);
  CHECK(f.history.points("flat-a", "m1", "w").size() == 1);
}

TEST_CASE("a second link replaces the first: closed with 4001, and the old link's close leaves the flat online") {
  Fixture f;
  LiveFlat& a = f.flats.at("flat-a");
  FakePeer newer("gw-2");
  f.flats.link_gateway(newer, a);
  CHECK(f.gw.closed_with == proto::close_code::kReplaced);
  CHECK(f.flats.current_flat_of(f.gw) == nullptr);
  CHECK(f.flats.current_flat_of(newer) == &a);
  LiveFlat* offline = &a;
  CHECK(f.flats.gateway_closed(f.gw, offline));
  CHECK(offline == nullptr);  // a replaced link: the flat is not offline
  CHECK(a.gateway == &newer);
  CHECK(f.flats.gateway_closed(newer, offline));
  CHECK(offline == &a);
  CHECK(a.gateway == nullptr);
  FakePeer stranger("stranger");
  CHECK_FALSE(f.flats.gateway_closed(stranger, offline));
  CHECK(f.metrics.gateway_links == 0);
}

TEST_CASE("a reload: a removed flat admits nobody and its links close; a new token closes the gateway; changed users close the browsers") {
  Fixture f;
  const std::vector<config::FlatConfig> before = f.config.flats;
  SUBCASE("removed") {
    f.config.flats = {flat_config("flat-b"), flat_config("flat-c")};
    const std::string summary = f.flats.reload(before);
    CHECK(summary.find("1 added, 1 removed") != std::string::npos);
    CHECK(f.gw.closed_with == proto::close_code::kUnauthorized);
    CHECK(f.browser.closed_with == proto::close_code::kUnauthorized);
    CHECK(f.other.closed_with == 0);
    REQUIRE(f.flats.find("flat-a"));  // kept for its peers, retired
    CHECK(f.flats.at("flat-a").config->gateway_token_sha256.empty());
    CHECK(f.flats.at("flat-a").config->users.empty());
    CHECK(f.flats.find("flat-c"));
  }
  SUBCASE("token and users changed") {
    f.config.flats[0].gateway_token_sha256 = hash_token("new");
    f.config.flats[1].users.push_back({"guest", "pbkdf2-sha256$1000$00$00"});
    f.flats.reload(before);
    CHECK(f.gw.closed_with == proto::close_code::kUnauthorized);
    CHECK(f.browser.closed_with == 0);
    CHECK(f.other.closed_with == proto::close_code::kUnauthorized);
    CHECK(f.flats.at("flat-a").config == &f.config.flats[0]);  // re-pointed at the new config
  }
}

TEST_CASE("gateway ids named by hellos are bounded per flat: a gateway naming a new id each time cannot grow the maps") {
  LiveFlat flat;
  // What the Router does with each hello: bound, then record the hello's gateway id.
  const auto hello = [&](const std::string& id) {
    const size_t forgotten = flat.bound_gateway_ids(id);
    flat.last_seq[id] = 5;
    flat.epoch_of[id] = "e1";
    flat.state_seq[id] = 3;
    flat.earlier_epochs[id + "/e0"] = 2;
    return forgotten;
  };
  // A legitimate history (a few renames) keeps every id and its resume point.
  for (const char* id : {"gw-a", "gw-b", "gw-c", "gw-d"}) CHECK(hello(id) == 0);
  CHECK(flat.last_seq.size() == 4);
  CHECK(hello("gw-a") == 0);  // a known id again: nothing forgotten
  for (int i = 0; i < 1000; ++i) hello("forged-" + std::to_string(i));
  CHECK(flat.last_seq.size() <= LiveFlat::kMaxGatewayIds + 1);
  CHECK(flat.epoch_of.size() <= LiveFlat::kMaxGatewayIds + 1);
  CHECK(flat.state_seq.size() <= LiveFlat::kMaxGatewayIds + 1);
  CHECK(flat.earlier_epochs.size() <= LiveFlat::kMaxGatewayIds + 1);
  CHECK(flat.last_seq.count("forged-999") == 1);  // the current one is always kept
}

// Finding 11 of issue #19, its last map: the in-memory history (and a device's state) kept a
// series for every key a status ever named, and for devices the gateway no longer lists. A
// device keeps at most the protocol's max_state_keys values; a device list forgets the
// history of the devices and values it no longer has.
TEST_CASE("statuses naming a new key each time grow neither a device's state nor the history past max_state_keys") {
  Fixture f;
  LiveFlat& a = f.flats.at("flat-a");
  int64_t& last = a.last_seq["gw"];
  const size_t max_keys = proto::Limits{}.max_state_keys;
  const size_t before = f.history.series();
  for (int i = 1; i <= 1000; ++i) {
    CHECK(f.flats.apply_status(a, proto::StatusItem{i, "m1", Json{{"k" + std::to_string(i), i}}, i}, last) ==
          Flats::StatusFate::applied);
  }
  CHECK(a.devices.at("m1").state.size() == max_keys);
  CHECK(f.history.series() - before <= max_keys);
  CHECK(f.metrics.dropped_state_keys == 1000 - (max_keys - 1));  // "w" was the device's first key
  // A key it has keeps being applied, shown and kept.
  CHECK(f.flats.apply_status(a, f.item(1001, "m1", 42), last) == Flats::StatusFate::applied);
  CHECK(a.devices.at("m1").state["w"] == Json(42));
  CHECK(f.history.points("flat-a", "m1", "w").back().value == Json(42));
  // What browsers are sent is what was kept: no update names a dropped key.
  for (const proto::Update& update : f.browser.browser_got<proto::Update>()) {
    for (const auto& [key, value] : update.state.items()) CHECK(a.devices.at("m1").state.contains(key));
  }
}

TEST_CASE("a device list forgets the history of the devices and values it no longer lists") {
  Fixture f;
  LiveFlat& a = f.flats.at("flat-a");
  a.devices = devices_by_id({meter("m1"), meter("m2")});
  int64_t& last = a.last_seq["gw"];
  f.flats.apply_status(a, f.item(1, "m1", 1), last);
  f.flats.apply_status(a, f.item(2, "m2", 2), last);
  f.history.record("flat-b", "m2", Json{{"w", 3}}, 3);  // another flat's device of the same name
  REQUIRE(f.history.points("flat-a", "m2", "w").size() == 1);
  const size_t before = f.history.series();
  f.flats.apply_device_list(a, proto::DeviceList{{meter("m1")}});
  CHECK(f.history.points("flat-a", "m2", "w").empty());
  CHECK(f.history.points("flat-a", "m1", "w").size() == 1);
  CHECK(f.history.points("flat-b", "m2", "w").size() == 1);
  CHECK(f.history.series() == before - 1);
}
