// The cloud's routing core: the facade over its parts (router.h).
#include "cloud-server/router.h"

#include <algorithm>

#include "cloud-server/backplane.h"
#include "cloud-server/streams.h"
#include "common/log.h"

namespace flatlink::cloud {
Router::Router(const config::CloudConfig& config, EventLoop& loop, const Clock& clock, Metrics& metrics)
    : config_(config),
      clock_(clock),
      metrics_(metrics),
      flat_configs_(config.store.enabled ? std::vector<config::FlatConfig>{} : config.flats),
      accounts_(flat_configs_),
      store_accounts_(config.store.enabled ? std::make_unique<store::StoreAccounts>(flat_configs_) : nullptr),
      history_(config, clock, metrics),
      flats_(flat_configs_, metrics, history_),
      commands_(config, loop, clock, metrics),
      sync_(config, loop, clock, metrics, flats_,
            [this](LiveFlat& flat, Peer& gateway, const proto::Hello& hello) { accept_hello(flat, gateway, hello); }),
      loop_(loop),
      login_(accounts(), loop, config, clock, metrics) {
  sync_.on_joined([this](LiveFlat& flat) {
    commands_.release_held(flat, flat.online_here(), sync_.remote_online(flat));
  });
  if (config.store.enabled) {
    webhooks_ = std::make_unique<Webhooks>(loop, clock, metrics, config.webhooks.ca_file);
    load_accounts();
    store_ = std::make_unique<store::Worker>(config.store, loop);
    if (config.store.history) history_.attach_store(*store_, loop);
    start_sessions(loop);
    store_poll_ = std::make_unique<Timer>(loop, [this] { poll_accounts(); });
    store_poll_->start(config.store.poll_ms);
    login_.on_rehash([this](const std::string& flat, const std::string& user, const std::string& old_hash,
                            const std::string& fresh) { store_rehash(flat, user, old_hash, fresh); });
  }
}

Router::~Router() { alive_.reset(); }

const Accounts& Router::accounts() const {
  if (store_accounts_) return *store_accounts_;
  return accounts_;
}

// At start, before the loop runs (the one time the loop thread waits for the database): an
// empty store is seeded with the config's flats, then its accounts are read.
void Router::load_accounts() {
  try {
    auto db = store::open_database(config_.store);
    db->migrate();
    if (db->flats().empty() && !config_.flats.empty()) {
      LOG_INFO("store") << "the store has no flats: " << db->import_flats(config_.flats) << " from the config";
    }
    apply_accounts(db->accounts());
    webhooks_->configure(store::webhooks(*db));
    apply_labels(store::device_labels(*db));
    session_ends_seen_ = store::last_session_end(*db);  // ends before this start closed no link here
  } catch (const store::StoreError& e) {
    store_reachable_ = false;
    LOG_ERROR("store") << "cannot read the accounts: " << e.what() << "; no flat is admitted until the database answers";
  }
}

void Router::apply_accounts(const store::AccountsSnapshot& snapshot) {
  const std::vector<config::FlatConfig> before = store_accounts_->replace(snapshot, clock_.wall_ms());
  LOG_INFO("store") << "accounts version " << snapshot.version << ": " << flats_.reload(before);
  publish_accounts();
}

void Router::poll_accounts() {
  store_poll_->start(config_.store.poll_ms);
  if (polling_) return;
  struct Polled {
    bool reachable = false;
    std::optional<store::AccountsSnapshot> snapshot;  // only when changed
    std::vector<store::WebhookRow> webhooks;          // with a changed snapshot
    std::vector<store::DeviceLabelRow> labels;        // with a changed snapshot
    store::SessionEnds ends;                          // sessions ended since the last poll
  };
  const int64_t known = store_accounts_->version();
  const int64_t ends_seen = session_ends_seen_;
  std::weak_ptr<int> alive = alive_;
  check_session_expiry();
  polling_ = store_->call<Polled>(
      [known, ends_seen](store::Database* db) {
        Polled polled;
        if (!db) return polled;
        polled.ends = store::session_ends_after(*db, ends_seen);
        if (db->accounts_version() != known) {
          polled.snapshot = db->accounts();
          polled.webhooks = store::webhooks(*db);
          polled.labels = store::device_labels(*db);
        }
        polled.reachable = true;
        return polled;
      },
      [this, alive](Polled polled) {
        if (alive.expired()) return;
        polling_ = false;
        if (polled.reachable != store_reachable_) {
          LOG_WARN("store") << (polled.reachable ? "reachable again: new logins are checked again"
                                                 : "unreachable: new logins get \"unavailable\"; live links go on");
        }
        store_reachable_ = polled.reachable;
        if (polled.snapshot) {
          apply_accounts(*polled.snapshot);
          if (webhooks_) webhooks_->configure(polled.webhooks);
          apply_labels(polled.labels);
        }
        if (polled.reachable) {
          session_ends_seen_ = std::max(session_ends_seen_, polled.ends.last);
          sessions_ended(polled.ends.token_sha256, "session ended");
        }
      });
}

// An old password hash upgraded at a good login (LoginGate): written by the store's worker,
// then taken by this instance's accounts at once (the others read it at their next poll).
void Router::store_rehash(const std::string& flat, const std::string& user, const std::string& old_hash,
                          const std::string& fresh) {
  std::weak_ptr<int> alive = alive_;
  const bool queued = store_->call<bool>(
      [user, old_hash, fresh](store::Database* db) { return db && db->upgrade_password_hash(user, old_hash, fresh); },
      [this, alive, flat, user, old_hash, fresh](bool done) {
        if (alive.expired()) return;
        if (!done) {
          LOG_WARN("login") << "flat=" << flat << " user=" << log::q(user)
                            << " old password hash not upgraded: the store is unreachable, or the hash changed "
                               "meanwhile (tried again at the next login)";
          return;
        }
        store_accounts_->password_rehashed(user, old_hash, fresh);
        LOG_INFO("login") << "flat=" << flat << " user=" << log::q(user)
                          << " password hash upgraded to Argon2id in the store";
      });
  if (!queued) {
    LOG_WARN("login") << "flat=" << flat << " user=" << log::q(user)
                      << " old password hash not upgraded: the store's queue is full (tried again at the next login)";
  }
}

void Router::attach_backplane(Backplane* backplane) {
  backplane_ = backplane;
  sync_.attach(backplane);
  commands_.attach_backplane(backplane);
  publish_accounts();
}

// The digest of the flats, tokens and users admitted here, which the other instances compare
// with theirs (docs/scale-out.md): the config's, or a SQLite store's (each instance's own
// file: an account added to one only is a difference). Instances sharing a PostgreSQL store
// admit the same accounts, each a poll apart: they all publish the digest of none, or every
// admin change would be logged as a difference.
void Router::publish_accounts() {
  if (!backplane_) return;
  const bool shared = config_.store.enabled && config_.store.engine == "postgresql";
  backplane_->set_accounts(shared ? std::vector<config::FlatConfig>{} : flat_configs_);
}

std::string Router::flats_changed(const std::vector<config::FlatConfig>& before) {
  if (store_accounts_) return "flats, users and tokens come from the store (flatlink-cloud admin)";
  flat_configs_ = config_.flats;
  accounts_.reload();
  publish_accounts();
  return flats_.reload(before);
}

std::optional<std::string> Router::flat_for_token(std::string_view token) const {
  return accounts().flat_for_token(token);
}

void Router::resync_browser(Peer& peer) {
  const LiveFlat* flat = flats_.flat_of_browser(peer);
  if (!flat) return;
  ++metrics_.browser_resyncs;
  flats_.send_snapshot(peer, *flat, sync_.gateway_online(*flat));
  tell_not_responding(peer, *flat);
}

// ---- gateways ---------------------------------------------------------------

void Router::gateway_connected(Peer& peer, const std::string& flat_id) {
  LiveFlat& flat = flats_.at(flat_id);
  flats_.link_gateway(peer, flat);
  not_responding_.erase(flat_id);
  LOG_INFO("router") << "flat=" << flat_id << " gateway link open (" << peer.describe() << "); waiting for hello";
  sync_.link_opened(flat);
}

bool Router::gateway_said_hello(Peer& peer) const {
  const LiveFlat* flat = flats_.current_flat_of(peer);
  return flat && flat->hello;
}

// docs/protocol.md, "gateway": the link is up, but the gateway has sent nothing (not even a
// pong) for the server's bound, or speaks again.
static std::string gateway_responding_frame(bool responding) {
  return Json{{"type", "gateway"}, {"online", true}, {"responding", responding}}.dump();
}

void Router::gateway_responding(Peer& peer, bool responding) {
  LiveFlat* flat = flats_.current_flat_of(peer);
  if (!flat || !flat->hello) return;
  if (responding ? not_responding_.erase(flat->id()) == 0 : !not_responding_.insert(flat->id()).second) return;
  flats_.to_browsers(*flat, gateway_responding_frame(responding));
}

// After a snapshot (which says only online/offline): a silent gateway is said so.
void Router::tell_not_responding(Peer& browser, const LiveFlat& flat) {
  if (not_responding_.contains(flat.id())) send_to_browser(metrics_, browser, gateway_responding_frame(false));
}

void Router::gateway_disconnected(Peer& peer) {
  LiveFlat* flat = nullptr;
  if (!flats_.gateway_closed(peer, flat) || !flat) return;  // unknown, or a replaced link
  not_responding_.erase(flat->id());
  LOG_INFO("router") << "flat=" << flat->id() << " gateway=" << flat->gateway_id << " offline";
  record({0, flat->id(), 0, "gateway", "", "", {{"online", false}, {"gateway", flat->gateway_id}}, "", ""});
  if (webhooks_) webhooks_->notify(flat->id(), "gateway_offline", {{"gateway", flat->gateway_id}});
  flats_.to_browsers(*flat, proto::encode(proto::GatewayState{false}));
  sync_.link_closed(*flat);
}

void Router::gateway_message(Peer& peer, const proto::GatewayToCloud& message) {
  ++metrics_.gateway_messages_in;
  LiveFlat* flat = flats_.current_flat_of(peer);
  if (!flat) return;  // replaced: closing
  if (!flat->hello && !std::holds_alternative<proto::Hello>(message)) {
    ++metrics_.refused_messages;
    LOG_WARN("router") << "flat=" << flat->id() << " gateway sent a message before hello; closing";
    send_to_gateway(metrics_, peer, proto::encode(proto::Error{"hello_first", "the first message must be hello"}));
    peer.close(proto::close_code::kProtocolError, "hello first");
    return;
  }
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, proto::Hello>) {
          on_hello(*flat, peer, m);
        } else if constexpr (std::is_same_v<T, proto::StatusBatch>) {
          on_status(*flat, peer, m);
        } else if constexpr (std::is_same_v<T, proto::Presence>) {
          if (!flats_.apply_presence(*flat, m)) {
            LOG_WARN("router") << "flat=" << flat->id() << " device=" << m.device << " presence for an unknown device";
            return;
          }
          record({0, flat->id(), m.ts, "presence", m.device, "", {{"online", m.online}}, "", ""});
          if (!m.online && webhooks_) {
            const proto::DeviceReport* dev = flat_device(flat->id(), m.device);
            webhooks_->notify(flat->id(), "device_offline",
                              {{"device", m.device}, {"name", dev ? dev->info.name : m.device}});
          }
          sync_.gateway_message(*flat, message);
        } else if constexpr (std::is_same_v<T, proto::DeviceList>) {
          flats_.apply_device_list(*flat, m);
          sync_.gateway_message(*flat, message);
        } else if constexpr (std::is_same_v<T, proto::Result>) {
          commands_.gateway_result(*flat, m);
        }
      },
      message);
}

