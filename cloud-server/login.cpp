// Login and admission.
#include "cloud-server/login.h"

#include "cloud-server/auth.h"
#include "cloud-server/peer.h"
#include "common/device_model.h"
#include "common/log.h"

namespace flatlink::cloud {
namespace {
// RFC 6455 7.4.1 (IANA registry): try again later. The login checks are full ("busy").
constexpr uint16_t kTryAgainLater = 1013;
}  // namespace

HttpLoginPeer::HttpLoginPeer(std::string source, uint64_t request)
    : source_(std::move(source)), desc_("http login=" + std::to_string(request) + " from " + source_) {}

void HttpLoginPeer::send(std::string frame) {
  // The gate's refusals are `error` messages; the code is what the HTTP answer needs.
  const Json j = Json::parse(frame, nullptr, false);
  if (j.is_object() && j.value("type", "") == "error") refused_ = j.value("code", "refused");
}

std::string session_token_from_cookie_header(std::string_view cookies) {
  const std::string_view name = kSessionCookie;
  size_t at = 0;
  while (at < cookies.size()) {
    while (at < cookies.size() && (cookies[at] == ' ' || cookies[at] == ';')) ++at;
    size_t end = cookies.find(';', at);
    if (end == std::string_view::npos) end = cookies.size();
    const std::string_view pair = cookies.substr(at, end - at);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      const std::string_view value = pair.substr(name.size() + 1);
      if (value.size() == 64 && value.find_first_not_of("0123456789abcdef") == std::string_view::npos) {
        return std::string(value);
      }
      return {};
    }
    at = end + 1;
  }
  return {};
}

std::string session_cookie(const std::string& token, int64_t max_age_s, bool secure) {
  return std::string(kSessionCookie) + "=" + token + "; HttpOnly; SameSite=Strict; Path=/; Max-Age=" +
         std::to_string(token.empty() ? 0 : max_age_s) + (secure ? "; Secure" : "");
}

ConfigAccounts::ConfigAccounts(const std::vector<config::FlatConfig>& flats) : flats_(flats) { reload(); }

void ConfigAccounts::reload() {
  flat_by_token_hash_.clear();
  for (const auto& fc : flats_) flat_by_token_hash_[fc.gateway_token_sha256] = fc.id;
}

