// The cloud's routing core.
#include "cloud-server/router.h"

#include <openssl/rand.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cloud-server/auth.h"
#include "cloud-server/router_flat.h"
#include "common/log.h"

namespace flatlink::cloud {

namespace {

// Password checks take tens of milliseconds by design; they run off the loop.
std::atomic<int> g_logins_in_flight{0};
constexpr int kMaxLoginsInFlight = 8;


}  // namespace

Router::Router(const config::CloudConfig& config, EventLoop& loop, const Clock& clock, Metrics& metrics)
    : config_(config), loop_(loop), clock_(clock), metrics_(metrics) {
  for (const auto& fc : config_.flats) {
    auto flat = std::make_unique<Flat>();
    flat->config = &fc;
    flat_by_token_hash_[fc.gateway_token_sha256] = fc.id;
    flats_[fc.id] = std::move(flat);
  }
  // Command ids must not repeat across cloud restarts: the gateway remembers ids it ran.
  unsigned char rnd[6];
  RAND_bytes(rnd, sizeof rnd);
  static const char* digits = "0123456789abcdef";
  for (unsigned char b : rnd) {
    id_prefix_ += digits[b >> 4];
    id_prefix_ += digits[b & 15];
  }
  id_prefix_ = "c" + id_prefix_ + "-";
}

Router::~Router() {
  // A password check still running will post back to the loop: wait for it (shutdown only).
  while (g_logins_in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

std::string Router::flats_changed(const std::vector<config::FlatConfig>& before) {
  std::map<std::string, const config::FlatConfig*> old;
  for (const auto& fc : before) old[fc.id] = &fc;
  const auto same_users = [](const config::FlatConfig& a, const config::FlatConfig& b) {
    if (a.users.size() != b.users.size()) return false;
    for (size_t i = 0; i < a.users.size(); ++i) {
      if (a.users[i].name != b.users[i].name || a.users[i].password_hash != b.users[i].password_hash) return false;
    }
    return true;
  };
  const auto close_browsers = [](Flat& flat, const char* reason) {
    const std::set<Peer*> browsers = flat.browsers;
    for (Peer* browser : browsers) browser->close(proto::close_code::kUnauthorized, reason);
  };
  size_t added = 0, removed = 0, tokens = 0, users = 0;
  flat_by_token_hash_.clear();
  for (const auto& fc : config_.flats) {
    flat_by_token_hash_[fc.gateway_token_sha256] = fc.id;
    auto& flat = flats_[fc.id];
    auto was = old.find(fc.id);
    if (!flat) flat = std::make_unique<Flat>();
    flat->config = &fc;
    if (was == old.end()) {
      ++added;
      continue;
    }
    if (was->second->gateway_token_sha256 != fc.gateway_token_sha256) {
      ++tokens;
      if (flat->gateway) {
        LOG_WARN("router") << "flat=" << fc.id << " gateway token changed: closing the link that used the old one";
        flat->gateway->close(proto::close_code::kUnauthorized, "gateway token revoked");
      }
    }
    if (!same_users(*was->second, fc)) {
      ++users;
      close_browsers(*flat, "users changed; log in again");
    }
    old.erase(was);
  }
  for (const auto& [id, fc] : old) {
    ++removed;
    // The Flat stays (peers may still point at it) bound to a copy that admits nobody.
    config::FlatConfig gone{*fc};
    gone.gateway_token_sha256.clear();
    gone.users.clear();
    retired_.push_back(std::move(gone));
    Flat& flat = *flats_.at(id);
    flat.config = &retired_.back();
    LOG_WARN("router") << "flat=" << id << " removed from the config: closing its links";
    if (flat.gateway) flat.gateway->close(proto::close_code::kUnauthorized, "flat removed");
    close_browsers(flat, "flat removed");
  }
  return std::to_string(config_.flats.size()) + " flats (" + std::to_string(added) + " added, " +
         std::to_string(removed) + " removed, " + std::to_string(tokens) + " with a new gateway token, " +
         std::to_string(users) + " with changed users)";
}

std::optional<std::string> Router::flat_for_token(std::string_view token) const {
  const std::string hash = hash_token(token);
  // Look up by hash, then compare in constant time (the map lookup alone would leak timing).
  for (const auto& [known, flat] : flat_by_token_hash_) {
    if (constant_time_equal(known, hash)) return flat;
  }
  return std::nullopt;
}

void Router::send_gateway(Peer& peer, const std::string& frame) {
  ++metrics_.gateway_messages_out;
  peer.send(frame);
}

void Router::send_browser(Peer& peer, const std::string& frame) {
  ++metrics_.browser_messages_out;
  peer.send(frame);
}

void Router::to_browsers(Flat& flat, const std::string& frame) {
  for (Peer* browser : flat.browsers) {
    ++metrics_.browser_messages_out;
    browser->send_state(frame);
  }
}

void Router::send_snapshot(Peer& browser, const Flat& flat) {
  ++metrics_.browser_messages_out;
  browser.send_state(proto::encode(snapshot(flat)));
}

void Router::resync_browser(Peer& peer) {
  auto it = browsers_.find(&peer);
  if (it == browsers_.end() || !it->second) return;
  ++metrics_.browser_resyncs;
  send_snapshot(peer, *it->second);
}

Router::Flat* Router::flat_of_gateway(Peer& peer) {
  auto it = gateways_.find(&peer);
  return it == gateways_.end() ? nullptr : it->second;
}

// ---- gateways ---------------------------------------------------------------

void Router::gateway_connected(Peer& peer, const std::string& flat_id) {
  Flat& flat = *flats_.at(flat_id);
  ++metrics_.gateway_links;
  if (flat.gateway) {
    LOG_WARN("router") << "flat=" << flat_id << " a new gateway link replaces the old one (" << flat.gateway->describe()
                       << ")";
    ++metrics_.replaced_gateways;
    Peer* old = flat.gateway;
    gateways_[old] = nullptr;  // its messages are ignored from now on
    old->close(proto::close_code::kReplaced, "replaced by a newer connection for this flat");
  }
  flat.gateway = &peer;
  flat.hello = false;
  gateways_[&peer] = &flat;
  LOG_INFO("router") << "flat=" << flat_id << " gateway link open (" << peer.describe() << "); waiting for hello";
  bp_link_opened(flat);
}

bool Router::gateway_said_hello(Peer& peer) const {
  auto it = gateways_.find(&peer);
  return it != gateways_.end() && it->second && it->second->gateway == &peer && it->second->hello;
}

void Router::gateway_disconnected(Peer& peer) {
  auto it = gateways_.find(&peer);
  if (it == gateways_.end()) return;
  Flat* flat = it->second;
  gateways_.erase(it);
  --metrics_.gateway_links;
  if (!flat || flat->gateway != &peer) return;  // a replaced link
  flat->gateway = nullptr;
  flat->hello = false;
  LOG_INFO("router") << "flat=" << flat->config->id << " gateway=" << flat->gateway_id << " offline";
  to_browsers(*flat, proto::encode(proto::GatewayState{false}));
  bp_link_closed(*flat);
}

void Router::gateway_message(Peer& peer, const proto::GatewayToCloud& message) {
  ++metrics_.gateway_messages_in;
  Flat* flat = flat_of_gateway(peer);
  if (!flat || flat->gateway != &peer) return;  // replaced: closing
  if (!flat->hello && !std::holds_alternative<proto::Hello>(message)) {
    ++metrics_.refused_messages;
    LOG_WARN("router") << "flat=" << flat->config->id << " gateway sent a message before hello; closing";
    send_gateway(peer, proto::encode(proto::Error{"hello_first", "the first message must be hello"}));
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
          auto dev = flat->devices.find(m.device);
          if (dev == flat->devices.end()) {
            LOG_WARN("router") << "flat=" << flat->config->id << " device=" << m.device << " presence for an unknown device";
            return;
          }
          dev->second.online = m.online;
          to_browsers(*flat, proto::encode(m));
          bp_gateway_message(*flat, message);
        } else if constexpr (std::is_same_v<T, proto::DeviceList>) {
          flat->devices = devices_by_id(m.devices);
          to_browsers(*flat, proto::encode(m));
          bp_gateway_message(*flat, message);
        } else if constexpr (std::is_same_v<T, proto::Result>) {
          on_result(*flat, m);
        }
      },
      message);
}

void Router::on_hello(Flat& flat, Peer& peer, const proto::Hello& hello) {
  if (flat.hello || flat.held_hello) {
    ++metrics_.refused_messages;
    LOG_WARN("router") << "flat=" << flat.config->id << " second hello on one link ignored";
    return;
  }
  if (bp_hold_hello(flat, hello)) return;  // answered once the backplane has caught up
  accept_hello(flat, peer, hello);
}

void Router::accept_hello(Flat& flat, Peer& peer, const proto::Hello& hello) {
  flat.hello = true;
  flat.gateway_id = hello.gateway;
  flat.state_seq.erase(hello.gateway);  // the hello's devices are the state now
  flat.devices = devices_by_id(hello.devices);
  int64_t& last = flat.last_seq[hello.gateway];
  if (hello.next_seq <= last) {
    // The gateway's stream started again (its state was wiped): accept the new stream.
    LOG_WARN("router") << "flat=" << flat.config->id << " gateway=" << hello.gateway << " restarted its sequence (next "
                       << hello.next_seq << ", last seen " << last << "); accepting the new stream";
    last = hello.next_seq - 1;
    flat.stream_reset = true;  // other instances must lower their last seen seq too
  } else {
    flat.stream_reset = false;
  }
  metrics_.gateway_dropped += hello.dropped - flat.dropped;
  flat.dropped = hello.dropped;
  if (hello.dropped > 0) {
    LOG_WARN("router") << "flat=" << flat.config->id << " gateway=" << hello.gateway << " reports " << hello.dropped
                       << " statuses dropped by its outbox";
  }
  LOG_INFO("router") << "flat=" << flat.config->id << " gateway=" << hello.gateway << " version=" << hello.version
                     << " online with " << hello.devices.size() << " devices; resume after seq=" << last;
  ++metrics_.acks;
  send_gateway(peer, proto::encode(proto::Ack{last}));
  for (Peer* browser : flat.browsers) send_snapshot(*browser, flat);
  if (backplane_) backplane_->state_changed(flat.config->id, true);
}

void Router::on_status(Flat& flat, Peer& peer, const proto::StatusBatch& batch) {
  int64_t& last = flat.last_seq[flat.gateway_id];
  if (batch.dropped > flat.dropped) {
    LOG_WARN("router") << "flat=" << flat.config->id << " gateway=" << flat.gateway_id << " outbox dropped "
                       << batch.dropped - flat.dropped << " more statuses (" << batch.dropped << " in all)";
    metrics_.gateway_dropped += batch.dropped - flat.dropped;
    flat.dropped = batch.dropped;
  }
  proto::StatusBatch accepted;  // what the other instances get
  accepted.dropped = batch.dropped;
  for (const auto& item : batch.items) {
    const StatusFate fate = apply_status(flat, item, last);
    if (fate == StatusFate::unknown_device) {
      ++metrics_.refused_messages;
      LOG_WARN("router") << "flat=" << flat.config->id << " device=" << item.device << " seq=" << item.seq
                         << " status for an unknown device dropped";
    }
    if (fate == StatusFate::applied && backplane_) accepted.items.push_back(item);
  }
  if (!backplane_) {
    ++metrics_.acks;
    send_gateway(peer, proto::encode(proto::Ack{last}));
    return;
  }
  // At least once across instances: the ack waits for the broker's PUBACK.
  bp_ack_after(flat, peer, last,
               accepted.items.empty() ? std::nullopt : std::optional<std::string>(proto::encode(accepted)));
}

Router::StatusFate Router::apply_status(Flat& flat, const proto::StatusItem& item, int64_t& last, int64_t covered) {
  if (item.seq <= last) {
    ++metrics_.duplicate_statuses;
    return StatusFate::duplicate;
  }
  last = item.seq;
  auto dev = flat.devices.find(item.device);
  if (dev == flat.devices.end()) return StatusFate::unknown_device;
  ++metrics_.statuses;
  if (item.seq > covered) {  // else the devices' state from the holder is newer already
    for (const auto& [key, value] : item.state.items()) dev->second.state[key] = value;
    dev->second.last_ts = item.ts;
  }
  record_history(flat, item.device, item.state, item.ts);
  to_browsers(flat, proto::encode(proto::Update{item.device, item.state, item.ts, item.seq}));
  return StatusFate::applied;
}

void Router::record_history(Flat& flat, const std::string& device, const Json& state, int64_t ts) {
  if (config_.limits.history_points == 0) return;
  for (const auto& [key, value] : state.items()) {
    if (!value.is_number()) continue;
    auto& points = flat.history[device + "/" + key].points;
    points.push_back(proto::HistoryPoint{ts, value});
    while (points.size() > config_.limits.history_points) points.pop_front();
  }
}

void Router::on_result(Flat& flat, const proto::Result& result) {
  if (bp_on_result(flat, result)) return;  // a command another instance sent
  auto it = pending_.find(result.id);
  if (it == pending_.end() || it->second->flat != flat.config->id) {
    // Unknown, already ended (timed out), or another flat's command: never cross flats.
    ++metrics_.refused_messages;
    LOG_WARN("router") << "flat=" << flat.config->id << " command=" << result.id
                       << " result for no pending command of this flat; ignored";
    return;
  }
  finish_command(result.id, result);
}

void Router::finish_command(const std::string& cloud_id, const proto::Result& result) {
  auto it = pending_.find(cloud_id);
  if (it == pending_.end()) return;
  std::unique_ptr<PendingCommand> pending = std::move(it->second);
  pending_.erase(it);
  metrics_.count_command(result.outcome);
  LOG_INFO("router") << "flat=" << pending->flat << " command=" << cloud_id << " browser_command=" << pending->browser_id
                     << " " << to_string(result.outcome) << (result.message.empty() ? "" : ": ") << result.message
                     << (pending->remote ? " (over the backplane)" : "");
  if (pending->browser) {
    send_browser(*pending->browser, proto::encode(proto::Result{pending->browser_id, result.outcome, result.message}));
  }
}

// ---- browsers ---------------------------------------------------------------

void Router::browser_connected(Peer& peer) {
  browsers_[&peer] = nullptr;
  ++metrics_.browser_links;
}

bool Router::browser_logged_in(Peer& peer) const {
  auto it = browsers_.find(&peer);
  return it != browsers_.end() && it->second;
}

void Router::browser_disconnected(Peer& peer) {
  auto it = browsers_.find(&peer);
  if (it == browsers_.end()) return;
  if (it->second) {
    it->second->browsers.erase(&peer);
    LOG_INFO("router") << "flat=" << it->second->config->id << " browser left (" << peer.describe() << ")";
    watch_update(*it->second);
  }
  browsers_.erase(it);
  login_attempt_.erase(&peer);
  --metrics_.browser_links;
  for (auto& [id, pending] : pending_) {
    if (pending->browser == &peer) pending->browser = nullptr;
  }
}

void Router::browser_message(Peer& peer, const proto::BrowserToCloud& message) {
  ++metrics_.browser_messages_in;
  auto it = browsers_.find(&peer);
  if (it == browsers_.end()) return;
  Flat* flat = it->second;

  if (const auto* login = std::get_if<proto::Login>(&message)) {
    if (flat) {
      send_browser(peer, proto::encode(proto::Error{"already_logged_in", "this connection is bound to flat " +
                                                                              flat->config->id}));
      return;
    }
    auto fit = flats_.find(login->flat);
    const config::UserConfig* user = nullptr;
    if (fit != flats_.end()) {
      for (const auto& u : fit->second->config->users) {
        if (u.name == login->user) user = &u;
      }
    }
    if (g_logins_in_flight.load() >= kMaxLoginsInFlight) {
      send_browser(peer, proto::encode(proto::Error{"busy", "too many logins at once; try again"}));
      return;
    }
    const uint64_t attempt = ++login_attempts_;
    login_attempt_[&peer] = attempt;
    // An unknown flat or user still costs a hash, so that timing tells nothing.
    const std::string hash = user ? user->password_hash : "pbkdf2-sha256$100000$00$00";
    const std::string password = login->password;
    const std::string flat_id = login->flat;
    const std::string user_name = login->user;
    const bool known = user != nullptr;
    ++g_logins_in_flight;
    Peer* peer_ptr = &peer;
    std::thread([this, hash, password, flat_id, user_name, known, attempt, peer_ptr] {
      const bool ok = verify_password(password, hash) && known;
      loop_.post([this, ok, flat_id, user_name, attempt, peer_ptr] {
        auto state = login_attempt_.find(peer_ptr);
        if (state == login_attempt_.end() || state->second != attempt) return;  // the browser left
        auto bit = browsers_.find(peer_ptr);
        if (bit == browsers_.end()) return;
        if (!ok) {
          ++metrics_.auth_failures;
          LOG_WARN("router") << "flat=" << flat_id << " user=" << log::q(user_name) << " login refused ("
                             << peer_ptr->describe() << ")";
          send_browser(*peer_ptr, proto::encode(proto::Error{"unauthorized", "wrong flat, user or password"}));
          peer_ptr->close(proto::close_code::kUnauthorized, "login refused");
          return;
        }
        Flat& f = *flats_.at(flat_id);
        bit->second = &f;
        f.browsers.insert(peer_ptr);
        watch_update(f);
        LOG_INFO("router") << "flat=" << flat_id << " user=" << user_name << " logged in (" << peer_ptr->describe() << ")";
        send_snapshot(*peer_ptr, f);
      });
      --g_logins_in_flight;
    }).detach();
    return;
  }

  if (!flat) {
    ++metrics_.refused_messages;
    send_browser(peer, proto::encode(proto::Error{"login_first", "log in to a flat first"}));
    peer.close(proto::close_code::kPolicyViolation, "login first");
    return;
  }
  if (const auto* command = std::get_if<proto::BrowserCommand>(&message)) {
    on_browser_command(*flat, peer, *command);
  } else if (const auto* request = std::get_if<proto::HistoryRequest>(&message)) {
    proto::HistoryReply reply{request->device, request->capability, {}};
    auto hit = flat->history.find(request->device + "/" + request->capability);
    if (hit != flat->history.end()) reply.points.assign(hit->second.points.begin(), hit->second.points.end());
    send_browser(peer, proto::encode(reply));
  }
}

void Router::on_browser_command(Flat& flat, Peer& browser, const proto::BrowserCommand& command) {
  auto reply = [&](Outcome outcome, const std::string& message) {
    metrics_.count_command(outcome);
    LOG_INFO("router") << "flat=" << flat.config->id << " browser_command=" << command.id << " device=" << command.device
                       << " " << to_string(outcome) << ": " << message;
    send_browser(browser, proto::encode(proto::Result{command.id, outcome, message}));
  };
  const bool local = flat.gateway && flat.hello;
  if (!local && !bp_remote_online(flat)) {
    reply(Outcome::offline, "the flat's gateway is not connected");
    return;
  }
  auto dev = flat.devices.find(command.device);
  if (dev == flat.devices.end()) {
    reply(Outcome::rejected, "unknown device " + command.device);
    return;
  }
  for (const auto& [key, value] : command.set.items()) {
    const Capability* cap = dev->second.info.capability(key);
    if (!cap || !cap->writable) {
      reply(Outcome::rejected, command.device + " has no settable capability " + key);
      return;
    }
    if (auto why = check_value(*cap, value)) {
      reply(Outcome::rejected, *why);
      return;
    }
  }
  const std::string cloud_id = id_prefix_ + std::to_string(next_command_++);
  auto pending = std::make_unique<PendingCommand>();
  pending->flat = flat.config->id;
  pending->browser = &browser;
  pending->browser_id = command.id;
  const uint32_t wait_ms = std::max<uint32_t>(config_.limits.command_timeout_ms, static_cast<uint32_t>(command.ttl_ms));
  pending->timeout = std::make_unique<Timer>(loop_, [this, cloud_id, wait_ms] {
    finish_command(cloud_id, proto::Result{cloud_id, Outcome::timeout,
                                           "no result from the gateway within " + std::to_string(wait_ms) + " ms"});
  });
  pending->timeout->start(wait_ms);
  pending->remote = !local;
  pending->sent_ms = clock_.mono_ms();
  pending->wait_ms = wait_ms;
  pending_[cloud_id] = std::move(pending);
  LOG_INFO("router") << "flat=" << flat.config->id << " command=" << cloud_id << " browser_command=" << command.id
                     << " device=" << command.device << " set " << command.set.dump();
  const proto::CommandMsg msg{cloud_id, command.device, command.set, clock_.wall_ms() + command.ttl_ms};
  if (!local) {
    bp_send_command(flat, cloud_id, msg);
    return;
  }
  send_gateway(*flat.gateway, proto::encode(msg));
}

proto::Snapshot Router::snapshot(const Flat& flat) const {
  proto::Snapshot snap;
  snap.flat = flat.config->id;
  snap.name = flat.config->name;
  snap.gateway_online = (flat.gateway && flat.hello) || bp_remote_online(flat);
  for (const auto& [id, device] : flat.devices) snap.devices.push_back(device);
  return snap;
}

const std::string* Router::browser_flat(Peer& peer) const {
  auto it = browsers_.find(&peer);
  return it == browsers_.end() || !it->second ? nullptr : &it->second->config->id;
}

const std::string* Router::gateway_flat(Peer& peer) const {
  auto it = gateways_.find(&peer);
  if (it == gateways_.end() || !it->second || it->second->gateway != &peer || !it->second->hello) return nullptr;
  return &it->second->config->id;
}

Peer* Router::flat_gateway(const std::string& flat) const {
  auto it = flats_.find(flat);
  return it == flats_.end() || !it->second->hello ? nullptr : it->second->gateway;
}

std::string Router::flat_holder_elsewhere(const std::string& flat) const {
  auto it = flats_.find(flat);
  return it == flats_.end() || it->second->gateway ? std::string() : it->second->holder;
}

const proto::DeviceReport* Router::flat_device(const std::string& flat, const std::string& device) const {
  auto it = flats_.find(flat);
  if (it == flats_.end()) return nullptr;
  auto dev = it->second->devices.find(device);
  return dev == it->second->devices.end() ? nullptr : &dev->second;
}

void Router::close_all() {
  remote_commands_.clear();  // their timers must not outlive the loop
  std::vector<Peer*> peers;
  for (auto& [peer, flat] : gateways_) peers.push_back(peer);
  for (auto& [peer, flat] : browsers_) peers.push_back(peer);
  for (Peer* peer : peers) peer->close(proto::close_code::kGoingAway, "server shutting down");
}

}  // namespace flatlink::cloud
