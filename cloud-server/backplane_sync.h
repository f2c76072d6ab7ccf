// The flats' side of the backplane (docs/scale-out.md): which instance holds a flat's gateway
// link (the election: the newest link wins, ties by instance id), what the holder publishes
// for the others (claims, states, statuses; the gateway's ack waits for the broker), what
// this instance does with the others' claims, states and statuses, and a moved gateway's
// hello held until its last holder's statuses arrived. Owns the per-flat backplane state;
// the flats' live state stays in `Flats`. Every hook does nothing without a backplane.
// Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "cloud-link/protocol.h"
#include "cloud-server/backplane.h"
#include "cloud-server/flats.h"
#include "cloud-server/metrics.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

class BackplaneSync {
 public:
  // Answers a gateway's hello (the router's): called when a held hello is released.
  using AcceptHello = std::function<void(LiveFlat& flat, Peer& gateway, const proto::Hello& hello)>;

  BackplaneSync(const config::CloudConfig& config, EventLoop& loop, const Clock& clock, Metrics& metrics, Flats& flats,
                AcceptHello accept_hello);
  ~BackplaneSync();

  void attach(Backplane* backplane) { backplane_ = backplane; }
  // Called when a flat's join window ends (joining() turns false): commands held meanwhile go on.
  void on_joined(std::function<void(LiveFlat& flat)> joined) { joined_ = std::move(joined); }
  bool attached() const { return backplane_ != nullptr; }

  // ---- what happens here
  // Watches the flat's topics while a link or browser of it is here; forgets what it knew when not.
  void watch_update(LiveFlat& flat);
  void link_opened(LiveFlat& flat);  // claims the flat
  void link_closed(LiveFlat& flat);  // says offline, then releases the claim
  // A presence or device list from the local gateway, for the other instances.
  void gateway_message(LiveFlat& flat, const proto::GatewayToCloud& message);
  // Acks `seq` to the gateway now, or once the broker holds `published` (and every batch before it).
  void ack_after(LiveFlat& flat, Peer& gateway, int64_t seq, const std::optional<std::string>& published);
  // Holds the hello of a gateway that moved here until the statuses its last holder
  // acknowledged have arrived (at most backplane.catch_up_ms); false: answer it now.
  bool hold_hello(LiveFlat& flat, const proto::Hello& hello);
  bool holds_hello(const LiveFlat& flat) const;
  // The local link's hello was answered; `stream_reset`: the gateway's stream started over.
  void hello_accepted(LiveFlat& flat, bool stream_reset);

  // The flat has just started to be watched here for a browser (no link here): its holder's
  // retained state is on its way. Logins wait for it (their snapshot is sent when it arrives,
  // at most kJoinWaitMs later) and their commands are held, not refused as offline.
  bool joining(const LiveFlat& flat) const;

  // Another (live) instance holds an online gateway of the flat.
  bool remote_online(const LiveFlat& flat) const;
  // The flat's gateway is online here or at its holder.
  bool gateway_online(const LiveFlat& flat) const { return flat.online_here() || remote_online(flat); }
  // The instance holding the flat's gateway link, when not this one; "" otherwise.
  std::string holder_elsewhere(const LiveFlat& flat) const;

  // ---- what the other instances say (BackplaneListener, through the router)
  void up();
  // The broker is lost: the flats held elsewhere show offline (their state is unknown) until up().
  void down();
  bool knows_flat(const std::string& flat) const;
  std::optional<RemoteState> state(const std::string& flat);
  // `prev`: the holder's previous batch's seq (-1 not said); `resent`: sent again for our request.
  void remote_gateway_message(const std::string& flat, const std::string& from, const std::string& gateway,
                              const proto::GatewayToCloud& message, const std::string& epoch = {}, int64_t prev = -1,
                              bool resent = false);
  // Gap repair (docs/scale-out.md, "Gaps"): as the holder, a watcher's request; as a watcher,
  // the end of the holder's answer; and every watched flat asked again after the broker lost
  // this instance's session.
  void remote_resend(const backplane::ResendRequest& request);
  void remote_repaired(const backplane::RepairDone& done);
  void session_lost();
  void remote_state(const std::string& flat, const RemoteState& state);
  void remote_holder(const std::string& flat, const HolderClaim& claim);
  void instance_down(const std::string& instance);

 private:
  static std::string epoch_of(const LiveFlat& flat);
  // The flat's stream from `gateway` is followed here in `epoch` (so that seqs compare).
  static bool same_epoch(const LiveFlat& flat, const std::string& gateway, const std::string& epoch);
  void follow_epoch(LiveFlat& flat, const std::string& gateway, const std::string& epoch, const std::string& from);

