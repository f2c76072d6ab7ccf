// An owner's names and rooms for the flat's devices: the `device_label` message's decoding,
// the store's rows (store_device_labels.h) on SQLite and PostgreSQL, and the router with a
// real SQLite store (owner only, the flat's own devices, bad input, applied over the
// gateway's name and room for every browser of the flat, kept across a restart).
#include <doctest/doctest.h>

#include <unistd.h>

#include "cloud-link/protocol.h"
#include "cloud-server/auth.h"
#include "cloud-server/router.h"
#include "cloud-server/store/store_device_labels.h"
#include "tests/cloud-server/fake_peer.h"
#include "tests/cloud-server/postgres_fixture.h"
#include "tests/run_until.h"

using namespace flatlink;
using namespace flatlink::cloud;
using namespace flatlink::cloud::store;
using flatlink::cloud::test_support::FakePeer;

TEST_CASE("the device_label message: device, name and room (empty allowed), an optional id; strict about the rest") {
  auto ok = proto::decode_from_browser(R"({"type":"device_label","id":"l-1","device":"lamp-1","name":"Reading lamp","room":""})");
  REQUIRE(std::holds_alternative<proto::BrowserToCloud>(ok));
  const auto& label = std::get<proto::DeviceLabelRequest>(std::get<proto::BrowserToCloud>(ok));
  CHECK(label.id == "l-1");
  CHECK(label.device == "lamp-1");
  CHECK(label.name == "Reading lamp");
  CHECK(label.room.empty());
  CHECK(proto::encode(label) == R"({"device":"lamp-1","id":"l-1","name":"Reading lamp","room":"","type":"device_label"})");
  CHECK(std::holds_alternative<proto::BrowserToCloud>(
      proto::decode_from_browser(R"({"type":"device_label","device":"lamp-1","name":"","room":""})")));
  const std::string long_name(1025, 'a');
  const std::string refused[] = {
      R"({"type":"device_label","device":"lamp-1","name":"x"})",
      R"({"type":"device_label","device":"lamp-1","room":"x"})",
      R"({"type":"device_label","name":"x","room":"y"})",
      R"({"type":"device_label","device":"lamp 1","name":"x","room":"y"})",
      R"({"type":"device_label","device":"lamp-1","name":5,"room":"y"})",
      R"({"type":"device_label","device":"lamp-1","name":"x","room":"y","extra":1})",
      R"({"type":"device_label","device":"lamp-1","name":")" + long_name + R"(","room":"y"})",
  };
  for (const auto& text : refused) {
    CAPTURE(text);
    CHECK_FALSE(std::holds_alternative<proto::BrowserToCloud>(proto::decode_from_browser(text)));
  }
}

namespace {

void label_rows(Database& db) {
  db.add_flat("flat-l", "Flat L");
  const int64_t version = db.accounts_version();
  CHECK_FALSE(set_device_label(db, {"no-such-flat", "lamp-1", "A", "B", "anna", 1}));
  CHECK(device_labels(db).empty());
  REQUIRE(set_device_label(db, {"flat-l", "lamp-1", "Reading lamp", "Study", "anna", 1}));
  CHECK(db.accounts_version() > version);  // every instance reads the labels again
  auto row = device_label(db, "flat-l", "lamp-1");
  REQUIRE(row);
  CHECK(*row == DeviceLabelRow{"flat-l", "lamp-1", "Reading lamp", "Study", "anna", 1});
  REQUIRE(set_device_label(db, {"flat-l", "lamp-1", "", "Hall", "bert", 2}));  // the gateway's name, a room
  CHECK(device_label(db, "flat-l", "lamp-1")->name.empty());
  CHECK(device_label(db, "flat-l", "lamp-1")->room == "Hall");
  REQUIRE(set_device_label(db, {"flat-l", "door-1", "Front door", "", "anna", 3}));
  CHECK(device_labels(db).size() == 2);
  CHECK(device_labels(db)[0].device == "door-1");  // ordered by flat and device
  const int64_t before_clear = db.accounts_version();
  REQUIRE(set_device_label(db, {"flat-l", "lamp-1", "", "", "anna", 4}));  // both empty: removed
  CHECK_FALSE(device_label(db, "flat-l", "lamp-1"));
  CHECK(db.accounts_version() > before_clear);
  CHECK(db.remove_flat("flat-l"));
  CHECK(device_labels(db).empty());  // gone with its flat
}

}  // namespace

