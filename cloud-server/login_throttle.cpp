// Failed-login bookkeeping: delays and bans (cloud-server/login_throttle.h).
#include "cloud-server/login_throttle.h"

#include <algorithm>

namespace flatlink::cloud {

int64_t LoginThrottle::delay_after(const Failures& f, int64_t now) const {
  if (f.count == 0 || config_.delay_base_ms == 0) return 0;
  // base, 2 x base, 4 x base, ... up to the cap, counted from the last failure.
  const int shift = static_cast<int>(std::min<uint32_t>(f.count - 1, 20));
  const int64_t delay = std::min<int64_t>(static_cast<int64_t>(config_.delay_base_ms) << shift, config_.delay_max_ms);
  return std::max<int64_t>(0, f.last_ms + delay - now);
}

LoginThrottle::Admission LoginThrottle::admit(const std::string& source, const std::string& account) {
  const int64_t now = clock_.mono_ms();
  Admission out;
  if (auto it = sources_.find(source); it != sources_.end()) {
    if (it->second.banned_until_ms > now) {
      out.banned = true;
      out.banned_ms = it->second.banned_until_ms - now;
      return out;
    }
    out.delay_ms = delay_after(it->second, now);
  }
  if (auto it = accounts_.find(account); it != accounts_.end()) {
    out.delay_ms = std::max(out.delay_ms, delay_after(it->second, now));
  }
  return out;
}

bool LoginThrottle::failed(const std::string& source, const std::string& account) {
  const int64_t now = clock_.mono_ms();
  Failures& a = accounts_[account];
  ++a.count;
  a.last_ms = now;
  Failures& s = sources_[source];
  ++s.count;
  s.last_ms = now;
  if (s.count >= config_.ban_after && s.banned_until_ms <= now) {
    s.banned_until_ms = now + static_cast<int64_t>(config_.ban_s) * 1000;
    return true;
  }
  return false;
}

void LoginThrottle::succeeded(const std::string& source, const std::string& account) {
  accounts_.erase(account);
  if (auto it = sources_.find(source); it != sources_.end() && it->second.banned_until_ms <= clock_.mono_ms()) {
    sources_.erase(it);
  }
}

std::vector<LoginThrottle::Ban> LoginThrottle::bans() {
  const int64_t now = clock_.mono_ms();
  std::vector<Ban> out;
  for (const auto& [source, f] : sources_) {
    if (f.banned_until_ms > now) out.push_back(Ban{source, f.banned_until_ms - now, f.count});
  }
  std::sort(out.begin(), out.end(), [](const Ban& a, const Ban& b) { return a.source < b.source; });
  return out;
}

size_t LoginThrottle::lift(const std::string& source) {
  const int64_t now = clock_.mono_ms();
  size_t lifted = 0;
  for (auto it = sources_.begin(); it != sources_.end();) {
    if ((source.empty() || it->first == source) && it->second.banned_until_ms > now) {
      ++lifted;
      it = sources_.erase(it);
    } else if (!source.empty() && it->first == source) {
      it = sources_.erase(it);
    } else {
      ++it;
    }
  }
  return lifted;
}

void LoginThrottle::prune() {
  const int64_t now = clock_.mono_ms();
  // A failure is forgotten once its delay has run out twice over (or its ban ended):
  // a slow guesser stays slow, the maps stay bounded by recent activity.
  const auto stale = [&](const Failures& f) {
    return f.banned_until_ms <= now && now - f.last_ms > 2 * static_cast<int64_t>(config_.delay_max_ms) &&
           now - f.last_ms > static_cast<int64_t>(config_.ban_s) * 1000;
  };
  std::erase_if(sources_, [&](const auto& entry) { return stale(entry.second); });
  std::erase_if(accounts_, [&](const auto& entry) { return stale(entry.second); });
}

}  // namespace flatlink::cloud
