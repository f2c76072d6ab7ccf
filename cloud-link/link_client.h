// The gateway's one persistent WebSocket to the cloud (libwebsockets client):
// authenticates with the flat's token, says hello, streams statuses from the
// outbox with a bounded window, takes acks and commands, detects a dead peer by
// ping/pong, and reconnects forever with backoff and jitter.
//
// Loop thread only. The link knows frames and the wire protocol, not devices:
// what to say and what to do with what arrives is the LinkListener's business.
#pragma once

#include <libwebsockets.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <utility>
#include <memory>
#include <string>
#include <vector>

#include "cloud-link/protocol.h"
#include "cloud-link/stream_frames.h"
#include "cloud-link/stream_protocol.h"
#include "common/backoff.h"
#include "common/event_loop.h"
#include "config/gateway_config.h"

namespace flatlink::link {

class LinkListener {
 public:
  virtual ~LinkListener() = default;
  // The hello to send first on every new connection (built at connect time).
  virtual proto::Hello make_hello() = 0;
  // The device list as it is now: built when a waiting device list is written (devices_changed()).
  virtual proto::DeviceList device_list() = 0;
  // Statuses with seq > after, in order, at most max; each state as its encoded text.
  virtual std::vector<proto::EncodedStatus> statuses_after(int64_t after, size_t max) = 0;
  // Statuses dropped so far for lack of room, reported with each batch.
  virtual int64_t dropped() = 0;
  // Statuses folded into newer ones so far, reported with each batch.
  virtual int64_t coalesced() { return 0; }
  // A status that cannot be sent within the cloud's limits (alone bigger than a frame): the
  // listener drops it from the outbox, counted as dropped, so that the stream moves on.
  virtual void refuse_status(const proto::EncodedStatus& item, const std::string& why) { (void)item, (void)why; }
  // The cloud holds everything up to seq.
  virtual void on_ack(int64_t seq) = 0;
  virtual void on_command(const proto::CommandMsg& command) = 0;
  virtual void on_link_state(bool up) = 0;
};

// Device streams (docs/protocol.md, "Streams"): what the cloud says about them, and their
// binary frames. Optional; without one, stream messages and binary frames are ignored.
class StreamListener {
 public:
  virtual ~StreamListener() = default;
  virtual void on_stream_message(const proto::StreamMessage& message) = 0;
  virtual void on_stream_frame(std::string frame) = 0;
};

struct LinkStats {
  uint64_t connects = 0;
  uint64_t frames_sent = 0;
  uint64_t statuses_sent = 0;
  uint64_t frames_received = 0;
  uint64_t refused_frames = 0;
  uint64_t refused_statuses = 0;  // statuses too big for any frame within the cloud's limits
  uint64_t control_dropped = 0;   // presence and stream messages dropped from a full control queue
  uint64_t paced = 0;             // times a text frame waited for the cloud's message rate
};

class LinkClient {
 public:
  LinkClient(EventLoop& loop, const config::CloudLinkConfig& config, LinkListener& listener);
  ~LinkClient();
  LinkClient(const LinkClient&) = delete;
  LinkClient& operator=(const LinkClient&) = delete;

  // The lws protocol entry to give the EventLoop.
  static lws_protocols protocol();
  // Sets the context options a client needs (CA file). Call from EventLoop::Options::tune.
  static void tune_context(const config::CloudLinkConfig& config, lws_context_creation_info& info);
  // Where the CAs are looked up without a cloud.ca_file: SSL_CERT_DIR, else OpenSSL's default.
  static std::string system_ca_folder();

  void start();
  // Closes the link with a close frame; `closed` runs once it is gone.
  void stop(std::function<void()> closed);

  // A result, kept across reconnects (send_queue_max of them wait; beyond, the oldest goes).
  void send_result(const proto::Result& result);
  // Control messages: presence, the device list, stream messages. They wait in one queue of at
  // most send_queue_max, in order, and are dropped on disconnect (the next hello carries the
  // full state). When the queue is full the oldest presence or stream message goes, counted
  // (stats().control_dropped) and logged with backoff; the device list never does, and a
  // dropped presence queues it (it carries every device's online state).
  void send_presence(const proto::Presence& presence);
  // The device list changed. One list waits at a time: a list already waiting stays where it
  // is and carries the change, because it is built (listener.device_list()) when it is written.
  // However many devices are added while the cloud is slow, one list is sent, the newest.
  void devices_changed();
  // New statuses are waiting in the outbox.
  void statuses_available();

