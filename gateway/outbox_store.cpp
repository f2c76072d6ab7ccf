// SQLite storage of the outbox (WAL mode).
#include "gateway/outbox_store.h"

namespace flatlink::gateway {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS statuses (
  seq    INTEGER PRIMARY KEY,
  device TEXT    NOT NULL,
  state  TEXT    NOT NULL,
  ts     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
  id TEXT PRIMARY KEY,
  ts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_ts ON commands(ts);
CREATE TABLE IF NOT EXISTS stream (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql";

}  // namespace

OutboxStore::~OutboxStore() {
  for (sqlite3_stmt* s : {insert_, delete_, ack_, meta_, command_, merge_}) sqlite3_finalize(s);
  if (db_) sqlite3_close(db_);
}

bool OutboxStore::fail(const std::string& what) {
  error_ = path_ + ": " + what + ": " + (db_ ? sqlite3_errmsg(db_) : "cannot open");
  return false;
}

bool OutboxStore::exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    error_ = path_ + ": " + (message ? message : "error");
    sqlite3_free(message);
    return false;
  }
  return true;
}

bool OutboxStore::quick_check() {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA quick_check;", -1, &st, nullptr) != SQLITE_OK) return fail("check");
  std::string answer;
  const int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && sqlite3_column_text(st, 0)) answer = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return fail("check");
  if (answer != "ok") {
    damaged_ = true;
    error_ = path_ + ": damaged: " + answer.substr(0, 200);
    return false;
  }
  return true;
}

bool OutboxStore::open(const std::string& path, config::Durability durability) {
  path_ = path;
  damaged_ = false;
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    fail("open");
    sqlite3_close(db_);
    db_ = nullptr;
    return false;
  }
  sqlite3_busy_timeout(db_, 1000);
  const bool ok = exec("PRAGMA journal_mode=WAL;") &&
                  exec(durability == config::Durability::sync ? "PRAGMA synchronous=FULL;"
                                                              : "PRAGMA synchronous=NORMAL;") &&
                  quick_check() && exec(kSchema) &&
                  sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO statuses(seq, device, state, ts) VALUES(?,?,?,?)",
                                     -1, &insert_, nullptr) == SQLITE_OK &&
                  sqlite3_prepare_v2(db_, "DELETE FROM statuses WHERE seq = ?", -1, &delete_, nullptr) == SQLITE_OK &&
                  sqlite3_prepare_v2(db_, "DELETE FROM statuses WHERE seq <= ?", -1, &ack_, nullptr) == SQLITE_OK &&
                  sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1, &meta_,
                                     nullptr) == SQLITE_OK &&
                  sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO commands(id, ts) VALUES(?, ?)", -1, &command_,
                                     nullptr) == SQLITE_OK &&
                  sqlite3_prepare_v2(db_,
                                     "UPDATE statuses SET state = json_patch((SELECT state FROM statuses WHERE seq = ?1), "
                                     "state) WHERE seq = ?2 AND EXISTS (SELECT 1 FROM statuses WHERE seq = ?1)",
                                     -1, &merge_, nullptr) == SQLITE_OK;
  if (!ok) {
    const int code = sqlite3_errcode(db_) & 0xff;
    damaged_ = code == SQLITE_NOTADB || code == SQLITE_CORRUPT;
    if (error_.empty()) fail("prepare");
    for (sqlite3_stmt** s : {&insert_, &delete_, &ack_, &meta_, &command_, &merge_}) {
      sqlite3_finalize(*s);
      *s = nullptr;
    }
    sqlite3_close(db_);
    db_ = nullptr;
    return false;
  }
  return true;
}

std::optional<OutboxStore::Summary> OutboxStore::summary() {
  Summary s;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT count(*), coalesce(sum(length(state) + length(device)), 0), coalesce(max(seq), 0) FROM statuses",
                         -1, &st, nullptr) != SQLITE_OK) {
    fail("read");
    return std::nullopt;
  }
  if (sqlite3_step(st) == SQLITE_ROW) {
    s.count = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    s.bytes = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
    s.max_seq = static_cast<uint64_t>(sqlite3_column_int64(st, 2));
  }
  sqlite3_finalize(st);
  if (sqlite3_prepare_v2(db_, "SELECT key, value FROM meta", -1, &st, nullptr) != SQLITE_OK) {
    fail("read");
    return std::nullopt;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    const std::string key = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    const auto value = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
    if (key == "reserved_seq") s.reserved_seq = value;
    if (key == "dropped") s.dropped = value;
    if (key == "coalesced") s.coalesced = value;
    if (key == "lost") s.lost = value;
  }
  sqlite3_finalize(st);
  if (sqlite3_prepare_v2(db_, "SELECT value FROM stream WHERE key = 'epoch'", -1, &st, nullptr) != SQLITE_OK) {
    fail("read");
    return std::nullopt;
  }
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
    s.epoch = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  return s;
}