  struct FlatSync {
    int64_t link_since = 0;   // wall ms the local link opened: its claim on the flat
    uint64_t link_epoch = 0;  // bumps with every local link; stale broker acks are ignored
    std::deque<std::pair<int64_t, bool>> unconfirmed;  // seq to ack, and whether the broker holds it
    std::string holder;                                // another instance holding the gateway link ("" none known)
    int64_t holder_since = 0;
    bool remote_online = false;  // the holder's gateway said hello
    std::string released;        // the last release seen: its states are stale
    int64_t released_since = 0;
    bool stream_reset = false;  // the local link's hello restarted the gateway's stream
    std::string state_from;     // the link whose state was applied last (instance, since)
    int64_t state_since = 0;
    bool fed = false;  // the backplane was bringing the flat's messages when the local link opened
    // The local gateway's hello, held until the backplane has delivered the statuses its last
    // holder acknowledged (up to held_hello->acked), at most backplane.catch_up_ms.
    std::optional<proto::Hello> held_hello;
    std::unique_ptr<Timer> catch_up;  // made once, reused: never destroyed from its own callback
    bool joining = false;             // see joining()
    std::unique_ptr<Timer> join_wait; // made once, reused

    // As the holder: the seq of the last batch this link had (the next batch's `prev`), and the
    // batches published since its hello, kept (bounded) for watchers that missed some.
    struct Kept {
      int64_t prev = 0;
      int64_t last = 0;
      std::string encoded;
    };
    int64_t published_prev = 0;
    std::string kept_gateway;
    std::string kept_epoch;
    std::deque<Kept> kept;
    size_t kept_bytes = 0;
    int64_t kept_floor = 0;  // statuses up to this seq are not kept here (before this link, or evicted)

    // As a watcher: a batch from the holder has been applied since the flat was watched (its
    // continuity can be checked from then on), and a gap being repaired: the holder was asked
    // for (after, upto]; the batches that arrive meanwhile wait in order behind the answer.
    bool streaming = false;
    struct Buffered {
      std::string from;
      std::string gateway;
      std::string epoch;
      int64_t prev = -1;
      proto::StatusBatch batch;
    };
    struct Repair {
      std::string holder;
      std::string gateway;
      std::string epoch;
      int64_t after = 0;
      int64_t upto = 0;  // 0: all the holder has after `after` (a resync)
      int tries = 0;
      uint64_t repaired = 0;
      std::deque<Buffered> buffered;
    };
    std::optional<Repair> repair;
    std::unique_ptr<Timer> repair_wait;  // made once, reused
  };

  FlatSync& sync(const LiveFlat& flat) { return sync_[flat.id()]; }
  const FlatSync* find(const LiveFlat& flat) const;
  void catch_up_timeout(const std::string& flat_id);
  void release_hello(LiveFlat& flat);
  void drop_held_hello(LiveFlat& flat);
  // The join window ends: the holder's state arrived (`snapshots` false: remote_state sends
  // them), the wait ran out, a link opened here, or the broker was lost.
  void end_join(LiveFlat& flat, bool snapshots);
  // A status batch relayed from the holder, applied here (dedupe, browsers, history); returns
  // how many of its statuses were new here.
  uint64_t apply_batch(LiveFlat& flat, const std::string& from, const std::string& gateway,
                       const proto::StatusBatch& batch, const std::string& epoch);
  void keep(FlatSync& s, int64_t prev, int64_t last, const std::string& encoded);
  void start_repair(LiveFlat& flat, const std::string& holder, const std::string& gateway, const std::string& epoch,
                    int64_t after, int64_t upto, std::deque<FlatSync::Buffered> buffered = {});
  void ask_holder(LiveFlat& flat);
  void repair_timeout(const std::string& flat_id);
  // The answer is complete (`done`), or none came in time (null): counts what is still missing,
  // then applies the batches that waited.
  void end_repair(LiveFlat& flat, const backplane::RepairDone* done);

  const config::CloudConfig& config_;
  EventLoop& loop_;
  const Clock& clock_;
  Metrics& metrics_;
  Flats& flats_;
  AcceptHello accept_hello_;
  std::function<void(LiveFlat&)> joined_;
  Backplane* backplane_ = nullptr;
  std::map<std::string, FlatSync> sync_;  // by flat id
  bool broker_lost_ = false;               // between down() and up()
};

}  // namespace flatlink::cloud
