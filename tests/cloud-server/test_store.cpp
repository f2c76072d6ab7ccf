// The store's database, one suite run against both engines: SQLite (a fresh file) and
// PostgreSQL (a fresh database on the server tests/postgres.sh starts once per binary).
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

#include "cloud-server/auth.h"
#include "cloud-server/store/store.h"
#include "cloud-server/store/store_device_labels.h"
#include "cloud-server/store/store_webhooks.h"
#include "tests/cloud-server/postgres_fixture.h"

using namespace flatlink;
using namespace flatlink::cloud;
using namespace flatlink::cloud::store;
using flatlink::cloud::test_support::Postgres;

namespace {

std::string temp_path(const std::string& name) {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/flatlink-store-XXXXXX";
    return std::string(::mkdtemp(tmpl));
  }();
  static int n = 0;
  return dir + "/" + name + std::to_string(++n) + ".db";
}

std::unique_ptr<Database> fresh_sqlite(int version = -1) {
  auto db = std::make_unique<Database>(open_sqlite(temp_path("store")));
  db->migrate(version);
  return db;
}

std::unique_ptr<Database> fresh_postgres(int version = -1) {
  Postgres& pg = Postgres::instance();
  if (!pg.available()) {
    MESSAGE(pg.why_not());
    return nullptr;
  }
  auto db = std::make_unique<Database>(open_postgres(pg.fresh_database()));
  db->migrate(version);
  return db;
}

}  // namespace

// One test body, run on each engine.
#define STORE_TEST(fn, title)                           \
  static void fn(Database& db);                         \
  TEST_CASE("sqlite: " title) {                         \
    auto db = fresh_sqlite();                           \
    fn(*db);                                            \
  }                                                     \
  TEST_CASE("postgresql: " title) {                     \
    if (auto db = fresh_postgres()) fn(*db);            \
  }                                                     \
  static void fn(Database& db)

STORE_TEST(migrations_from_empty, "migrations from an empty database reach the latest version, and again changes nothing") {
  CHECK(db.schema_version() == Database::latest_version());
  CHECK(db.migrate() == Database::latest_version());
  CHECK(db.accounts_version() >= 1);
}

STORE_TEST(accounts_crud, "flats, gateways, users and memberships: added, listed, changed, removed; each change counted") {
  int64_t v = db.accounts_version();
  const auto bumped = [&] {
    const int64_t now = db.accounts_version();
    const bool up = now > v;
    v = now;
    return up;
  };
  db.add_flat("flat-a", "Flat A");
  CHECK(bumped());
  CHECK_THROWS_AS(db.add_flat("flat-a", "again"), StoreError);
  CHECK_FALSE(bumped());
  db.add_flat("flat-b", "Flat B");
  CHECK(db.set_gateway_token("flat-a", hash_token("tok-a")));
  CHECK_FALSE(db.set_gateway_token("flat-x", hash_token("tok-x")));
  CHECK(db.flats().at(0).gateway_token_sha256 == hash_token("tok-a"));
  CHECK(db.flats().at(1).gateway_token_sha256.empty());
  // A token hash names one flat only.
  CHECK_THROWS_AS(db.set_gateway_token("flat-b", hash_token("tok-a")), StoreError);
  CHECK(db.set_gateway_token("flat-a", hash_token("tok-a2")));  // rotate
  CHECK(db.flats().at(0).gateway_token_sha256 == hash_token("tok-a2"));
  bumped();

  db.add_user("anna", hash_password("pw", Argon2Params{1, 64, 1}));
  db.add_user("op", hash_password("pw", Argon2Params{1, 64, 1}), true);
  CHECK_THROWS_AS(db.add_user("anna", "x"), StoreError);
  CHECK(db.set_member("flat-a", "anna", Role::owner));
  CHECK(db.set_member("flat-b", "anna", Role::guest, 123));
  CHECK_FALSE(db.set_member("flat-x", "anna", Role::member));
  CHECK_FALSE(db.set_member("flat-a", "nobody", Role::member));
  CHECK(db.set_member("flat-a", "anna", Role::member));  // a role change
  auto members = db.members();
  REQUIRE(members.size() == 2);
  CHECK(members[0].flat == "flat-a");
  CHECK(members[0].role == Role::member);
  CHECK(members[1].role == Role::guest);
  CHECK(members[1].expires == 123);
  CHECK(db.members("flat-b").size() == 1);
  CHECK(bumped());

  AccountsSnapshot snap = db.accounts();
  CHECK(snap.version == v);
  CHECK(snap.flats.size() == 2);
  CHECK(snap.users.size() == 2);
  CHECK(snap.users.at(1).is_operator);

  CHECK(db.set_password("anna", hash_password("new", Argon2Params{1, 64, 1})));
  CHECK(verify_password("new", db.users().at(0).password_hash));
  CHECK_FALSE(db.set_password("nobody", "x"));
  CHECK(db.revoke_gateway("flat-a"));
  CHECK_FALSE(db.revoke_gateway("flat-a"));
  CHECK(db.flats().at(0).gateway_token_sha256.empty());
  CHECK(db.remove_member("flat-b", "anna"));
  CHECK_FALSE(db.remove_member("flat-b", "anna"));
  CHECK(db.remove_flat("flat-a"));  // with its memberships
  CHECK(db.members().empty());
  CHECK_FALSE(db.remove_flat("flat-a"));
  CHECK(db.remove_user("anna"));
  CHECK(db.users().size() == 1);
  CHECK(bumped());
}