  void set_stream_listener(StreamListener* listener) { streams_ = listener; }
  // A stream control message: sent with the other control messages, before any stream data.
  void send_stream_message(const proto::StreamMessage& message);
  // A binary stream frame: written only when no text waits; at most 200 ms of audio per
  // stream waits (frames_), the oldest beyond is dropped. Dropped when the link is down.
  void send_stream_frame(uint16_t stream, uint32_t duration_us, std::string frame);
  // A stream ended: its queued frames go. Returns how many of its frames the link dropped.
  uint64_t forget_stream(uint16_t stream);

  bool up() const { return up_; }
  // Control messages waiting to be written.
  size_t control_waiting() const { return control_.size(); }
  // The cloud's limits from its answer to the last hello (the protocol's defaults before one).
  const proto::Limits& limits() const { return limits_; }
  const LinkStats& stats() const { return stats_; }

 private:
  static int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  int handle(lws* wsi, lws_callback_reasons reason, void* in, size_t len);
  void connect();
  void use_url(size_t index);
  void schedule_retry(const char* why);
  void give_up_connecting();
  void on_frame(std::string_view text);
  int on_writeable(lws* wsi);
  bool write_text(lws* wsi, const std::string& text);
  void went_down();
  void want_write();
  enum class Control { presence, devices, stream };
  void queue_control(Control kind, std::string text);
  // The cloud's message rate (limits_.messages_per_s / burst), kept on this side so that the
  // cloud never has to hold the link back: true when a text frame may go now; otherwise the
  // pace timer asks for a write once the bucket holds a token again (never sleeps).
  bool token_ready();
  double bucket_size() const;

  EventLoop& loop_;
  config::CloudLinkConfig config_;
  LinkListener& listener_;
  Backoff backoff_;
  lws_retry_bo_t retry_policy_{};
  Timer retry_timer_;
  Timer connect_timer_;  // a connection that neither opens nor fails in time is given up
  Timer pace_timer_;     // a text frame waits for the cloud's message rate

  // The URL tried now (config.urls, in turn) and its parts, kept alive for lws,
  // which holds on to the pointers.
  size_t url_index_ = 0;
  std::string url_;
  std::string host_, path_, origin_;
  int port_ = 0;
  bool tls_ = false;

  lws* wsi_ = nullptr;
  bool started_ = false;
  bool stopping_ = false;
  bool up_ = false;           // connected and hello sent
  bool acked_once_ = false;   // the cloud answered hello: statuses may flow
  std::function<void()> on_closed_;

  std::string tls_error_;     // why the server's certificate was refused, for the next error line
  std::string rx_;            // a message being reassembled from fragments
  std::deque<std::string> results_;
  struct ControlMessage {
    Control kind;
    std::string text;  // empty for the device list: built when written
  };
  std::deque<ControlMessage> control_;
  bool devices_waiting_ = false;  // a device list is in control_
  std::string hello_;
  int64_t sent_upto_ = 0;     // the highest seq written on this connection
  int64_t acked_ = 0;         // the cloud's cumulative ack
  proto::Limits limits_;
  double tokens_ = 0;         // the message-rate bucket, refilled at limits_.messages_per_s
  int64_t refill_ms_ = 0;     // when tokens_ was last refilled (mono ms)
  LinkStats stats_;
  std::vector<unsigned char> tx_;
  StreamListener* streams_ = nullptr;
  stream::FrameQueue frames_{200};
  std::map<uint16_t, uint64_t> dropped_offline_;  // per stream: frames dropped because the link was down
  std::string bin_rx_;          // a binary frame being reassembled
  bool bin_discarding_ = false;  // the rest of an oversized one
};

}  // namespace flatlink::link
