// The cloud's store: accounts (flats, gateways' token hashes, users, memberships with roles,
// operators), sessions, history and the event log, in SQLite (embedded default: one file) or
// PostgreSQL (shared by several instances). `Database` is the seam, one interface over both
// engines (sql.h); its calls block, so the running cloud makes them on the store's worker
// thread only (worker.h); the admin command and tests call them directly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloud-server/store/sql.h"
#include "common/device_model.h"
#include "config/cloud_config.h"

namespace flatlink::cloud::store {

enum class Role { owner, member, guest };
std::string_view to_string(Role role);
std::optional<Role> role_from(std::string_view text);

struct FlatRow {
  std::string id;
  std::string name;
  std::string gateway_token_sha256;  // "" without a gateway (none issued, or revoked)
};

struct UserRow {
  std::string name;
  std::string password_hash;
  bool is_operator = false;
};

struct MemberRow {
  std::string flat;
  std::string user;
  Role role = Role::member;
  int64_t expires = 0;  // wall ms; 0: never (guests may have one)
};

// Everything the running cloud needs to admit links, read at once.
struct AccountsSnapshot {
  int64_t version = 0;  // the accounts' change counter it was read at
  std::vector<FlatRow> flats;
  std::vector<UserRow> users;
  std::vector<MemberRow> members;
};

class Database {
 public:
  // The newest schema version this build knows.
  static int latest_version();

  explicit Database(std::unique_ptr<SqlConnection> connection);
  ~Database();

  std::string_view engine() const { return c_->engine(); }
  SqlConnection& connection() { return *c_; }

  // ---- schema
  // The version applied (0: an empty database).
  int schema_version();
  // Applies the migrations above the current version up to `target` (default: the latest),
  // each in its own transaction; returns the version reached. Throws StoreError, or when the
  // database is newer than this build.
  int migrate(int target = -1);

  // ---- accounts (every change bumps the change counter the running cloud polls)
  int64_t accounts_version();
  AccountsSnapshot accounts();
  void add_flat(const std::string& id, const std::string& name);  // throws if it exists
  bool remove_flat(const std::string& id);                        // with its gateway and memberships
  std::vector<FlatRow> flats();
  // Sets (issues or rotates) the flat's gateway token hash; false for an unknown flat.
  bool set_gateway_token(const std::string& flat, const std::string& token_sha256);
  bool revoke_gateway(const std::string& flat);
  void add_user(const std::string& name, const std::string& password_hash, bool is_operator = false);
  bool set_password(const std::string& name, const std::string& password_hash);
  // The same password, hashed anew (an old hash upgraded at a good login): replaces the hash
  // only if it is still `old_hash`; sessions go on. False if it is not (changed meanwhile,
  // or no such user).
  bool upgrade_password_hash(const std::string& name, const std::string& old_hash, const std::string& new_hash);
  bool remove_user(const std::string& name);  // with memberships and sessions
  std::vector<UserRow> users();
  // Adds or changes a membership; false for an unknown flat or user.
  bool set_member(const std::string& flat, const std::string& user, Role role, int64_t expires = 0);
  bool remove_member(const std::string& flat, const std::string& user);
  std::vector<MemberRow> members(const std::string& flat = "");

  // Imports today's JSON `flats` section: flats, token hashes, users (members of their flat).
  // Existing rows of the same ids are updated. Returns a summary.
  std::string import_flats(const std::vector<config::FlatConfig>& flats);

 private:
  void bump();
  std::unique_ptr<SqlConnection> c_;
};

// Opens the configured store's database (sqlite: `path`, made if missing; postgresql: `url`).
// Throws StoreError.
std::unique_ptr<Database> open_database(const config::StoreConfig& config);

}  // namespace flatlink::cloud::store
