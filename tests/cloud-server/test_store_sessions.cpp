// Sessions and the event log in the store, one suite run against both engines: SQLite (a
// fresh file) and PostgreSQL (a fresh database on the server tests/postgres.sh starts).
#include <doctest/doctest.h>

#include <unistd.h>

#include "cloud-server/auth.h"
#include "cloud-server/store/store.h"
#include "cloud-server/store/store_events.h"
#include "cloud-server/store/store_sessions.h"
#include "tests/cloud-server/postgres_fixture.h"

using namespace flatlink;
using namespace flatlink::cloud;
using namespace flatlink::cloud::store;
using flatlink::cloud::test_support::Postgres;

namespace {

std::unique_ptr<Database> fresh_sqlite() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/flatlink-sessions-XXXXXX";
    return std::string(::mkdtemp(tmpl));
  }();
  static int n = 0;
  auto db = std::make_unique<Database>(open_sqlite(dir + "/s" + std::to_string(++n) + ".db"));
  db->migrate();
  return db;
}

std::unique_ptr<Database> fresh_postgres() {
  Postgres& pg = Postgres::instance();
  if (!pg.available()) {
    MESSAGE(pg.why_not());
    return nullptr;
  }
  auto db = std::make_unique<Database>(open_postgres(pg.fresh_database()));
  db->migrate();
  return db;
}

void seed(Database& db) {
  db.add_flat("flat-a", "A");
  db.add_user("anna", "hash-a");
  db.add_user("ben", "hash-b");
  db.set_member("flat-a", "anna", Role::member);
  db.set_member("flat-a", "ben", Role::member);
}

SessionRow session(const std::string& user, const std::string& token, int64_t now, int64_t max_ms = 100'000) {
  return {hash_token(token), user, "flat-a", "127.0.0.1 test", now, now, now + max_ms};
}

}  // namespace

#define STORE_TEST(fn, title)                \
  static void fn(Database& db);              \
  TEST_CASE("sqlite: " title) {              \
    auto db = fresh_sqlite();                \
    fn(*db);                                 \
  }                                          \
  TEST_CASE("postgresql: " title) {          \
    if (auto db = fresh_postgres()) fn(*db); \
  }                                          \
  static void fn(Database& db)

