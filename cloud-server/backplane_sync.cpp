// The flats' side of the backplane (docs/scale-out.md): what this instance publishes for
// the other instances and what it does with what they say.
#include "cloud-server/backplane_sync.h"

#include <algorithm>
#include <vector>

#include "cloud-server/peer.h"
#include "common/log.h"

namespace flatlink::cloud {

// The instance holding a flat's gateway link (its "holder") publishes what the gateway says
// and the flat's retained state; every other instance with a browser of that flat replays it
// to its browsers and sends commands to the holder.

namespace {
// RFC 6455's "Try Again Later": the gateway's link is closed because the backplane could not
// keep a batch (Backplane's on_dropped); the gateway reconnects with its backoff and resends.
constexpr uint16_t kTryAgainLater = 1013;
// How long a flat's first login here waits for its holder's retained state (a broker delivers
// it in milliseconds as a rule; a nats cluster took 478 ms at p50, up to 3.5 s, issue 20; 1 s
// was too short there: a fault run's first login on one instance got it after 1.14 s).
constexpr uint32_t kJoinWaitMs = 4'000;
// Gap repair (docs/scale-out.md, "Gaps"). The holder keeps the batches its link published, per
// flat at most this many and bytes (a watcher asks within a second or so of missing them);
// a watcher waits this long for the holder's answer, asks again this often for a resync that
// got no answer at all, and holds at most this many batches behind a repair.
constexpr size_t kKeptBatches = 2'000;
constexpr size_t kKeptBytes = 2 << 20;
constexpr uint32_t kRepairWaitMs = 3'000;
constexpr int kResyncTries = 3;
constexpr size_t kRepairBufferMax = 10'000;

// The race rule, the same on every instance: the newest link wins, ties by instance id.
bool newer(int64_t since_a, const std::string& instance_a, int64_t since_b, const std::string& instance_b) {
  return since_a != since_b ? since_a > since_b : instance_a > instance_b;
}
}  // namespace

BackplaneSync::BackplaneSync(const config::CloudConfig& config, EventLoop& loop, const Clock& clock, Metrics& metrics,
                             Flats& flats, AcceptHello accept_hello)
    : config_(config), loop_(loop), clock_(clock), metrics_(metrics), flats_(flats),
      accept_hello_(std::move(accept_hello)) {}

BackplaneSync::~BackplaneSync() = default;

const BackplaneSync::FlatSync* BackplaneSync::find(const LiveFlat& flat) const {
  auto it = sync_.find(flat.id());
  return it == sync_.end() ? nullptr : &it->second;
}

void BackplaneSync::watch_update(LiveFlat& flat) {
  if (!backplane_) return;
  const std::string& id = flat.id();
  if (flat.gateway || !flat.browsers.empty()) {
    if (backplane_->watching(id)) return;
    backplane_->watch(id);
    if (flat.gateway || !backplane_->delivering()) return;
    // The first browser: the holder's retained state comes with the subscription.
    FlatSync& s = sync(flat);
    s.joining = true;
    if (!s.join_wait) s.join_wait = std::make_unique<Timer>(loop_, [this, id] {
      LiveFlat* f = flats_.find(id);
      if (!f || !sync(*f).joining) return;
      LOG_INFO("router") << "flat=" << id << " no holder's state arrived within " << kJoinWaitMs
                         << " ms; the browsers get what is known here";
      end_join(*f, true);
    });
    s.join_wait->start(kJoinWaitMs);
    return;
  }
  if (!backplane_->watching(id)) return;
  backplane_->unwatch(id);
  // Without messages from now on, what we know goes stale: the retained state comes back with the next watch.
  FlatSync& s = sync(flat);
  s.streaming = false;
  s.repair.reset();  // nobody here to show them to
  if (s.repair_wait) s.repair_wait->cancel();
  s.joining = false;
  if (s.join_wait) s.join_wait->cancel();
  s.holder.clear();
  s.holder_since = 0;
  s.remote_online = false;
  s.state_from.clear();
  s.state_since = 0;
}

void BackplaneSync::link_opened(LiveFlat& flat) {
  if (!backplane_) return;
  FlatSync& s = sync(flat);
  if (s.joining) end_join(flat, true);  // the gateway is here now: a snapshot now, another at its hello
  if (s.repair) end_repair(flat, nullptr);  // what waited behind it is shown now; ours is the truth from here
  s.link_since = clock_.wall_ms();
  ++s.link_epoch;
  s.unconfirmed.clear();
  drop_held_hello(flat);  // a replaced link's
  s.fed = backplane_->watching(flat.id());
  s.holder.clear();
  s.remote_online = false;
  watch_update(flat);
  backplane_->claim(flat.id(), flat.gateway_id, s.link_since);
}

void BackplaneSync::link_closed(LiveFlat& flat) {
  if (!backplane_) return;
  FlatSync& s = sync(flat);
  s.unconfirmed.clear();
  s.kept.clear();
  s.kept_bytes = 0;
  drop_held_hello(flat);
  backplane_->state_changed(flat.id(), true);  // online: false, published before the release below
  backplane_->release(flat.id(), s.link_since);
  watch_update(flat);
}

void BackplaneSync::gateway_message(LiveFlat& flat, const proto::GatewayToCloud& message) {
  if (!backplane_) return;
  backplane_->publish_gateway_message(flat.id(), flat.gateway_id, proto::encode(message), {}, {}, epoch_of(flat));
  backplane_->state_changed(flat.id());
}

void BackplaneSync::ack_after(LiveFlat& flat, Peer& peer, int64_t seq, const std::optional<std::string>& published) {
  FlatSync& s = sync(flat);
  // The holder's continuity for the watchers: each batch names the seq its previous one reached.
  const int64_t prev = s.published_prev;
  s.published_prev = seq;
  if (published) keep(s, prev, seq, *published);
  if (!published && s.unconfirmed.empty()) {
    ++metrics_.acks;
    send_to_gateway(metrics_, peer, proto::encode(proto::Ack{seq}));
    return;
  }
  s.unconfirmed.emplace_back(seq, !published);
  if (!published) return;
  backplane_->state_changed(flat.id());
  const std::string flat_id = flat.id();
  const uint64_t epoch = s.link_epoch;
  backplane_->publish_gateway_message(flat_id, flat.gateway_id, *published, [this, flat_id, epoch, seq] {
    LiveFlat* f = flats_.find(flat_id);
    if (!f) return;
    FlatSync& fs = sync(*f);
    if (fs.link_epoch != epoch || !f->gateway) return;  // that link is gone; the next one resends
    for (auto& entry : fs.unconfirmed) {
      if (entry.first == seq) entry.second = true;
    }
    int64_t safe = -1;
    while (!fs.unconfirmed.empty() && fs.unconfirmed.front().second) {
      safe = fs.unconfirmed.front().first;
      fs.unconfirmed.pop_front();
    }
    if (safe < 0) return;
    ++metrics_.acks;
    send_to_gateway(metrics_, *f->gateway, proto::encode(proto::Ack{safe}));
  }, [this, flat_id, epoch, seq] {
    // The backplane could not keep the batch (the broker gone for long): it will never be
    // acknowledged, and later ones must not be either. The gateway resends from its last ack.
    LiveFlat* f = flats_.find(flat_id);
    if (!f || sync(*f).link_epoch != epoch || !f->gateway) return;
    LOG_ERROR("backplane") << "flat=" << flat_id << " seq=" << seq
                           << " the backplane cannot keep this batch; closing the gateway's link so that it resends";
    f->gateway->close(kTryAgainLater, "the backplane is overloaded; reconnect and resend");
  }, epoch_of(flat), prev);
}

void BackplaneSync::keep(FlatSync& s, int64_t prev, int64_t last, const std::string& encoded) {
  s.kept.push_back(FlatSync::Kept{prev, last, encoded});
  s.kept_bytes += encoded.size();
  while (!s.kept.empty() && (s.kept.size() > kKeptBatches || s.kept_bytes > kKeptBytes)) {
    s.kept_floor = std::max(s.kept_floor, s.kept.front().last);
    s.kept_bytes -= s.kept.front().encoded.size();
    s.kept.pop_front();
  }
}

// A gateway that moved here may have had statuses acknowledged by its last holder (after
// the broker's PUBACK) that the broker has not delivered here yet: a broker cluster re-forming
// after a node died can hold them for seconds. Answering its hello at once would resume after
// them, and they would come too late to be shown (or kept in the history) here. So while the
// backplane was bringing this flat's messages (a browser of it is here), the answer waits
// until the statuses up to hello.acked have arrived, for at most backplane.catch_up_ms; the
// gateway sends nothing before that answer, so nothing else waits.
bool BackplaneSync::hold_hello(LiveFlat& flat, const proto::Hello& hello) {
  if (!backplane_ || config_.backplane.catch_up_ms == 0) return false;
  FlatSync& s = sync(flat);
  if (!s.fed) return false;
  // Another stream epoch than the one seen here: its seqs are not comparable; nothing to wait for.
  const auto epoch = flat.epoch_of.find(hello.gateway);
  if (epoch != flat.epoch_of.end() && !epoch->second.empty() && epoch->second != hello.epoch) return false;
  const auto seen = flat.last_seq.find(hello.gateway);
  const int64_t last = seen == flat.last_seq.end() ? 0 : seen->second;
  if (hello.acked <= last) return false;  // seen here (also true of a restarted stream: acked < next_seq <= last)
  const std::string& id = flat.id();
  LOG_INFO("router") << "flat=" << id << " gateway=" << hello.gateway << " had statuses up to seq=" << hello.acked
                     << " acknowledged elsewhere, seen here up to seq=" << last << "; answering its hello once they arrive"
                     << " (at most " << config_.backplane.catch_up_ms << " ms)";
  s.held_hello = hello;
  if (!s.catch_up) s.catch_up = std::make_unique<Timer>(loop_, [this, id] { catch_up_timeout(id); });
  s.catch_up->start(config_.backplane.catch_up_ms);
  return true;
}

bool BackplaneSync::holds_hello(const LiveFlat& flat) const {
  const FlatSync* s = find(flat);
  return s && s->held_hello.has_value();
}

void BackplaneSync::hello_accepted(LiveFlat& flat, bool stream_reset) {
  FlatSync& s = sync(flat);
  s.stream_reset = stream_reset;  // other instances must lower their last seen seq too
  // This link's batches are kept from here on; what came before was not published by it.
  const auto last = flat.last_seq.find(flat.gateway_id);
  s.published_prev = last == flat.last_seq.end() ? 0 : last->second;
  s.kept_gateway = flat.gateway_id;
  s.kept_epoch = epoch_of(flat);
  s.kept.clear();
  s.kept_bytes = 0;
  s.kept_floor = s.published_prev;
  if (backplane_) backplane_->state_changed(flat.id(), true);
}

void BackplaneSync::catch_up_timeout(const std::string& flat_id) {
  LiveFlat& flat = flats_.at(flat_id);
  FlatSync& s = sync(flat);
  if (!s.held_hello || !flat.gateway) return;
  const int64_t acked = s.held_hello->acked;
  const int64_t last = flat.last_seq[s.held_hello->gateway];
  const int64_t missing = std::max<int64_t>(0, acked - last);
  metrics_.backplane_catch_up_gaps += static_cast<uint64_t>(missing);
  LOG_WARN("router") << "flat=" << flat_id << " gateway=" << s.held_hello->gateway << " statuses seq=" << last + 1
                     << ".." << acked << " acknowledged by its last holder did not arrive over the backplane within "
                     << config_.backplane.catch_up_ms << " ms; " << missing
                     << " will not be shown here (the broker still holds them)";
  release_hello(flat);
}

void BackplaneSync::release_hello(LiveFlat& flat) {
  FlatSync& s = sync(flat);
  proto::Hello hello = std::move(*s.held_hello);
  drop_held_hello(flat);
  accept_hello_(flat, *flat.gateway, hello);
}

void BackplaneSync::drop_held_hello(LiveFlat& flat) {
  FlatSync& s = sync(flat);
  s.held_hello.reset();
  if (s.catch_up) s.catch_up->cancel();
}

bool BackplaneSync::joining(const LiveFlat& flat) const {
  const FlatSync* s = find(flat);
  return s && s->joining;
}

void BackplaneSync::end_join(LiveFlat& flat, bool snapshots) {
  auto it = sync_.find(flat.id());
  if (it == sync_.end() || !it->second.joining) return;
  FlatSync& s = it->second;
  s.joining = false;
  if (s.join_wait) s.join_wait->cancel();
  if (snapshots) {
    for (Peer* browser : flat.browsers) flats_.send_snapshot(*browser, flat, gateway_online(flat));
  }
  if (joined_) joined_(flat);
}

bool BackplaneSync::remote_online(const LiveFlat& flat) const {
  if (!backplane_ || flat.gateway || broker_lost_) return false;
  const FlatSync* s = find(flat);
  return s && !s->holder.empty() && s->remote_online && backplane_->alive(s->holder);
}

std::string BackplaneSync::holder_elsewhere(const LiveFlat& flat) const {
  const FlatSync* s = find(flat);
  return flat.gateway || !s ? std::string() : s->holder;
}

void BackplaneSync::up() {
  const bool was_lost = broker_lost_;
  broker_lost_ = false;
  for (const auto& [id, flat] : flats_.all()) {
    if (flat->gateway) {
      // The broker may have lost what we said (a node died): say it again.
      backplane_->claim(id, flat->gateway_id, sync(*flat).link_since);
      backplane_->state_changed(id);
    } else if (was_lost && remote_online(*flat)) {
      // What we knew before the loss, until the holder's state (retained, sent again with
      // every subscription) and its queued messages say otherwise.
      for (Peer* browser : flat->browsers) flats_.send_snapshot(*browser, *flat, true);
    }
  }
}

void BackplaneSync::down() {
  if (broker_lost_) return;
  std::vector<LiveFlat*> shown;
  for (const auto& [id, flat] : flats_.all()) {
    if (remote_online(*flat)) shown.push_back(flat.get());
  }
  broker_lost_ = true;
  for (LiveFlat* flat : shown) flats_.to_browsers(*flat, proto::encode(proto::GatewayState{false}));
  for (const auto& [id, flat] : flats_.all()) end_join(*flat, true);  // waiting logins: offline
  LOG_WARN("router") << "the backplane's broker is lost: " << shown.size()
                     << " flats held by other instances show offline here, and logins are told so, until it is back";
}

bool BackplaneSync::knows_flat(const std::string& flat_id) const {
  const LiveFlat* flat = flats_.find(flat_id);
  // A flat removed by a reload stays (retired, without a token) for its peers: not ours any more.
  return flat && !flat->config->gateway_token_sha256.empty();
}

std::optional<RemoteState> BackplaneSync::state(const std::string& flat_id) {
  const LiveFlat* found = flats_.find(flat_id);
  if (!found) return std::nullopt;
  const LiveFlat& flat = *found;
  const FlatSync& s = sync(flat);
  if (!flat.gateway && s.link_since == 0) return std::nullopt;
  if (!flat.gateway && !s.holder.empty()) return std::nullopt;  // another instance holds it now
  RemoteState state;
  state.gateway = flat.gateway_id;
  state.online = flat.online_here();
  state.since = s.link_since;
  auto seq = flat.last_seq.find(flat.gateway_id);
  state.seq = seq == flat.last_seq.end() ? 0 : seq->second;
  state.reset = s.stream_reset;
  state.dropped = flat.dropped;
  state.epoch = epoch_of(flat);
  state.lost = flat.lost;
  for (const auto& [id, device] : flat.devices) state.devices.push_back(device);
  return state;
}

std::string BackplaneSync::epoch_of(const LiveFlat& flat) {
  auto it = flat.epoch_of.find(flat.gateway_id);
  return it == flat.epoch_of.end() ? std::string() : it->second;
}

// A relayed batch or state of another stream epoch than the one followed here: the same
// switch as the holder's at its hello (Flats::switch_epoch), so that this instance never takes
// a seq of one epoch for one of another (when the gateway moves here, its hello is answered
// with the right epoch's last seq), whatever order the status and state topics arrive in.
void BackplaneSync::follow_epoch(LiveFlat& flat, const std::string& gateway, const std::string& epoch,
                                 const std::string& from) {
  if (epoch.empty() || flat.gateway) return;  // not said (an older instance), or ours is the truth
  const auto current = flat.epoch_of.find(gateway);
  if (current != flat.epoch_of.end() && current->second == epoch) return;
  const std::string was = current == flat.epoch_of.end() ? std::string() : current->second;
  const int64_t was_last = flat.last_seq[gateway];
  const int64_t resumed = flats_.switch_epoch(flat, gateway, epoch);
  if (!was.empty() || was_last > 0) {
    LOG_WARN("router") << "flat=" << flat.id() << " gateway=" << gateway << " stream epoch=" << epoch << " (was "
                       << (was.empty() ? "(none)" : was) << ", last seq " << was_last << ") at instance=" << from << ": "
                       << (resumed ? "resuming it after seq=" + std::to_string(resumed) : std::string("a new stream"));
    // The browsers' seq rule starts over with a snapshot, as at the holder's hello.
    for (Peer* browser : flat.browsers) flats_.send_snapshot(*browser, flat, remote_online(flat));
  }
}

bool BackplaneSync::same_epoch(const LiveFlat& flat, const std::string& gateway, const std::string& epoch) {
  const auto current = flat.epoch_of.find(gateway);
  const std::string followed = current == flat.epoch_of.end() ? std::string() : current->second;
  return followed == epoch;
}

void BackplaneSync::remote_gateway_message(const std::string& flat_id, const std::string& from,
                                           const std::string& gateway, const proto::GatewayToCloud& message,
                                           const std::string& epoch, int64_t prev, bool resent) {
  LiveFlat& flat = flats_.at(flat_id);
  FlatSync& s = sync(flat);
  // Ours is the source of truth while we hold the link, except for the statuses a held
  // hello waits for (hold_hello). Otherwise even an earlier holder's messages count:
  // statuses it had acknowledged may still be on their way after the gateway moved, and
  // the seq drops what was already seen.
  const auto* batch = std::get_if<proto::StatusBatch>(&message);
  const bool awaited = s.held_hello && s.held_hello->gateway == gateway && batch;
  if (flat.gateway && !awaited) {
    LOG_DEBUG("router") << "flat=" << flat_id << " instance=" << from << " still sends for a gateway held here; ignored";
    return;
  }
  if (batch && !flat.gateway) {
    // The holder's continuity (docs/scale-out.md, "Gaps"): statuses are shown here in order, so
    // a batch that follows a gap waits, with those after it, until the holder has sent the
    // missing ones again (or said it cannot).
    if (s.repair) {
      FlatSync::Repair& r = *s.repair;
      if (resent) {
        if (from == r.holder && gateway == r.gateway && epoch == r.epoch) r.repaired += apply_batch(flat, from, gateway, *batch, epoch);
        return;
      }
      if (r.buffered.size() < kRepairBufferMax) {
        r.buffered.push_back(FlatSync::Buffered{from, gateway, epoch, prev, *batch});
        return;
      }
      LOG_WARN("router") << "flat=" << flat_id << " " << r.buffered.size()
                         << " batches wait behind a repair; ending it without the holder's answer";
      end_repair(flat, nullptr);
      if (s.repair) {  // the batches that waited had a gap of their own
        s.repair->buffered.push_back(FlatSync::Buffered{from, gateway, epoch, prev, *batch});
        return;
      }
    } else if (!resent && s.streaming && prev >= 0 && same_epoch(flat, gateway, epoch) && prev > flat.last_seq[gateway]) {
      std::deque<FlatSync::Buffered> buffered;
      buffered.push_back(FlatSync::Buffered{from, gateway, epoch, prev, *batch});
      start_repair(flat, from, gateway, epoch, flat.last_seq[gateway], prev, std::move(buffered));
      return;
    }
    // A batch sent again after its repair ended: applied as any late status (seq dedupe).
  }
  if (!flat.gateway) flat.gateway_id = gateway;
  if (batch) {
    apply_batch(flat, from, gateway, *batch, epoch);
    if (!flat.gateway) s.streaming = true;
  } else if (const auto* presence = std::get_if<proto::Presence>(&message)) {
    flats_.apply_presence(flat, *presence);
  } else if (const auto* list = std::get_if<proto::DeviceList>(&message)) {
    flats_.apply_device_list(flat, *list);
  }
}

uint64_t BackplaneSync::apply_batch(LiveFlat& flat, const std::string& from, const std::string& gateway,
                                    const proto::StatusBatch& batch, const std::string& epoch) {
  FlatSync& s = sync(flat);
  const bool awaited = s.held_hello && s.held_hello->gateway == gateway;
  if (!flat.gateway) flat.gateway_id = gateway;
  follow_epoch(flat, gateway, epoch, from);
  int64_t& last = flat.last_seq[gateway];
  const int64_t covered = flat.state_seq[gateway];
  uint64_t fresh = 0;
  // A device not in the state we have yet: skipped (the holder has said so already).
  for (const auto& item : batch.items) {
    if (item.seq > last) ++fresh;
    flats_.apply_status(flat, item, last, covered, /*from_link=*/false);
  }
  if (awaited && last >= s.held_hello->acked) {
    LOG_INFO("router") << "flat=" << flat.id() << " gateway=" << gateway << " statuses up to seq=" << last
                       << " arrived over the backplane; answering its hello";
    release_hello(flat);
  }
  return fresh;
}

void BackplaneSync::start_repair(LiveFlat& flat, const std::string& holder, const std::string& gateway,
                                 const std::string& epoch, int64_t after, int64_t upto,
                                 std::deque<FlatSync::Buffered> buffered) {
  FlatSync& s = sync(flat);
  s.repair = FlatSync::Repair{holder, gateway, epoch, after, upto, 0, 0, std::move(buffered)};
  if (!s.repair_wait) {
    const std::string id = flat.id();
    s.repair_wait = std::make_unique<Timer>(loop_, [this, id] { repair_timeout(id); });
  }
  if (upto > 0) {
    LOG_WARN("router") << "flat=" << flat.id() << " gateway=" << gateway << " statuses seq=" << after + 1 << ".."
                       << upto << " from instance=" << holder << " did not arrive here; asking it for them";
  } else {
    LOG_INFO("router") << "flat=" << flat.id() << " gateway=" << gateway << " asking instance=" << holder
                       << " for the statuses after seq=" << after;
  }
  ask_holder(flat);
}

void BackplaneSync::ask_holder(LiveFlat& flat) {
  FlatSync& s = sync(flat);
  FlatSync::Repair& r = *s.repair;
  ++r.tries;
  backplane_->send_resend(backplane::ResendRequest{flat.id(), "", r.holder, r.gateway, r.epoch, r.after, r.upto});
  s.repair_wait->start(kRepairWaitMs);
}

void BackplaneSync::repair_timeout(const std::string& flat_id) {
  LiveFlat* flat = flats_.find(flat_id);
  if (!flat) return;
  FlatSync& s = sync(*flat);
  if (!s.repair) return;
  // A resync asked while the holder was not back on the broker yet is lost: ask again.
  if (s.repair->upto == 0 && s.repair->buffered.empty() && s.repair->tries < kResyncTries &&
      backplane_->alive(s.repair->holder) && backplane_->delivering()) {
    ask_holder(*flat);
    return;
  }
  end_repair(*flat, nullptr);
}

void BackplaneSync::remote_repaired(const backplane::RepairDone& done) {
  LiveFlat* flat = flats_.find(done.flat);
  if (!flat) return;
  FlatSync& s = sync(*flat);
  if (!s.repair || s.repair->holder != done.from || s.repair->gateway != done.gateway ||
      s.repair->epoch != done.epoch || s.repair->after != done.after) {
    return;  // an answer to an earlier request, or to one already given up
  }
  end_repair(*flat, &done);
}

void BackplaneSync::end_repair(LiveFlat& flat, const backplane::RepairDone* done) {
  FlatSync& s = sync(flat);
  FlatSync::Repair r = std::move(*s.repair);
  s.repair.reset();
  s.repair_wait->cancel();
  int64_t& last = flat.last_seq[r.gateway];
  // How far the gap went: the batch that showed it said so; a resync learns it from the answer
  // (the holder's last batch then), or from the first batch that came meanwhile.
  int64_t upto = r.upto;
  if (upto == 0) upto = done ? done->through : (r.buffered.empty() ? last : std::max<int64_t>(last, r.buffered.front().prev));
  const int64_t unarrived = std::max<int64_t>(0, upto - last);
  // Counted lost: what the holder said it could not send, and what it sent that did not come.
  const int64_t lost = done ? std::max(done->missing, unarrived) : unarrived;
  metrics_.backplane_gap_repaired += r.repaired;
  metrics_.backplane_gap_lost += static_cast<uint64_t>(lost);
  if (lost > 0 || !done) {
    LOG_WARN("router") << "flat=" << flat.id() << " gateway=" << r.gateway << " statuses seq=" << r.after + 1 << ".."
                       << upto << " from instance=" << r.holder << ": " << r.repaired << " sent again, " << lost
                       << " lost here (" << (done ? "the holder no longer had them" : "no answer within " +
                                                         std::to_string(kRepairWaitMs) + " ms")
                       << "; not shown or kept on this instance)";
  } else {
    LOG_INFO("router") << "flat=" << flat.id() << " gateway=" << r.gateway << " statuses seq=" << r.after + 1 << ".."
                       << upto << " sent again by instance=" << r.holder << ": " << r.repaired << " new here";
  }
  last = std::max(last, upto);  // counted: later copies are not shown out of order
  while (!r.buffered.empty()) {
    FlatSync::Buffered b = std::move(r.buffered.front());
    r.buffered.pop_front();
    if (!flat.gateway && b.prev >= 0 && same_epoch(flat, b.gateway, b.epoch) && b.prev > flat.last_seq[b.gateway]) {
      start_repair(flat, b.from, b.gateway, b.epoch, flat.last_seq[b.gateway], b.prev, {});
      s.repair->buffered.push_back(std::move(b));
      for (auto& rest : r.buffered) s.repair->buffered.push_back(std::move(rest));
      return;
    }
    apply_batch(flat, b.from, b.gateway, b.batch, b.epoch);
  }
}

void BackplaneSync::remote_resend(const backplane::ResendRequest& request) {
  LiveFlat* flat = flats_.find(request.flat);
  if (!flat || !backplane_) return;
  FlatSync& s = sync(*flat);
  const bool ours = flat->gateway && request.gateway == s.kept_gateway && request.epoch == s.kept_epoch;
  int64_t through = request.upto > 0 ? request.upto : (ours ? s.published_prev : request.after);
  through = std::max(through, request.after);
  size_t sent = 0;
  backplane::RepairDone done{request.flat, "", request.gateway, request.epoch, request.after, through, 0};
  if (ours) {
    for (const auto& k : s.kept) {
      if (k.last <= request.after || k.prev >= through) continue;
      backplane_->send_resent(request.flat, request.from, s.kept_gateway, s.kept_epoch, k.prev, k.encoded);
      ++sent;
    }
    done.missing = std::max<int64_t>(0, std::min(s.kept_floor, through) - request.after);
  } else {
    done.missing = through - request.after;
  }
  backplane_->send_repair_done(request.from, done);
  LOG_INFO("router") << "flat=" << request.flat << " gateway=" << request.gateway << " instance=" << request.from
                     << " asked for statuses seq=" << request.after + 1 << ".." << through << ": " << sent
                     << " batches sent again, " << done.missing << " statuses not kept here";
}

void BackplaneSync::session_lost() {
  size_t asked = 0;
  for (const auto& [id, flat] : flats_.all()) {
    if (flat->gateway || !backplane_->watching(id)) continue;
    FlatSync& s = sync(*flat);
    if (!s.streaming || s.repair || s.holder.empty() || !backplane_->alive(s.holder)) continue;
    const auto last = flat->last_seq.find(flat->gateway_id);
    start_repair(*flat, s.holder, flat->gateway_id, epoch_of(*flat), last == flat->last_seq.end() ? 0 : last->second, 0);
    ++asked;
  }
  LOG_INFO("router") << "asked the holders of " << asked << " watched flats for the statuses published while the broker"
                     << " had no session for this instance";
}

void BackplaneSync::remote_state(const std::string& flat_id, const RemoteState& state) {
  LiveFlat& flat = flats_.at(flat_id);
  if (flat.gateway) return;  // ours is the state
  if (state.from == backplane_->instance()) return;
  FlatSync& s = sync(flat);
  if (state.from == s.released && state.since == s.released_since) return;  // withdrawn
  if (!s.holder.empty() && state.from != s.holder) {
    // The state of an earlier holder, or of one that has not said it holds the flat yet.
    if (s.holder_since > state.since) return;
  }
  const bool new_link = s.state_from != state.from || s.state_since != state.since;
  s.state_from = state.from;
  s.state_since = state.since;
  const bool was_online = remote_online(flat);
  s.holder = state.from;
  s.holder_since = state.since;
  s.remote_online = state.online;
  flat.gateway_id = state.gateway;
  flat.dropped = state.dropped;
  // What the holder counts maybe lost is counted here the same (the gauge is per flat, as last
  // reported): a gateway that moves here later adds only what is new in its hello.
  if (state.lost != flat.lost && !state.gateway.empty()) {
    metrics_.gateway_lost += state.lost - flat.lost;
    flat.lost = state.lost;
  }
  follow_epoch(flat, state.gateway, state.epoch, state.from);
  // The state does not raise the seq of statuses received (last_seq): this instance has not
  // received them, and answering a gateway that moves here with that seq would have it drop
  // statuses no instance may have stored.
  int64_t& last = flat.last_seq[state.gateway];
  int64_t& covered = flat.state_seq[state.gateway];
  bool replaced = false;
  if (state.epoch.empty() && state.reset && new_link && state.seq < std::max(last, covered)) {
    LOG_WARN("router") << "flat=" << flat_id << " gateway=" << state.gateway << " restarted its sequence at instance="
                       << state.from << " (seq " << state.seq << ", last seen here " << std::max(last, covered)
                       << "); following it";
    last = std::min(last, state.seq);
    covered = state.seq;
  }
  if (state.seq >= std::max(last, covered) || flat.devices.empty()) {
    auto devices = devices_by_id(state.devices);
    replaced = devices != flat.devices;
    flats_.set_devices(flat, std::move(devices));
    covered = std::max(covered, state.seq);
  }
  const bool online = remote_online(flat);
  const bool joined = s.joining;
  if (joined) {
    LOG_INFO("router") << "flat=" << flat_id << " the holder's state arrived; " << flat.browsers.size()
                       << " waiting logins get their snapshot";
  }
  if (joined || new_link || replaced || online != was_online) {
    LOG_INFO("router") << "flat=" << flat_id << " gateway=" << state.gateway << " held by instance=" << state.from
                       << (online ? " online" : " offline") << ", " << state.devices.size() << " devices, seq "
                       << state.seq;
    for (Peer* browser : flat.browsers) flats_.send_snapshot(*browser, flat, online);
  }
  end_join(flat, false);
}

void BackplaneSync::remote_holder(const std::string& flat_id, const HolderClaim& claim) {
  LiveFlat& flat = flats_.at(flat_id);
  FlatSync& s = sync(flat);
  const std::string& me = backplane_->instance();
  if (claim.from == me) {
    // Ours, back from the broker. One that no link of ours stands behind (left by
    // an earlier run of this instance) is withdrawn.
    if (!claim.instance.empty() && claim.since != s.link_since) {
      LOG_INFO("router") << "flat=" << flat_id << " withdrawing a stale claim of this instance";
      backplane_->release(flat_id, claim.since);
    }
    return;
  }
  if (claim.instance.empty()) {  // a release
    s.released = claim.from;
    s.released_since = claim.since;
    if (flat.gateway) {
      backplane_->claim(flat_id, flat.gateway_id, s.link_since);  // the retained claim must stay ours
      return;
    }
    if (s.holder == claim.from && s.holder_since == claim.since) {
      const bool was_online = remote_online(flat);
      s.holder.clear();
      s.remote_online = false;
      if (was_online) flats_.to_browsers(flat, proto::encode(proto::GatewayState{false}));
    }
    return;
  }
  if (flat.gateway) {
    if (!newer(claim.since, claim.instance, s.link_since, me)) {
      LOG_INFO("router") << "flat=" << flat_id << " instance=" << claim.instance
                         << " claims the gateway with an older link; this one stays";
      backplane_->claim(flat_id, flat.gateway_id, s.link_since);
      return;
    }
    LOG_WARN("router") << "flat=" << flat_id << " a newer gateway link on instance=" << claim.instance
                       << " replaces this one (" << flat.gateway->describe() << ")";
    ++metrics_.replaced_gateways;
    ++metrics_.backplane_takeovers;
    Peer* old = flats_.unlink_gateway(flat);
    s.unconfirmed.clear();
    drop_held_hello(flat);
    old->close(proto::close_code::kReplaced, "replaced by a newer connection for this flat");
    s.holder = claim.instance;
    s.holder_since = claim.since;
    s.remote_online = false;
    flats_.to_browsers(flat, proto::encode(proto::GatewayState{false}));
    watch_update(flat);
    return;
  }
  if (!s.holder.empty() && s.holder != claim.instance && backplane_->alive(s.holder) &&
      !newer(claim.since, claim.instance, s.holder_since, s.holder)) {
    return;  // an older claim, late
  }
  if (s.holder == claim.instance && s.holder_since == claim.since) return;
  const bool was_online = remote_online(flat);
  s.holder = claim.instance;
  s.holder_since = claim.since;
  s.remote_online = false;  // until its state says hello happened
  if (was_online) flats_.to_browsers(flat, proto::encode(proto::GatewayState{false}));
}

void BackplaneSync::instance_down(const std::string& instance) {
  for (const auto& [id, flat] : flats_.all()) {
    if (flat->gateway) continue;
    FlatSync& s = sync(*flat);
    if (s.holder != instance) continue;
    LOG_WARN("router") << "flat=" << id << " instance=" << instance << " holding its gateway is gone; offline";
    s.remote_online = false;
    flats_.to_browsers(*flat, proto::encode(proto::GatewayState{false}));
  }
}

}  // namespace flatlink::cloud