void Router::on_hello(LiveFlat& flat, Peer& peer, const proto::Hello& hello) {
  if (flat.hello || sync_.holds_hello(flat)) {
    ++metrics_.refused_messages;
    LOG_WARN("router") << "flat=" << flat.id() << " second hello on one link ignored";
    return;
  }
  if (sync_.hold_hello(flat, hello)) return;  // answered once the backplane has caught up
  accept_hello(flat, peer, hello);
}

void Router::accept_hello(LiveFlat& flat, Peer& peer, const proto::Hello& hello) {
  flat.hello = true;
  flat.gateway_id = hello.gateway;
  if (const size_t forgotten = flat.bound_gateway_ids(hello.gateway)) {
    LOG_WARN("router") << "flat=" << flat.id() << " gateway=" << hello.gateway << ": " << forgotten
                       << " other gateway ids forgotten (at most " << LiveFlat::kMaxGatewayIds << " kept)";
  }
  flat.state_seq.erase(hello.gateway);  // the hello's devices are the state now
  flats_.set_devices(flat, devices_by_id(hello.devices));
  int64_t& last = flat.last_seq[hello.gateway];
  std::string& epoch = flat.epoch_of[hello.gateway];
  bool stream_reset = false;
  if (hello.epoch != epoch && !(epoch.empty() && last > 0 && hello.next_seq > last)) {
    // Another stream: a new epoch starts from its first seq, one seen before resumes; nothing
    // of an epoch not received is ever acknowledged. (A last seq known only from the
    // backplane, with no epoch yet, is taken as this stream's while the gateway's numbers
    // are above it.)
    const bool first = epoch.empty() && last == 0;
    const std::string was = epoch;
    const int64_t was_last = last;
    const int64_t resumed = flats_.switch_epoch(flat, hello.gateway, hello.epoch);
    if (!first) {
      LOG_WARN("router") << "flat=" << flat.id() << " gateway=" << hello.gateway << " stream epoch="
                         << (hello.epoch.empty() ? "(none)" : hello.epoch) << " (was "
                         << (was.empty() ? "(none)" : was) << ", last seq " << was_last << "): "
                         << (resumed ? "resuming it after seq=" + std::to_string(resumed) : std::string("a new stream"));
    }
    stream_reset = true;  // other instances must lower their last seen seq too
  } else if (hello.next_seq <= last) {
    // The seqs of one epoch went back: only a store restored by hand without its side file
    // does that. The gateway's numbers are followed: better a status twice than one skipped.
    LOG_ERROR("router") << "flat=" << flat.id() << " gateway=" << hello.gateway << " epoch="
                        << (hello.epoch.empty() ? "(none)" : hello.epoch) << " went back to next_seq="
                        << hello.next_seq << " below the last seen " << last << "; following the gateway's numbers";
    last = hello.next_seq - 1;
    stream_reset = true;
  }
  epoch = hello.epoch;
  metrics_.gateway_dropped += hello.dropped - flat.dropped;
  flat.dropped = hello.dropped;
  metrics_.gateway_coalesced += hello.coalesced - flat.coalesced;
  flat.coalesced = hello.coalesced;
  if (hello.lost != flat.lost) {
    if (hello.lost > flat.lost) {
      LOG_ERROR("router") << "flat=" << flat.id() << " gateway=" << hello.gateway << " found its store gone: "
                          << hello.lost - flat.lost << " more statuses may be lost (" << hello.lost << " in all)";
    }
    metrics_.gateway_lost += hello.lost - flat.lost;
    flat.lost = hello.lost;
  }
  if (hello.dropped > 0) {
    LOG_WARN("router") << "flat=" << flat.id() << " gateway=" << hello.gateway << " reports " << hello.dropped
                       << " statuses dropped by its outbox";
  }
  record({0, flat.id(), 0, "gateway", "", "", {{"online", true}, {"gateway", hello.gateway}}, "", ""});
  LOG_INFO("router") << "flat=" << flat.id() << " gateway=" << hello.gateway << " version=" << hello.version
                     << " online with " << hello.devices.size() << " devices; resume after seq=" << last;
  ++metrics_.acks;
  // The answer to hello: the last seq of this epoch, and the limits the gateway's frames keep.
  proto::Limits limits;
  limits.max_message_bytes = config_.limits.max_message_bytes;
  limits.messages_per_s = config_.limits.messages_per_s;  // the gateway paces its frames to this
  limits.burst = config_.limits.burst;
  send_to_gateway(metrics_, peer, proto::encode(proto::Ack{last, limits}));
  for (Peer* browser : flat.browsers) flats_.send_snapshot(*browser, flat, sync_.gateway_online(flat));
  sync_.hello_accepted(flat, stream_reset);
}

