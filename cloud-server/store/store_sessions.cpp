// Browser sessions in the store (store_sessions.h).
#include "cloud-server/store/store_sessions.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>

namespace flatlink::cloud::store {
namespace {

const std::string& text(const Row& row, size_t i) {
  static const std::string empty;
  return row.at(i) ? *row[i] : empty;
}
int64_t integer(const Row& row, size_t i) { return row.at(i) ? std::stoll(*row[i]) : 0; }

SessionRow session_of(const Row& r) {
  return {text(r, 0), text(r, 1), text(r, 2), text(r, 3), integer(r, 4), integer(r, 5), integer(r, 6)};
}

constexpr const char* kColumns = "token_sha256, user_name, flat, client, created, last_used, expires";

}  // namespace

std::string new_session_token() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw StoreError("no random bytes for a session token");
  static const char* digits = "0123456789abcdef";
  std::string token;
  for (unsigned char b : raw) {
    token += digits[b >> 4];
    token += digits[b & 15];
  }
  return token;
}

void create_session(Database& db, const SessionRow& row) {
  db.connection().query("INSERT INTO sessions (token_sha256, user_name, flat, client, created, last_used, expires)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        {row.token_sha256, row.user, row.flat, row.client.substr(0, 200), row.created, row.last_used,
                         row.expires});
}

int end_sessions_where(SqlConnection& c, const std::string& where, const std::vector<Value>& params) {
  std::vector<Value> with_now = params;
  // The end's time first: the INSERT's own `?` precedes the condition's.
  with_now.insert(with_now.begin(), Value{int64_t{0}});
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  with_now[0] = int64_t{now};
  c.query("INSERT INTO session_ends (token_sha256, at) SELECT token_sha256, ? FROM sessions WHERE " + where, with_now);
  c.query("DELETE FROM sessions WHERE " + where, params);
  return static_cast<int>(c.changes());
}

std::optional<SessionRow> use_session(Database& db, const std::string& token_sha256, int64_t now_ms, int64_t idle_ms) {
  SqlConnection& c = db.connection();
  Transaction tx(c);
  const auto rows = c.query(std::string("SELECT ") + kColumns + " FROM sessions WHERE token_sha256 = ?", {token_sha256});
  if (rows.empty()) return std::nullopt;
  SessionRow row = session_of(rows[0]);
  if (row.expires <= now_ms || row.last_used + idle_ms <= now_ms) {
    end_sessions_where(c, "token_sha256 = ?", {token_sha256});
    tx.commit();
    return std::nullopt;
  }
  c.query("UPDATE sessions SET last_used = ? WHERE token_sha256 = ?", {now_ms, token_sha256});
  tx.commit();
  row.last_used = now_ms;
  return row;
}

std::vector<SessionRow> list_sessions(Database& db, const std::string& user) {
  std::vector<SessionRow> out;
  const auto rows = user.empty() ? db.connection().query(std::string("SELECT ") + kColumns +
                                                         " FROM sessions ORDER BY last_used DESC, token_sha256")
                                 : db.connection().query(std::string("SELECT ") + kColumns +
                                                             " FROM sessions WHERE user_name = ?"
                                                             " ORDER BY last_used DESC, token_sha256",
                                                         {user});
  for (const auto& r : rows) out.push_back(session_of(r));
  return out;
}

int end_session_by_prefix(Database& db, const std::string& prefix) {
  if (prefix.size() < 8 || prefix.find_first_not_of("0123456789abcdef") != std::string::npos) return 0;
  SqlConnection& c = db.connection();
  Transaction tx(c);
  // Prefix match without LIKE's wildcards: hex digits only, checked above.
  const auto rows = c.query("SELECT token_sha256 FROM sessions WHERE substr(token_sha256, 1, ?) = ?",
                            {int64_t(prefix.size()), prefix});
  if (rows.size() > 1) return -1;
  if (rows.empty()) return 0;
  const int n = end_sessions_where(c, "token_sha256 = ?", {text(rows[0], 0)});
  tx.commit();
  return n;
}

bool end_session(Database& db, const std::string& token_sha256) {
  Transaction tx(db.connection());
  const int n = end_sessions_where(db.connection(), "token_sha256 = ?", {token_sha256});
  tx.commit();
  return n > 0;
}

int end_user_sessions(Database& db, const std::string& user) {
  Transaction tx(db.connection());
  const int n = end_sessions_where(db.connection(), "user_name = ?", {user});
  tx.commit();
  return n;
}

SessionEnds session_ends_after(Database& db, int64_t after) {
  SessionEnds out;
  out.last = after;
  // A little behind `after`: on PostgreSQL ids are taken at insert but become visible at
  // commit, so a smaller id may appear after a larger one was read. Ending a session twice
  // does nothing.
  for (const auto& r : db.connection().query(
           "SELECT id, token_sha256 FROM session_ends WHERE id > ? ORDER BY id LIMIT 10000", {after - 64})) {
    out.last = std::max(out.last, integer(r, 0));
    out.token_sha256.push_back(text(r, 1));
  }
  return out;
}

int64_t last_session_end(Database& db) {
  const auto rows = db.connection().query("SELECT MAX(id) FROM session_ends");
  return rows.empty() ? 0 : integer(rows[0], 0);
}

void prune_sessions(Database& db, int64_t now_ms, int64_t idle_ms, int64_t keep_ends_ms) {
  SqlConnection& c = db.connection();
  Transaction tx(c);
  end_sessions_where(c, "expires <= ? OR last_used <= ?", {now_ms, now_ms - idle_ms});
  c.query("DELETE FROM session_ends WHERE at < ?", {now_ms - keep_ends_ms});
  tx.commit();
}

}  // namespace flatlink::cloud::store