TEST_CASE("sqlite: a device's label is set, replaced, cleared back to the gateway's, and goes with its flat") {
  char tmpl[] = "/tmp/flatlink-labels-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  Database db(open_sqlite(dir + "/store.db"));
  db.migrate();
  label_rows(db);
}

TEST_CASE("postgresql: a device's label is set, replaced, cleared back to the gateway's, and goes with its flat") {
  auto& pg = test_support::Postgres::instance();
  if (!pg.available()) {
    MESSAGE(pg.why_not());
    return;
  }
  Database db(open_postgres(pg.fresh_database()));
  db.migrate();
  label_rows(db);
}

namespace {

proto::DeviceReport lamp(const std::string& id, const std::string& name, const std::string& room) {
  proto::DeviceReport r;
  r.info.id = id;
  r.info.name = name;
  r.info.kind = "lamp";
  r.info.room = room;
  r.info.capabilities = {Capability::boolean("on", true)};
  r.state = Json{{"on", false}};
  r.online = true;
  return r;
}

// Two flats in an SQLite store made before the cloud starts: flat-a's anna an owner, ben a
// member; flat-b's carl an owner.
struct LabelFixture {
  std::string path;
  config::CloudConfig config;

  LabelFixture() {
    char tmpl[] = "/tmp/flatlink-labels-router-XXXXXX";
    path = std::string(::mkdtemp(tmpl)) + "/store.db";
    config.store.enabled = true;
    config.store.path = path;
    config.store.poll_ms = 50;
    config.limits.command_timeout_ms = 200;
    Database db(open_sqlite(path));
    db.migrate();
    const Argon2Params cheap{1, 64, 1};
    for (const char* flat : {"flat-a", "flat-b"}) {
      db.add_flat(flat, flat);
      db.set_gateway_token(flat, hash_token(std::string("token-") + flat));
    }
    db.add_user("anna", hash_password("pw-anna", cheap));
    db.add_user("ben", hash_password("pw-ben", cheap));
    db.add_user("carl", hash_password("pw-carl", cheap));
    db.set_member("flat-a", "anna", Role::owner);
    db.set_member("flat-a", "ben", Role::member);
    db.set_member("flat-b", "carl", Role::owner);
  }
};

// One running cloud (a Router with its loop) on the fixture's store.
struct Cloud {
  EventLoop loop{{}};
  ManualClock clock;
  Metrics metrics;
  Router router;
  FakePeer gw_a{"gw-a"}, gw_b{"gw-b"};

  explicit Cloud(const config::CloudConfig& config) : router(config, loop, clock, metrics) {
    router.gateway_connected(gw_a, "flat-a");
    router.gateway_message(gw_a, proto::Hello{"gw-a", "0.1.0", {lamp("lamp-1", "Lamp", "Living room")}, 1, 0});
    router.gateway_connected(gw_b, "flat-b");
    router.gateway_message(gw_b, proto::Hello{"gw-b", "0.1.0", {lamp("lamp-b", "Lamp B", "")}, 1, 0});
  }

  template <class F>
  bool run_until(F cond, uint32_t max_ms = 3000) {
    testing::run_until(loop, cond, max_ms);
    return cond();
  }

  void login(FakePeer& browser, const std::string& flat, const std::string& user) {
    router.browser_connected(browser);
    router.browser_message(browser, proto::Login{flat, user, "pw-" + user});
    REQUIRE(run_until([&] { return router.browser_logged_in(browser) || browser.closed_with != 0; }));
    REQUIRE(router.browser_logged_in(browser));
  }
};

// The JSON frames of a type a peer was sent (the browser decoder does not know every answer).
std::vector<Json> frames(const FakePeer& peer, const std::string& type) {
  std::vector<Json> out;
  for (const auto& f : peer.sent) {
    Json j = Json::parse(f, nullptr, false);
    if (j.is_object() && j.value("type", "") == type) out.push_back(j);
  }
  return out;
}

// The device as the peer's latest snapshot or devices message shows it.
Json shown(const FakePeer& peer, const std::string& device) {
  Json last;
  for (const auto& f : peer.sent) {
    Json j = Json::parse(f, nullptr, false);
    if (!j.is_object() || (j.value("type", "") != "snapshot" && j.value("type", "") != "devices")) continue;
    for (const auto& d : j["devices"]) {
      if (d.value("id", "") == device) last = d;
    }
  }
  return last;
}

proto::DeviceLabelRequest label(const std::string& id, const std::string& device, const std::string& name,
                                const std::string& room) {
  return {id, device, name, room};
}

}  // namespace

