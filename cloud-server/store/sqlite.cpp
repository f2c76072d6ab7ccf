// The store's SQLite connection: one file, WAL, foreign keys on.
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "cloud-server/store/sql.h"

namespace flatlink::cloud::store {
namespace {

class SqliteConnection final : public SqlConnection {
 public:
  explicit SqliteConnection(const std::string& path) : path_(path) {
    // The file's folder is made (owner only) if missing, as a state folder would be.
    std::error_code ec;
    const auto folder = std::filesystem::path(path).parent_path();
    if (!folder.empty() && !std::filesystem::exists(folder, ec)) {
      std::filesystem::create_directories(folder, ec);
      if (!ec) std::filesystem::permissions(folder, std::filesystem::perms::owner_all, ec);
    }
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw StoreError("cannot open " + path + ": " + why);
    }
    sqlite3_busy_timeout(db_, 5000);  // another process (the admin command) may hold the write lock
    // Switching a fresh file to WAL needs an exclusive lock, and SQLite may answer "locked"
    // at once (without the busy handler) while another connection opens the same file: the
    // cloud and an admin command started together. Bounded retries, only at open.
    for (int attempt = 0;; ++attempt) {
      try {
        query("PRAGMA journal_mode=WAL");
        break;
      } catch (const StoreError&) {
        const int code = sqlite3_errcode(db_);
        if (attempt >= 100 || (code != SQLITE_BUSY && code != SQLITE_LOCKED)) throw;  // other errors at once
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    query("PRAGMA synchronous=NORMAL");
    query("PRAGMA foreign_keys=ON");
  }
  ~SqliteConnection() override { sqlite3_close(db_); }

  std::string_view engine() const override { return "sqlite"; }

  std::vector<Row> run(std::string_view sql, const std::vector<Value>& params) override {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK) {
      throw StoreError(std::string("sqlite: ") + sqlite3_errmsg(db_));
    }
    struct Finalize {
      sqlite3_stmt* s;
      ~Finalize() { sqlite3_finalize(s); }
    } finalize{stmt};
    for (size_t i = 0; i < params.size(); ++i) {
      const int at = static_cast<int>(i + 1);
      const Value& v = params[i];
      if (const auto* n = std::get_if<int64_t>(&v)) {
        sqlite3_bind_int64(stmt, at, *n);
      } else if (const auto* d = std::get_if<double>(&v)) {
        sqlite3_bind_double(stmt, at, *d);
      } else if (const auto* s = std::get_if<std::string>(&v)) {
        sqlite3_bind_text(stmt, at, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
      } else {
        sqlite3_bind_null(stmt, at);
      }
    }
    std::vector<Row> rows;
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) throw StoreError(std::string("sqlite: ") + sqlite3_errmsg(db_));
      Row row;
      const int n = sqlite3_column_count(stmt);
      for (int c = 0; c < n; ++c) {
        if (sqlite3_column_type(stmt, c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
        } else {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
          row.emplace_back(std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt, c))));
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  int64_t changes() override { return sqlite3_changes64(db_); }
  bool reconnect() override { return true; }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<SqlConnection> open_sqlite(const std::string& path) { return std::make_unique<SqliteConnection>(path); }

}  // namespace flatlink::cloud::store
