// The backplane: flatlink-cloud instances joined over an MQTT broker (one
// Mosquitto, or a broker cluster): subscriptions, publishing with delivery kept
// across reconnects; the topics, envelopes and checks are backplane_messages.h.
// Knows no browsers or links: the Router says what to publish and hears,
// through BackplaneListener, what other instances said. docs/scale-out.md has
// the topic layout and the delivery rules.
//
// The broker connection is mqtt/mqtt_session.h's Session (libmosquitto on its
// own thread, everything handed to the loop with EventLoop::post).
//
// Threads: loop thread only; listener calls come on the loop thread.
//
// Delivery: everything is published with QoS 1. Messages that have not been
// acknowledged by the broker (PUBACK) are kept, in order, and published again
// after a reconnect (possibly to another broker), so a publish's `on_safe` runs
// exactly when the broker holds it. Receivers drop the duplicates this may make
// (statuses by seq, commands by id). At most kMaxInFlight messages (and
// kMaxInFlightBytes) are handed to the MQTT session at a time, the rest wait
// here in order: libmosquitto's message ids are 16 bits, and an id must never
// name two messages that wait for their PUBACK. When even the waiting queue is
// full (the broker gone for long), a publish is refused loudly: its `on_dropped`
// runs (the Router closes that gateway's link, which then resends), and the
// drop is logged and counted.
//
// Authenticated: with backplane.shared_key_file every message published carries an HMAC-SHA256 tag
// of its topic and payload under the key all instances share (backplane::sign), and a message
// received without a valid one is dropped before it is parsed, counted
// (flatlink_backplane_rejected_total) and logged with backoff. A broker client without the key
// can neither command a flat nor say anything else to the instances, even where the broker's
// ACL lets it publish. Without a key ("insecure": true) nothing is signed or checked.
//
// Every message received is checked strictly: the topic's shape, a watched
// flat, JSON, the envelope's keys, the flat in the payload equal to the flat in
// the topic, sizes, and the embedded protocol message through the wire
// protocol's own decoders (backplane::check_message, backplane_messages.h, a pure
// function with its own fuzz target). Anything else is refused, counted and
// logged (rate limited) and changes nothing.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cloud-link/protocol.h"
#include "cloud-server/backplane_messages.h"
#include "cloud-server/metrics.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::mqtt {
class Session;
struct Message;
}  // namespace flatlink::mqtt

namespace flatlink::cloud {

class BackplaneListener {
 public:
  virtual ~BackplaneListener() = default;
  // Connected (again): claims and states worth re-publishing now.
  virtual void backplane_up() = 0;
  virtual bool backplane_knows_flat(const std::string& flat) const = 0;
  // The retained state of a flat this instance holds; nullopt when it does not.
  virtual std::optional<RemoteState> backplane_state(const std::string& flat) = 0;
  // A status batch, presence or device list from the instance holding the flat's gateway.
  // `epoch`: the stream epoch a status batch's seqs belong to ("" when the sender did not say).
  virtual void remote_gateway_message(const std::string& flat, const std::string& from, const std::string& gateway,
                                      const proto::GatewayToCloud& message, const std::string& epoch) = 0;
  virtual void remote_state(const std::string& flat, const RemoteState& state) = 0;
  virtual void remote_holder(const std::string& flat, const HolderClaim& claim) = 0;
  virtual void remote_command(const std::string& flat, const std::string& from, const proto::CommandMsg& command) = 0;
  // accepted: the holder took the command and passed it to its gateway (result to follow).
  virtual void remote_result(const std::string& flat, const std::string& from, const proto::Result& result,
                             bool accepted) = 0;
  virtual void instance_down(const std::string& instance) = 0;
  // A status batch, presence or device list with all the envelope says (prev, resent): the
  // holder's continuity, for gap detection. By default the message alone, as above.
  virtual void remote_status(const backplane::GatewayMessage& m) {
    remote_gateway_message(m.flat, m.from, m.gateway, m.message, m.epoch);
  }
  // Another instance asks this one, as the flat's holder, for status batches it missed.
  virtual void remote_resend(const backplane::ResendRequest&) {}
  // The end of a holder's answer to this instance's ResendRequest.
  virtual void remote_repaired(const backplane::RepairDone&) {}
  // Connected again, and the broker had no session for us (restarted without persistence, or a
  // cluster that lost it): whatever was published while we were away never reached us.
  virtual void backplane_session_lost() {}
  // The broker is lost (the connection closed, or this instance's own ping did not come back
  // in time): nothing the other instances say arrives; backplane_up() follows when it does again.
  virtual void backplane_down() = 0;
  // Device streams across instances (docs/scale-out.md, "Streams across instances"): a control
  // message or a frame on a stream topic addressed to this instance, checked (check_stream).
  virtual void remote_stream_control(const backplane::StreamControl&) {}
  virtual void remote_stream_frame(backplane::StreamData&) {}
};

class Backplane {
 public:
  Backplane(const config::BackplaneConfig& config, const config::LimitsConfig& limits, EventLoop& loop,
            const Clock& clock, Metrics& metrics, BackplaneListener& listener);
  ~Backplane();
  Backplane(const Backplane&) = delete;
  Backplane& operator=(const Backplane&) = delete;

