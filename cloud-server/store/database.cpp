// The store's one SQL, run on SQLite and PostgreSQL alike; versioned migrations.
#include <chrono>
#include <map>
#include <set>

#include "cloud-server/store/store.h"
#include "cloud-server/store/store_sessions.h"

namespace flatlink::cloud::store {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One migration: statements applied in one transaction. `{id}` is the engine's
// auto-incrementing 64-bit key.
struct Migration {
  int version;
  const char* what;
  std::vector<const char*> statements;
};

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1,
       "accounts",
       {
           "CREATE TABLE flats (id TEXT PRIMARY KEY, name TEXT NOT NULL, created BIGINT NOT NULL)",
           "CREATE TABLE gateways (flat TEXT PRIMARY KEY REFERENCES flats(id) ON DELETE CASCADE,"
           " token_sha256 TEXT NOT NULL UNIQUE, issued BIGINT NOT NULL)",
           "CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL,"
           " is_operator INTEGER NOT NULL DEFAULT 0, created BIGINT NOT NULL)",
           "CREATE TABLE members (flat TEXT NOT NULL REFERENCES flats(id) ON DELETE CASCADE,"
           " user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, role TEXT NOT NULL,"
           " expires BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (flat, user_name))",
           "CREATE TABLE accounts_version (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
           "INSERT INTO accounts_version (id, version) VALUES (1, 1)",
       }},
      {2,
       "sessions",
       {
           "CREATE TABLE sessions (token_sha256 TEXT PRIMARY KEY,"
           " user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, flat TEXT NOT NULL,"
           " created BIGINT NOT NULL, last_used BIGINT NOT NULL, expires BIGINT NOT NULL, client TEXT NOT NULL)",
           "CREATE INDEX sessions_user ON sessions (user_name)",
       }},
      {3,
       "pairing codes",
       {
           // One-time codes for `flatlinkd pair` (store_pairing.h): hashed, expiring, used once.
           "CREATE TABLE pairing_codes (code_sha256 TEXT PRIMARY KEY,"
           " flat TEXT NOT NULL REFERENCES flats(id) ON DELETE CASCADE,"
           " expires BIGINT NOT NULL, used BIGINT NOT NULL DEFAULT 0)",
       }},
      // History (store_history.h): one row per series, raw values and two rollup levels, each
      // keyed by (series, time) and clustered on it (SQLite: WITHOUT ROWID, no second index).
      {4,
       "history",
       {
           "CREATE TABLE history_series (id {id}, flat TEXT NOT NULL, device TEXT NOT NULL,"
           " capability TEXT NOT NULL, UNIQUE (flat, device, capability))",
           "CREATE TABLE history_raw (series BIGINT NOT NULL, ts BIGINT NOT NULL, num DOUBLE PRECISION, txt TEXT,"
           " PRIMARY KEY (series, ts)){without_rowid}",
           "CREATE TABLE history_1m (series BIGINT NOT NULL, bucket BIGINT NOT NULL, min_v DOUBLE PRECISION,"
           " max_v DOUBLE PRECISION, sum_v DOUBLE PRECISION, nums BIGINT NOT NULL, n BIGINT NOT NULL,"
           " last_ts BIGINT NOT NULL, last_num DOUBLE PRECISION, last_txt TEXT, PRIMARY KEY (series, bucket)){without_rowid}",
           "CREATE TABLE history_1h (series BIGINT NOT NULL, bucket BIGINT NOT NULL, min_v DOUBLE PRECISION,"
           " max_v DOUBLE PRECISION, sum_v DOUBLE PRECISION, nums BIGINT NOT NULL, n BIGINT NOT NULL,"
           " last_ts BIGINT NOT NULL, last_num DOUBLE PRECISION, last_txt TEXT, PRIMARY KEY (series, bucket)){without_rowid}",
       }},
      {5,
       "session ends and the event log",
       {
           // Every ended session (logout, revocation, expiry), read by every instance to close its links.
           "CREATE TABLE session_ends (id {id}, token_sha256 TEXT NOT NULL, at BIGINT NOT NULL)",
           "CREATE TABLE events (id {id}, flat TEXT NOT NULL, ts BIGINT NOT NULL, kind TEXT NOT NULL,"
           " device TEXT NOT NULL DEFAULT '', user_name TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '{}',"
           " outcome TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '')",
           "CREATE INDEX events_flat ON events (flat, id)",
           "CREATE INDEX events_ts ON events (ts)",
       }},
      {6,
       "webhooks",
       {
           // One notification webhook per flat (store_webhooks.h): where, the HMAC key, which events.
           "CREATE TABLE webhooks (flat TEXT PRIMARY KEY REFERENCES flats(id) ON DELETE CASCADE,"
           " url TEXT NOT NULL, secret TEXT NOT NULL, events TEXT NOT NULL, updated BIGINT NOT NULL)",
       }},
      {7,
       "device labels",
       {
           // An owner's name and room per device (store_device_labels.h), shown over the gateway's.
           "CREATE TABLE device_labels (flat TEXT NOT NULL REFERENCES flats(id) ON DELETE CASCADE,"
           " device TEXT NOT NULL, name TEXT NOT NULL, room TEXT NOT NULL, by_user TEXT NOT NULL,"
           " updated BIGINT NOT NULL, PRIMARY KEY (flat, device))",
       }},
  };
  return list;
}