std::optional<std::string> ConfigAccounts::flat_for_token(std::string_view token) const {
  // Looked up by the token's SHA-256, never by the token: the lookup's timing can only tell
  // about hashes, and finding a token for a chosen hash prefix means inverting SHA-256 (how
  // hashed API tokens are commonly looked up). A scan comparing every flat's hash in
  // constant time made each gateway's hello cost O(flats): 10,000 links took ~18 s of CPU.
  const auto it = flat_by_token_hash_.find(hash_token(token));
  if (it == flat_by_token_hash_.end()) return std::nullopt;
  return it->second;
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

LoginGate::LoginGate(const Accounts& accounts, EventLoop& loop, const config::CloudConfig& config,
                     const Clock& clock, Metrics& metrics)
    : accounts_(accounts),
      loop_(loop),
      config_(config),
      metrics_(metrics),
      throttle_(config.login, clock),
      dummy_hash_(hash_password("not a password of anyone")),  // once, before the loop runs
      pool_(loop, config.login.workers, config.login.queue_per_source, config.login.queue_total) {}

LoginGate::~LoginGate() = default;  // pool_ first: its workers are joined, its answers dropped

void LoginGate::refuse(Peer& browser, const char* code, const std::string& message, uint16_t close_code) {
  ++metrics_.browser_messages_out;
  browser.send(proto::encode(proto::Error{code, message}));
  browser.close(close_code, code);
}

bool LoginGate::check(Peer& browser, const proto::Login& login, Verdict verdict) {
  const std::string source = browser.source();
  const std::string account = login.flat + "/" + login.user;
  if (++admissions_ % 256 == 0) throttle_.prune();
  const LoginThrottle::Admission admission = throttle_.admit(source, account);
  if (admission.banned) {
    ++metrics_.logins_banned;
    LOG_WARN("login") << "flat=" << login.flat << " user=" << log::q(login.user) << " refused: address " << source
                      << " is banned (" << browser.describe() << ")";
    refuse(browser,
           "banned", "too many failed logins from this address; try again in " +
                         std::to_string((admission.banned_ms + 999) / 1000) + " s",
           proto::close_code::kPolicyViolation);
    return false;
  }
  const uint64_t attempt = ++attempts_;
  attempt_[&browser] = attempt;
  const std::optional<std::string> stored = accounts_.password_hash(login.flat, login.user);
  // An old hash: if the password is right, the check makes its Argon2id hash too (on the
  // worker), when there is somewhere to keep it.
  const bool old_hash = stored && needs_rehash(*stored);
  auto fresh = old_hash && rehash_ ? std::make_shared<std::string>() : nullptr;
  Peer* peer = &browser;
  auto submit = [this, peer, attempt, source, account, hash = stored ? *stored : dummy_hash_,
                 password = login.password, known = stored.has_value(), old_hash, fresh, flat = login.flat,
                 user = login.user, verdict = std::move(verdict)] {
    auto it = attempt_.find(peer);
    if (it == attempt_.end() || it->second != attempt) return;  // left, or asked again
    const bool started = pool_.submit(
        source,
        [hash, password, known, fresh] {
          const bool ok = verify_password(password, hash) && known;
          if (ok && fresh) *fresh = hash_password(password);
          return ok;
        },
        [this, peer, attempt, source, account, verdict, old_hash, fresh, flat, user, hash](bool ok) {
          // Kept even if the browser left meanwhile: the password was right.
          if (ok && old_hash) upgrade_hash(flat, user, hash, fresh ? *fresh : std::string());
          answer(peer, attempt, source, account, ok, verdict);
        });
    if (!started) {
      attempt_.erase(peer);
      ++metrics_.logins_busy;
      LOG_WARN("login") << "busy: the password checks of address " << source << " (or all) are full ("
                        << peer->describe() << ")";
      refuse(*peer, "busy", "too many logins at once; try again later", kTryAgainLater);
    }
  };
  if (admission.delay_ms > 0) {
    ++metrics_.logins_delayed;
    auto& timer = delayed_[&browser];
    timer = std::make_unique<Timer>(loop_, std::move(submit));
    timer->start(static_cast<uint32_t>(admission.delay_ms));
  } else {
    submit();
  }
  return true;
}

void LoginGate::answer(Peer* browser, uint64_t attempt, const std::string& source, const std::string& account, bool ok,
                       const Verdict& verdict) {
  auto it = attempt_.find(browser);
  if (it == attempt_.end() || it->second != attempt) return;  // the browser left or asked again
  attempt_.erase(it);
  if (!ok) {
    if (throttle_.failed(source, account)) {
      ++metrics_.bans;
      LOG_WARN("login") << "address " << source << " banned for " << config_.login.ban_s << " s after "
                        << config_.login.ban_after << " failed logins (lift: POST /bans/lift?address=" << source
                        << " on the metrics listener)";
    }
    metrics_.active_bans = static_cast<int64_t>(throttle_.bans().size());
    verdict(*browser, false);
    return;
  }
  throttle_.succeeded(source, account);
  uint32_t& count = per_account_[account];
  if (count >= config_.limits.max_connections_per_user) {
    if (count == 0) per_account_.erase(account);
    LOG_WARN("login") << account << " has " << config_.limits.max_connections_per_user
                      << " browsers already; refused (" << browser->describe() << ")";
    refuse(*browser, "too_many_connections",
           "this user has " + std::to_string(config_.limits.max_connections_per_user) + " browsers open already",
           proto::close_code::kPolicyViolation);
    return;
  }
  ++count;
  account_of_[browser] = account;
  browser->authenticated();
  verdict(*browser, true);
}

void LoginGate::upgrade_hash(const std::string& flat, const std::string& user, const std::string& old_hash,
                             const std::string& fresh) {
  if (rehash_ && !fresh.empty()) {
    rehash_(flat, user, old_hash, fresh);
    return;
  }
  const char* kind = old_hash.rfind("pbkdf2", 0) == 0 ? "PBKDF2" : "Argon2id under the default cost";
  if (rehash_) {
    LOG_WARN("login") << "flat=" << flat << " user=" << log::q(user) << " the " << kind
                      << " password hash could not be rehashed (argon2 failed); it still works";
  } else if (warned_old_hash_.insert(flat + "/" + user).second) {
    LOG_WARN("login") << "flat=" << flat << " user=" << log::q(user) << " has an old " << kind
                      << " password hash in the config file, which the cloud does not rewrite: run `flatlink-cloud "
                         "hash-password` and put its output in the user's password_hash (once per start)";
  }
}

void LoginGate::forget(Peer& browser) {
  attempt_.erase(&browser);
  delayed_.erase(&browser);
  auto it = account_of_.find(&browser);
  if (it == account_of_.end()) return;
  auto count = per_account_.find(it->second);
  if (count != per_account_.end() && --count->second == 0) per_account_.erase(count);
  account_of_.erase(it);
}

}  // namespace flatlink::cloud
