// The flats' value history (history.h): in memory, or written to the store off the loop.
#include "cloud-server/history.h"

#include <algorithm>
#include <array>

#include "common/log.h"

namespace flatlink::cloud {
namespace {

constexpr size_t kBatchMax = 5000;        // values per write: one transaction on the worker
constexpr uint32_t kFlushMs = 100;        // how long a value waits at most before its batch is handed over
constexpr int64_t kPruneEveryMs = 3'600'000;

struct Preset {
  const char* name;
  int64_t span_ms;
};
constexpr std::array<Preset, 4> kPresets = {{{"1h", store::kHourMs},
                                              {"24h", 24 * store::kHourMs},
                                              {"7d", 7 * 24 * store::kHourMs},
                                              {"30d", 30 * 24 * store::kHourMs}}};

const char* name_of(store::Resolution r) {
  return r == store::Resolution::raw ? "raw" : r == store::Resolution::minute ? "1m" : "1h";
}

std::string days(int64_t ms) { return std::to_string(ms / (24 * store::kHourMs)) + " days"; }

Json number_or_null(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

bool scalar(const Json& v) { return v.is_number() || v.is_boolean() || v.is_string(); }

store::HistoryRetention retention_of(const config::StoreConfig& store) {
  constexpr int64_t kDayMs = 24 * store::kHourMs;
  return {int64_t{store.history_raw_days} * kDayMs, int64_t{store.history_minute_days} * kDayMs,
          int64_t{store.history_hour_days} * kDayMs};
}

}  // namespace

std::variant<HistoryPlan, std::string> plan_history(const proto::HistoryRequest& request,
                                                    const store::HistoryRetention& retention, int64_t now,
                                                    size_t max_points) {
  HistoryPlan plan;
  plan.limit = request.limit > 0 ? static_cast<size_t>(request.limit) : max_points;
  if (!request.ranged()) {
    plan.recent = true;
    return plan;
  }
  if (request.resolution == "raw") {
    plan.resolution = store::Resolution::raw;
  } else if (request.resolution == "1m") {
    plan.resolution = store::Resolution::minute;
  } else if (request.resolution == "1h") {
    plan.resolution = store::Resolution::hour;
  } else if (!request.resolution.empty() && request.resolution != "auto") {
    return "resolution: expected raw, 1m, 1h or auto, got \"" + request.resolution + "\"";
  }
  const bool custom = request.range.empty() || request.range == "custom";
  if (custom) {
    if (request.range == "custom" && request.from < 0) return "range custom: from is missing";
    plan.to = request.to >= 0 ? request.to : now;
    plan.from = request.from >= 0 ? request.from
                                  : std::max<int64_t>(0, plan.to - retention.of(plan.resolution.value_or(store::Resolution::hour)));
    if (plan.from > plan.to) return "from (" + std::to_string(plan.from) + ") is after to (" + std::to_string(plan.to) + ")";
  } else {
    auto preset = std::find_if(kPresets.begin(), kPresets.end(), [&](const Preset& p) { return request.range == p.name; });
    if (preset == kPresets.end()) return "range: expected 1h, 24h, 7d, 30d or custom, got \"" + request.range + "\"";
    if (request.from >= 0 || request.to >= 0) {
      return "range " + request.range + " ends now: leave out from and to, or use range custom";
    }
    plan.to = now;
    plan.from = now - preset->span_ms;
  }
  if (plan.resolution && plan.from < now - retention.of(*plan.resolution)) {
    return std::string("resolution ") + name_of(*plan.resolution) + " is kept " + days(retention.of(*plan.resolution)) +
           ": from is before that (a coarser resolution, or auto, reaches it)";
  }
  return plan;
}

store::Resolution choose_resolution(const HistoryPlan& plan, const store::HistoryRetention& retention, int64_t now,
                                    size_t raw_values) {
  if (plan.resolution) return *plan.resolution;
  const int64_t span = plan.to - plan.from;
  if (plan.from >= now - retention.raw_ms && raw_values <= plan.limit) return store::Resolution::raw;
  if (plan.from >= now - retention.minute_ms && span / store::kMinuteMs + 1 <= static_cast<int64_t>(plan.limit)) {
    return store::Resolution::minute;
  }
  return store::Resolution::hour;
}

std::string encode_history_reply(const proto::HistoryRequest& request, const HistoryPlan* plan,
                                 store::Resolution resolution, const store::HistoryPage& page) {
  Json reply = {{"type", "history"}, {"device", request.device}, {"capability", request.capability}};
  if (!request.id.empty()) reply["id"] = request.id;
  if (plan && !plan->recent) {
    if (!request.range.empty()) reply["range"] = request.range;
    reply["resolution"] = name_of(resolution);
    reply["from"] = plan->from;
    reply["to"] = plan->to;
    if (page.next_from) reply["next_from"] = *page.next_from;
  }
  if (resolution == store::Resolution::raw) {
    Json points = Json::array();
    for (const auto& [ts, value] : page.points) points.push_back(Json::array({ts, value}));
    reply["points"] = std::move(points);
  } else {
    Json buckets = Json::array();
    for (const auto& b : page.buckets) {
      buckets.push_back(Json::array({b.start, number_or_null(b.min), number_or_null(b.max), number_or_null(b.avg), b.last, b.count}));
    }
    reply["buckets"] = std::move(buckets);
  }
  return reply.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string encode_history_error(const proto::HistoryRequest& request, const std::string& code,
                                 const std::string& message) {
  Json error = {{"type", "error"}, {"code", code}, {"message", message}};
  if (!request.id.empty()) error["id"] = request.id;
  return error.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// ---- History ------------------------------------------------------------------------

History::History(const config::CloudConfig& config, const Clock& clock, Metrics& metrics)
    : config_(config), clock_(clock), metrics_(metrics), retention_(retention_of(config.store)) {}

History::~History() {
  alive_.reset();
  timer_.reset();
}

void History::attach_store(store::Worker& worker, EventLoop& loop) {
  worker_ = &worker;
  shared_store_ = config_.store.engine == "postgresql";
  store_ = std::make_shared<store::HistoryStore>();
  timer_ = std::make_unique<Timer>(loop, [this] {
    timer_->start(kFlushMs);
    flush(false);
  });
  timer_->start(kFlushMs);
  metrics_.history_in_store = true;
}

void History::record(const std::string& flat, const std::string& device, const Json& state, int64_t ts,
                     bool from_link) {
  if (!worker_) {
    if (config_.limits.history_points == 0) return;
    for (const auto& [key, value] : state.items()) {
      if (!value.is_number()) continue;
      auto& points = values_[{flat, device + "/" + key}];
      points.push_back(proto::HistoryPoint{ts, value});
      while (points.size() > config_.limits.history_points) points.pop_front();
    }
    return;
  }
  if (shared_store_ && !from_link) return;  // the holder's instance writes it
  for (const auto& [key, value] : state.items()) {
    if (scalar(value)) buffer_.push_back(store::HistoryValue{flat, device, key, ts, value});
  }
  bound();
  if (buffer_.size() >= kBatchMax && writing_ == 0) flush(false);
  publish_counters();
}

void History::keep_only(const std::string& flat, const std::map<std::string, proto::DeviceReport>& devices) {
  auto it = values_.lower_bound({flat, std::string()});
  while (it != values_.end() && it->first.first == flat) {
    const std::string& series = it->first.second;  // "device/key"
    const size_t slash = series.rfind('/');
    const auto device = devices.find(series.substr(0, slash));
    const std::string key = series.substr(slash + 1);
    const bool kept = device != devices.end() &&
                      (device->second.state.contains(key) ||
                       std::any_of(device->second.info.capabilities.begin(), device->second.info.capabilities.end(),
                                   [&](const Capability& capability) { return capability.name == key; }));
    it = kept ? std::next(it) : values_.erase(it);
  }
}

void History::publish_counters() {
  metrics_.history_written = written_;
  metrics_.history_dropped = dropped_;
  metrics_.history_waiting = static_cast<int64_t>(buffer_.size());
}

// One batch at a time keeps the worker's queue short; `all` (before a read, at shutdown)
// hands over everything at once, so that what was recorded before is written first.
void History::flush(bool all) {
  if (!worker_ || (writing_ > 0 && !all)) return;
  const int64_t now = clock_.wall_ms();
  bool prune = now >= next_prune_ms_;
  if (prune) next_prune_ms_ = now + kPruneEveryMs;
  if (buffer_.empty() && !prune) return;
  do {
    const size_t n = std::min(buffer_.size(), kBatchMax);
    auto batch = std::make_shared<std::vector<store::HistoryValue>>(
        std::make_move_iterator(buffer_.begin()), std::make_move_iterator(buffer_.begin() + static_cast<std::ptrdiff_t>(n)));
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
    const store::HistoryRetention retention = retention_;
    const bool prune_now = prune;  // with the round's first batch
    prune = false;
    std::weak_ptr<int> alive = alive_;
    const bool queued = worker_->call<bool>(
        [history = store_, batch, retention, now, prune_now](store::Database* db) {
          if (!db) return false;
          history->write(*db, *batch, now - retention.raw_ms);
          if (prune_now) {
            if (const int64_t pruned = history->prune(*db, retention, now)) {
              LOG_INFO("history") << pruned << " rows older than their level's retention deleted";
            }
          }
          return true;
        },
        [this, alive, batch](bool ok) {
          if (alive.expired()) return;
          --writing_;
          if (ok) {
            written_ += batch->size();
            if (failing_) {
              failing_ = false;
              LOG_INFO("history") << "the store takes status values again; " << buffer_.size() << " waiting";
            }
          } else {
            if (!failing_) {
              failing_ = true;
              LOG_WARN("history") << "cannot write status values: the store is unreachable; they wait (at most "
                                  << config_.store.history_buffer_max << ", then the oldest are dropped and counted)";
            }
            put_back(*batch);
          }
          publish_counters();
          if (ok && buffer_.size() >= kBatchMax) flush(false);  // a flood: keep the worker busy
        });
    if (!queued) {
      put_back(*batch);  // the worker's queue is full: the batch waits for the next round
      break;
    }
    ++writing_;
  } while (all && !buffer_.empty());
  publish_counters();
}

// A batch not written goes back in front; the buffer stays bounded.
void History::put_back(std::vector<store::HistoryValue>& batch) {
  buffer_.insert(buffer_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
  bound();
}

// Beyond store.history.buffer_max the oldest values go, counted; the log line backs off
// (again at twice as many).
void History::bound() {
  if (buffer_.size() <= config_.store.history_buffer_max) return;
  const size_t n = buffer_.size() - config_.store.history_buffer_max;
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
  dropped_ += n;
  if (dropped_ >= std::max<uint64_t>(1, dropped_logged_ * 2)) {
    dropped_logged_ = dropped_;
    LOG_WARN("history") << dropped_ << " status values dropped so far, not stored: " << buffer_.size()
                        << " wait already (store.history.buffer_max) while the database "
                        << (failing_ ? "is away" : "falls behind");
  }
}

void History::answer(const std::string& flat, const proto::HistoryRequest& request,
                     std::function<void(std::string)> send) {
  const int64_t now = clock_.wall_ms();
  const size_t max_points = proto::Limits{}.max_points;
  // The recent values are as many as the chart kept in memory before ranges existed.
  const size_t recent_points = config_.limits.history_points ? std::min<size_t>(config_.limits.history_points, max_points) : max_points;
  auto planned = worker_ ? plan_history(request, retention_, now, max_points)
                         : plan_history(request, store::HistoryRetention{INT64_MAX / 4, INT64_MAX / 4, INT64_MAX / 4}, now,
                                        max_points);
  if (auto* error = std::get_if<std::string>(&planned)) {
    send(encode_history_error(request, "invalid_range", *error));
    return;
  }
  HistoryPlan plan = std::get<HistoryPlan>(planned);
  if (plan.recent && request.limit == 0) plan.limit = recent_points;
  if (!worker_) return answer_from_memory(flat, request, &plan, send);
  flush(true);  // the values recorded before this request are in its answer
  const store::HistoryRetention retention = retention_;
  const bool queued = worker_->call<std::string>(
      [history = store_, flat, request, plan, retention, now](store::Database* db) {
        if (!db) return encode_history_error(request, "unavailable", "the store is unreachable; try again");
        if (plan.recent) {
          return encode_history_reply(request, nullptr, store::Resolution::raw,
                                      history->recent(*db, flat, request.device, request.capability, plan.limit));
        }
        size_t raw_values = 0;
        if (!plan.resolution && plan.from >= now - retention.raw_ms) {
          raw_values = history->count_raw(*db, flat, request.device, request.capability, plan.from, plan.to, plan.limit + 1);
        }
        const store::Resolution level = choose_resolution(plan, retention, now, raw_values);
        return encode_history_reply(request, &plan, level,
                                    history->read(*db, flat, request.device, request.capability, level, plan.from,
                                                  plan.to, plan.limit));
      },
      std::move(send));
  if (!queued) send(encode_history_error(request, "unavailable", "the store is busy; try again"));
}

void History::answer_from_memory(const std::string& flat, const proto::HistoryRequest& request, const HistoryPlan* plan,
                                 const std::function<void(std::string)>& send) const {
  if (plan->resolution && *plan->resolution != store::Resolution::raw) {
    send(encode_history_error(request, "invalid_range", "rollups (1m, 1h) need the cloud's store; ask for raw"));
    return;
  }
  store::HistoryPage page;
  auto it = values_.find({flat, request.device + "/" + request.capability});
  if (it != values_.end()) {
    for (const auto& p : it->second) {
      if (plan->recent || (p.ts >= plan->from && p.ts <= plan->to)) page.points.emplace_back(p.ts, p.value);
    }
  }
  if (plan->recent && page.points.size() > plan->limit) {
    page.points.erase(page.points.begin(), page.points.end() - static_cast<std::ptrdiff_t>(plan->limit));
  } else if (page.points.size() > plan->limit) {
    page.next_from = page.points[plan->limit].first;
    page.points.resize(plan->limit);
  }
  send(encode_history_reply(request, plan->recent ? nullptr : plan, store::Resolution::raw, page));
}

std::vector<proto::HistoryPoint> History::points(const std::string& flat, const std::string& device,
                                                 const std::string& capability) const {
  auto it = values_.find({flat, device + "/" + capability});
  if (it == values_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

void History::close() {
  if (!worker_) return;
  timer_.reset();
  flush(true);
}

}  // namespace flatlink::cloud