void Router::on_status(LiveFlat& flat, Peer& peer, const proto::StatusBatch& batch) {
  int64_t& last = flat.last_seq[flat.gateway_id];
  if (batch.dropped > flat.dropped) {
    LOG_WARN("router") << "flat=" << flat.id() << " gateway=" << flat.gateway_id << " outbox dropped "
                       << batch.dropped - flat.dropped << " more statuses (" << batch.dropped << " in all)";
    metrics_.gateway_dropped += batch.dropped - flat.dropped;
    flat.dropped = batch.dropped;
  }
  if (batch.coalesced > flat.coalesced) {
    metrics_.gateway_coalesced += batch.coalesced - flat.coalesced;
    flat.coalesced = batch.coalesced;
  }
  const bool backplane = sync_.attached();
  proto::StatusBatch accepted;  // what the other instances get
  accepted.dropped = batch.dropped;
  for (const auto& item : batch.items) {
    bool was_unlocked = false;
    if (webhooks_ && webhooks_->has(flat.id())) {
      const proto::DeviceReport* dev = flat_device(flat.id(), item.device);
      was_unlocked = dev && lock_unlocked(dev->state).value_or(false);
    }
    const Flats::StatusFate fate = flats_.apply_status(flat, item, last);
    if (fate == Flats::StatusFate::applied && webhooks_ && webhooks_->has(flat.id())) {
      notify_unlocked(flat, item, was_unlocked);
    }
    if (fate == Flats::StatusFate::unknown_device) {
      ++metrics_.refused_messages;
      LOG_WARN("router") << "flat=" << flat.id() << " device=" << item.device << " seq=" << item.seq
                         << " status for an unknown device dropped";
    }
    if (fate == Flats::StatusFate::applied && backplane) accepted.items.push_back(item);
  }
  if (!backplane) {
    ++metrics_.acks;
    send_to_gateway(metrics_, peer, proto::encode(proto::Ack{last}));
    return;
  }
  // At least once across instances: the ack waits for the broker's PUBACK.
  sync_.ack_after(flat, peer, last,
                  accepted.items.empty() ? std::nullopt : std::optional<std::string>(proto::encode(accepted)));
}

