// The connection to the broker: libmosquitto on a thread of its own, handing
// every event to the event loop with EventLoop::post. Knows topics and bytes,
// not devices.
//
// Why a thread and not mosquitto's socket in the loop: mosquitto_connect() and
// mosquitto_reconnect() resolve the host name and connect (and, with TLS,
// handshake) blockingly, and libmosquitto 2.0.11's own threaded loop
// (mosquitto_loop_start) gives up for good after a DNS or TLS error. Our
// thread runs mosquitto_loop() itself and reconnects forever with the project's
// backoff (exponential, capped, with jitter), so nothing the broker or the
// network does can block the gateway's loop or stop the retries.
//
// Threads: construct, start(), stop(), publish(), subscribe() and connected()
// on the loop thread; the callbacks given to the constructor run on the loop
// thread too, never after stop() returned.
//
// Used by the MQTT adapter and by flatlink-cloud's backplane (cloud-server/
// backplane.h), which also needs several brokers tried in turn, a will,
// retained publishes, PUBACK tracking and unsubscribing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/backoff.h"
#include "common/event_loop.h"
#include "config/mqtt_tls.h"

namespace flatlink::mqtt {

struct Message {
  std::string topic;
  std::string payload;
  bool retained = false;
  size_t oversize = 0;  // when the payload was over the cap: its size (payload is then empty)
};

// What a Session connects to and how (the MQTT adapter and the backplane map their configs onto it).
struct SessionOptions {
  struct Broker {
    std::string host;
    uint16_t port = 1883;
  };
  std::string log_name;          // what log lines call this connection, e.g. "adapter=home"
  std::vector<Broker> brokers;   // tried in turn: a failed connect moves to the next
  std::string client_id;
  bool clean_session = false;    // false: the broker keeps subscriptions and queues while we are away
  uint16_t keepalive_s = 30;
  std::string username;
  std::string password;          // never logged
  config::MqttTls tls;
  BackoffPolicy backoff{500, 30'000, 50};
  size_t max_payload = 65'536;
  std::string will_topic;        // empty: no will
  std::string will_payload;
  bool will_retain = false;
};

class Session {
 public:
  struct Callbacks {
    std::function<void()> connected;                       // CONNACK accepted and every subscription acknowledged
    std::function<void(const std::string& why)> disconnected;
    std::function<void(Message&)> message;
    std::function<void(int mid)> published;                // optional: the broker acknowledged this QoS 1 publish
    // optional: a QoS 0 publish of `bytes` (payload) was written to the socket (or dropped with
    // the connection: then every one not written yet is reported at `disconnected`).
    std::function<void(size_t bytes)> qos0_written;
  };

  Session(SessionOptions options, EventLoop& loop, Callbacks callbacks);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts the thread; false (logged) when libmosquitto refused the settings.
  bool start();
  // Disconnects and joins the thread (at most ~2 s; a thread stuck in a blocking
  // DNS lookup or TCP connect is left to finish on its own, then cleans up).
  void stop();
  bool connected() const { return connected_; }
  // The broker's CONNACK of the current connection said it kept our session (MQTT's
  // session-present flag); meaningful from Callbacks::connected on.
  bool session_present() const { return session_present_; }

  // QoS 1 publish; false when not connected or libmosquitto refused it. `mid`, when
  // given, receives the message id that Callbacks::published reports later.
  bool publish(const std::string& topic, const std::string& payload, bool retain = false, int* mid = nullptr);
  // QoS 0 publish (real-time data: never stored, never sent again); Callbacks::qos0_written
  // reports it once libmosquitto has written it, so the caller can bound what waits in
  // libmosquitto's queue. libmosquitto reports QoS 0 writes with the same 16-bit ids as QoS 1
  // acknowledgements: the ids of QoS 0 publishes not written yet are told apart here.
  bool publish_qos0(const std::string& topic, const std::string& payload);
  // QoS 1 subscription, kept for every later reconnect; sent now when connected.
  // May be called before start().
  void subscribe(const std::string& filter);
  // Forgets a filter from subscribe(); sends UNSUBSCRIBE now when connected.
  void unsubscribe(const std::string& filter);

 private:
  struct Shared;
  void deliver();

  SessionOptions options_;
  EventLoop& loop_;
  Callbacks callbacks_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::string> filters_;  // in the order subscribed; the thread keeps a copy
  std::unordered_map<int, size_t> qos0_unwritten_;  // QoS 0 publishes not written yet: mid -> payload bytes
  bool connected_ = false;
  bool session_present_ = false;
};

}  // namespace flatlink::mqtt
