// The history in the store (store_history.h): raw values, minute and hour rollups, replays,
// paging and retention, one suite run on SQLite and on PostgreSQL (tests/postgres.sh).
#include <doctest/doctest.h>

#include <unistd.h>

#include "cloud-server/store/store_history.h"
#include "tests/cloud-server/postgres_fixture.h"

using namespace flatlink;
using namespace flatlink::cloud::store;
using flatlink::cloud::test_support::Postgres;

namespace {

std::unique_ptr<Database> fresh_sqlite() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/flatlink-history-XXXXXX";
    return std::string(::mkdtemp(tmpl));
  }();
  static int n = 0;
  auto db = std::make_unique<Database>(open_sqlite(dir + "/h" + std::to_string(++n) + ".db"));
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

constexpr int64_t kT0 = 1'700'000'000'000 / kHourMs * kHourMs;  // an hour's start

HistoryValue v(const std::string& cap, int64_t ts, Json value) { return {"flat-a", "thermo", cap, ts, std::move(value)}; }

}  // namespace

#define HISTORY_TEST(fn, title)                \
  static void fn(Database& db);                \
  TEST_CASE("sqlite: " title) {                \
    auto db = fresh_sqlite();                  \
    fn(*db);                                   \
  }                                            \
  TEST_CASE("postgresql: " title) {            \
    if (auto db = fresh_postgres()) fn(*db);   \
  }                                            \
  static void fn(Database& db)