STORE_TEST(import_json, "today's JSON flats import once: flats, token hashes, users as owners; a name with two passwords is refused whole") {
  std::vector<config::FlatConfig> flats(2);
  flats[0].id = "flat-a";
  flats[0].name = "A";
  flats[0].gateway_token_sha256 = hash_token("ta");
  flats[0].users = {{"anna", "hash-1"}, {"ben", "hash-2"}};
  flats[1].id = "flat-b";
  flats[1].name = "B";
  flats[1].gateway_token_sha256 = hash_token("tb");
  flats[1].users = {{"anna", "hash-1"}};
  CHECK(db.import_flats(flats) == "2 flats, 3 users imported");
  CHECK(db.flats().size() == 2);
  CHECK(db.users().size() == 2);
  CHECK(db.members().size() == 3);
  CHECK(db.members().at(0).role == Role::owner);
  CHECK(db.import_flats(flats) == "2 flats, 3 users imported");  // again: the same rows
  CHECK(db.members().size() == 3);

  flats[1].users = {{"anna", "another-hash"}};
  flats[1].id = "flat-c";
  CHECK_THROWS_WITH_AS(db.import_flats(flats), doctest::Contains("another password"), StoreError);
  CHECK(db.flats().size() == 2);  // nothing of it
}

TEST_CASE("sqlite: migrating from the previous version keeps the data") {
  const std::string path = temp_path("upgrade");
  {
    Database old(open_sqlite(path));
    CHECK(old.migrate(Database::latest_version() - 1) == Database::latest_version() - 1);
    old.add_flat("flat-a", "A");
  }
  Database db(open_sqlite(path));
  CHECK(db.schema_version() == Database::latest_version() - 1);
  CHECK(db.migrate() == Database::latest_version());
  CHECK(db.flats().at(0).id == "flat-a");
}

// Issue #21: the cloud starting while `flatlink-cloud admin` runs on the same fresh SQLite
// file: both migrate. Each migration now reads the version under the write lock (BEGIN
// IMMEDIATE); before, both read 0 and one failed ("table flats already exists").
TEST_CASE("sqlite: migrations run side by side on one file (the cloud and an admin command) both end at the latest version") {
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    const std::string path = temp_path("race");
    std::atomic<int> ready{0};
    std::string errors[2];
    int versions[2] = {0, 0};
    auto run = [&](int i) {
      try {
        std::optional<Database> db;
        try {
          db.emplace(open_sqlite(path));
        } catch (...) {
          ++ready;  // never leave the other thread waiting
          throw;
        }
        ++ready;
        while (ready.load() < 2) std::this_thread::yield();
        versions[i] = db->migrate();
      } catch (const StoreError& e) {
        errors[i] = e.what();
      }
    };
    std::thread a(run, 0);
    std::thread b(run, 1);
    a.join();
    b.join();
    CHECK(errors[0] == "");
    CHECK(errors[1] == "");
    CHECK(versions[0] == Database::latest_version());
    CHECK(versions[1] == Database::latest_version());
    Database db(open_sqlite(path));
    CHECK(db.connection().query("SELECT COUNT(*) FROM schema_migrations").at(0).at(0) ==
          std::to_string(Database::latest_version()));  // each migration once
  }
}

// A write that reads first (is the flat there?) on one connection while another holds the
// write lock: in a deferred transaction SQLite refuses the upgrade from reading to writing
// ("database is locked", the busy timeout not applied) once the other has written; each write
// transaction takes the write lock at its BEGIN instead, so it waits its turn.
TEST_CASE("sqlite: a write that reads first waits for another connection's write and then succeeds") {
  const std::string path = temp_path("turns");
  Database a(open_sqlite(path));
  a.migrate();
  a.add_flat("flat-a", "A");
  Database b(open_sqlite(path));
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    std::atomic<bool> holding{false};
    std::thread other([&] {
      b.connection().query("BEGIN IMMEDIATE");
      b.connection().query("UPDATE accounts_version SET version = version + 1 WHERE id = 1");
      holding = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      b.connection().query("COMMIT");
    });
    while (!holding.load()) std::this_thread::yield();
    std::string error;
    try {
      if (round == 0) {
        CHECK(set_device_label(a, {"flat-a", "lamp-1", "Desk lamp", "", "anna", 5}));
      } else {
        CHECK(set_webhook(a, {"flat-a", "https://example.com/hook", "secret", {"door_unlocked"}, 5}));
      }
    } catch (const StoreError& e) {
      error = e.what();
    }
    other.join();
    CHECK(error == "");
  }
  CHECK(device_labels(a).size() == 1);
}

