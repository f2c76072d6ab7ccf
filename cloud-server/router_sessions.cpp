// The Router's sessions and event log (router.h): POST /session, `resume`, `logout`, the
// `events` request, the links of ended sessions closed, and the events each part reports.
#include <algorithm>

#include "cloud-server/auth.h"
#include "cloud-server/router.h"
#include "common/log.h"

namespace flatlink::cloud {
namespace {
std::string json_error(const char* code) { return Json{{"error", code}}.dump(); }
}  // namespace

void Router::start_sessions(EventLoop& loop) {
  events_ = std::make_unique<store::EventLog>(*store_, loop, config_.store.events_buffer_max,
                                              int64_t{config_.store.events_retention_days} * 86'400'000);
  commands_.observe(
      [this](Peer& browser) {
        auto it = who_.find(&browser);
        return it == who_.end() ? std::string() : it->second.user;
      },
      [this](const Commands::Ended& e) {
        record({0, e.flat, 0, "command", e.device, e.user, {{"set", e.set}}, std::string(to_string(e.outcome)),
                e.message});
      });
}

void Router::record(store::EventRow row) {
  if (!events_) return;
  events_->record(std::move(row));
  metrics_.events_dropped = static_cast<int64_t>(events_->dropped());
}

// ---- logged in --------------------------------------------------------------

void Router::bind_logged_in(Peer& peer, LiveFlat& flat, const std::string& user, const std::string& via,
                            const std::string& session_hash, int64_t session_expires) {
  flats_.bind_browser(peer, flat, accounts().read_only(flat.id(), user));
  who_[&peer] = {user, session_hash, session_expires};
  if (!session_hash.empty()) session_links_.emplace(session_hash, &peer);
  sync_.watch_update(flat);
  LOG_INFO("router") << "flat=" << flat.id() << " user=" << user << " logged in by " << via << " ("
                     << peer.describe() << ")";
  record({0, flat.id(), 0, "login", "", user, {{"client", peer.source()}, {"via", via}}, "", ""});
  if (store_accounts_) {
    Json welcome = {{"type", "welcome"}, {"flat", flat.id()}, {"user", user}};
    if (auto role = store_accounts_->role(flat.id(), user)) welcome["role"] = std::string(store::to_string(*role));
    if (session_expires) welcome["session_expires"] = session_expires;
    send_to_browser(metrics_, peer, welcome.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  // The flat's first browser here: the snapshot follows once the holder's state is here (at most ~1 s).
  if (!sync_.joining(flat)) {
    flats_.send_snapshot(peer, flat, sync_.gateway_online(flat));
    tell_not_responding(peer, flat);
  }
}

void Router::browser_gone(Peer& peer) {
  resuming_.erase(&peer);
  auto it = who_.find(&peer);
  if (it == who_.end()) return;
  if (!it->second.session.empty()) {
    auto [from, to] = session_links_.equal_range(it->second.session);
    for (auto link = from; link != to; ++link) {
      if (link->second == &peer) {
        session_links_.erase(link);
        break;
      }
    }
  }
  who_.erase(it);
}

void Router::sessions_ended(const std::vector<std::string>& token_hashes, const char* why) {
  for (const auto& hash : token_hashes) {
    auto [from, to] = session_links_.equal_range(hash);
    std::vector<Peer*> links;
    for (auto it = from; it != to; ++it) links.push_back(it->second);
    for (Peer* peer : links) {
      LOG_INFO("router") << "session ended: closing " << peer->describe();
      send_to_browser(metrics_, *peer, proto::encode(proto::Error{"session_expired", why}));
      peer->close(proto::close_code::kUnauthorized, why);
    }
  }
}

void Router::check_session_expiry() {
  const int64_t now = clock_.wall_ms();
  std::vector<std::string> expired;
  for (const auto& [hash, peer] : session_links_) {
    auto it = who_.find(peer);
    if (it != who_.end() && it->second.expires && it->second.expires <= now) expired.push_back(hash);
  }
  if (expired.empty()) return;
  std::sort(expired.begin(), expired.end());
  expired.erase(std::unique(expired.begin(), expired.end()), expired.end());
  sessions_ended(expired, "the session expired; log in again");
}

// ---- POST /session ----------------------------------------------------------

void Router::http_login(const std::string& source, const std::string& client, const proto::Login& login, bool secure,
                        std::function<void(HttpAnswer)> done) {
  if (!store_) {
    done({404, json_error("sessions_need_a_store"), ""});
    return;
  }
  if (!store_reachable_) {
    done({503, json_error("unavailable"), ""});
    return;
  }
  auto shared_done = std::make_shared<std::function<void(HttpAnswer)>>(std::move(done));
  auto owned = std::make_unique<HttpLoginPeer>(source, ++http_login_ids_);
  HttpLoginPeer* peer = owned.get();
  // The gate refused by itself (banned, busy, too many connections): answered here, the
  // stand-in freed after the gate is done with it.
  peer->on_refused([this, peer, shared_done] {
    const std::string& code = peer->refused();
    (*shared_done)({code == "busy" || code == "banned" || code == "too_many_connections" ? 429u : 401u,
                    json_error(code.empty() ? "refused" : code.c_str()), ""});
    loop_.post([this, peer] {
      login_.forget(*peer);
      http_logins_.erase(peer);
    });
  });
  http_logins_[peer] = std::move(owned);
  const std::string flat_id = login.flat;
  const std::string user = login.user;
  std::weak_ptr<int> alive = alive_;
  login_.check(*peer, login, [this, peer, flat_id, user, client, secure, shared_done, alive](Peer&, bool ok) {
    login_.forget(*peer);  // an HTTP login holds no link
    loop_.post([this, peer, alive] {
      if (!alive.expired()) http_logins_.erase(peer);
    });
    if (!ok || !flats_.find(flat_id)) {
      ++metrics_.auth_failures;
      if (flats_.find(flat_id)) record({0, flat_id, 0, "login_failed", "", user, {{"client", peer->source()}}, "", ""});
      LOG_WARN("router") << "flat=" << flat_id << " user=" << log::q(user) << " session login refused ("
                         << peer->describe() << ")";
      (*shared_done)({401, json_error("unauthorized"), ""});
      return;
    }
    const std::string token = store::new_session_token();
    store::SessionRow row;
    row.token_sha256 = hash_token(token);
    row.user = user;
    row.flat = flat_id;
    row.client = client;
    row.created = row.last_used = clock_.wall_ms();
    row.expires = row.created + int64_t{config_.store.session_max_s} * 1000;
    const int64_t max_age = config_.store.session_max_s;
    const std::string role = [&] {
      auto r = store_accounts_ ? store_accounts_->role(flat_id, user) : std::nullopt;
      return r ? std::string(store::to_string(*r)) : std::string("member");
    }();
    const std::string source = peer->source();
    const bool queued = store_->call<bool>(
        [row](store::Database* db) {
          if (!db) return false;
          store::create_session(*db, row);
          return true;
        },
        [this, alive, row, token, max_age, secure, role, source, shared_done](bool stored) {
          if (alive.expired()) return;
          if (!stored) {
            (*shared_done)({503, json_error("unavailable"), ""});
            return;
          }
          LOG_INFO("router") << "flat=" << row.flat << " user=" << row.user << " session made (http from " << source
                             << ")";
          record({0, row.flat, 0, "login", "", row.user, {{"client", source}, {"via", "password"}}, "", ""});
          const Json body = {{"flat", row.flat}, {"user", row.user}, {"role", role}, {"expires", row.expires}};
          (*shared_done)({200, body.dump(), session_cookie(token, max_age, secure)});
        });
    if (!queued) (*shared_done)({503, json_error("unavailable"), ""});
  });
}

// ---- resume, logout, events -------------------------------------------------

void Router::on_resume(Peer& peer) {
  const std::string hash = peer.session_cookie_hash();
  if (!store_ || hash.empty()) {
    send_to_browser(metrics_, peer,
                    proto::encode(proto::Error{"session_expired", "no session on this link; log in"}));
    peer.close(proto::close_code::kUnauthorized, "no session");
    return;
  }
  if (!store_reachable_) {
    send_to_browser(metrics_, peer, proto::encode(proto::Error{"unavailable", "the store is unreachable; try again"}));
    return;
  }
  const uint64_t attempt = ++resumes_;
  resuming_[&peer] = attempt;
  const int64_t now = clock_.wall_ms();
  const int64_t idle_ms = int64_t{config_.store.session_idle_s} * 1000;
  std::weak_ptr<int> alive = alive_;
  Peer* p = &peer;
  const bool queued = store_->call<std::pair<bool, std::optional<store::SessionRow>>>(
      [hash, now, idle_ms](store::Database* db) {
        if (!db) return std::pair<bool, std::optional<store::SessionRow>>{false, std::nullopt};
        return std::pair<bool, std::optional<store::SessionRow>>{true, store::use_session(*db, hash, now, idle_ms)};
      },
      [this, alive, p, attempt](std::pair<bool, std::optional<store::SessionRow>> answer) {
        if (alive.expired()) return;
        auto it = resuming_.find(p);
        if (it == resuming_.end() || it->second != attempt) return;  // the browser left
        resuming_.erase(it);
        Peer& peer = *p;
        if (!answer.first) {
          send_to_browser(metrics_, peer,
                          proto::encode(proto::Error{"unavailable", "the store is unreachable; try again"}));
          return;
        }
        const auto& row = answer.second;
        LiveFlat* flat = row ? flats_.find(row->flat) : nullptr;
        // The membership may have ended since (then the session was ended too, but be sure).
        if (!flat || !accounts().password_hash(row->flat, row->user)) {
          LOG_INFO("router") << "resume refused: unknown, expired or ended session (" << peer.describe() << ")";
          send_to_browser(metrics_, peer,
                          proto::encode(proto::Error{"session_expired", "the session has ended; log in again"}));
          peer.close(proto::close_code::kUnauthorized, "session ended");
          return;
        }
        peer.authenticated();
        bind_logged_in(peer, *flat, row->user, "session", row->token_sha256, row->expires);
      });
  if (!queued) {
    resuming_.erase(&peer);
    send_to_browser(metrics_, peer, proto::encode(proto::Error{"unavailable", "the store is busy; try again"}));
  }
}

void Router::on_logout(Peer& peer, const LiveFlat& flat, const proto::Logout& logout) {
  auto it = who_.find(&peer);
  const std::string user = it == who_.end() ? "" : it->second.user;
  const std::string session = it == who_.end() ? "" : it->second.session;
  const std::string flat_id = flat.id();
  auto finish = [this, &peer] {
    send_to_browser(metrics_, peer, Json{{"type", "logged_out"}}.dump());
    peer.close(proto::close_code::kNormal, "logged out");
  };
  if (!store_ || (session.empty() && !logout.everywhere)) {
    finish();  // a password login over the WebSocket has no session to end
    return;
  }
  const bool everywhere = logout.everywhere;
  const bool queued = store_->submit([session, user, everywhere](store::Database* db) {
    if (!db) return;  // the session stays until it expires; the link closes all the same
    if (everywhere) {
      store::end_user_sessions(*db, user);
    } else {
      store::end_session(*db, session);
    }
  });
  if (!queued) LOG_WARN("router") << "flat=" << flat_id << " user=" << user << " logout not stored: the store is busy";
  LOG_INFO("router") << "flat=" << flat_id << " user=" << user << " logged out" << (everywhere ? " everywhere" : "");
  record({0, flat_id, 0, "logout", "", user, {{"reason", everywhere ? "logout everywhere" : "logout"}}, "", ""});
  finish();
  // The other links of the ended session(s) close here at once, elsewhere at the next poll.
  if (!session.empty() && !everywhere) sessions_ended({session}, "logged out");
}

void Router::on_events(Peer& peer, const LiveFlat& flat, const proto::EventsRequest& request) {
  if (!store_ || !store_reachable_) {
    send_to_browser(metrics_, peer, proto::encode(proto::Error{"unavailable", "the event log needs the store"}));
    return;
  }
  store::EventQuery q;
  q.flat = flat.id();
  q.from = request.from;
  q.to = request.to ? request.to : INT64_MAX;
  q.device = request.device;
  q.kinds = request.kinds;
  q.before = request.before ? request.before : INT64_MAX;
  q.limit = static_cast<int>(request.limit);
  const std::string id = request.id;
  std::weak_ptr<int> alive = alive_;
  Peer* p = &peer;
  const bool queued = store_->call<std::optional<std::string>>(
      [q, id](store::Database* db) -> std::optional<std::string> {
        if (!db) return std::nullopt;
        return store::encode_events_reply(id, store::query_events(*db, q));
      },
      [this, alive, p](std::optional<std::string> reply) {
        if (alive.expired() || !flats_.flat_of_browser(*p)) return;  // the browser left
        send_to_browser(metrics_, *p,
                        reply ? *reply
                              : proto::encode(proto::Error{"unavailable", "the store is unreachable; try again"}));
      });
  if (!queued) send_to_browser(metrics_, peer, proto::encode(proto::Error{"unavailable", "the store is busy"}));
}

}  // namespace flatlink::cloud
