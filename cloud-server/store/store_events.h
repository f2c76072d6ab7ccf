// The event log per flat (the audit trail): commands with who, device, what and outcome,
// presence, gateway online/offline, logins and failed logins, logouts, membership and admin
// changes. The store's side (append in batches, query in pages newest first, prune by age)
// is blocking, on the store's worker or the admin command; `EventLog` is the running cloud's
// writer on the loop: a bounded buffer written off the loop in batches, the oldest dropped
// and counted while the database is away.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cloud-server/store/store.h"
#include "cloud-server/store/worker.h"
#include "common/device_model.h"
#include "common/event_loop.h"

namespace flatlink::cloud::store {

struct EventRow {
  int64_t id = 0;  // given by the store
  std::string flat;
  int64_t ts = 0;  // wall ms
  std::string kind;  // command, presence, gateway, login, login_failed, logout, member, admin
  std::string device;
  std::string user;
  Json detail = Json::object();
  std::string outcome;  // commands
  std::string message;  // commands
};

// The kinds docs/protocol.md names.
bool valid_event_kind(const std::string& kind);

struct EventQuery {
  std::string flat;
  int64_t from = 0;                   // inclusive, wall ms
  int64_t to = INT64_MAX;             // inclusive
  std::string device;                 // "": every device
  std::vector<std::string> kinds;     // empty: every kind
  int64_t before = INT64_MAX;         // the paging cursor: ids below it
  int limit = 100;
};

struct EventPage {
  std::vector<EventRow> events;  // newest first
  int64_t next = 0;              // the `before` of the next page; 0: this is the last page
};

// Appends rows in one transaction.
void append_events(Database& db, const std::vector<EventRow>& rows);
EventPage query_events(Database& db, const EventQuery& query);
// Deletes events older than `before_ms`; returns how many.
int64_t prune_events(Database& db, int64_t before_ms);

// The reply to a browser's `events` request (docs/protocol.md).
std::string encode_events_reply(const std::string& id, const EventPage& page);

// The running cloud's writer. Loop thread only; the worker runs the writes.
class EventLog {
 public:
  // `buffer_max`: events waiting at most (then the oldest are dropped and counted);
  // `retention_ms`: older events are deleted once an hour.
  EventLog(Worker& worker, EventLoop& loop, size_t buffer_max, int64_t retention_ms);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  void record(EventRow row);
  uint64_t written() const { return written_; }
  uint64_t dropped() const { return dropped_; }
  size_t waiting() const { return buffer_.size(); }

 private:
  void flush();
  void drop_oldest(size_t n);

  Worker& worker_;
  size_t buffer_max_;
  int64_t retention_ms_;
  std::deque<EventRow> buffer_;
  bool writing_ = false;
  uint64_t written_ = 0;
  uint64_t dropped_ = 0;
  uint64_t dropped_logged_ = 0;  // the log line's backoff: logged again at twice as many
  int64_t next_prune_ms_ = 0;
  std::unique_ptr<Timer> timer_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace flatlink::cloud::store
