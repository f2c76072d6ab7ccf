// Login and admission: who may open a link. A gateway is admitted by its token, a browser
// by flat, user and password; both are looked up through `Accounts` (today the config's
// flats, later the store). Password checks take tens of milliseconds by design: `LoginGate`
// runs them off the loop, a bounded number at a time, and posts the verdict back.
// Loop thread only, except the checks' own threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cloud-link/protocol.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

class Peer;

// Where the credentials live. Called on the loop thread.
class Accounts {
 public:
  virtual ~Accounts() = default;
  // The flat whose gateway token this is, if any (compared in constant time).
  virtual std::optional<std::string> flat_for_token(std::string_view token) const = 0;
  // The stored password hash of that user of that flat, if the flat has the user.
  virtual std::optional<std::string> password_hash(const std::string& flat, const std::string& user) const = 0;
  // Whether that user of that flat may only watch (a guest: commands are refused).
  virtual bool read_only(const std::string& flat, const std::string& user) const = 0;
};

// The accounts of a list of flats in the config's form (the config's `flats` section, or what
// the store holds); their users are owners.
class ConfigAccounts final : public Accounts {
 public:
  explicit ConfigAccounts(const std::vector<config::FlatConfig>& flats);
  // The list changed (a reload): reads it again.
  void reload();

  std::optional<std::string> flat_for_token(std::string_view token) const override;
  std::optional<std::string> password_hash(const std::string& flat, const std::string& user) const override;
  bool read_only(const std::string&, const std::string&) const override { return false; }

 private:
  const std::vector<config::FlatConfig>& flats_;
  std::unordered_map<std::string, std::string> flat_by_token_hash_;
};

// A browser's login: the password check off the loop, its verdict back on it.
class LoginGate {
 public:
  static constexpr int kMaxInFlight = 8;

  LoginGate(const Accounts& accounts, EventLoop& loop);
  // Waits for checks still running (they post back to the loop): shutdown only.
  ~LoginGate();
  LoginGate(const LoginGate&) = delete;
  LoginGate& operator=(const LoginGate&) = delete;

  // Called on the loop with the verdict, unless the browser left (forget) first.
  using Verdict = std::function<void(Peer& browser, bool ok)>;
  // Starts checking the login; false (nothing started) when kMaxInFlight checks run already.
  // An unknown flat or user costs a hash all the same, so that timing tells nothing.
  bool check(Peer& browser, const proto::Login& login, Verdict verdict);
  // The browser left: a check under way for it is ignored when it ends.
  void forget(Peer& browser) { attempt_.erase(&browser); }
  int in_flight() const { return in_flight_.load(); }

 private:
  const Accounts& accounts_;
  EventLoop& loop_;
  std::atomic<int> in_flight_{0};
  std::unordered_map<Peer*, uint64_t> attempt_;  // the check a browser waits for
  uint64_t attempts_ = 0;
};

}  // namespace flatlink::cloud
