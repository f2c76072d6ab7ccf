// One SQL connection, as the store's database code uses it: statements with `?`
// placeholders, values bound by type, rows back as text. SQLite (sqlite.cpp) and PostgreSQL
// (postgres.cpp) implement it side by side; database.cpp is the one SQL both run.
// Not thread-safe: one connection belongs to one thread (the store's worker, or the admin
// command).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace flatlink::cloud::store {

// A database error: unreachable, a constraint, a bad statement. The message names what failed
// and never holds a password (connection strings are not echoed).
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A value bound to a `?`: NULL, an integer, a real or text.
using Value = std::variant<std::monostate, int64_t, double, std::string>;
// A result row: NULL or the column's text.
using Row = std::vector<std::optional<std::string>>;

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  virtual std::string_view engine() const = 0;  // "sqlite" or "postgresql"
  // Runs one statement; returns its rows (none for a statement without).
  std::vector<Row> query(std::string_view sql, const std::vector<Value>& params = {}) { return run(sql, params); }
  // Rows the last statement changed.
  virtual int64_t changes() = 0;
  // Whether the connection works (a PostgreSQL server may have gone); tries to reconnect.
  virtual bool reconnect() = 0;

 protected:
  virtual std::vector<Row> run(std::string_view sql, const std::vector<Value>& params) = 0;
};

// `path`: the database file (made if missing), WAL mode; throws StoreError.
std::unique_ptr<SqlConnection> open_sqlite(const std::string& path);
// `conninfo`: a libpq connection string ("host=127.0.0.1 port=5433 user=flatlink dbname=flatlink").
std::unique_ptr<SqlConnection> open_postgres(const std::string& conninfo);

// A transaction on one connection: rolled back unless committed. `write_lock` (the default,
// for every transaction that writes): SQLite takes its write lock at the start (BEGIN
// IMMEDIATE, waiting the busy timeout for another connection's write) instead of at the first
// write, so what the transaction reads no other process changes before it writes; a deferred
// one that read first is refused at its first write ("database is locked", no wait) once
// another connection has written. `false` only for a transaction that just reads (one view).
// PostgreSQL: a plain BEGIN either way.
class Transaction {
 public:
  explicit Transaction(SqlConnection& c, bool write_lock = true) : c_(c) {
    c_.query(write_lock && c_.engine() == "sqlite" ? "BEGIN IMMEDIATE" : "BEGIN");
  }
  ~Transaction() {
    if (!done_) {
      try {
        c_.query("ROLLBACK");
      } catch (const StoreError&) {
      }
    }
  }
  void commit() {
    c_.query("COMMIT");
    done_ = true;
  }

 private:
  SqlConnection& c_;
  bool done_ = false;
};

}  // namespace flatlink::cloud::store