  bool start();
  void stop();
  // Another process runs with this instance_id and started first: this one must not join
  // (the broker would hand their one MQTT session back and forth). Called once, with the
  // reason, on the loop thread; the owner stops the process with an error.
  void on_fatal(std::function<void(const std::string& why)> fatal) { on_fatal_ = std::move(fatal); }
  // The flats, tokens and users this instance accepts (a digest goes with its online message:
  // instances whose accounts differ are logged). At start and after a reload.
  void set_accounts(const std::vector<config::FlatConfig>& flats);
  bool connected() const;
  // Connected, and the broker delivers: this instance's own pings come back in time.
  bool delivering() const { return delivering_; }
  const std::string& instance() const { return config_.instance_id; }
  // Not known to be dead (its will has not been seen since it last said online).
  bool alive(const std::string& instance) const;

  // Receive the flat's messages (while a local gateway or browser of it is here).
  void watch(const std::string& flat);
  void unwatch(const std::string& flat);
  bool watching(const std::string& flat) const { return watched_.count(flat) != 0; }

  // A message of the flat's gateway (status batch, presence, device list, encoded
  // by proto::encode) for the other instances; on_safe once the broker has it.
  // on_dropped, instead, when the backplane cannot keep it (see Delivery above). `epoch`:
  // the gateway's stream epoch, which a status batch's seqs belong to.
  // `prev`: the seq of this holder's previous status batch of that stream (see GatewayMessage).
  void publish_gateway_message(const std::string& flat, const std::string& gateway, const std::string& encoded,
                               std::function<void()> on_safe = {}, std::function<void()> on_dropped = {},
                               const std::string& epoch = {}, int64_t prev = -1);
  // Gap repair (docs/scale-out.md, "Gaps"): a watching instance's request to a flat's holder,
  // the holder's batches sent again to it, and the end of that answer.
  void send_resend(const backplane::ResendRequest& request);
  void send_resent(const std::string& flat, const std::string& to, const std::string& gateway, const std::string& epoch,
                   int64_t prev, const std::string& encoded);
  void send_repair_done(const std::string& to, const backplane::RepairDone& done);
  // The flat's retained state changed: published soon (at most every 100 ms per
  // flat), or now when `now` (the gateway came or went: others must know at once).
  void state_changed(const std::string& flat, bool now = false);
  void claim(const std::string& flat, const std::string& gateway, int64_t since);
  void release(const std::string& flat, int64_t since);
  // A command for the flat's holder. It carries its deadline (command.expires): a copy still
  // waiting here past it (never published yet, or to be published again after a reconnect) is
  // dropped, logged. libmosquitto may still send its own copy of one that was in flight at a
  // disconnect again (a persistent session): the holder answers that one `expired` and never
  // forwards it. Returns the command's handle for withdraw(), 0 when the backplane refused it
  // (see Delivery): then it never left this instance.
  uint64_t send_command(const std::string& flat, const proto::CommandMsg& command);
  // Takes back a command from send_command that has never been handed to the broker
  // connection (the broker unreachable since it was sent): true, and it will never be published.
  // False once it may have left this instance (handed to the connection at least once, or gone:
  // acknowledged by the broker or dropped past its deadline): only its result or its deadline
  // can say what became of it then.
  bool withdraw(uint64_t handle);
  // Device streams across instances: QoS 0 on per-stream topics (backplane::stream_topic), never
  // stored or published again. Control messages (an encoded stream message) and frames wait in
  // one queue, in order, and are handed to the broker connection while less than
  // kStreamUnwrittenBytes of them wait unwritten in libmosquitto. A frame that waited here
  // longer than limits.stream_buffer_ms is dropped, and so is the oldest frame while the queue
  // holds more than kStreamQueueBytes, or everything when the broker connection is lost: each
  // dropped frame is counted through on_stream_drops (the stream hub's frames_dropped).
  void send_stream_control(const std::string& topic, const std::string& flat, const std::string& encoded);
  void send_stream_frame(const std::string& topic, std::string_view frame);
  void on_stream_drops(std::function<void(uint64_t frames)> count) { on_stream_drops_ = std::move(count); }
  void send_result(const std::string& flat, const std::string& to, const proto::Result& result);
  void send_accepted(const std::string& flat, const std::string& to, const std::string& command_id);

