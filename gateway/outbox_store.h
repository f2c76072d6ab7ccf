// The outbox's SQLite file: statuses waiting for the cloud's ack, the reserved
// sequence numbers, the drop count and the ids of recent commands. Synchronous;
// used by one thread at a time (the outbox's writer thread once it runs).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/gateway_config.h"
#include "gateway/outbox.h"

namespace flatlink::gateway {

class OutboxStore {
 public:
  OutboxStore() = default;
  ~OutboxStore();
  OutboxStore(const OutboxStore&) = delete;
  OutboxStore& operator=(const OutboxStore&) = delete;

  // Opens (creating if needed) the database. False with error() set on failure.
  bool open(const std::string& path, config::Durability durability);
  bool is_open() const { return db_ != nullptr; }
  // The last open() failed because the file is not a database or is corrupt (as opposed to
  // an I/O failure: a full disk, a missing folder, no permission).
  bool damaged() const { return damaged_; }
  const std::string& error() const { return error_; }

  struct Summary {
    uint64_t count = 0;
    uint64_t bytes = 0;
    uint64_t max_seq = 0;
    uint64_t reserved_seq = 0;  // seqs below this may have been handed out before
    uint64_t dropped = 0;
    uint64_t coalesced = 0;
    uint64_t lost = 0;
    std::string epoch;  // empty: a store made before epochs, or a new one
  };
  std::optional<Summary> summary();
  // Up to max items with seq > after, in order.
  std::optional<std::vector<OutboxItem>> load_after(uint64_t after, size_t max);
  // (seq, bytes, device) of every stored item, in order: the outbox's index.
  struct IndexRow {
    uint64_t seq;
    uint32_t bytes;
    std::string device;
  };
  std::optional<std::vector<IndexRow>> load_index();
  // Ids of commands remembered at or after since_ms (wall ms), oldest first.
  std::optional<std::vector<std::pair<std::string, int64_t>>> recent_commands(int64_t since_ms);

  // One transaction's worth of changes.
  struct Batch {
    std::vector<OutboxItem> inserts;
    std::vector<uint64_t> deletes;
    // (older, newer): the newer status takes the older's keys it lacks; the older goes.
    std::vector<std::pair<uint64_t, uint64_t>> merges;
    uint64_t ack_upto = 0;           // delete everything up to here
    uint64_t reserve_seq = 0;        // record: seqs up to here may be in use
    std::optional<uint64_t> dropped;
    std::optional<uint64_t> coalesced;
    std::optional<uint64_t> lost;
    std::optional<std::string> epoch;  // a new epoch: the stream starts again
    std::vector<std::pair<std::string, int64_t>> commands;  // remembered command ids
    int64_t forget_commands_before = 0;  // wall ms: older ids go
    bool empty() const {
      return inserts.empty() && deletes.empty() && merges.empty() && !ack_upto && !reserve_seq && !dropped &&
             !coalesced && !lost && !epoch && commands.empty() && !forget_commands_before;
    }
  };
  bool commit(const Batch& batch);

 private:
  bool exec(const char* sql);
  bool quick_check();
  bool fail(const std::string& what);

  sqlite3* db_ = nullptr;
  std::string path_;
  std::string error_;
  bool damaged_ = false;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* delete_ = nullptr;
  sqlite3_stmt* ack_ = nullptr;
  sqlite3_stmt* meta_ = nullptr;
  sqlite3_stmt* command_ = nullptr;
  sqlite3_stmt* merge_ = nullptr;
};

}  // namespace flatlink::gateway