STORE_TEST(session_lifecycle, "a session is found by its token's hash, moves its idle timeout on, and ends by idle, expiry or logout") {
  seed(db);
  const int64_t t0 = 1'700'000'000'000;
  create_session(db, session("anna", "token-1", t0));
  CHECK_FALSE(use_session(db, hash_token("another"), t0 + 1, 10'000));
  auto used = use_session(db, hash_token("token-1"), t0 + 9'000, 10'000);
  REQUIRE(used);
  CHECK(used->user == "anna");
  CHECK(used->flat == "flat-a");
  // Used at +9 s: idle until +19 s, not +10 s.
  CHECK(use_session(db, hash_token("token-1"), t0 + 18'000, 10'000));
  CHECK_FALSE(use_session(db, hash_token("token-1"), t0 + 28'001, 10'000));  // idle too long: ended
  CHECK(list_sessions(db, "anna").empty());

  create_session(db, session("anna", "token-2", t0, 5'000));
  CHECK_FALSE(use_session(db, hash_token("token-2"), t0 + 5'000, 10'000));  // past its absolute expiry

  create_session(db, session("anna", "token-3", t0));
  CHECK(end_session(db, hash_token("token-3")));
  CHECK_FALSE(end_session(db, hash_token("token-3")));
  CHECK_FALSE(use_session(db, hash_token("token-3"), t0 + 1, 10'000));
}

STORE_TEST(session_ends_feed, "every ended session is in session_ends, read incrementally: logout, revoke, password change, removed member") {
  seed(db);
  const int64_t t0 = 1'700'000'000'000;
  const int64_t start = last_session_end(db);
  for (const char* t : {"a1", "a2", "a3", "b1"}) create_session(db, session(t[0] == 'a' ? "anna" : "ben", t, t0));
  CHECK(list_sessions(db, "anna").size() == 3);
  CHECK(list_sessions(db).size() == 4);

  CHECK(end_session_by_prefix(db, hash_token("a1").substr(0, 12)) == 1);
  CHECK(end_session_by_prefix(db, "0123") == 0);  // too short to be an id
  SessionEnds ends = session_ends_after(db, start);
  REQUIRE(ends.token_sha256.size() == 1);
  CHECK(ends.token_sha256[0] == hash_token("a1"));

  CHECK(db.set_password("anna", "hash-a2"));  // a new password ends the user's sessions
  SessionEnds more = session_ends_after(db, ends.last);
  CHECK(more.last > ends.last);
  CHECK(std::count(more.token_sha256.begin(), more.token_sha256.end(), hash_token("a2")) == 1);
  CHECK(std::count(more.token_sha256.begin(), more.token_sha256.end(), hash_token("a3")) == 1);
  CHECK(list_sessions(db, "anna").empty());
  CHECK(list_sessions(db, "ben").size() == 1);

  CHECK(db.remove_member("flat-a", "ben"));
  SessionEnds last = session_ends_after(db, more.last);
  CHECK(std::count(last.token_sha256.begin(), last.token_sha256.end(), hash_token("b1")) == 1);
  CHECK(list_sessions(db).empty());
}

STORE_TEST(password_upgrade, "an old hash upgraded at a good login replaces only that hash, is counted as a change, and ends no session") {
  seed(db);
  const int64_t t0 = 1'700'000'000'000;
  const int64_t start = last_session_end(db);
  create_session(db, session("anna", "a1", t0));
  int64_t v = db.accounts_version();

  CHECK_FALSE(db.upgrade_password_hash("anna", "hash-other", "hash-a-argon"));  // changed meanwhile
  CHECK_FALSE(db.upgrade_password_hash("nobody", "hash-a", "hash-a-argon"));
  CHECK(db.accounts_version() == v);
  CHECK(db.users().at(0).password_hash == "hash-a");

  CHECK(db.upgrade_password_hash("anna", "hash-a", "hash-a-argon"));
  CHECK(db.users().at(0).password_hash == "hash-a-argon");
  CHECK(db.users().at(1).password_hash == "hash-b");
  CHECK(db.accounts_version() > v);  // every instance reads the new hash
  CHECK(session_ends_after(db, start).token_sha256.empty());
  CHECK(list_sessions(db, "anna").size() == 1);
  CHECK_FALSE(db.upgrade_password_hash("anna", "hash-a", "hash-a-again"));  // done once only
}

STORE_TEST(events_paging, "events are appended in a batch and read newest first in pages, by time range, device and kind") {
  const int64_t t0 = 1'700'000'000'000;
  std::vector<EventRow> rows;
  for (int i = 0; i < 25; ++i) {
    EventRow e;
    e.flat = "flat-a";
    e.ts = t0 + i * 1000;
    e.kind = i % 5 == 0 ? "presence" : "command";
    e.device = i % 2 ? "door" : "lamp";
    e.user = "anna";
    e.detail = {{"set", {{"on", i}}}};
    e.outcome = "ok";
    rows.push_back(e);
  }
  EventRow other;
  other.flat = "flat-b";
  other.ts = t0;
  other.kind = "login";
  rows.push_back(other);
  append_events(db, rows);

  EventQuery q;
  q.flat = "flat-a";
  q.limit = 10;
  EventPage p1 = query_events(db, q);
  REQUIRE(p1.events.size() == 10);
  CHECK(p1.events[0].ts == t0 + 24'000);
  CHECK(p1.events[0].detail["set"]["on"] == 24);
  CHECK(p1.next == p1.events.back().id);
  q.before = p1.next;
  EventPage p2 = query_events(db, q);
  REQUIRE(p2.events.size() == 10);
  CHECK(p2.events[0].ts == t0 + 14'000);
  q.before = p2.next;
  EventPage p3 = query_events(db, q);
  CHECK(p3.events.size() == 5);
  CHECK(p3.next == 0);  // the last page

  EventQuery ranged;
  ranged.flat = "flat-a";
  ranged.from = t0 + 5'000;
  ranged.to = t0 + 9'000;
  ranged.device = "door";
  CHECK(query_events(db, ranged).events.size() == 3);  // 5, 7 and 9 are the door's
  ranged.device = "";
  ranged.kinds = {"presence"};
  CHECK(query_events(db, ranged).events.size() == 1);  // 5

  CHECK(prune_events(db, t0 + 20'000) == 21);  // flat-b's too
  EventQuery all;
  all.flat = "flat-a";
  CHECK(query_events(db, all).events.size() == 5);
}