TEST_CASE("postgresql: migrating from the previous version keeps the data") {
  Postgres& pg = Postgres::instance();
  if (!pg.available()) {
    MESSAGE(pg.why_not());
    return;
  }
  const std::string conninfo = pg.fresh_database();
  {
    Database old(open_postgres(conninfo));
    CHECK(old.migrate(Database::latest_version() - 1) == Database::latest_version() - 1);
    old.add_flat("flat-a", "A");
  }
  Database db(open_postgres(conninfo));
  CHECK(db.migrate() == Database::latest_version());
  CHECK(db.flats().at(0).id == "flat-a");
}

TEST_CASE("a database newer than this build is refused, and an unreachable server is a clear error") {
  const std::string path = temp_path("newer");
  {
    Database db(open_sqlite(path));
    db.migrate();
    db.connection().query("INSERT INTO schema_migrations (version, what, applied) VALUES (999, 'future', 0)");
  }
  Database db(open_sqlite(path));
  CHECK_THROWS_WITH_AS(db.migrate(), doctest::Contains("newer than this build"), StoreError);
  CHECK_THROWS_WITH_AS(open_postgres("host=127.0.0.1 port=" + std::to_string(test_support::free_loopback_port()) +
                                     " user=flatlink dbname=x connect_timeout=2"),
                       doctest::Contains("cannot connect"), StoreError);
}

// ---- the worker: calls off the loop, results on it ----------------------------------------

#include "cloud-server/store/worker.h"
#include "tests/run_until.h"

TEST_CASE("the worker runs calls on its thread and posts results to the loop; an unreachable database gives a null one") {
  EventLoop loop{{}};
  config::StoreConfig good;
  good.enabled = true;
  good.path = temp_path("worker");
  store::Worker worker(good, loop);
  std::optional<int> version;
  REQUIRE(worker.call<int>([](Database* db) { return db ? db->schema_version() : -1; },
                           [&](int v) { version = v; }));
  testing::run_until(loop, [&] { return version.has_value(); });
  CHECK(version == Database::latest_version());  // migrated when opened
  CHECK(worker.connected());

  config::StoreConfig away;
  away.enabled = true;
  away.engine = "postgresql";
  away.url = "host=127.0.0.1 port=" + std::to_string(test_support::free_loopback_port()) +
             " user=flatlink dbname=x connect_timeout=2";
  away.queue_max = 100;
  store::Worker down(away, loop);
  std::optional<bool> got_null;
  REQUIRE(down.call<bool>([](Database* db) { return db == nullptr; }, [&](bool n) { got_null = n; }));
  testing::run_until(loop, [&] { return got_null.has_value(); }, 5000);
  CHECK(got_null == true);
  CHECK_FALSE(down.connected());
  CHECK(down.last_error().find("cannot connect") != std::string::npos);
}

TEST_CASE("calls queued when the worker stops get the database even if it was not opened yet: a stop right after the start loses no write") {
  EventLoop loop{{}};
  config::StoreConfig cfg;
  cfg.enabled = true;
  cfg.path = temp_path("stop");
  std::atomic<int> with_db{0};
  {
    store::Worker worker(cfg, loop);
    for (int i = 0; i < 3; ++i) worker.submit([&](Database* db) { with_db += db ? 1 : 0; });
  }  // stopped at once, before its thread has opened the database
  CHECK(with_db.load() == 3);
}

TEST_CASE("the worker's queue is bounded: beyond queue_max a call is refused and counted") {
  EventLoop loop{{}};
  config::StoreConfig cfg;
  cfg.enabled = true;
  cfg.path = temp_path("bounded");
  cfg.queue_max = 100;
  std::mutex gate;
  std::unique_lock<std::mutex> hold(gate);
  store::Worker worker(cfg, loop);
  // The first job holds the worker until the test lets it go; the queue fills behind it.
  worker.submit([&](Database*) { std::lock_guard<std::mutex> wait(gate); });
  int accepted = 0;
  for (int i = 0; i < 150; ++i) accepted += worker.submit([](Database*) {}) ? 1 : 0;
  CHECK(accepted >= 99);
  CHECK(accepted <= 100);
  CHECK(worker.dropped() == static_cast<uint64_t>(150 - accepted));
  hold.unlock();
}