std::optional<std::vector<OutboxItem>> OutboxStore::load_after(uint64_t after, size_t max) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT seq, device, state, ts FROM statuses WHERE seq > ? ORDER BY seq LIMIT ?", -1,
                         &st, nullptr) != SQLITE_OK) {
    fail("read");
    return std::nullopt;
  }
  sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(after));
  sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(max));
  std::vector<OutboxItem> items;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    OutboxItem item;
    item.seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    item.device = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
    const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
    item.state_text = text ? text : "";
    // Checked without building a tree: a state that is not a JSON object is never from us.
    const size_t first = item.state_text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || item.state_text[first] != '{' || !Json::accept(item.state_text)) {
      item.state_text = "{}";
    }
    item.ts = sqlite3_column_int64(st, 3);
    items.push_back(std::move(item));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    fail("read");
    return std::nullopt;
  }
  return items;
}

std::optional<std::vector<OutboxStore::IndexRow>> OutboxStore::load_index() {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT seq, length(state) + length(device), device FROM statuses ORDER BY seq", -1, &st,
                         nullptr) != SQLITE_OK) {
    fail("read");
    return std::nullopt;
  }
  std::vector<IndexRow> rows;
  while (sqlite3_step(st) == SQLITE_ROW) {
    rows.push_back(IndexRow{static_cast<uint64_t>(sqlite3_column_int64(st, 0)),
                            static_cast<uint32_t>(sqlite3_column_int64(st, 1)),
                            reinterpret_cast<const char*>(sqlite3_column_text(st, 2))});
  }
  sqlite3_finalize(st);
  return rows;
}

std::optional<std::vector<std::pair<std::string, int64_t>>> OutboxStore::recent_commands(int64_t since_ms) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT id, ts FROM commands WHERE ts >= ? ORDER BY ts", -1, &st, nullptr) != SQLITE_OK) {
    fail("read");
    return std::nullopt;
  }
  sqlite3_bind_int64(st, 1, since_ms);
  std::vector<std::pair<std::string, int64_t>> ids;
  while (sqlite3_step(st) == SQLITE_ROW) {
    ids.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), sqlite3_column_int64(st, 1));
  }
  sqlite3_finalize(st);
  return ids;
}

bool OutboxStore::commit(const Batch& batch) {
  if (!db_) return false;
  if (batch.empty()) return true;
  if (!exec("BEGIN IMMEDIATE;")) return false;
  auto step = [&](sqlite3_stmt* st) {
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE;
  };
  bool ok = true;
  for (const auto& item : batch.inserts) {
    if (!ok) break;
    if (item.seq <= batch.ack_upto) continue;  // acknowledged before it reached the disk
    sqlite3_bind_int64(insert_, 1, static_cast<sqlite3_int64>(item.seq));
    sqlite3_bind_text(insert_, 2, item.device.data(), static_cast<int>(item.device.size()), SQLITE_STATIC);
    sqlite3_bind_text(insert_, 3, item.state_text.data(), static_cast<int>(item.state_text.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 4, item.ts);
    ok = step(insert_);
  }
  for (auto [older, newer] : batch.merges) {
    if (!ok) break;
    sqlite3_bind_int64(merge_, 1, static_cast<sqlite3_int64>(older));
    sqlite3_bind_int64(merge_, 2, static_cast<sqlite3_int64>(newer));
    ok = step(merge_);
    if (ok) {
      sqlite3_bind_int64(delete_, 1, static_cast<sqlite3_int64>(older));
      ok = step(delete_);
    }
  }
  for (uint64_t seq : batch.deletes) {
    if (!ok) break;
    sqlite3_bind_int64(delete_, 1, static_cast<sqlite3_int64>(seq));
    ok = step(delete_);
  }
  if (ok && batch.ack_upto) {
    sqlite3_bind_int64(ack_, 1, static_cast<sqlite3_int64>(batch.ack_upto));
    ok = step(ack_);
  }
  auto meta = [&](const char* key, uint64_t value) {
    sqlite3_bind_text(meta_, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(meta_, 2, static_cast<sqlite3_int64>(value));
    return step(meta_);
  };
  if (ok && batch.reserve_seq) ok = meta("reserved_seq", batch.reserve_seq);
  if (ok && batch.dropped) ok = meta("dropped", *batch.dropped);
  if (ok && batch.coalesced) ok = meta("coalesced", *batch.coalesced);
  if (ok && batch.lost) ok = meta("lost", *batch.lost);
  if (ok && batch.epoch) {
    sqlite3_stmt* st = nullptr;
    ok = sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO stream(key, value) VALUES('epoch', ?)", -1, &st, nullptr) ==
         SQLITE_OK;
    if (ok) {
      sqlite3_bind_text(st, 1, batch.epoch->c_str(), -1, SQLITE_TRANSIENT);
      ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
  }
  for (const auto& [id, ts] : batch.commands) {
    if (!ok) break;
    sqlite3_bind_text(command_, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(command_, 2, ts);
    ok = step(command_);
  }
  if (ok && batch.forget_commands_before) {
    const std::string trim = "DELETE FROM commands WHERE ts < " + std::to_string(batch.forget_commands_before) + ";";
    ok = exec(trim.c_str());
  }
  // Keep the first error: a rollback after a failed statement may fail too, and say less.
  auto rollback = [&] { sqlite3_exec(db_, "ROLLBACK;", nullptr, nullptr, nullptr); };
  if (!ok) {
    fail("write");
    rollback();
    return false;
  }
  if (!exec("COMMIT;")) {
    rollback();
    return false;
  }
  return true;
}

}  // namespace flatlink::gateway
