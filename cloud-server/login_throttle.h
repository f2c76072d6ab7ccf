// Failed browser logins, remembered per source address and per account (flat + user):
// an exponential delay before the next check after each failure, and a temporary ban of
// a source after limits' ban_after failures (Home Assistant's login_attempts_threshold and
// ip_ban_enabled). Accounts are delayed, never banned: a ban on an account would let anyone
// lock its user out. Pure bookkeeping with an injected clock; loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

class LoginThrottle {
 public:
  LoginThrottle(const config::LoginConfig& config, const Clock& clock) : config_(config), clock_(clock) {}

  struct Admission {
    bool banned = false;      // refuse without a check
    int64_t banned_ms = 0;    // ... for this much longer
    int64_t delay_ms = 0;     // else: run the check no earlier than this from now
  };
  Admission admit(const std::string& source, const std::string& account);
  // After a wrong password: true when the source is banned from now on.
  bool failed(const std::string& source, const std::string& account);
  // After a good login: both counts start again.
  void succeeded(const std::string& source, const std::string& account);

  struct Ban {
    std::string source;
    int64_t remaining_ms;
    uint32_t failures;
  };
  std::vector<Ban> bans();
  // Lifts the ban on a source (and forgets its failures); "" lifts every ban. Returns how many.
  size_t lift(const std::string& source);
  // Forgets entries whose delay and ban are over (called now and then; bounds the maps).
  void prune();
  size_t tracked() const { return sources_.size() + accounts_.size(); }

 private:
  struct Failures {
    uint32_t count = 0;
    int64_t last_ms = 0;
    int64_t banned_until_ms = 0;
  };
  int64_t delay_after(const Failures& f, int64_t now) const;

  const config::LoginConfig& config_;
  const Clock& clock_;
  std::unordered_map<std::string, Failures> sources_;
  std::unordered_map<std::string, Failures> accounts_;
};

}  // namespace flatlink::cloud