// ---- browsers ---------------------------------------------------------------

void Router::browser_connected(Peer& peer) {
  flats_.browser_connected(peer);
  ++metrics_.browser_links;
}

bool Router::browser_logged_in(Peer& peer) const { return flats_.flat_of_browser(peer) != nullptr; }

void Router::browser_disconnected(Peer& peer) {
  LiveFlat* flat = nullptr;
  if (!flats_.browser_closed(peer, flat)) return;
  if (flat) {
    LOG_INFO("router") << "flat=" << flat->id() << " browser left (" << peer.describe() << ")";
    sync_.watch_update(*flat);
  }
  login_.forget(peer);
  browser_gone(peer);
  --metrics_.browser_links;
  commands_.browser_left(peer);
}

void Router::browser_message(Peer& peer, const proto::BrowserToCloud& message) {
  ++metrics_.browser_messages_in;
  if (!flats_.browser_known(peer)) return;
  LiveFlat* flat = flats_.flat_of_browser(peer);

  if (const auto* login = std::get_if<proto::Login>(&message)) {
    if (flat) {
      send_to_browser(metrics_, peer,
                      proto::encode(proto::Error{"already_logged_in", "this connection is bound to flat " + flat->id()}));
      return;
    }
    if (store_accounts_ && !store_reachable_) {
      // The accounts may have changed meanwhile (a user removed): nobody new is admitted on old ones.
      send_to_browser(metrics_, peer, proto::encode(proto::Error{"unavailable", "the store is unreachable; try again"}));
      return;
    }
    on_login(peer, *login);
    return;
  }
  if (std::holds_alternative<proto::Resume>(message)) {
    if (flat) {
      send_to_browser(metrics_, peer,
                      proto::encode(proto::Error{"already_logged_in", "this connection is bound to flat " + flat->id()}));
      return;
    }
    on_resume(peer);
    return;
  }
  if (!flat) {
    ++metrics_.refused_messages;
    send_to_browser(metrics_, peer, proto::encode(proto::Error{"login_first", "log in to a flat first"}));
    peer.close(proto::close_code::kPolicyViolation, "login first");
    return;
  }
  if (const auto* command = std::get_if<proto::BrowserCommand>(&message)) {
    if (flats_.browser_read_only(peer)) {
      metrics_.count_command(Outcome::rejected);
      LOG_INFO("router") << "flat=" << flat->id() << " browser_command=" << command->id << " refused: a guest";
      send_to_browser(metrics_, peer,
                      proto::encode(proto::Result{command->id, Outcome::rejected,
                                                  "forbidden: a guest may watch but not command"}));
      return;
    }
    if (sync_.joining(*flat)) {
      commands_.hold(*flat, peer, *command);
    } else {
      commands_.from_browser(*flat, peer, *command, flat->online_here(), sync_.remote_online(*flat));
    }
  } else if (const auto* logout = std::get_if<proto::Logout>(&message)) {
    on_logout(peer, *flat, *logout);
  } else if (const auto* events = std::get_if<proto::EventsRequest>(&message)) {
    on_events(peer, *flat, *events);
  } else if (const auto* webhook = std::get_if<proto::WebhookRequest>(&message)) {
    on_webhook(peer, *flat, *webhook);
  } else if (const auto* label = std::get_if<proto::DeviceLabelRequest>(&message)) {
    on_device_label(peer, *flat, *label);
  } else if (const auto* request = std::get_if<proto::HistoryRequest>(&message)) {
    Peer* p = &peer;
    history_.answer(flat->id(), *request, [this, p](std::string frame) {
      if (flats_.flat_of_browser(*p)) send_to_browser(metrics_, *p, frame);  // else the browser left
    });
  }
}