std::string id_column(std::string_view engine) {
  return engine == "sqlite" ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY";
}

std::string expand(std::string_view engine, std::string sql) {
  const std::string key = "{id}";
  for (auto at = sql.find(key); at != std::string::npos; at = sql.find(key)) sql.replace(at, key.size(), id_column(engine));
  // A table clustered on its primary key: SQLite's WITHOUT ROWID (PostgreSQL has no such clause).
  const std::string clustered = "{without_rowid}";
  if (auto at = sql.find(clustered); at != std::string::npos) {
    sql.replace(at, clustered.size(), engine == "sqlite" ? " WITHOUT ROWID" : "");
  }
  return sql;
}

const std::string& text(const Row& row, size_t i) {
  static const std::string empty;
  return row.at(i) ? *row[i] : empty;
}

int64_t integer(const Row& row, size_t i) { return row.at(i) ? std::stoll(*row[i]) : 0; }

}  // namespace

std::string_view to_string(Role role) {
  switch (role) {
    case Role::owner: return "owner";
    case Role::member: return "member";
    case Role::guest: return "guest";
  }
  return "member";
}

std::optional<Role> role_from(std::string_view text) {
  if (text == "owner") return Role::owner;
  if (text == "member") return Role::member;
  if (text == "guest") return Role::guest;
  return std::nullopt;
}

int Database::latest_version() { return migrations().back().version; }

Database::Database(std::unique_ptr<SqlConnection> connection) : c_(std::move(connection)) {}
Database::~Database() = default;

int Database::schema_version() {
  c_->query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, what TEXT NOT NULL,"
            " applied BIGINT NOT NULL)");
  const auto rows = c_->query("SELECT MAX(version) FROM schema_migrations");
  return rows.empty() ? 0 : static_cast<int>(integer(rows[0], 0));
}

namespace {
// Instances started together on one PostgreSQL database (a fresh install, an upgrade) would
// apply the same migration side by side, and all but one fail on the catalog's unique index
// ("duplicate key value violates unique constraint pg_type_typname_nsp_index"): a session
// advisory lock makes them take turns, each reading the version once it holds the lock. On
// SQLite (one instance, but `flatlink-cloud admin` may start beside it) each migration reads
// the version again under the write lock (migrate()).
class MigrationLock {
 public:
  explicit MigrationLock(SqlConnection& c) : c_(c) {
    if (c_.engine() == "postgresql") c_.query("SELECT pg_advisory_lock(" + std::string(kKey) + ")");
  }
  ~MigrationLock() {
    if (c_.engine() != "postgresql") return;
    try {
      c_.query("SELECT pg_advisory_unlock(" + std::string(kKey) + ")");
    } catch (const StoreError&) {
      // the connection is gone, and the lock with it
    }
  }
  MigrationLock(const MigrationLock&) = delete;
  MigrationLock& operator=(const MigrationLock&) = delete;

 private:
  static constexpr std::string_view kKey = "7380381042016349803";  // "flatlink" as a 64-bit integer
  SqlConnection& c_;
};
}  // namespace

