// Browser sessions in the store: a login over POST /session makes one (a random token in an
// HttpOnly cookie; the store keeps only its SHA-256), the WebSocket's `resume` uses it. A
// session ends by logout, revocation (admin, a password change, a removed membership), its
// idle timeout or its absolute expiry; every end is also written to `session_ends`, which
// every running instance reads incrementally (Router's poll, ~1 s) to close that session's
// links. Blocking calls on one connection: the store's worker or the admin command.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cloud-server/store/sql.h"
#include "cloud-server/store/store.h"

namespace flatlink::cloud::store {

struct SessionRow {
  std::string token_sha256;
  std::string user;
  std::string flat;
  std::string client;  // the browser's address and User-Agent, for `admin session list`
  int64_t created = 0;    // wall ms
  int64_t last_used = 0;  // wall ms
  int64_t expires = 0;    // wall ms: the absolute expiry
};

void create_session(Database& db, const SessionRow& row);
// The session of that token hash if it is still valid at `now_ms` (not past `expires`, used
// within `idle_ms`); moves its last use to now. An expired one is ended (reason "expired").
std::optional<SessionRow> use_session(Database& db, const std::string& token_sha256, int64_t now_ms, int64_t idle_ms);
// Sessions of one user ("": all), newest use first.
std::vector<SessionRow> list_sessions(Database& db, const std::string& user = "");
// Ends the sessions whose token hash starts with `prefix` (at least 8 hex digits: what
// `admin session list` shows). Returns how many ended; more than one match ends none (-1).
int end_session_by_prefix(Database& db, const std::string& prefix);
// Ends one session (logout); false if it was not there.
bool end_session(Database& db, const std::string& token_sha256);
// Ends every session of a user (logout everywhere); returns how many.
int end_user_sessions(Database& db, const std::string& user);

// Within the caller's transaction: records the ends of the sessions matching `where` (an SQL
// condition on table sessions with `?` params), then deletes them. Returns how many.
int end_sessions_where(SqlConnection& c, const std::string& where, const std::vector<Value>& params);

// The ends written after `after` (a session_ends id): the newest id and the token hashes.
struct SessionEnds {
  int64_t last = 0;
  std::vector<std::string> token_sha256;
};
SessionEnds session_ends_after(Database& db, int64_t after);
int64_t last_session_end(Database& db);
// Deletes sessions past their expiry or idle timeout and ends older than `keep_ends_ms`.
void prune_sessions(Database& db, int64_t now_ms, int64_t idle_ms, int64_t keep_ends_ms);

// A new random session token (32 bytes, hex) for the cookie.
std::string new_session_token();

}  // namespace flatlink::cloud::store
