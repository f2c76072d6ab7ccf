#include "cloud-server/store/store_accounts.h"

#include <map>

namespace flatlink::cloud::store {

std::vector<config::FlatConfig> StoreAccounts::replace(const AccountsSnapshot& snapshot, int64_t now_ms) {
  std::map<std::string, const UserRow*> users;
  for (const auto& u : snapshot.users) users[u.name] = &u;
  std::vector<config::FlatConfig> flats;
  std::map<std::string, size_t> at;
  for (const auto& f : snapshot.flats) {
    config::FlatConfig fc;
    fc.id = f.id;
    fc.name = f.name;
    fc.gateway_token_sha256 = f.gateway_token_sha256;  // "" admits no gateway
    at[f.id] = flats.size();
    flats.push_back(std::move(fc));
  }
  guests_.clear();
  roles_.clear();
  for (const auto& m : snapshot.members) {
    auto f = at.find(m.flat);
    auto u = users.find(m.user);
    if (f == at.end() || u == users.end()) continue;
    if (m.expires != 0 && m.expires <= now_ms) continue;
    flats[f->second].users.push_back({m.user, u->second->password_hash});
    if (m.role == Role::guest) guests_.insert({m.flat, m.user});
    roles_[{m.flat, m.user}] = m.role;
  }
  std::vector<config::FlatConfig> before = std::move(flats_);
  flats_ = std::move(flats);
  by_config_.reload();
  version_ = snapshot.version;
  return before;
}

void StoreAccounts::password_rehashed(const std::string& user, const std::string& old_hash,
                                      const std::string& new_hash) {
  for (auto& flat : flats_) {
    for (auto& u : flat.users) {
      if (u.name == user && u.password_hash == old_hash) u.password_hash = new_hash;
    }
  }
}

}  // namespace flatlink::cloud::store