int Database::migrate(int target) {
  if (target < 0) target = latest_version();
  MigrationLock lock(*c_);
  int version = schema_version();
  if (version > latest_version()) {
    throw StoreError("the database has schema version " + std::to_string(version) + ", newer than this build's " +
                     std::to_string(latest_version()) + ": use a newer flatlink-cloud");
  }
  for (const auto& m : migrations()) {
    if (m.version <= version || m.version > target) continue;
    Transaction tx(*c_, /*write_lock=*/true);
    version = schema_version();
    if (m.version <= version) continue;  // another process applied it meanwhile
    for (const char* statement : m.statements) c_->query(expand(c_->engine(), statement));
    c_->query("INSERT INTO schema_migrations (version, what, applied) VALUES (?, ?, ?)",
              {int64_t{m.version}, std::string(m.what), now_ms()});
    tx.commit();
    version = m.version;
  }
  return version;
}

void Database::bump() { c_->query("UPDATE accounts_version SET version = version + 1 WHERE id = 1"); }

int64_t Database::accounts_version() {
  const auto rows = c_->query("SELECT version FROM accounts_version WHERE id = 1");
  return rows.empty() ? 0 : integer(rows[0], 0);
}

AccountsSnapshot Database::accounts() {
  Transaction tx(*c_, /*write_lock=*/false);  // one consistent view, nothing written
  AccountsSnapshot s;
  s.version = accounts_version();
  s.flats = flats();
  s.users = users();
  s.members = members();
  tx.commit();
  return s;
}

void Database::add_flat(const std::string& id, const std::string& name) {
  Transaction tx(*c_);
  c_->query("INSERT INTO flats (id, name, created) VALUES (?, ?, ?)", {id, name, now_ms()});
  bump();
  tx.commit();
}

bool Database::remove_flat(const std::string& id) {
  Transaction tx(*c_);
  c_->query("DELETE FROM flats WHERE id = ?", {id});
  const bool removed = c_->changes() > 0;
  if (removed) {
    end_sessions_where(*c_, "flat = ?", {id});
    bump();
  }
  tx.commit();
  return removed;
}

std::vector<FlatRow> Database::flats() {
  std::vector<FlatRow> out;
  for (const auto& row : c_->query("SELECT f.id, f.name, g.token_sha256 FROM flats f"
                                   " LEFT JOIN gateways g ON g.flat = f.id ORDER BY f.id")) {
    out.push_back({text(row, 0), text(row, 1), text(row, 2)});
  }
  return out;
}

bool Database::set_gateway_token(const std::string& flat, const std::string& token_sha256) {
  Transaction tx(*c_);
  if (c_->query("SELECT 1 FROM flats WHERE id = ?", {flat}).empty()) return false;
  c_->query("INSERT INTO gateways (flat, token_sha256, issued) VALUES (?, ?, ?)"
            " ON CONFLICT (flat) DO UPDATE SET token_sha256 = excluded.token_sha256, issued = excluded.issued",
            {flat, token_sha256, now_ms()});
  bump();
  tx.commit();
  return true;
}

bool Database::revoke_gateway(const std::string& flat) {
  Transaction tx(*c_);
  c_->query("DELETE FROM gateways WHERE flat = ?", {flat});
  const bool revoked = c_->changes() > 0;
  if (revoked) bump();
  tx.commit();
  return revoked;
}

void Database::add_user(const std::string& name, const std::string& password_hash, bool is_operator) {
  Transaction tx(*c_);
  c_->query("INSERT INTO users (name, password_hash, is_operator, created) VALUES (?, ?, ?, ?)",
            {name, password_hash, int64_t{is_operator ? 1 : 0}, now_ms()});
  bump();
  tx.commit();
}

bool Database::set_password(const std::string& name, const std::string& password_hash) {
  Transaction tx(*c_);
  c_->query("UPDATE users SET password_hash = ? WHERE name = ?", {password_hash, name});
  const bool changed = c_->changes() > 0;
  if (changed) {
    end_sessions_where(*c_, "user_name = ?", {name});  // a new password ends the sessions
    bump();
  }
  tx.commit();
  return changed;
}

bool Database::upgrade_password_hash(const std::string& name, const std::string& old_hash,
                                     const std::string& new_hash) {
  Transaction tx(*c_);
  c_->query("UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?", {new_hash, name, old_hash});
  const bool changed = c_->changes() > 0;
  if (changed) bump();  // every instance reads the new hash (this one has it already: StoreAccounts)
  tx.commit();
  return changed;
}

bool Database::remove_user(const std::string& name) {
  Transaction tx(*c_);
  end_sessions_where(*c_, "user_name = ?", {name});  // recorded, so that every instance closes their links
  c_->query("DELETE FROM users WHERE name = ?", {name});
  const bool removed = c_->changes() > 0;
  if (removed) bump();
  tx.commit();
  return removed;
}

