// The history store's benchmark (docs/benchmarks.md "History in the store"): status values
// written in the cloud's batches, bytes on disk per stored value, and a 30-day chart at 1-hour
// resolution beside a 1-hour query, each on SQLite and on PostgreSQL in the same run.
//   bench_store_history --sqlite DIR [--postgres CONNINFO] [--values N] [--series K] [--queries Q]
// bench/history.mjs starts a PostgreSQL server for it (tests/postgres.sh) and runs it.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cloud-server/store/store_history.h"

using namespace flatlink;
using namespace flatlink::cloud::store;

namespace {

constexpr size_t kBatch = 5000;  // as cloud-server/history.cpp hands them to the worker
constexpr int64_t kDayMs = 24 * kHourMs;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Options {
  std::string sqlite_dir;
  std::string postgres;
  size_t values = 200'000;
  size_t series = 100;
  size_t queries = 300;
};

struct Figures {
  double insert_per_s = 0;
  double bytes_per_value = 0;
  double chart_p50 = 0, chart_p99 = 0;  // ms
  double hour_p50 = 0, hour_p99 = 0;    // ms
  size_t chart_buckets = 0, hour_points = 0;
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

int64_t integer(const std::vector<Row>& rows) { return rows.empty() || !rows[0][0] ? 0 : std::stoll(*rows[0][0]); }

// Bytes the history's tables take: SQLite's whole file after a checkpoint (it holds nothing
// else here); PostgreSQL's tables with their indexes and TOAST.
int64_t history_bytes(Database& db, const std::string& sqlite_file) {
  auto& c = db.connection();
  if (db.engine() == "sqlite") {
    c.query("PRAGMA wal_checkpoint(TRUNCATE)");
    struct stat st {};
    return ::stat(sqlite_file.c_str(), &st) == 0 ? st.st_size : 0;
  }
  c.query("VACUUM ANALYZE");
  return integer(c.query(
      "SELECT SUM(pg_total_relation_size(c)) FROM unnest(ARRAY['history_series', 'history_raw', 'history_1m',"
      " 'history_1h']::regclass[]) AS c"));
}

// Status values of `series` thermometers, one every 10 s each, ending now.
std::vector<HistoryValue> statuses(const std::string& flat, size_t n, size_t series, int64_t now) {
  std::vector<HistoryValue> values;
  values.reserve(n);
  const int64_t per_series = static_cast<int64_t>((n + series - 1) / series);
  for (size_t i = 0; i < n; ++i) {
    const auto k = static_cast<int64_t>(i % series), j = static_cast<int64_t>(i / series);
    values.push_back({flat, "thermo-" + std::to_string(k), "t", now - (per_series - j) * 10'000,
                      Json(20.0 + static_cast<double>((j * 7 + k) % 50) / 10.0)});
  }
  return values;
}

// 30 days of 1-minute rollups (and the hours over them) for `series` values of flat "chart",
// made in SQL (the raw values they stand for are past the raw retention), then the last hour
// of raw values through HistoryStore::write, as the cloud writes them.
void fill_chart(Database& db, HistoryStore& history, size_t series, int64_t now) {
  auto& c = db.connection();
  const int64_t end = now / kMinuteMs * kMinuteMs;
  const int64_t start = end - 30 * kDayMs;
  for (size_t k = 0; k < series; ++k) {
    c.query("INSERT INTO history_series (flat, device, capability) VALUES ('chart', ?, 't')",
            {"meter-" + std::to_string(k)});
  }
  const std::string minutes =
      db.engine() == "sqlite"
          ? "WITH RECURSIVE m(b) AS (SELECT ? UNION ALL SELECT b + 60000 FROM m WHERE b + 60000 < ?)"
            " INSERT INTO history_1m (series, bucket, min_v, max_v, sum_v, nums, n, last_ts, last_num, last_txt)"
            " SELECT s.id, m.b, 19.5, 21.5, 6 * 20.5, 6, 6, m.b + 50000, 20.5, NULL FROM history_series s, m"
            " WHERE s.flat = 'chart'"
          : "INSERT INTO history_1m (series, bucket, min_v, max_v, sum_v, nums, n, last_ts, last_num, last_txt)"
            " SELECT s.id, m.b, 19.5, 21.5, 6 * 20.5, 6, 6, m.b + 50000, 20.5, NULL FROM history_series s,"
            " generate_series(?::bigint, ?::bigint - 1, 60000) AS m(b) WHERE s.flat = 'chart'";
  c.query(minutes, {start, end});
  c.query("INSERT INTO history_1h (series, bucket, min_v, max_v, sum_v, nums, n, last_ts, last_num, last_txt)"
          " SELECT m.series, (m.bucket / 3600000) * 3600000, MIN(min_v), MAX(max_v), SUM(sum_v), SUM(nums), SUM(n),"
          " MAX(last_ts), 20.5, NULL FROM history_1m m JOIN history_series s ON s.id = m.series"
          " WHERE s.flat = 'chart' GROUP BY m.series, (m.bucket / 3600000) * 3600000");
  std::vector<HistoryValue> hour;
  for (size_t k = 0; k < series; ++k) {
    for (int64_t ts = now - kHourMs + 10'000; ts <= now; ts += 10'000) {
      hour.push_back({"chart", "meter-" + std::to_string(k), "t", ts, Json(20.5)});
    }
  }
  for (size_t at = 0; at < hour.size(); at += kBatch) {
    std::vector<HistoryValue> batch(hour.begin() + static_cast<std::ptrdiff_t>(at),
                                    hour.begin() + static_cast<std::ptrdiff_t>(std::min(hour.size(), at + kBatch)));
    history.write(db, batch, now - 7 * kDayMs);
  }
  if (db.engine() == "postgresql") c.query("ANALYZE");
}

Figures run(Database& db, const std::string& sqlite_file, const Options& o) {
  Figures f;
  const int64_t now = wall_ms();
  HistoryStore history;
  const int64_t empty = history_bytes(db, sqlite_file);
  const auto values = statuses("flat-a", o.values, o.series, now);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t at = 0; at < values.size(); at += kBatch) {
    std::vector<HistoryValue> batch(values.begin() + static_cast<std::ptrdiff_t>(at),
                                    values.begin() + static_cast<std::ptrdiff_t>(std::min(values.size(), at + kBatch)));
    history.write(db, batch, now - 7 * kDayMs);
  }
  f.insert_per_s = static_cast<double>(values.size()) / seconds_since(t0);
  f.bytes_per_value = static_cast<double>(history_bytes(db, sqlite_file) - empty) / static_cast<double>(values.size());

