// The history of every status value in the store: raw values and their rollups per minute and
// per hour (min/max/avg over numbers and booleans, last value, count), each level kept for its
// retention. Blocking calls on a Database: the running cloud makes them on the store's worker
// thread only (one HistoryStore per worker: its series cache belongs to that thread).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "cloud-server/store/store.h"

namespace flatlink::cloud::store {

enum class Resolution { raw, minute, hour };
inline constexpr int64_t kMinuteMs = 60'000;
inline constexpr int64_t kHourMs = 3'600'000;

// One status value: a number, a boolean or a string (an enum's value).
struct HistoryValue {
  std::string flat;
  std::string device;
  std::string capability;
  int64_t ts = 0;  // ms since the epoch, as the gateway observed it
  Json value;
};

struct HistoryBucket {
  int64_t start = 0;
  std::optional<double> min, max, avg;  // over numbers and booleans (0/1); none for strings
  Json last;
  int64_t count = 0;
};

struct HistoryPage {
  std::vector<std::pair<int64_t, Json>> points;  // raw: [ts, value] in time order
  std::vector<HistoryBucket> buckets;            // rollups: in time order
  std::optional<int64_t> next_from;              // more after this page: the next request's from
};

// How long each level is kept (ms).
struct HistoryRetention {
  int64_t raw_ms = 7 * 24 * kHourMs;
  int64_t minute_ms = 90 * 24 * kHourMs;
  int64_t hour_ms = 1825 * 24 * kHourMs;
  int64_t of(Resolution r) const { return r == Resolution::raw ? raw_ms : r == Resolution::minute ? minute_ms : hour_ms; }
};

class HistoryStore {
 public:
  // Series ids known at most (flat, device, capability); beyond, the cache starts over.
  explicit HistoryStore(size_t cache_max = 100'000) : cache_max_(cache_max) {}

  // Writes the values in one transaction (a value of the same series and ts replaces the one
  // stored: a replayed status is stored once) and recomputes the minute and hour buckets they
  // fall in. Values older than `oldest_ts` (the raw retention) and non-scalars are skipped.
  // Returns the values written. Throws StoreError.
  size_t write(Database& db, const std::vector<HistoryValue>& values, int64_t oldest_ts);

  // One series' values in [from, to] at a level, oldest first, at most `limit`.
  HistoryPage read(Database& db, const std::string& flat, const std::string& device, const std::string& capability,
                   Resolution resolution, int64_t from, int64_t to, size_t limit);
  // The newest `limit` raw values, oldest first.
  HistoryPage recent(Database& db, const std::string& flat, const std::string& device, const std::string& capability,
                     size_t limit);
  // Raw values in [from, to], counted up to `cap` (to choose a level without reading them).
  size_t count_raw(Database& db, const std::string& flat, const std::string& device, const std::string& capability,
                   int64_t from, int64_t to, size_t cap);

  // Deletes what each level keeps no longer at `now`; returns the rows deleted.
  int64_t prune(Database& db, const HistoryRetention& retention, int64_t now);

 private:
  size_t write_values(Database& db, const std::vector<HistoryValue>& values, int64_t oldest_ts);
  std::optional<int64_t> series(Database& db, const std::string& flat, const std::string& device,
                                const std::string& capability, bool create);
  const size_t cache_max_;
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> ids_;
};

}  // namespace flatlink::cloud::store