std::vector<UserRow> Database::users() {
  std::vector<UserRow> out;
  for (const auto& row : c_->query("SELECT name, password_hash, is_operator FROM users ORDER BY name")) {
    out.push_back({text(row, 0), text(row, 1), integer(row, 2) != 0});
  }
  return out;
}

bool Database::set_member(const std::string& flat, const std::string& user, Role role, int64_t expires) {
  Transaction tx(*c_);
  if (c_->query("SELECT 1 FROM flats WHERE id = ?", {flat}).empty()) return false;
  if (c_->query("SELECT 1 FROM users WHERE name = ?", {user}).empty()) return false;
  c_->query("INSERT INTO members (flat, user_name, role, expires) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (flat, user_name) DO UPDATE SET role = excluded.role, expires = excluded.expires",
            {flat, user, std::string(to_string(role)), expires});
  bump();
  tx.commit();
  return true;
}

bool Database::remove_member(const std::string& flat, const std::string& user) {
  Transaction tx(*c_);
  c_->query("DELETE FROM members WHERE flat = ? AND user_name = ?", {flat, user});
  const bool removed = c_->changes() > 0;
  if (removed) {
    end_sessions_where(*c_, "flat = ? AND user_name = ?", {flat, user});
    bump();
  }
  tx.commit();
  return removed;
}

std::vector<MemberRow> Database::members(const std::string& flat) {
  std::vector<MemberRow> out;
  const auto rows = flat.empty()
                        ? c_->query("SELECT flat, user_name, role, expires FROM members ORDER BY flat, user_name")
                        : c_->query("SELECT flat, user_name, role, expires FROM members WHERE flat = ?"
                                    " ORDER BY user_name",
                                    {flat});
  for (const auto& row : rows) {
    out.push_back({text(row, 0), text(row, 1), role_from(text(row, 2)).value_or(Role::guest), integer(row, 3)});
  }
  return out;
}

std::string Database::import_flats(const std::vector<config::FlatConfig>& flats) {
  // The JSON's users belong to one flat each; in the store a user name is building-wide and
  // may be a member of several flats: one name with two passwords cannot be imported.
  std::map<std::string, std::pair<std::string, std::string>> seen;  // name -> (flat, hash)
  for (const auto& f : flats) {
    for (const auto& u : f.users) {
      auto [it, fresh] = seen.try_emplace(u.name, f.id, u.password_hash);
      if (!fresh && it->second.second != u.password_hash) {
        throw StoreError("user " + u.name + " of flat " + f.id + " has another password than user " + u.name +
                         " of flat " + it->second.first + "; a user name is building-wide in the store: rename one");
      }
    }
  }
  Transaction tx(*c_);
  size_t users = 0;
  for (const auto& f : flats) {
    c_->query("INSERT INTO flats (id, name, created) VALUES (?, ?, ?)"
              " ON CONFLICT (id) DO UPDATE SET name = excluded.name",
              {f.id, f.name, now_ms()});
    c_->query("INSERT INTO gateways (flat, token_sha256, issued) VALUES (?, ?, ?)"
              " ON CONFLICT (flat) DO UPDATE SET token_sha256 = excluded.token_sha256",
              {f.id, f.gateway_token_sha256, now_ms()});
    for (const auto& u : f.users) {
      c_->query("INSERT INTO users (name, password_hash, is_operator, created) VALUES (?, ?, 0, ?)"
                " ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash",
                {u.name, u.password_hash, now_ms()});
      c_->query("INSERT INTO members (flat, user_name, role, expires) VALUES (?, ?, 'owner', 0)"
                " ON CONFLICT (flat, user_name) DO NOTHING",
                {f.id, u.name});
      ++users;
    }
  }
  bump();
  tx.commit();
  return std::to_string(flats.size()) + " flats, " + std::to_string(users) + " users imported";
}

std::unique_ptr<Database> open_database(const config::StoreConfig& config) {
  if (config.engine == "postgresql") {
    std::string conninfo = config.url;
    if (!config.password.empty()) {
      std::string quoted;
      for (char ch : config.password) {
        if (ch == '\'' || ch == '\\') quoted += '\\';
        quoted += ch;
      }
      conninfo += " password='" + quoted + "'";
    }
    return std::make_unique<Database>(open_postgres(conninfo));
  }
  return std::make_unique<Database>(open_sqlite(config.path));
}

}  // namespace flatlink::cloud::store
