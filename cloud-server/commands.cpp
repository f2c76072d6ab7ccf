// Command routing.
#include "cloud-server/commands.h"

#include <openssl/rand.h>

#include <algorithm>

#include "cloud-server/backplane.h"
#include "cloud-server/peer.h"
#include "common/log.h"

namespace flatlink::cloud {

namespace {
constexpr size_t kSeenCommandsMax = 10'000;
// After its deadline, how long a command that left this instance still waits for the holder's
// answer: the gateway starts none after its deadline, but one it started just before may still
// be reporting back.
constexpr int64_t kAfterDeadlineMs = 1'000;
}

struct Commands::Pending {
  std::string flat;
  Peer* browser = nullptr;  // null once the browser left
  std::string browser_id;
  std::string user;  // for the event log
  std::string device;
  Json set;
  std::unique_ptr<Timer> timeout;
  bool remote = false;  // sent over the backplane to the instance holding the gateway
  int64_t sent_ms = 0;
  uint32_t wait_ms = 0;  // how long the gateway gets for a result
  int64_t deadline_ms = 0;  // wall ms: the gateway runs it before this or never
  uint64_t outgoing = 0;    // the backplane's handle while it may still be taken back (Backplane::withdraw)
};

struct Commands::Remote {
  std::string flat;
  std::string from;  // the instance waiting for the result
  std::unique_ptr<Timer> forget;
};

Commands::Commands(const config::CloudConfig& config, EventLoop& loop, const Clock& clock, Metrics& metrics)
    : config_(config), loop_(loop), clock_(clock), metrics_(metrics) {
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

Commands::~Commands() = default;

void Commands::forget_remote() { remote_.clear(); }

std::unique_ptr<Timer> Commands::timeout_timer(const std::string& cloud_id, uint32_t wait_ms) {
  auto timer = std::make_unique<Timer>(loop_, [this, cloud_id, wait_ms] {
    finish(cloud_id, proto::Result{cloud_id, Outcome::timeout,
                                   "no result from the gateway within " + std::to_string(wait_ms) + " ms"});
  });
  timer->start(wait_ms);
  return timer;
}

void Commands::from_browser(LiveFlat& flat, Peer& browser, const proto::BrowserCommand& command, bool local,
                            bool remote) {
  auto reply = [&](Outcome outcome, const std::string& message) {
    metrics_.count_command(outcome);
    LOG_INFO("router") << "flat=" << flat.id() << " browser_command=" << command.id << " device=" << command.device
                       << " " << to_string(outcome) << ": " << message;
    send_to_browser(metrics_, browser, proto::encode(proto::Result{command.id, outcome, message}));
    if (ended_) ended_({flat.id(), who_ ? who_(browser) : "", command.device, command.set, outcome, message});
  };
  if (!local && !remote) {
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
  const std::string cloud_id = id_prefix_ + std::to_string(next_++);
  auto pending = std::make_unique<Pending>();
  pending->flat = flat.id();
  pending->browser = &browser;
  pending->browser_id = command.id;
  pending->user = who_ ? who_(browser) : "";
  pending->device = command.device;
  pending->set = command.set;
  const uint32_t wait_ms = std::max<uint32_t>(config_.limits.command_timeout_ms, static_cast<uint32_t>(command.ttl_ms));
  pending->remote = !local;
  pending->sent_ms = clock_.mono_ms();
  pending->wait_ms = wait_ms;
  LOG_INFO("router") << "flat=" << flat.id() << " command=" << cloud_id << " browser_command=" << command.id
                     << " device=" << command.device << " set " << command.set.dump();
  const proto::CommandMsg msg{cloud_id, command.device, command.set, clock_.wall_ms() + command.ttl_ms};
  if (local) {
    pending->timeout = timeout_timer(cloud_id, wait_ms);
    pending_[cloud_id] = std::move(pending);
    send_to_gateway(metrics_, *flat.gateway, proto::encode(msg));
    return;
  }
  // The holder answers "accepted" at once; without that, no instance holds the gateway, or
  // the broker is unreachable (not_taken).
  pending->deadline_ms = msg.expires;
  pending->outgoing = backplane_->send_command(flat.id(), msg);
  if (pending->outgoing == 0) {
    pending_[cloud_id] = std::move(pending);
    finish(cloud_id, proto::Result{cloud_id, Outcome::offline, "the backplane cannot take the command now"});
    return;
  }
  pending->timeout = std::make_unique<Timer>(loop_, [this, cloud_id] { not_taken(cloud_id); });
  pending->timeout->start(config_.backplane.command_offline_ms);
  pending_[cloud_id] = std::move(pending);
}

// `offline` is told only of a command that never left this instance: taken back from the
// backplane, it can never run. One that left (the broker may hold it, or deliver it after a
// reconnect) may still run until its deadline, so only its result or the deadline ends it.
void Commands::not_taken(const std::string& cloud_id) {
  auto it = pending_.find(cloud_id);
  if (it == pending_.end()) return;
  Pending& pending = *it->second;
  const uint32_t offline_ms = config_.backplane.command_offline_ms;
  if (backplane_->withdraw(pending.outgoing)) {
    finish(cloud_id, proto::Result{cloud_id, Outcome::offline,
                                   "no instance holding the flat's gateway took the command within " +
                                       std::to_string(offline_ms) + " ms; it never left this instance"});
    return;
  }
  const int64_t wait_ms = std::max<int64_t>(0, pending.deadline_ms - clock_.wall_ms()) + kAfterDeadlineMs;
  LOG_INFO("router") << "flat=" << pending.flat << " command=" << cloud_id << " not taken within " << offline_ms
                     << " ms but it has left this instance; waiting for its result until its deadline (" << wait_ms
                     << " ms)";
  pending.timeout = std::make_unique<Timer>(loop_, [this, cloud_id] {
    finish(cloud_id, proto::Result{cloud_id, Outcome::timeout,
                                   "no answer from the instance holding the flat's gateway before the command's "
                                   "deadline; the gateway runs no command after its deadline"});
  });
  pending.timeout->start(static_cast<uint32_t>(std::min<int64_t>(wait_ms, 700'000)));
}

void Commands::hold(LiveFlat& flat, Peer& browser, const proto::BrowserCommand& command) {
  LOG_INFO("router") << "flat=" << flat.id() << " browser_command=" << command.id
                     << " held: the flat's state is on its way from the instance holding its gateway";
  held_.push_back(Held{flat.id(), &browser, command});
}

void Commands::release_held(LiveFlat& flat, bool local, bool remote) {
  std::vector<Held> now;
  std::erase_if(held_, [&](Held& h) {
    if (h.flat != flat.id()) return false;
    now.push_back(std::move(h));
    return true;
  });
  for (Held& h : now) from_browser(flat, *h.browser, h.command, local, remote);
}

void Commands::gateway_result(LiveFlat& flat, const proto::Result& result) {
  if (backplane_) {
    auto it = remote_.find(result.id);
    if (it != remote_.end() && it->second->flat == flat.id()) {  // a command another instance sent
      backplane_->send_result(flat.id(), it->second->from, result);
      LOG_INFO("router") << "flat=" << flat.id() << " command=" << result.id << " " << to_string(result.outcome)
                         << " for instance=" << it->second->from;
      remote_.erase(it);
      return;
    }
  }
  auto it = pending_.find(result.id);
  if (it == pending_.end() || it->second->flat != flat.id()) {
    // Unknown, already ended (timed out), or another flat's command: never cross flats.
    ++metrics_.refused_messages;
    LOG_WARN("router") << "flat=" << flat.id() << " command=" << result.id
                       << " result for no pending command of this flat; ignored";
    return;
  }
  finish(result.id, result);
}

void Commands::finish(const std::string& cloud_id, const proto::Result& result) {
  auto it = pending_.find(cloud_id);
  if (it == pending_.end()) return;
  std::unique_ptr<Pending> pending = std::move(it->second);
  pending_.erase(it);
  metrics_.count_command(result.outcome);
  LOG_INFO("router") << "flat=" << pending->flat << " command=" << cloud_id << " browser_command=" << pending->browser_id
                     << " " << to_string(result.outcome) << (result.message.empty() ? "" : ": ") << result.message
                     << (pending->remote ? " (over the backplane)" : "");
  if (pending->browser) {
    send_to_browser(metrics_, *pending->browser,
                    proto::encode(proto::Result{pending->browser_id, result.outcome, result.message}));
  }
  if (ended_) ended_({pending->flat, pending->user, pending->device, pending->set, result.outcome, result.message});
}

void Commands::browser_left(Peer& browser) {
  std::erase_if(held_, [&](const Held& h) { return h.browser == &browser; });
  for (auto& [id, pending] : pending_) {
    if (pending->browser == &browser) pending->browser = nullptr;
  }
}

void Commands::remote_command(LiveFlat& flat, const std::string& from, const proto::CommandMsg& command) {
  const std::string& flat_id = flat.id();
  if (!seen_.insert(command.id).second) {
    LOG_DEBUG("router") << "flat=" << flat_id << " command=" << command.id << " delivered again; ignored";
    return;
  }
  seen_order_.push_back(command.id);
  if (seen_order_.size() > kSeenCommandsMax) {
    seen_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  auto answer = [&](Outcome outcome, const std::string& message) {
    LOG_INFO("router") << "flat=" << flat_id << " command=" << command.id << " from instance=" << from << " "
                       << to_string(outcome) << ": " << message;
    backplane_->send_result(flat_id, from, proto::Result{command.id, outcome, message});
  };
  if (!flat.online_here()) {
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
  auto remote = std::make_unique<Remote>();
  remote->flat = flat_id;
  remote->from = from;
  const std::string id = command.id;
  const int64_t wait_ms = std::max<int64_t>(config_.limits.command_timeout_ms, command.expires - clock_.wall_ms()) + 1000;
  remote->forget = std::make_unique<Timer>(loop_, [this, id] { remote_.erase(id); });
  remote->forget->start(static_cast<uint32_t>(std::min<int64_t>(wait_ms, 700'000)));
  remote_[id] = std::move(remote);
  LOG_INFO("router") << "flat=" << flat_id << " command=" << id << " from instance=" << from << " device="
                     << command.device << " set " << command.set.dump();
  send_to_gateway(metrics_, *flat.gateway, proto::encode(command));
}

void Commands::remote_result(const std::string& flat_id, const std::string& from, const proto::Result& result,
                             bool accepted) {
  auto it = pending_.find(result.id);
  if (it == pending_.end() || !it->second->remote || it->second->flat != flat_id) {
    LOG_DEBUG("router") << "flat=" << flat_id << " command=" << result.id << " result from instance=" << from
                        << " for no pending command here; ignored";
    return;
  }
  if (accepted) {
    // The holder has it: from now on the usual command timeout applies.
    it->second->timeout = timeout_timer(result.id, it->second->wait_ms);
    return;
  }
  ++metrics_.backplane_round_trips;
  metrics_.backplane_round_trip_ms += static_cast<uint64_t>(std::max<int64_t>(0, clock_.mono_ms() - it->second->sent_ms));
  finish(result.id, result);
}

}  // namespace flatlink::cloud
