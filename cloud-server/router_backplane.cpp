// The Router's side of the backplane (docs/scale-out.md): what it publishes for
// the other instances and what it does with what they say.
#include <algorithm>

#include "cloud-server/router.h"
#include "cloud-server/router_flat.h"
#include "common/log.h"

namespace flatlink::cloud {

// With other instances over the broker (docs/scale-out.md). The instance holding
// a flat's gateway link (its "holder") publishes what the gateway says and the
// flat's retained state; every other instance with a browser of that flat
// replays it to its browsers and sends commands to the holder.


namespace {
constexpr size_t kSeenCommandsMax = 10'000;

// The race rule, the same on every instance: the newest link wins, ties by instance id.
bool newer(int64_t since_a, const std::string& instance_a, int64_t since_b, const std::string& instance_b) {
  return since_a != since_b ? since_a > since_b : instance_a > instance_b;
}
}  // namespace

void Router::watch_update(Flat& flat) {
  if (!backplane_) return;
  const std::string& id = flat.config->id;
  if (flat.gateway || !flat.browsers.empty()) {
    backplane_->watch(id);
    return;
  }
  if (!backplane_->watching(id)) return;
  backplane_->unwatch(id);
  // Without messages from now on, what we know goes stale: the retained state comes back with the next watch.
  flat.holder.clear();
  flat.holder_since = 0;
  flat.remote_online = false;
  flat.state_from.clear();
  flat.state_since = 0;
}

void Router::bp_link_opened(Flat& flat) {
  if (!backplane_) return;
  flat.link_since = clock_.wall_ms();
  ++flat.link_epoch;
  flat.unconfirmed.clear();
  bp_drop_held_hello(flat);  // a replaced link's
  flat.fed = backplane_->watching(flat.config->id);
  flat.holder.clear();
  flat.remote_online = false;
  watch_update(flat);
  backplane_->claim(flat.config->id, flat.gateway_id, flat.link_since);
}

void Router::bp_link_closed(Flat& flat) {
  if (!backplane_) return;
  flat.unconfirmed.clear();
  bp_drop_held_hello(flat);
  backplane_->state_changed(flat.config->id, true);  // online: false, published before the release below
  backplane_->release(flat.config->id, flat.link_since);
  watch_update(flat);
}

void Router::bp_gateway_message(Flat& flat, const proto::GatewayToCloud& message) {
  if (!backplane_) return;
  backplane_->publish_gateway_message(flat.config->id, flat.gateway_id, proto::encode(message));
  backplane_->state_changed(flat.config->id);
}

void Router::bp_ack_after(Flat& flat, Peer& peer, int64_t seq, const std::optional<std::string>& published) {
  if (!published && flat.unconfirmed.empty()) {
    ++metrics_.acks;
    send_gateway(peer, proto::encode(proto::Ack{seq}));
    return;
  }
  flat.unconfirmed.emplace_back(seq, !published);
  if (!published) return;
  backplane_->state_changed(flat.config->id);
  const std::string flat_id = flat.config->id;
  const uint64_t epoch = flat.link_epoch;
  backplane_->publish_gateway_message(flat_id, flat.gateway_id, *published, [this, flat_id, epoch, seq] {
    auto it = flats_.find(flat_id);
    if (it == flats_.end()) return;
    Flat& f = *it->second;
    if (f.link_epoch != epoch || !f.gateway) return;  // that link is gone; the next one resends
    for (auto& entry : f.unconfirmed) {
      if (entry.first == seq) entry.second = true;
    }
    int64_t safe = -1;
    while (!f.unconfirmed.empty() && f.unconfirmed.front().second) {
      safe = f.unconfirmed.front().first;
      f.unconfirmed.pop_front();
    }
    if (safe < 0) return;
    ++metrics_.acks;
    send_gateway(*f.gateway, proto::encode(proto::Ack{safe}));
  });
}

// A gateway that moved here may have had statuses acknowledged by its last holder (after
// the broker's PUBACK) that the broker has not delivered here yet: a broker cluster re-forming
// after a node died can hold them for seconds. Answering its hello at once would resume after
// them, and they would come too late to be shown (or kept in the history) here. So while the
// backplane was bringing this flat's messages (a browser of it is here), the answer waits
// until the statuses up to hello.acked have arrived, for at most backplane.catch_up_ms; the
// gateway sends nothing before that answer, so nothing else waits.
bool Router::bp_hold_hello(Flat& flat, const proto::Hello& hello) {
  if (!backplane_ || !flat.fed || config_.backplane.catch_up_ms == 0) return false;
  const auto seen = flat.last_seq.find(hello.gateway);
  const int64_t last = seen == flat.last_seq.end() ? 0 : seen->second;
  if (hello.acked <= last) return false;  // seen here (also true of a restarted stream: acked < next_seq <= last)
  const std::string& id = flat.config->id;
  LOG_INFO("router") << "flat=" << id << " gateway=" << hello.gateway << " had statuses up to seq=" << hello.acked
                     << " acknowledged elsewhere, seen here up to seq=" << last << "; answering its hello once they arrive"
                     << " (at most " << config_.backplane.catch_up_ms << " ms)";
  flat.held_hello = hello;
  if (!flat.catch_up) flat.catch_up = std::make_unique<Timer>(loop_, [this, id] { bp_catch_up_timeout(id); });
  flat.catch_up->start(config_.backplane.catch_up_ms);
  return true;
}

void Router::bp_catch_up_timeout(const std::string& flat_id) {
  Flat& flat = *flats_.at(flat_id);
  if (!flat.held_hello || !flat.gateway) return;
  const int64_t acked = flat.held_hello->acked;
  const int64_t last = flat.last_seq[flat.held_hello->gateway];
  const int64_t missing = std::max<int64_t>(0, acked - last);
  metrics_.backplane_catch_up_gaps += static_cast<uint64_t>(missing);
  LOG_WARN("router") << "flat=" << flat_id << " gateway=" << flat.held_hello->gateway << " statuses seq=" << last + 1
                     << ".." << acked << " acknowledged by its last holder did not arrive over the backplane within "
                     << config_.backplane.catch_up_ms << " ms; " << missing
                     << " will not be shown here (the broker still holds them)";
  bp_release_hello(flat);
}

void Router::bp_release_hello(Flat& flat) {
  proto::Hello hello = std::move(*flat.held_hello);
  bp_drop_held_hello(flat);
  accept_hello(flat, *flat.gateway, hello);
}

void Router::bp_drop_held_hello(Flat& flat) {
  flat.held_hello.reset();
  if (flat.catch_up) flat.catch_up->cancel();
}

bool Router::bp_remote_online(const Flat& flat) const {
  return backplane_ && !flat.gateway && !flat.holder.empty() && flat.remote_online && backplane_->alive(flat.holder);
}

void Router::bp_send_command(Flat& flat, const std::string& cloud_id, const proto::CommandMsg& command) {
  // The holder answers "accepted" at once; without that, no instance holds the gateway.
  auto& pending = *pending_.at(cloud_id);
  const uint32_t offline_ms = config_.backplane.command_offline_ms;
  pending.timeout = std::make_unique<Timer>(loop_, [this, cloud_id, offline_ms] {
    finish_command(cloud_id, proto::Result{cloud_id, Outcome::offline,
                                           "no instance holding the flat's gateway took the command within " +
                                               std::to_string(offline_ms) + " ms"});
  });
  pending.timeout->start(offline_ms);
  backplane_->send_command(flat.config->id, command);
}

bool Router::bp_on_result(Flat& flat, const proto::Result& result) {
  if (!backplane_) return false;
  auto it = remote_commands_.find(result.id);
  if (it == remote_commands_.end() || it->second->flat != flat.config->id) return false;
  backplane_->send_result(flat.config->id, it->second->from, result);
  LOG_INFO("router") << "flat=" << flat.config->id << " command=" << result.id << " " << to_string(result.outcome)
                     << " for instance=" << it->second->from;
  remote_commands_.erase(it);
  return true;
}

void Router::backplane_up() {
  // The broker may have lost what we said (a node died): say it again.
  for (auto& [id, flat] : flats_) {
    if (!flat->gateway) continue;
    backplane_->claim(id, flat->gateway_id, flat->link_since);
    backplane_->state_changed(id);
  }
}

bool Router::backplane_knows_flat(const std::string& flat) const {
  auto it = flats_.find(flat);
  // A flat removed by a reload stays (retired, without a token) for its peers: not ours any more.
  return it != flats_.end() && !it->second->config->gateway_token_sha256.empty();
}

std::optional<RemoteState> Router::backplane_state(const std::string& flat_id) {
  auto it = flats_.find(flat_id);
  if (it == flats_.end()) return std::nullopt;
  const Flat& flat = *it->second;
  if (!flat.gateway && flat.link_since == 0) return std::nullopt;
  if (!flat.gateway && !flat.holder.empty()) return std::nullopt;  // another instance holds it now
  RemoteState state;
  state.gateway = flat.gateway_id;
  state.online = flat.gateway && flat.hello;
  state.since = flat.link_since;
  auto seq = flat.last_seq.find(flat.gateway_id);
  state.seq = seq == flat.last_seq.end() ? 0 : seq->second;
  state.reset = flat.stream_reset;
  state.dropped = flat.dropped;
  for (const auto& [id, device] : flat.devices) state.devices.push_back(device);
  return state;
}

void Router::remote_gateway_message(const std::string& flat_id, const std::string& from, const std::string& gateway,
                                    const proto::GatewayToCloud& message) {
  Flat& flat = *flats_.at(flat_id);
  // Ours is the source of truth while we hold the link, except for the statuses a held
  // hello waits for (bp_hold_hello). Otherwise even an earlier holder's messages count:
  // statuses it had acknowledged may still be on their way after the gateway moved, and
  // the seq drops what was already seen.
  const auto* batch = std::get_if<proto::StatusBatch>(&message);
  const bool awaited = flat.held_hello && flat.held_hello->gateway == gateway && batch;
  if (flat.gateway && !awaited) {
    LOG_DEBUG("router") << "flat=" << flat_id << " instance=" << from << " still sends for a gateway held here; ignored";
    return;
  }
  if (!flat.gateway) flat.gateway_id = gateway;
  if (batch) {
    int64_t& last = flat.last_seq[gateway];
    const int64_t covered = flat.state_seq[gateway];
    // A device not in the state we have yet: skipped (the holder has said so already).
    for (const auto& item : batch->items) apply_status(flat, item, last, covered);
    if (awaited && last >= flat.held_hello->acked) {
      LOG_INFO("router") << "flat=" << flat_id << " gateway=" << gateway << " statuses up to seq=" << last
                         << " arrived over the backplane; answering its hello";
      bp_release_hello(flat);
    }
  } else if (const auto* presence = std::get_if<proto::Presence>(&message)) {
    auto dev = flat.devices.find(presence->device);
    if (dev == flat.devices.end()) return;
    dev->second.online = presence->online;
    to_browsers(flat, proto::encode(*presence));
  } else if (const auto* list = std::get_if<proto::DeviceList>(&message)) {
    flat.devices = devices_by_id(list->devices);
    to_browsers(flat, proto::encode(*list));
  }
}

void Router::remote_state(const std::string& flat_id, const RemoteState& state) {
  Flat& flat = *flats_.at(flat_id);
  if (flat.gateway) return;  // ours is the state
  if (state.from == backplane_->instance()) return;
  if (state.from == flat.released && state.since == flat.released_since) return;  // withdrawn
  if (!flat.holder.empty() && state.from != flat.holder) {
    // The state of an earlier holder, or of one that has not said it holds the flat yet.
    if (flat.holder_since > state.since) return;
  }
  const bool new_link = flat.state_from != state.from || flat.state_since != state.since;
  flat.state_from = state.from;
  flat.state_since = state.since;
  const bool was_online = bp_remote_online(flat);
  flat.holder = state.from;
  flat.holder_since = state.since;
  flat.remote_online = state.online;
  flat.gateway_id = state.gateway;
  flat.dropped = state.dropped;
  // The state does not raise the seq of statuses received (last_seq): this instance has not
  // received them, and answering a gateway that moves here with that seq would have it drop
  // statuses no instance may have stored.
  int64_t& last = flat.last_seq[state.gateway];
  int64_t& covered = flat.state_seq[state.gateway];
  bool replaced = false;
  if (state.reset && new_link && state.seq < std::max(last, covered)) {
    LOG_WARN("router") << "flat=" << flat_id << " gateway=" << state.gateway << " restarted its sequence at instance="
                       << state.from << " (seq " << state.seq << ", last seen here " << std::max(last, covered)
                       << "); following it";
    last = std::min(last, state.seq);
    covered = state.seq;
  }
  if (state.seq >= std::max(last, covered) || flat.devices.empty()) {
    auto devices = devices_by_id(state.devices);
    replaced = devices != flat.devices;
    flat.devices = std::move(devices);
    covered = std::max(covered, state.seq);
  }
  const bool online = bp_remote_online(flat);
  if (new_link || replaced || online != was_online) {
    LOG_INFO("router") << "flat=" << flat_id << " gateway=" << state.gateway << " held by instance=" << state.from
                       << (online ? " online" : " offline") << ", " << state.devices.size() << " devices, seq "
                       << state.seq;
    for (Peer* browser : flat.browsers) send_snapshot(*browser, flat);
  }
}

void Router::remote_holder(const std::string& flat_id, const HolderClaim& claim) {
  Flat& flat = *flats_.at(flat_id);
  const std::string& me = backplane_->instance();
  if (claim.from == me) {
    // Ours, back from the broker. One that no link of ours stands behind (left by
    // an earlier run of this instance) is withdrawn.
    if (!claim.instance.empty() && claim.since != flat.link_since) {
      LOG_INFO("router") << "flat=" << flat_id << " withdrawing a stale claim of this instance";
      backplane_->release(flat_id, claim.since);
    }
    return;
  }
  if (claim.instance.empty()) {  // a release
    flat.released = claim.from;
    flat.released_since = claim.since;
    if (flat.gateway) {
      backplane_->claim(flat_id, flat.gateway_id, flat.link_since);  // the retained claim must stay ours
      return;
    }
    if (flat.holder == claim.from && flat.holder_since == claim.since) {
      const bool was_online = bp_remote_online(flat);
      flat.holder.clear();
      flat.remote_online = false;
      if (was_online) to_browsers(flat, proto::encode(proto::GatewayState{false}));
    }
    return;
  }
  if (flat.gateway) {
    if (!newer(claim.since, claim.instance, flat.link_since, me)) {
      LOG_INFO("router") << "flat=" << flat_id << " instance=" << claim.instance
                         << " claims the gateway with an older link; this one stays";
      backplane_->claim(flat_id, flat.gateway_id, flat.link_since);
      return;
    }
    LOG_WARN("router") << "flat=" << flat_id << " a newer gateway link on instance=" << claim.instance
                       << " replaces this one (" << flat.gateway->describe() << ")";
    ++metrics_.replaced_gateways;
    ++metrics_.backplane_takeovers;
    Peer* old = flat.gateway;
    gateways_[old] = nullptr;
    flat.gateway = nullptr;
    flat.hello = false;
    flat.unconfirmed.clear();
    bp_drop_held_hello(flat);
    old->close(proto::close_code::kReplaced, "replaced by a newer connection for this flat");
    flat.holder = claim.instance;
    flat.holder_since = claim.since;
    flat.remote_online = false;
    to_browsers(flat, proto::encode(proto::GatewayState{false}));
    watch_update(flat);
    return;
  }
  if (!flat.holder.empty() && flat.holder != claim.instance && backplane_->alive(flat.holder) &&
      !newer(claim.since, claim.instance, flat.holder_since, flat.holder)) {
    return;  // an older claim, late
  }
  if (flat.holder == claim.instance && flat.holder_since == claim.since) return;
  const bool was_online = bp_remote_online(flat);
  flat.holder = claim.instance;
  flat.holder_since = claim.since;
  flat.remote_online = false;  // until its state says hello happened
  if (was_online) to_browsers(flat, proto::encode(proto::GatewayState{false}));
}

void Router::remote_command(const std::string& flat_id, const std::string& from, const proto::CommandMsg& command) {
  Flat& flat = *flats_.at(flat_id);
  if (!seen_commands_.insert(command.id).second) {
    LOG_DEBUG("router") << "flat=" << flat_id << " command=" << command.id << " delivered again; ignored";
    return;
  }
  seen_order_.push_back(command.id);
  if (seen_order_.size() > kSeenCommandsMax) {
    seen_commands_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  auto answer = [&](Outcome outcome, const std::string& message) {
    LOG_INFO("router") << "flat=" << flat_id << " command=" << command.id << " from instance=" << from << " "
                       << to_string(outcome) << ": " << message;
    backplane_->send_result(flat_id, from, proto::Result{command.id, outcome, message});
  };
  if (!flat.gateway || !flat.hello) {
    // Not ours (any more): the holder answers. Nobody holding it: the sender's timer says offline.
    return;
  }
  backplane_->send_accepted(flat_id, from, command.id);
  if (command.expires <= clock_.wall_ms()) {
    answer(Outcome::expired, "expired before it reached the gateway");
    return;
  }
  if (!flat.devices.count(command.device)) {
    answer(Outcome::rejected, "unknown device " + command.device);
    return;
  }
  auto remote = std::make_unique<RemoteCommand>();
  remote->flat = flat_id;
  remote->from = from;
  const std::string id = command.id;
  const int64_t wait_ms = std::max<int64_t>(config_.limits.command_timeout_ms, command.expires - clock_.wall_ms()) + 1000;
  remote->forget = std::make_unique<Timer>(loop_, [this, id] { remote_commands_.erase(id); });
  remote->forget->start(static_cast<uint32_t>(std::min<int64_t>(wait_ms, 700'000)));
  remote_commands_[id] = std::move(remote);
  LOG_INFO("router") << "flat=" << flat_id << " command=" << id << " from instance=" << from << " device="
                     << command.device << " set " << command.set.dump();
  send_gateway(*flat.gateway, proto::encode(command));
}

void Router::remote_result(const std::string& flat_id, const std::string& from, const proto::Result& result,
                           bool accepted) {
  auto it = pending_.find(result.id);
  if (it == pending_.end() || !it->second->remote || it->second->flat != flat_id) {
    LOG_DEBUG("router") << "flat=" << flat_id << " command=" << result.id << " result from instance=" << from
                        << " for no pending command here; ignored";
    return;
  }
  if (accepted) {
    // The holder has it: from now on the usual command timeout applies.
    const std::string cloud_id = result.id;
    const uint32_t wait_ms = it->second->wait_ms;
    it->second->timeout = std::make_unique<Timer>(loop_, [this, cloud_id, wait_ms] {
      finish_command(cloud_id, proto::Result{cloud_id, Outcome::timeout,
                                             "no result from the gateway within " + std::to_string(wait_ms) + " ms"});
    });
    it->second->timeout->start(wait_ms);
    return;
  }
  ++metrics_.backplane_round_trips;
  metrics_.backplane_round_trip_ms += static_cast<uint64_t>(std::max<int64_t>(0, clock_.mono_ms() - it->second->sent_ms));
  finish_command(result.id, result);
}

void Router::instance_down(const std::string& instance) {
  for (auto& [id, flat] : flats_) {
    if (flat->gateway || flat->holder != instance) continue;
    LOG_WARN("router") << "flat=" << id << " instance=" << instance << " holding its gateway is gone; offline";
    flat->remote_online = false;
    to_browsers(*flat, proto::encode(proto::GatewayState{false}));
  }
}

}  // namespace flatlink::cloud