 private:
  struct Outgoing {
    std::string topic;
    std::string payload;
    bool retain = false;
    std::function<void()> on_safe;
    uint64_t handle = 0;      // for withdraw()
    int64_t deadline_ms = 0;  // wall ms after which it must not be published (a command's expiry); 0 none
    bool left = false;        // handed to the broker connection at least once: the broker may have it
  };

  void on_connected();
  void on_disconnected(const std::string& why);
  void on_message(mqtt::Message& message);
  void on_published(int mid);
  void on_stream_message(mqtt::Message& message);
  void on_qos0_written(size_t bytes);
  void pump_streams();
  void drop_stream_frames(uint64_t frames);
  // Returns the entry's handle (for withdraw), 0 when it was refused.
  uint64_t enqueue(std::string topic, std::string payload, bool retain, std::function<void()> on_safe = {},
                   std::function<void()> on_dropped = {}, int64_t deadline_ms = 0);
  // Hands waiting messages to the session while the in-flight bounds allow.
  void pump();
  void subscribe_flat(const std::string& flat, bool subscribe);
  void flush_states();
  void refuse(const std::string& topic, const std::string& why);
  // A message without a valid tag of the shared key: counted, logged with backoff, dropped.
  void reject(const std::string& topic, const std::string& why);
  // The payload as published: signed with the shared key (backplane.shared_key_file) when there is one.
  std::string seal(const std::string& topic, std::string payload) const;
  void publish_online();
  void on_instance(const backplane::InstanceStatus& status);
  // Every kPingIntervalMs while connected: publishes a ping to ourselves; one not back within
  // kPingLostMs means the broker does not deliver (hung, or a cluster node without quorum).
  void ping();
  void on_ping(int64_t n);
  void lost(const std::string& why);

  const config::BackplaneConfig& config_;
  const config::LimitsConfig& limits_;
  EventLoop& loop_;
  const Clock& clock_;
  Metrics& metrics_;
  BackplaneListener& listener_;
  std::unique_ptr<mqtt::Session> session_;
  std::set<std::string> watched_;
  std::set<std::string> dead_;           // instances whose will we saw
  std::string run_;                      // this process's run: random, with its start time
  int64_t started_ms_ = 0;
  std::string accounts_;                 // digest of the accounts (set_accounts)
  std::function<void(const std::string&)> on_fatal_;
  bool fatal_ = false;
  std::map<std::string, std::string> accounts_warned_;  // instance -> the differing digest logged
  std::list<Outgoing> unsafe_;           // not yet acknowledged by the broker, in publish order
  std::list<Outgoing>::iterator unsent_ = unsafe_.end();  // the first of unsafe_ not handed to the session
  std::unordered_map<int, std::list<Outgoing>::iterator> in_flight_;  // handed to the session, by mid
  size_t in_flight_bytes_ = 0;
  struct StreamOut {
    std::string topic;
    std::string payload;
    int64_t queued_ms = 0;  // mono
    bool control = false;   // a control message: never dropped for its age
  };
  std::deque<StreamOut> stream_out_;  // stream messages not handed to the session yet
  size_t stream_out_bytes_ = 0;
  size_t stream_unwritten_bytes_ = 0;  // handed to the session, not written yet
  std::function<void(uint64_t)> on_stream_drops_;
  uint64_t next_handle_ = 1;
  std::set<std::string> dirty_states_;
  Timer state_timer_;
  Timer ping_timer_;
  int64_t ping_n_ = 0;              // the last ping sent
  int64_t ping_sent_ms_ = 0;        // mono ms the oldest ping not back yet was sent; 0 none
  bool delivering_ = false;         // connected and the pings come back
  bool had_session_ = false;        // connected once in this process: the broker should keep our session since
  backplane::CheckContext check_context_;  // what incoming messages are checked against
  // Refusals are logged at most kRefusalLogBurst per window; the rest are counted.
  int64_t refusal_window_ms_ = 0;
  uint32_t refusals_in_window_ = 0;
  uint64_t refusals_suppressed_ = 0;
  int64_t reject_log_next_ms_ = 0;   // mono ms before which a rejection is only counted
  int64_t reject_log_window_ms_ = 0;
  uint64_t rejects_suppressed_ = 0;
};

}  // namespace flatlink::cloud