TEST_CASE("an owner's label is shown over the gateway's name and room to every browser of the flat, and to no other") {
  LabelFixture f;
  Cloud cloud(f.config);
  FakePeer anna("anna"), ben("ben"), carl("carl");
  cloud.login(anna, "flat-a", "anna");
  cloud.login(ben, "flat-a", "ben");
  cloud.login(carl, "flat-b", "carl");
  CHECK(shown(ben, "lamp-1")["name"] == "Lamp");
  const size_t carl_frames = carl.sent.size();

  cloud.router.browser_message(anna, label("l-1", "lamp-1", "  Reading lamp ", "Study"));
  REQUIRE(cloud.run_until([&] { return !frames(anna, "device_label").empty(); }));
  const Json answer = frames(anna, "device_label")[0];
  CHECK(answer == Json{{"type", "device_label"}, {"id", "l-1"}, {"device", "lamp-1"}, {"name", "Reading lamp"}, {"room", "Study"}});
  for (FakePeer* browser : {&anna, &ben}) {
    CAPTURE(browser->describe());
    REQUIRE(frames(*browser, "devices").size() == 1);
    CHECK(shown(*browser, "lamp-1")["name"] == "Reading lamp");
    CHECK(shown(*browser, "lamp-1")["room"] == "Study");
    CHECK(shown(*browser, "lamp-1")["state"] == Json{{"on", false}});  // the state as it is
  }
  CHECK(carl.sent.size() == carl_frames);  // another flat hears nothing of it

  // A later snapshot (a new login) and the gateway's next device list keep the label.
  FakePeer anna2("anna-2");
  cloud.login(anna2, "flat-a", "anna");
  CHECK(shown(anna2, "lamp-1")["name"] == "Reading lamp");
  cloud.router.gateway_message(cloud.gw_a, proto::DeviceList{{lamp("lamp-1", "Lamp", "Living room"), lamp("lamp-2", "Lamp 2", "Hall")}});
  CHECK(shown(ben, "lamp-1")["name"] == "Reading lamp");
  CHECK(shown(ben, "lamp-1")["room"] == "Study");
  CHECK(shown(ben, "lamp-2")["name"] == "Lamp 2");

  // Only the room: the gateway's name comes back, the room stays the owner's.
  cloud.router.browser_message(anna, label("l-2", "lamp-1", "", "Study"));
  REQUIRE(cloud.run_until([&] { return frames(anna, "device_label").size() == 2; }));
  CHECK(shown(ben, "lamp-1")["name"] == "Lamp");
  CHECK(shown(ben, "lamp-1")["room"] == "Study");
  // Both empty: the gateway's name and room again, and the store's row is gone.
  cloud.router.browser_message(anna, label("l-3", "lamp-1", "", " "));
  REQUIRE(cloud.run_until([&] { return frames(anna, "device_label").size() == 3; }));
  CHECK(shown(ben, "lamp-1")["room"] == "Living room");
  Database db(open_sqlite(f.path));
  CHECK(device_labels(db).empty());
}

