// The history's SQL, the same on SQLite and PostgreSQL (migration "history" in database.cpp).
#include "cloud-server/store/store_history.h"

#include <algorithm>
#include <set>

namespace flatlink::cloud::store {
namespace {

// Rows per multi-row INSERT and bucket conditions per recompute: well inside both engines'
// limits on bound parameters (SQLite 32766, PostgreSQL 65535).
constexpr size_t kRowsPerInsert = 500;
constexpr size_t kBucketsPerRecompute = 200;

std::optional<double> real(const Row& row, size_t i) {
  if (!row.at(i)) return std::nullopt;
  return std::stod(*row[i]);
}
int64_t integer(const Row& row, size_t i) { return row.at(i) ? std::stoll(*row[i]) : 0; }

// A value as stored: numbers in num; booleans as num 0/1 with txt ''; strings in txt.
bool encode(const Json& v, Value& num, Value& txt) {
  if (v.is_boolean()) {
    num = v.get<bool>() ? 1.0 : 0.0;
    txt = std::string();
  } else if (v.is_number()) {
    num = v.get<double>();
    txt = std::monostate{};
  } else if (v.is_string()) {
    num = std::monostate{};
    txt = v.get<std::string>();
  } else {
    return false;
  }
  return true;
}

Json decode(const Row& row, size_t num_at, size_t txt_at) {
  const auto num = real(row, num_at);
  if (num && row.at(txt_at)) return *num != 0.0;
  if (num) {
    const double d = *num;
    if (d == static_cast<double>(static_cast<int64_t>(d)) && d > -9e15 && d < 9e15) return static_cast<int64_t>(d);
    return d;
  }
  if (row.at(txt_at)) return *row[txt_at];
  return nullptr;
}

const char* table(Resolution r) {
  return r == Resolution::raw ? "history_raw" : r == Resolution::minute ? "history_1m" : "history_1h";
}

// Recomputes the buckets `keys` (series, start) of `level` from the level below.
void recompute(SqlConnection& c, Resolution level, const std::set<std::pair<int64_t, int64_t>>& keys) {
  const bool minute = level == Resolution::minute;
  const int64_t size = minute ? kMinuteMs : kHourMs;
  const std::string width = std::to_string(size);
  std::vector<std::pair<int64_t, int64_t>> all(keys.begin(), keys.end());
  for (size_t at = 0; at < all.size(); at += kBucketsPerRecompute) {
    const size_t end = std::min(all.size(), at + kBucketsPerRecompute);
    std::string where;
    std::vector<Value> params;
    for (size_t i = at; i < end; ++i) {
      where += (i == at ? "" : " OR ");
      where += minute ? "(series = ? AND ts >= ? AND ts < ?)" : "(series = ? AND bucket >= ? AND bucket < ?)";
      params.insert(params.end(), {all[i].first, all[i].second, all[i].second + size});
    }
    std::string sql;
    if (minute) {
      sql = "INSERT INTO history_1m (series, bucket, min_v, max_v, sum_v, nums, n, last_ts, last_num, last_txt)"
            " SELECT g.series, g.bucket, g.mn, g.mx, g.sm, g.nn, g.cnt, g.lt, r.num, r.txt FROM"
            " (SELECT series, (ts / " + width + ") * " + width + " AS bucket, MIN(num) AS mn, MAX(num) AS mx,"
            " SUM(num) AS sm, COUNT(num) AS nn, COUNT(*) AS cnt, MAX(ts) AS lt FROM history_raw WHERE " + where +
            " GROUP BY series, (ts / " + width + ") * " + width + ") g"
            " JOIN history_raw r ON r.series = g.series AND r.ts = g.lt WHERE true";
    } else {
      sql = "INSERT INTO history_1h (series, bucket, min_v, max_v, sum_v, nums, n, last_ts, last_num, last_txt)"
            " SELECT g.series, g.bucket, g.mn, g.mx, g.sm, g.nn, g.cnt, g.lt, m.last_num, m.last_txt FROM"
            " (SELECT series, (bucket / " + width + ") * " + width + " AS bucket, MIN(min_v) AS mn, MAX(max_v) AS mx,"
            " SUM(sum_v) AS sm, SUM(nums) AS nn, SUM(n) AS cnt, MAX(last_ts) AS lt FROM history_1m WHERE " + where +
            " GROUP BY series, (bucket / " + width + ") * " + width + ") g"
            " JOIN history_1m m ON m.series = g.series AND m.bucket = (g.lt / 60000) * 60000 WHERE true";
    }
    sql += " ON CONFLICT (series, bucket) DO UPDATE SET min_v = excluded.min_v, max_v = excluded.max_v,"
           " sum_v = excluded.sum_v, nums = excluded.nums, n = excluded.n, last_ts = excluded.last_ts,"
           " last_num = excluded.last_num, last_txt = excluded.last_txt";
    c.query(sql, params);
  }
}

}  // namespace

std::optional<int64_t> HistoryStore::series(Database& db, const std::string& flat, const std::string& device,
                                            const std::string& capability, bool create) {
  auto key = std::make_tuple(flat, device, capability);
  if (auto it = ids_.find(key); it != ids_.end()) return it->second;
  auto& c = db.connection();
  const char* select = "SELECT id FROM history_series WHERE flat = ? AND device = ? AND capability = ?";
  auto rows = c.query(select, {flat, device, capability});
  if (rows.empty()) {
    if (!create) return std::nullopt;
    c.query("INSERT INTO history_series (flat, device, capability) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            {flat, device, capability});
    rows = c.query(select, {flat, device, capability});
    if (rows.empty()) throw StoreError("history: a series could not be made");
  }
  if (ids_.size() >= cache_max_) ids_.clear();
  const int64_t id = integer(rows[0], 0);
  ids_.emplace(std::move(key), id);
  return id;
}

size_t HistoryStore::write(Database& db, const std::vector<HistoryValue>& values, int64_t oldest_ts) {
  try {
    return write_values(db, values, oldest_ts);
  } catch (const StoreError&) {
    ids_.clear();  // series made in the rolled-back transaction are not in the database
    throw;
  }
}

size_t HistoryStore::write_values(Database& db, const std::vector<HistoryValue>& values, int64_t oldest_ts) {
  auto& c = db.connection();
  Transaction tx(c);
  // (series, ts) -> index of the last value with them: one row each, the newest wins.
  std::map<std::pair<int64_t, int64_t>, size_t> rows;
  for (size_t i = 0; i < values.size(); ++i) {
    const auto& v = values[i];
    if (v.ts < oldest_ts || !(v.value.is_number() || v.value.is_boolean() || v.value.is_string())) continue;
    const int64_t id = *series(db, v.flat, v.device, v.capability, true);
    rows[{id, v.ts}] = i;
  }
  std::set<std::pair<int64_t, int64_t>> minutes, hours;
  std::vector<std::pair<std::pair<int64_t, int64_t>, size_t>> list(rows.begin(), rows.end());
  for (size_t at = 0; at < list.size(); at += kRowsPerInsert) {
    const size_t end = std::min(list.size(), at + kRowsPerInsert);
    std::string sql = "INSERT INTO history_raw (series, ts, num, txt) VALUES ";
    std::vector<Value> params;
    params.reserve((end - at) * 4);
    for (size_t i = at; i < end; ++i) {
      const auto [id, ts] = list[i].first;
      Value num, txt;
      encode(values[list[i].second].value, num, txt);
      sql += i == at ? "(?, ?, ?, ?)" : ", (?, ?, ?, ?)";
      params.insert(params.end(), {id, ts, num, txt});
      minutes.insert({id, ts / kMinuteMs * kMinuteMs});
      hours.insert({id, ts / kHourMs * kHourMs});
    }
    sql += " ON CONFLICT (series, ts) DO UPDATE SET num = excluded.num, txt = excluded.txt";
    c.query(sql, params);
  }
  recompute(c, Resolution::minute, minutes);
  recompute(c, Resolution::hour, hours);
  tx.commit();
  return list.size();
}

HistoryPage HistoryStore::read(Database& db, const std::string& flat, const std::string& device,
                               const std::string& capability, Resolution resolution, int64_t from, int64_t to,
                               size_t limit) {
  HistoryPage page;
  const auto id = series(db, flat, device, capability, false);
  if (!id || limit == 0) return page;
  auto& c = db.connection();
  const auto n = static_cast<int64_t>(limit) + 1;
  if (resolution == Resolution::raw) {
    auto rows = c.query("SELECT ts, num, txt FROM history_raw WHERE series = ? AND ts >= ? AND ts <= ? ORDER BY ts LIMIT ?",
                        {*id, from, to, n});
    if (rows.size() > limit) {
      page.next_from = integer(rows.back(), 0);
      rows.pop_back();
    }
    for (const auto& row : rows) page.points.emplace_back(integer(row, 0), decode(row, 1, 2));
    return page;
  }
  const int64_t size = resolution == Resolution::minute ? kMinuteMs : kHourMs;
  auto rows = c.query(std::string("SELECT bucket, min_v, max_v, sum_v, nums, n, last_num, last_txt FROM ") +
                          table(resolution) + " WHERE series = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket LIMIT ?",
                      {*id, from / size * size, to, n});
  if (rows.size() > limit) {
    page.next_from = integer(rows.back(), 0);
    rows.pop_back();
  }
  for (const auto& row : rows) {
    HistoryBucket b;
    b.start = integer(row, 0);
    b.min = real(row, 1);
    b.max = real(row, 2);
    const int64_t nums = integer(row, 4);
    if (nums > 0 && row[3]) b.avg = std::stod(*row[3]) / static_cast<double>(nums);
    b.count = integer(row, 5);
    b.last = decode(row, 6, 7);
    page.buckets.push_back(std::move(b));
  }
  return page;
}

HistoryPage HistoryStore::recent(Database& db, const std::string& flat, const std::string& device,
                                 const std::string& capability, size_t limit) {
  HistoryPage page;
  const auto id = series(db, flat, device, capability, false);
  if (!id || limit == 0) return page;
  auto rows = db.connection().query("SELECT ts, num, txt FROM history_raw WHERE series = ? ORDER BY ts DESC LIMIT ?",
                                    {*id, static_cast<int64_t>(limit)});
  for (auto it = rows.rbegin(); it != rows.rend(); ++it) page.points.emplace_back(integer(*it, 0), decode(*it, 1, 2));
  return page;
}

size_t HistoryStore::count_raw(Database& db, const std::string& flat, const std::string& device,
                               const std::string& capability, int64_t from, int64_t to, size_t cap) {
  const auto id = series(db, flat, device, capability, false);
  if (!id) return 0;
  const auto rows = db.connection().query(
      "SELECT COUNT(*) FROM (SELECT 1 FROM history_raw WHERE series = ? AND ts >= ? AND ts <= ? LIMIT ?) x",
      {*id, from, to, static_cast<int64_t>(cap)});
  return rows.empty() ? 0 : static_cast<size_t>(integer(rows[0], 0));
}

int64_t HistoryStore::prune(Database& db, const HistoryRetention& retention, int64_t now) {
  auto& c = db.connection();
  int64_t deleted = 0;
  // Per series: each delete is a range of the (series, ts|bucket) key, not a scan of the table.
  for (const auto& row : c.query("SELECT id FROM history_series")) {
    const int64_t id = integer(row, 0);
    for (Resolution r : {Resolution::raw, Resolution::minute, Resolution::hour}) {
      const char* column = r == Resolution::raw ? "ts" : "bucket";
      c.query(std::string("DELETE FROM ") + table(r) + " WHERE series = ? AND " + column + " < ?",
              {id, now - retention.of(r)});
      deleted += c.changes();
    }
  }
  return deleted;
}

}  // namespace flatlink::cloud::store