HISTORY_TEST(rollups, "every value is stored raw and rolled up per minute and hour (min, max, avg, last, count)") {
  HistoryStore h;
  // Minute 0: 20, 22 (out of order: 22 first), minute 1: 19.5; a boolean and a string too.
  CHECK(h.write(db, {v("t", kT0 + 30'000, 22), v("t", kT0 + 1'000, 20), v("t", kT0 + kMinuteMs + 5, 19.5),
                     v("on", kT0 + 10, true), v("on", kT0 + 20, false), v("mode", kT0 + 7, "eco")},
                0) == 6);
  auto raw = h.read(db, "flat-a", "thermo", "t", Resolution::raw, kT0, kT0 + kHourMs, 100);
  REQUIRE(raw.points.size() == 3);
  CHECK(raw.points[0] == std::pair<int64_t, Json>{kT0 + 1'000, 20});
  CHECK(raw.points[2].second.get<double>() == 19.5);
  CHECK_FALSE(raw.next_from);
  auto on = h.read(db, "flat-a", "thermo", "on", Resolution::raw, kT0, kT0 + kHourMs, 100);
  REQUIRE(on.points.size() == 2);
  CHECK(on.points[0].second == Json(true));
  CHECK(on.points[1].second == Json(false));
  auto mode = h.read(db, "flat-a", "thermo", "mode", Resolution::raw, kT0, kT0 + kHourMs, 100);
  REQUIRE(mode.points.size() == 1);
  CHECK(mode.points[0].second == Json("eco"));

  auto minutes = h.read(db, "flat-a", "thermo", "t", Resolution::minute, kT0, kT0 + kHourMs, 100);
  REQUIRE(minutes.buckets.size() == 2);
  const auto& m0 = minutes.buckets[0];
  CHECK(m0.start == kT0);
  CHECK(*m0.min == 20);
  CHECK(*m0.max == 22);
  CHECK(*m0.avg == 21);
  CHECK(m0.last == Json(22));  // the latest ts, not the latest written
  CHECK(m0.count == 2);
  CHECK(minutes.buckets[1].start == kT0 + kMinuteMs);
  CHECK(minutes.buckets[1].count == 1);

  auto hours = h.read(db, "flat-a", "thermo", "t", Resolution::hour, kT0, kT0 + kHourMs, 100);
  REQUIRE(hours.buckets.size() == 1);
  CHECK(hours.buckets[0].start == kT0);
  CHECK(*hours.buckets[0].min == 19.5);
  CHECK(*hours.buckets[0].max == 22);
  CHECK(*hours.buckets[0].avg == doctest::Approx((20 + 22 + 19.5) / 3));
  CHECK(hours.buckets[0].last.get<double>() == 19.5);
  CHECK(hours.buckets[0].count == 3);

  auto modes = h.read(db, "flat-a", "thermo", "mode", Resolution::hour, kT0, kT0 + kHourMs, 100);
  REQUIRE(modes.buckets.size() == 1);
  CHECK_FALSE(modes.buckets[0].min);  // strings have no min/max/avg, but a last and a count
  CHECK_FALSE(modes.buckets[0].avg);
  CHECK(modes.buckets[0].last == Json("eco"));
  CHECK(modes.buckets[0].count == 1);

  // A later batch into the same buckets updates them.
  h.write(db, {v("t", kT0 + 50'000, 30)}, 0);
  minutes = h.read(db, "flat-a", "thermo", "t", Resolution::minute, kT0, kT0, 100);
  REQUIRE(minutes.buckets.size() == 1);
  CHECK(*minutes.buckets[0].max == 30);
  CHECK(minutes.buckets[0].count == 3);
  CHECK(minutes.buckets[0].last == Json(30));
}

HISTORY_TEST(replays, "a replayed status is stored once; its rollups do not count it twice") {
  HistoryStore h;
  std::vector<HistoryValue> batch;
  for (int i = 0; i < 1200; ++i) batch.push_back(v("t", kT0 + i * 1000, i));  // 20 minutes, more than one INSERT
  h.write(db, batch, 0);
  HistoryStore fresh;  // another instance (or a restart): no cache
  fresh.write(db, batch, 0);
  CHECK(fresh.count_raw(db, "flat-a", "thermo", "t", kT0, kT0 + kHourMs, 5000) == 1200);
  auto hours = fresh.read(db, "flat-a", "thermo", "t", Resolution::hour, kT0, kT0 + kHourMs, 10);
  REQUIRE(hours.buckets.size() == 1);
  CHECK(hours.buckets[0].count == 1200);
  CHECK(*hours.buckets[0].avg == doctest::Approx(599.5));
}

HISTORY_TEST(paging, "a range is read in pages: limit values, then next_from goes on where the page stopped") {
  HistoryStore h;
  std::vector<HistoryValue> batch;
  for (int i = 0; i < 25; ++i) batch.push_back(v("t", kT0 + i, i));
  h.write(db, batch, 0);
  std::vector<int64_t> seen;
  int64_t from = kT0;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = h.read(db, "flat-a", "thermo", "t", Resolution::raw, from, kT0 + 1000, 10);
    for (const auto& [ts, value] : page.points) seen.push_back(value.get<int64_t>());
    if (!page.next_from) break;
    from = *page.next_from;
  }
  REQUIRE(seen.size() == 25);
  for (int i = 0; i < 25; ++i) CHECK(seen[static_cast<size_t>(i)] == i);
  auto recent = h.recent(db, "flat-a", "thermo", "t", 5);
  REQUIRE(recent.points.size() == 5);
  CHECK(recent.points.front().second == Json(20));
  CHECK(recent.points.back().second == Json(24));
  // Another flat's series of the same names is not this one.
  CHECK(h.read(db, "flat-b", "thermo", "t", Resolution::raw, kT0, kT0 + 1000, 10).points.empty());
}

HISTORY_TEST(retention, "each level is pruned at its own retention; values older than the raw retention are not written") {
  HistoryStore h;
  HistoryRetention keep{2 * kHourMs, 10 * kHourMs, 100 * kHourMs};
  const int64_t now = kT0 + 200 * kHourMs;
  std::vector<HistoryValue> batch;
  for (int64_t hours_ago : {150, 50, 5, 1}) batch.push_back(v("t", now - hours_ago * kHourMs, hours_ago));
  CHECK(h.write(db, batch, 0) == 4);
  CHECK(h.write(db, {v("t", now - 3 * kHourMs, 3)}, now - keep.raw_ms) == 0);  // older than raw retention
  CHECK(h.prune(db, keep, now) > 0);
  const int64_t all = now - 1000 * kHourMs;
  auto raw = h.read(db, "flat-a", "thermo", "t", Resolution::raw, all, now, 100);
  REQUIRE(raw.points.size() == 1);
  CHECK(raw.points[0].second == Json(1));
  CHECK(h.read(db, "flat-a", "thermo", "t", Resolution::minute, all, now, 100).buckets.size() == 2);  // 5 h, 1 h
  CHECK(h.read(db, "flat-a", "thermo", "t", Resolution::hour, all, now, 100).buckets.size() == 3);    // 50, 5, 1
}

HISTORY_TEST(failed_write, "a write that fails mid-transaction forgets the series it made: the next write makes them again") {
  HistoryStore h;
  db.connection().query("ALTER TABLE history_raw RENAME TO history_raw_away");  // the INSERT fails after the series'
  CHECK_THROWS_AS(h.write(db, {v("t", kT0, 1)}, 0), StoreError);
  db.connection().query("ALTER TABLE history_raw_away RENAME TO history_raw");
  CHECK(h.write(db, {v("t", kT0, 1)}, 0) == 1);
  HistoryStore fresh;  // a restart: no cache
  auto raw = fresh.read(db, "flat-a", "thermo", "t", Resolution::raw, kT0, kT0, 10);
  REQUIRE(raw.points.size() == 1);
  CHECK(raw.points[0].second == Json(1));
}
