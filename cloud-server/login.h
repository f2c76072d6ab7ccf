// Login and admission: who may open a link. A gateway is admitted by its token, a browser
// by flat, user and password; both are looked up through `Accounts` (today the config's
// flats, later the store). Password checks take tens of milliseconds by design: `LoginGate`
// throttles failures and runs the checks off the loop on a fair pool, and posts the verdict back.
// Loop thread only, except the checks' own threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cloud-link/protocol.h"
#include "cloud-server/login_throttle.h"
#include "cloud-server/metrics.h"
#include "cloud-server/password_pool.h"
#include "cloud-server/peer.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

// A login over HTTP (POST /session, docs/protocol.md "Sessions") runs through the same
// LoginGate as a WebSocket login: this stands for the HTTP request there and keeps the code
// of a refusal (banned, busy, too_many_connections) the gate answers with.
class HttpLoginPeer final : public Peer {
 public:
  HttpLoginPeer(std::string source, uint64_t request);
  // `fn` runs when the gate refuses the login itself (it closes the "link").
  void on_refused(std::function<void()> fn) { on_refused_ = std::move(fn); }
  void send(std::string frame) override;
  void close(uint16_t, const std::string&) override {
    if (auto fn = std::exchange(on_refused_, nullptr)) fn();
  }
  const std::string& describe() const override { return desc_; }
  std::string source() const override { return source_; }
  const std::string& refused() const { return refused_; }

 private:
  std::string source_;
  std::string desc_;
  std::string refused_;
  std::function<void()> on_refused_;
};

// The answer to POST /session: status, JSON body, and the cookie to set ("" none).
struct HttpAnswer {
  unsigned status = 0;
  std::string body;
  std::string set_cookie;
};

// The session cookie's name, and its value from a Cookie header ("" when absent or malformed:
// 64 hex digits).
inline constexpr const char* kSessionCookie = "flatlink_session";
std::string session_token_from_cookie_header(std::string_view cookies);
// The Set-Cookie value of a new session (or, with an empty token, one that clears it).
std::string session_cookie(const std::string& token, int64_t max_age_s, bool secure);

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

// A browser's login: admission (bans and delays per source address and account:
// login_throttle.h), the password check on the fair worker pool (password_pool.h), its
// verdict back on the loop. Refusals it answers itself, each an `error` and a close:
// `banned` 1008, `busy` 1013, `too_many_connections` 1008 (docs/protocol.md). The pool's
// threads are owned here and joined on destruction; an answer never reaches a gate or a
// browser that is gone.
//
// Old password hashes (PBKDF2, or Argon2id under the default cost: auth.h needs_rehash) are
// upgraded at a good login: the same pool job that proved the password makes its Argon2id
// hash, and the loop hands it to the `Rehash` the owner set (the store writes it). Without
// one (the accounts of the config file, which the cloud never rewrites) each such account is
// named once per start in a WARN that says to run `flatlink-cloud hash-password`.
class LoginGate {
 public:
  LoginGate(const Accounts& accounts, EventLoop& loop, const config::CloudConfig& config, const Clock& clock,
            Metrics& metrics);
  ~LoginGate();
  LoginGate(const LoginGate&) = delete;
  LoginGate& operator=(const LoginGate&) = delete;

  // Called on the loop with the verdict, unless the browser left (forget) or was refused first.
  // On ok the browser has been told it is authenticated (Peer::authenticated) and counted
  // against limits.max_connections_per_user.
  using Verdict = std::function<void(Peer& browser, bool ok)>;
  // Admits the login and starts (or delays) its check; answers a refusal itself. Returns true
  // when a verdict may follow. An unknown flat or user costs a hash all the same, so that
  // timing tells nothing. A browser asking again gets only its last verdict.
  bool check(Peer& browser, const proto::Login& login, Verdict verdict);
  // The browser left: a check under way or delayed for it is dropped.
  void forget(Peer& browser);
  // Keeps the Argon2id hash (`fresh`) made at a good login of a user whose stored hash was
  // `old_hash`. Loop thread; it must not block it (the store does it on its worker).
  using Rehash = std::function<void(const std::string& flat, const std::string& user, const std::string& old_hash,
                                    const std::string& fresh)>;
  void on_rehash(Rehash rehash) { rehash_ = std::move(rehash); }
  LoginThrottle& throttle() { return throttle_; }
  size_t waiting() const { return attempt_.size(); }

 private:
  void answer(Peer* browser, uint64_t attempt, const std::string& source, const std::string& account, bool ok,
              const Verdict& verdict);
  void refuse(Peer& browser, const char* code, const std::string& message, uint16_t close_code);
  // After a good login of a user whose hash wants a rehash: `fresh` to rehash_, or the WARN.
  void upgrade_hash(const std::string& flat, const std::string& user, const std::string& old_hash,
                    const std::string& fresh);

  const Accounts& accounts_;
  EventLoop& loop_;
  const config::CloudConfig& config_;
  Metrics& metrics_;
  LoginThrottle throttle_;
  std::string dummy_hash_;  // checked for an unknown flat or user
  std::unordered_map<Peer*, uint64_t> attempt_;  // the check a browser waits for
  std::unordered_map<Peer*, std::unique_ptr<Timer>> delayed_;  // checks held back after failures
  std::unordered_map<Peer*, std::string> account_of_;          // logged-in browsers
  std::unordered_map<std::string, uint32_t> per_account_;
  Rehash rehash_;
  std::unordered_set<std::string> warned_old_hash_;  // accounts named in the WARN (one per start)
  uint64_t attempts_ = 0;
  uint64_t admissions_ = 0;
  PasswordCheckPool pool_;  // last: destroyed first, its workers joined before the rest goes
};

}  // namespace flatlink::cloud