void Router::on_login(Peer& peer, const proto::Login& login) {
  const std::string flat_id = login.flat;
  const std::string user = login.user;
  // Refusals before a check (banned, busy) are answered by the gate itself.
  login_.check(peer, login, [this, flat_id, user](Peer& browser, bool ok) { logged_in(browser, flat_id, user, ok); });
}

void Router::logged_in(Peer& peer, const std::string& flat_id, const std::string& user, bool ok) {
  if (!flats_.browser_known(peer)) return;  // the browser left
  LiveFlat* flat = ok ? flats_.find(flat_id) : nullptr;
  if (!flat) {
    ++metrics_.auth_failures;
    if (flats_.find(flat_id)) record({0, flat_id, 0, "login_failed", "", user, {{"client", peer.source()}}, "", ""});
    LOG_WARN("router") << "flat=" << flat_id << " user=" << log::q(user) << " login refused (" << peer.describe() << ")";
    send_to_browser(metrics_, peer, proto::encode(proto::Error{"unauthorized", "wrong flat, user or password"}));
    peer.close(proto::close_code::kUnauthorized, "login refused");
    return;
  }
  bind_logged_in(peer, *flat, user, "password", "", 0);
}

// ---- for the stream hub -------------------------------------------------------

const std::string* Router::browser_flat(Peer& peer) const {
  const LiveFlat* flat = flats_.flat_of_browser(peer);
  return flat ? &flat->id() : nullptr;
}

