// Login and admission.
#include "cloud-server/login.h"

#include <chrono>
#include <thread>

#include "cloud-server/auth.h"

namespace flatlink::cloud {

ConfigAccounts::ConfigAccounts(const std::vector<config::FlatConfig>& flats) : flats_(flats) { reload(); }

void ConfigAccounts::reload() {
  flat_by_token_hash_.clear();
  for (const auto& fc : flats_) flat_by_token_hash_[fc.gateway_token_sha256] = fc.id;
}

std::optional<std::string> ConfigAccounts::flat_for_token(std::string_view token) const {
  const std::string hash = hash_token(token);
  // Compare with every hash in constant time (a map lookup alone would leak timing).
  for (const auto& [known, flat] : flat_by_token_hash_) {
    if (constant_time_equal(known, hash)) return flat;
  }
  return std::nullopt;
}

std::optional<std::string> ConfigAccounts::password_hash(const std::string& flat, const std::string& user) const {
  std::optional<std::string> hash;
  for (const auto& fc : flats_) {
    if (fc.id != flat) continue;
    for (const auto& u : fc.users) {
      if (u.name == user) hash = u.password_hash;
    }
  }
  return hash;
}

LoginGate::LoginGate(const Accounts& accounts, EventLoop& loop) : accounts_(accounts), loop_(loop) {}

LoginGate::~LoginGate() {
  while (in_flight_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

bool LoginGate::check(Peer& browser, const proto::Login& login, Verdict verdict) {
  if (in_flight_.load() >= kMaxInFlight) return false;
  const uint64_t attempt = ++attempts_;
  attempt_[&browser] = attempt;
  const std::optional<std::string> stored = accounts_.password_hash(login.flat, login.user);
  const std::string hash = stored ? *stored : "pbkdf2-sha256$100000$00$00";
  const bool known = stored.has_value();
  ++in_flight_;
  Peer* peer = &browser;
  std::thread([this, hash, password = login.password, known, attempt, peer, verdict = std::move(verdict)] {
    const bool ok = verify_password(password, hash) && known;
    loop_.post([this, ok, attempt, peer, verdict] {
      auto it = attempt_.find(peer);
      if (it == attempt_.end() || it->second != attempt) return;  // the browser left
      attempt_.erase(it);
      verdict(*peer, ok);
    });
    --in_flight_;  // the last touch of `this`: the destructor waits for it
  }).detach();
  return true;
}

}  // namespace flatlink::cloud
