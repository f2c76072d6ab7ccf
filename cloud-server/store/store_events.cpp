// The event log (store_events.h).
#include "cloud-server/store/store_events.h"

#include <algorithm>
#include <array>
#include <chrono>

#include "common/log.h"

namespace flatlink::cloud::store {
namespace {

constexpr std::array<const char*, 8> kKinds = {"command", "presence", "gateway", "login",
                                               "login_failed", "logout", "member", "admin"};
constexpr size_t kBatchMax = 1000;       // rows per write
constexpr uint32_t kFlushMs = 200;       // how often the buffer is written
constexpr int64_t kPruneEveryMs = 3'600'000;

const std::string& text(const Row& row, size_t i) {
  static const std::string empty;
  return row.at(i) ? *row[i] : empty;
}
int64_t integer(const Row& row, size_t i) { return row.at(i) ? std::stoll(*row[i]) : 0; }

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool valid_event_kind(const std::string& kind) {
  return std::any_of(kKinds.begin(), kKinds.end(), [&](const char* k) { return kind == k; });
}

void append_events(Database& db, const std::vector<EventRow>& rows) {
  if (rows.empty()) return;
  SqlConnection& c = db.connection();
  Transaction tx(c);
  for (const auto& e : rows) {
    c.query("INSERT INTO events (flat, ts, kind, device, user_name, detail, outcome, message)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            {e.flat, e.ts, e.kind, e.device, e.user, e.detail.dump(-1, ' ', false, Json::error_handler_t::replace),
             e.outcome, e.message});
  }
  tx.commit();
}

EventPage query_events(Database& db, const EventQuery& q) {
  std::string sql =
      "SELECT id, flat, ts, kind, device, user_name, detail, outcome, message FROM events"
      " WHERE flat = ? AND id < ? AND ts >= ? AND ts <= ?";
  std::vector<Value> params = {q.flat, q.before, q.from, q.to};
  if (!q.device.empty()) {
    sql += " AND device = ?";
    params.emplace_back(q.device);
  }
  if (!q.kinds.empty()) {
    sql += " AND kind IN (";
    for (size_t i = 0; i < q.kinds.size(); ++i) {
      sql += i ? ", ?" : "?";
      params.emplace_back(q.kinds[i]);
    }
    sql += ")";
  }
  sql += " ORDER BY id DESC LIMIT ?";
  const int limit = std::clamp(q.limit, 1, 500);
  params.emplace_back(int64_t{limit + 1});  // one more tells whether a next page exists
  EventPage page;
  for (const auto& r : db.connection().query(sql, params)) {
    EventRow e;
    e.id = integer(r, 0);
    e.flat = text(r, 1);
    e.ts = integer(r, 2);
    e.kind = text(r, 3);
    e.device = text(r, 4);
    e.user = text(r, 5);
    e.detail = Json::parse(text(r, 6), nullptr, false);
    if (e.detail.is_discarded()) e.detail = Json::object();
    e.outcome = text(r, 7);
    e.message = text(r, 8);
    page.events.push_back(std::move(e));
  }
  if (page.events.size() > static_cast<size_t>(limit)) {
    page.events.pop_back();
    page.next = page.events.back().id;
  }
  return page;
}

int64_t prune_events(Database& db, int64_t before_ms) {
  db.connection().query("DELETE FROM events WHERE ts < ?", {before_ms});
  return db.connection().changes();
}

std::string encode_events_reply(const std::string& id, const EventPage& page) {
  Json events = Json::array();
  for (const auto& e : page.events) {
    Json j = {{"id", e.id}, {"ts", e.ts}, {"kind", e.kind}};
    if (!e.device.empty()) j["device"] = e.device;
    if (!e.user.empty()) j["user"] = e.user;
    if (!e.detail.empty()) j["detail"] = e.detail;
    if (e.kind == "command") {
      j["outcome"] = e.outcome;
      j["message"] = e.message;
    }
    events.push_back(std::move(j));
  }
  Json reply = {{"type", "events"}, {"events", std::move(events)}};
  if (!id.empty()) reply["id"] = id;
  if (page.next) reply["next"] = page.next;
  return reply.dump(-1, ' ', false, Json::error_handler_t::replace);
}

EventLog::EventLog(Worker& worker, EventLoop& loop, size_t buffer_max, int64_t retention_ms)
    : worker_(worker), buffer_max_(buffer_max), retention_ms_(retention_ms) {
  timer_ = std::make_unique<Timer>(loop, [this] {
    timer_->start(kFlushMs);
    flush();
  });
  timer_->start(kFlushMs);
}

EventLog::~EventLog() {
  alive_.reset();
  timer_.reset();
}

void EventLog::record(EventRow row) {
  if (row.ts == 0) row.ts = wall_ms();
  buffer_.push_back(std::move(row));
  if (buffer_.size() > buffer_max_) drop_oldest(buffer_.size() - buffer_max_);
}

void EventLog::drop_oldest(size_t n) {
  n = std::min(n, buffer_.size());
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
  dropped_ += n;
  if (dropped_ >= std::max<uint64_t>(1, dropped_logged_ * 2)) {
    dropped_logged_ = dropped_;
    LOG_WARN("events") << dropped_ << " events dropped so far: the database is away and " << buffer_max_
                       << " wait already (store.events_buffer_max)";
  }
}

void EventLog::flush() {
  if (writing_) return;
  const int64_t now = wall_ms();
  const bool prune = now >= next_prune_ms_;
  if (buffer_.empty() && !prune) return;
  const size_t n = std::min(buffer_.size(), kBatchMax);
  auto batch = std::make_shared<std::vector<EventRow>>(std::make_move_iterator(buffer_.begin()),
                                                       std::make_move_iterator(buffer_.begin() + static_cast<std::ptrdiff_t>(n)));
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
  const int64_t prune_before = prune ? now - retention_ms_ : 0;
  std::weak_ptr<int> alive = alive_;
  writing_ = worker_.call<bool>(
      [batch, prune_before](Database* db) {
        if (!db) return false;
        append_events(*db, *batch);
        if (prune_before) {
          const int64_t pruned = prune_events(*db, prune_before);
          if (pruned) LOG_INFO("events") << pruned << " events older than the retention deleted";
        }
        return true;
      },
      [this, alive, batch, prune](bool ok) {
        if (alive.expired()) return;
        writing_ = false;
        if (ok) {
          written_ += batch->size();
          if (prune) next_prune_ms_ = wall_ms() + kPruneEveryMs;
          return;
        }
        // The database is away: the batch goes back in front, the buffer stays bounded.
        buffer_.insert(buffer_.begin(), std::make_move_iterator(batch->begin()), std::make_move_iterator(batch->end()));
        if (buffer_.size() > buffer_max_) drop_oldest(buffer_.size() - buffer_max_);
      });
  if (!writing_) {
    // The worker's queue is full: the batch waits in the buffer for the next round.
    buffer_.insert(buffer_.begin(), std::make_move_iterator(batch->begin()), std::make_move_iterator(batch->end()));
    if (buffer_.size() > buffer_max_) drop_oldest(buffer_.size() - buffer_max_);
  }
}

}  // namespace flatlink::cloud::store