const std::string* Router::gateway_flat(Peer& peer) const {
  const LiveFlat* flat = flats_.current_flat_of(peer);
  return flat && flat->hello ? &flat->id() : nullptr;
}

Peer* Router::flat_gateway(const std::string& flat_id) const {
  const LiveFlat* flat = flats_.find(flat_id);
  return !flat || !flat->hello ? nullptr : flat->gateway;
}

std::string Router::flat_holder_elsewhere(const std::string& flat_id) const {
  const LiveFlat* flat = flats_.find(flat_id);
  return flat ? sync_.holder_elsewhere(*flat) : std::string();
}

const proto::DeviceReport* Router::flat_device(const std::string& flat_id, const std::string& device) const {
  const LiveFlat* flat = flats_.find(flat_id);
  if (!flat) return nullptr;
  auto dev = flat->devices.find(device);
  return dev == flat->devices.end() ? nullptr : &dev->second;
}

void Router::close_all() {
  if (store_poll_) store_poll_->cancel();
  events_.reset();  // its timer must not outlive the loop
  webhooks_.reset();  // nor the webhooks' timers; deliveries under way are ended
  history_.close();  // the worker writes what waits before it stops
  commands_.forget_remote();  // their timers must not outlive the loop
  for (Peer* peer : flats_.peers()) peer->close(proto::close_code::kGoingAway, "server shutting down");
}

