// The accounts the store holds, as the running cloud admits links with them: the flats'
// settings in the config's form (the list `Flats` reads too: each flat's gateway token hash and
// its members with their password hashes), and which members are guests. Replaced whole by
// each new snapshot the store's change counter announces. Loop thread only.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cloud-server/login.h"
#include "cloud-server/store/store.h"

namespace flatlink::cloud::store {

class StoreAccounts final : public Accounts {
 public:
  // `flats`: the list this fills (kept by the caller, read by Flats).
  explicit StoreAccounts(std::vector<config::FlatConfig>& flats) : flats_(flats), by_config_(flats) {}

  // Takes a snapshot; memberships expired at `now_ms` admit nobody. Returns the list before.
  std::vector<config::FlatConfig> replace(const AccountsSnapshot& snapshot, int64_t now_ms);
  int64_t version() const { return version_; }
  // The store now holds `new_hash` for the user, the same password hashed anew (an old hash
  // upgraded at a good login): the list takes it at once, so that the snapshot that brings
  // it finds that flat's users unchanged and closes none of its browsers.
  void password_rehashed(const std::string& user, const std::string& old_hash, const std::string& new_hash);

  std::optional<std::string> flat_for_token(std::string_view token) const override {
    return by_config_.flat_for_token(token);
  }
  std::optional<std::string> password_hash(const std::string& flat, const std::string& user) const override {
    return by_config_.password_hash(flat, user);
  }
  bool read_only(const std::string& flat, const std::string& user) const override {
    return guests_.count({flat, user}) != 0;
  }
  // The user's role in that flat (for the `welcome` message); none if not a member.
  std::optional<Role> role(const std::string& flat, const std::string& user) const {
    auto it = roles_.find({flat, user});
    return it == roles_.end() ? std::nullopt : std::optional<Role>(it->second);
  }

 private:
  std::vector<config::FlatConfig>& flats_;
  ConfigAccounts by_config_;
  std::set<std::pair<std::string, std::string>> guests_;
  std::map<std::pair<std::string, std::string>, Role> roles_;
  int64_t version_ = -1;
};

}  // namespace flatlink::cloud::store