  fill_chart(db, history, o.series, now);
  std::mt19937 rng(7);
  std::vector<double> chart, hour;
  for (size_t q = 0; q < o.queries; ++q) {
    const std::string device = "meter-" + std::to_string(rng() % o.series);
    const int64_t t = wall_ms();
    // As the cloud answers range 30d (auto: past the raw retention, hours) and range 1h (auto:
    // the raw values counted, then read).
    auto t1 = std::chrono::steady_clock::now();
    const auto month = history.read(db, "chart", device, "t", Resolution::hour, t - 30 * kDayMs, t, 5000);
    chart.push_back(seconds_since(t1) * 1000);
    f.chart_buckets = month.buckets.size();
    t1 = std::chrono::steady_clock::now();
    const size_t n = history.count_raw(db, "chart", device, "t", t - kHourMs, t, 5001);
    const auto last = history.read(db, "chart", device, "t", n <= 5000 ? Resolution::raw : Resolution::minute,
                                   t - kHourMs, t, 5000);
    hour.push_back(seconds_since(t1) * 1000);
    f.hour_points = last.points.size();
  }
  f.chart_p50 = percentile(chart, 0.5);
  f.chart_p99 = percentile(chart, 0.99);
  f.hour_p50 = percentile(hour, 0.5);
  f.hour_p99 = percentile(hour, 0.99);
  return f;
}

const char* verdict(bool met) { return met ? "met" : "MISSED"; }

void print(const char* engine, const Figures& f, const Options& o, double insert_target) {
  std::printf("%-10s insert %zu values (%zu series, batches of %zu): %.0f values/s\n", engine, o.values, o.series, kBatch,
              f.insert_per_s);
  std::printf("%-10s bytes on disk per stored value (raw + 1m + 1h rollups, indexes): %.1f\n", engine, f.bytes_per_value);
  std::printf("%-10s 30-day chart at 1h (%zu buckets): p50 %.2f ms, p99 %.2f ms; 1-h query (raw, %zu values): p50 %.2f ms, "
              "p99 %.2f ms; chart/1-h p99 ratio %.2f\n",
              engine, f.chart_buckets, f.chart_p50, f.chart_p99, f.hour_points, f.hour_p50, f.hour_p99,
              f.chart_p99 / f.hour_p99);
  std::printf("%-10s targets (issue 21): insert >= %.0f values/s %s; 30-day chart p99 <= 20 ms %s\n", engine, insert_target,
              verdict(f.insert_per_s >= insert_target), verdict(f.chart_p99 <= 20.0));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--sqlite") o.sqlite_dir = value;
    else if (key == "--postgres") o.postgres = value;
    else if (key == "--values") o.values = std::stoul(value);
    else if (key == "--series") o.series = std::stoul(value);
    else if (key == "--queries") o.queries = std::stoul(value);
    else {
      std::fprintf(stderr, "unknown option %s\n", key.c_str());
      return 2;
    }
  }
  if (o.sqlite_dir.empty()) {
    std::fprintf(stderr, "usage: %s --sqlite DIR [--postgres CONNINFO] [--values N] [--series K] [--queries Q]\n", argv[0]);
    return 2;
  }
  try {
    const std::string file = o.sqlite_dir + "/history-bench.db";
    std::remove(file.c_str());
    Database sqlite(open_sqlite(file));
    sqlite.migrate();
    const Figures s = run(sqlite, file, o);
    print("sqlite", s, o, 50'000);
    if (!o.postgres.empty()) {
      Database pg(open_postgres(o.postgres));
      pg.migrate();
      const Figures p = run(pg, "", o);
      print("postgresql", p, o, 30'000);
      std::printf("ratio postgresql/sqlite: insert rate %.2f, bytes per value %.2f, 30-day chart p99 %.2f\n",
                  p.insert_per_s / s.insert_per_s, p.bytes_per_value / s.bytes_per_value, p.chart_p99 / s.chart_p99);
    }
  } catch (const StoreError& e) {
    std::fprintf(stderr, "store error: %s\n", e.what());
    return 1;
  }
  return 0;
}