// ---- the backplane ------------------------------------------------------------

void Router::backplane_up() { sync_.up(); }
bool Router::backplane_knows_flat(const std::string& flat) const { return sync_.knows_flat(flat); }
std::optional<RemoteState> Router::backplane_state(const std::string& flat) { return sync_.state(flat); }

void Router::remote_gateway_message(const std::string& flat, const std::string& from, const std::string& gateway,
                                    const proto::GatewayToCloud& message, const std::string& epoch) {
  sync_.remote_gateway_message(flat, from, gateway, message, epoch);
}

void Router::remote_state(const std::string& flat, const RemoteState& state) { sync_.remote_state(flat, state); }
void Router::remote_holder(const std::string& flat, const HolderClaim& claim) { sync_.remote_holder(flat, claim); }

void Router::remote_command(const std::string& flat, const std::string& from, const proto::CommandMsg& command) {
  commands_.remote_command(flats_.at(flat), from, command);
}

void Router::remote_result(const std::string& flat, const std::string& from, const proto::Result& result,
                           bool accepted) {
  commands_.remote_result(flat, from, result, accepted);
}

void Router::instance_down(const std::string& instance) {
  sync_.instance_down(instance);
  if (streams_) streams_->instance_gone(instance);
}
void Router::backplane_down() {
  sync_.down();
  if (streams_) streams_->instance_gone("");
}
void Router::remote_stream_control(const backplane::StreamControl& message) {
  if (streams_) streams_->remote_control(message);
}
void Router::remote_stream_frame(backplane::StreamData& data) {
  if (streams_) streams_->remote_frame(data);
}
void Router::remote_status(const backplane::GatewayMessage& m) {
  sync_.remote_gateway_message(m.flat, m.from, m.gateway, m.message, m.epoch, m.prev, m.resent);
}
void Router::remote_resend(const backplane::ResendRequest& request) { sync_.remote_resend(request); }
void Router::remote_repaired(const backplane::RepairDone& done) { sync_.remote_repaired(done); }
void Router::backplane_session_lost() { sync_.session_lost(); }

}  // namespace flatlink::cloud