TEST_CASE("a member, another flat's device, an unknown one, bad names: each refused with its code, nothing changes") {
  LabelFixture f;
  Cloud cloud(f.config);
  FakePeer anna("anna"), ben("ben");
  cloud.login(anna, "flat-a", "anna");
  cloud.login(ben, "flat-a", "ben");
  const auto refused = [&](FakePeer& browser, const proto::DeviceLabelRequest& request) {
    const size_t before = frames(browser, "error").size();
    cloud.router.browser_message(browser, request);
    REQUIRE(cloud.run_until([&] { return frames(browser, "error").size() > before; }));
    return frames(browser, "error").back();
  };
  Json e = refused(ben, label("l-1", "lamp-1", "Mine", "Kitchen"));
  CHECK(e["code"] == "forbidden");
  CHECK(e["id"] == "l-1");
  CHECK(e["message"].get<std::string>().find("owner") != std::string::npos);
  e = refused(anna, label("l-2", "lamp-b", "Theirs", ""));  // flat-b's lamp
  CHECK(e["code"] == "unknown_device");
  CHECK(e["message"].get<std::string>().find("lamp-b") != std::string::npos);
  CHECK(refused(anna, label("l-3", "no-such", "X", ""))["code"] == "unknown_device");
  e = refused(anna, label("l-4", "lamp-1", std::string(65, 'x'), ""));
  CHECK(e["code"] == "bad_label");
  CHECK(e["message"] == "name: at most 64 characters, got 65");
  CHECK(refused(anna, label("l-5", "lamp-1", "", std::string(64, 'x') + "\xc3\xa4"))["code"] == "bad_label");
  e = refused(anna, label("l-6", "lamp-1", "Lamp\nrm", ""));
  CHECK(e["code"] == "bad_label");
  CHECK(e["message"] == "name: no control characters");
  CHECK(refused(anna, label("l-7", "lamp-1", "", "Hall\xc2\x85"))["code"] == "bad_label");  // U+0085, a C1 control
  // 64 characters of two bytes each are fine.
  std::string umlauts;
  for (int i = 0; i < 64; ++i) umlauts += "\xc3\xa4";
  cloud.router.browser_message(anna, label("l-8", "lamp-1", umlauts, ""));
  REQUIRE(cloud.run_until([&] { return !frames(anna, "device_label").empty(); }));
  CHECK(shown(ben, "lamp-1")["name"] == umlauts);
  Database db(open_sqlite(f.path));
  REQUIRE(device_labels(db).size() == 1);  // only the good one
  CHECK(ben.closed_with == 0);
  CHECK(anna.closed_with == 0);
}

TEST_CASE("a label is kept across a restart of the cloud, and another instance on the same store takes it at its poll") {
  LabelFixture f;
  {
    Cloud cloud(f.config);
    FakePeer anna("anna");
    cloud.login(anna, "flat-a", "anna");
    cloud.router.browser_message(anna, label("", "lamp-1", "Reading lamp", "Study"));
    REQUIRE(cloud.run_until([&] { return !frames(anna, "device_label").empty(); }));
    CHECK_FALSE(frames(anna, "device_label")[0].contains("id"));
  }
  Cloud restarted(f.config);
  FakePeer ben("ben");
  restarted.login(ben, "flat-a", "ben");
  CHECK(shown(ben, "lamp-1")["name"] == "Reading lamp");
  CHECK(shown(ben, "lamp-1")["room"] == "Study");

  // Another writer on the same store (another instance): seen here at the next poll.
  {
    Database db(open_sqlite(f.path));
    REQUIRE(set_device_label(db, {"flat-a", "lamp-1", "Desk lamp", "", "anna", 5}));
  }
  REQUIRE(restarted.run_until([&] { return shown(ben, "lamp-1")["name"] == "Desk lamp"; }));
  CHECK(shown(ben, "lamp-1")["room"] == "Living room");
}

TEST_CASE("without a store the cloud answers device_label with unavailable") {
  config::CloudConfig config;
  config::FlatConfig flat;
  flat.id = "flat-a";
  flat.name = "A";
  flat.gateway_token_sha256 = hash_token("token-flat-a");
  flat.users.push_back({"anna", hash_password("pw-anna", Argon2Params{1, 64, 1})});
  config.flats.push_back(flat);
  EventLoop loop{{}};
  ManualClock clock;
  Metrics metrics;
  Router router(config, loop, clock, metrics);
  FakePeer gw("gw"), anna("anna");
  router.gateway_connected(gw, "flat-a");
  router.gateway_message(gw, proto::Hello{"gw-a", "0.1.0", {lamp("lamp-1", "Lamp", "")}, 1, 0});
  router.browser_connected(anna);
  router.browser_message(anna, proto::Login{"flat-a", "anna", "pw-anna"});
  testing::run_until(loop, [&] { return router.browser_logged_in(anna); });
  REQUIRE(router.browser_logged_in(anna));
  router.browser_message(anna, label("l-1", "lamp-1", "X", ""));
  const auto errors = frames(anna, "error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0]["code"] == "unavailable");
  CHECK(errors[0]["id"] == "l-1");
  CHECK(errors[0]["message"] == "device names and rooms need the cloud's store");
}
