// The flats' value history as the `history` request answers it (docs/protocol.md "history").
// Without a store (or with store.history off): per flat, device and numeric capability, the
// last limits.history_points values in memory, gone at a restart. With the store: every
// status value is written to the store's history (store/store_history.h) in batches on the
// store's worker thread, and requests are answered from its raw rows or rollups. The loop
// only moves values into a bounded buffer: while the database is away they wait there,
// beyond store.history.buffer_max the oldest are dropped and counted. Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cloud-link/protocol.h"
#include "cloud-server/metrics.h"
#include "cloud-server/store/store_history.h"
#include "cloud-server/store/worker.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

// A `history` request made concrete at a time `now` (wall ms).
struct HistoryPlan {
  bool recent = false;  // no range: the newest values, as before ranges existed
  int64_t from = 0;
  int64_t to = 0;
  std::optional<store::Resolution> resolution;  // none: auto, chosen from the range (choose_resolution)
  size_t limit = 0;
};

// Checks a request against each level's retention: the plan, or the message of an
// `invalid_range` error (an unknown range or resolution, a preset range with from/to, from
// after to, a resolution whose retention does not reach from).
std::variant<HistoryPlan, std::string> plan_history(const proto::HistoryRequest& request,
                                                    const store::HistoryRetention& retention, int64_t now,
                                                    size_t max_points);
// auto's level: the finest whose retention covers `from` and that gives at most `limit`
// points (`raw_values`: the raw values in the range, counted up to limit + 1).
store::Resolution choose_resolution(const HistoryPlan& plan, const store::HistoryRetention& retention, int64_t now,
                                    size_t raw_values);
// The reply frame; `plan` null for a recent-values request.
std::string encode_history_reply(const proto::HistoryRequest& request, const HistoryPlan* plan,
                                 store::Resolution resolution, const store::HistoryPage& page);
// An `error` frame answering a history request (with its id, when it had one).
std::string encode_history_error(const proto::HistoryRequest& request, const std::string& code,
                                 const std::string& message);

class History {
 public:
  History(const config::CloudConfig& config, const Clock& clock, Metrics& metrics);
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  // From now on values go to the store through `worker` (store.history on). Before any record.
  void attach_store(store::Worker& worker, EventLoop& loop);
  bool in_store() const { return worker_ != nullptr; }

  // A status's values (scalars; in memory only numbers). `from_link`: the status came from a
  // gateway link held here, not over the backplane. A PostgreSQL store is shared by the
  // instances, so there only the holder writes it (each status stored once); a SQLite file
  // is the instance's own and keeps what it saw.
  void record(const std::string& flat, const std::string& device, const Json& state, int64_t ts,
              bool from_link = true);

  // Answers a browser's request through `send` (a reply or an error frame): at once from
  // memory; from the store later, on the loop, after the values buffered before it are written.
  void answer(const std::string& flat, const proto::HistoryRequest& request, std::function<void(std::string)> send);

  // Without the store: the points kept for one value of one flat, oldest first.
  std::vector<proto::HistoryPoint> points(const std::string& flat, const std::string& device,
                                          const std::string& capability) const;

  // Without the store: forgets the flat's values of devices not in `devices`, and of keys a
  // listed device neither has as a capability nor in its state.
  void keep_only(const std::string& flat, const std::map<std::string, proto::DeviceReport>& devices);
  // Without the store: how many values (flat, device, key) have points in memory.
  size_t series() const { return values_.size(); }

  // Shutdown: everything buffered is handed to the worker, which writes it before it stops.
  void close();

 private:
  void answer_from_memory(const std::string& flat, const proto::HistoryRequest& request, const HistoryPlan* plan,
                          const std::function<void(std::string)>& send) const;
  void flush(bool all);
  void put_back(std::vector<store::HistoryValue>& batch);
  void bound();
  void publish_counters();

  const config::CloudConfig& config_;
  const Clock& clock_;
  Metrics& metrics_;
  const store::HistoryRetention retention_;
  // In memory: (flat, "device/capability") -> the newest points.
  std::map<std::pair<std::string, std::string>, std::deque<proto::HistoryPoint>> values_;
  // In the store.
  store::Worker* worker_ = nullptr;
  bool shared_store_ = false;  // PostgreSQL: only statuses from links held here are written
  std::shared_ptr<store::HistoryStore> store_;  // used on the worker thread only
  std::deque<store::HistoryValue> buffer_;
  size_t writing_ = 0;       // batches handed to the worker, not yet answered
  bool failing_ = false;     // the last write failed (the database is away)
  uint64_t written_ = 0;
  uint64_t dropped_ = 0;
  uint64_t dropped_logged_ = 0;  // the drop log line's backoff: logged again at twice as many
  int64_t next_prune_ms_ = 0;
  std::unique_ptr<Timer> timer_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // worker answers after destruction are dropped
};

}  // namespace flatlink::cloud
