// The store's PostgreSQL connection (libpq): `?` placeholders become $1.., values go as text.
#include <libpq-fe.h>

#include <cstdio>

#include "cloud-server/store/sql.h"

namespace flatlink::cloud::store {
namespace {

std::string first_line(const char* text) {
  std::string s = text ? text : "";
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// "?" -> "$n" outside quoted literals.
std::string numbered(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  bool quoted = false;
  for (char c : sql) {
    if (c == '\'') quoted = !quoted;
    if (c == '?' && !quoted) {
      out += '$' + std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

class PgConnection final : public SqlConnection {
 public:
  explicit PgConnection(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      const std::string why = first_line(PQerrorMessage(conn_));
      PQfinish(conn_);
      conn_ = nullptr;
      throw StoreError("postgresql: cannot connect: " + why);
    }
    quiet();
  }
  ~PgConnection() override { PQfinish(conn_); }

  std::string_view engine() const override { return "postgresql"; }

  std::vector<Row> run(std::string_view sql, const std::vector<Value>& params) override {
    if (PQstatus(conn_) != CONNECTION_OK && !reconnect()) {
      throw StoreError("postgresql: not connected: " + first_line(PQerrorMessage(conn_)));
    }
    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const Value& v = params[i];
      if (const auto* n = std::get_if<int64_t>(&v)) {
        texts[i] = std::to_string(*n);
      } else if (const auto* d = std::get_if<double>(&v)) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", *d);
        texts[i] = buf;
      } else if (const auto* s = std::get_if<std::string>(&v)) {
        texts[i] = *s;
      }
      values[i] = std::holds_alternative<std::monostate>(v) ? nullptr : texts[i].c_str();
    }
    PGresult* res = PQexecParams(conn_, numbered(sql).c_str(), static_cast<int>(params.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0);
    struct Clear {
      PGresult* r;
      ~Clear() { PQclear(r); }
    } clear{res};
    const auto status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      throw StoreError("postgresql: " + first_line(PQresultErrorMessage(res)));
    }
    const char* tuples = PQcmdTuples(res);
    changes_ = tuples && *tuples ? std::stoll(tuples) : 0;
    std::vector<Row> rows;
    const int n = PQntuples(res), cols = PQnfields(res);
    rows.reserve(static_cast<size_t>(n));
    for (int r = 0; r < n; ++r) {
      Row row;
      for (int c = 0; c < cols; ++c) {
        if (PQgetisnull(res, r, c)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(PQgetvalue(res, r, c), static_cast<size_t>(PQgetlength(res, r, c))));
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  int64_t changes() override { return changes_; }

  bool reconnect() override {
    if (PQstatus(conn_) == CONNECTION_OK) return true;
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) return false;
    quiet();
    return true;
  }

 private:
  void quiet() {
    PGresult* r = PQexec(conn_, "SET client_min_messages TO warning");
    PQclear(r);
  }

  PGconn* conn_ = nullptr;
  int64_t changes_ = 0;
};

}  // namespace

std::unique_ptr<SqlConnection> open_postgres(const std::string& conninfo) {
  return std::make_unique<PgConnection>(conninfo);
}

}  // namespace flatlink::cloud::store
