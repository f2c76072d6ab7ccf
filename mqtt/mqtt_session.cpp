// The broker connection on its own thread: connect, reconnect with backoff,
// resubscribe on every CONNACK, and a bounded hand-over queue to the loop.
#include "mqtt/mqtt_session.h"

#include <mosquitto.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "common/backoff.h"
#include "common/log.h"

namespace flatlink::mqtt {
namespace {

// Messages waiting for the loop. When the loop falls this far behind, the
// mosquitto thread stops reading: TCP pushes back and the broker keeps the rest
// queued for our persistent session, instead of this process growing.
constexpr size_t kMaxInbox = 20'000;
// Messages read back to back (a burst) are handed to the loop with one wake-up, at most this
// many at a time: a message waits for at most this many reads (~1 ms here) before the loop
// sees it, and a full inbox (kMaxInbox) always has a wake-up on its way.
constexpr size_t kBurst = 64;

std::once_flag lib_once;

std::string describe_rc(int rc, int saved_errno) {
  if (rc == MOSQ_ERR_ERRNO) return std::strerror(saved_errno);
  return mosquitto_strerror(rc);
}

}  // namespace

struct Session::Shared {
  enum class Kind { connected, disconnected, message, published };
  struct Event {
    Kind kind;
    Message message;
    std::string why;
    std::vector<std::string> subscribed;  // connected: the filters on_connect sent
    int mid = 0;                          // published
    bool session_present = false;         // connected: the CONNACK's flag
  };

  // Copies, so that a thread left to finish on its own needs nothing of the Session.
  std::string adapter;  // the log name, e.g. "adapter=home"
  std::vector<SessionOptions::Broker> brokers;
  size_t broker = 0;    // mosquitto thread only: the one tried now
  int keepalive_s = 30;
  BackoffPolicy backoff;
  size_t max_payload = 65'536;

  mosquitto* mosq = nullptr;
  EventLoop* loop = nullptr;
  std::thread thread;
  std::future<void> finished;

  std::mutex mu;
  std::condition_variable cv;       // wakes backoff waits and a full inbox
  bool stopping = false;            // under mu
  std::vector<Event> inbox;         // under mu
  bool woken = false;               // under mu: a deliver() is posted and has not taken the inbox yet
  std::vector<std::string> filters; // under mu
  bool connacked = false;           // mosquitto thread only
  bool session_present = false;     // mosquitto thread only: the last CONNACK's flag
  std::string tls_error;            // mosquitto thread only: OpenSSL's reason for the last TLS failure
  uint64_t received = 0;            // mosquitto thread only: messages read so far
  std::set<int> awaiting_suback;    // mosquitto thread only: this connection's subscriptions
  std::vector<std::string> subscribed;  // mosquitto thread only

  Session* owner = nullptr;  // loop thread only; null once stopped
  std::weak_ptr<Shared> weak_self;
  std::shared_ptr<Shared> self() { return weak_self.lock(); }

  ~Shared() {
    if (mosq) mosquitto_destroy(mosq);
  }

  // From the mosquitto thread: queue an event and wake the loop unless a wake-up is on its
  // way. A message waits for announce() (after the read that brought it) unless a burst's
  // worth is queued: one wake-up per burst, not per message.
  void push(Event event, std::shared_ptr<Shared> self) {
    const bool message = event.kind == Kind::message;
    {
      std::unique_lock lock(mu);
      if (message) cv.wait(lock, [&] { return inbox.size() < kMaxInbox || stopping; });
      if (stopping) return;
      inbox.push_back(std::move(event));
      if (woken || (message && inbox.size() < kBurst)) return;
      woken = true;
    }
    wake_loop(std::move(self));
  }

  // From the mosquitto thread once nothing more is waiting to be read: wakes the loop for
  // the messages queued.
  void announce(std::shared_ptr<Shared> self) {
    {
      std::lock_guard lock(mu);
      if (woken || inbox.empty()) return;
      woken = true;
    }
    wake_loop(std::move(self));
  }

  void wake_loop(std::shared_ptr<Shared> self) {
    loop->post([self = std::move(self)] {
      if (self->owner) self->owner->deliver();
    });
  }

  // Sleeps up to ms, or less when stop() is called; false when stopping.
  bool wait(uint32_t ms) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping; });
    return !stopping;
  }

  bool is_stopping() {
    std::lock_guard lock(mu);
    return stopping;
  }

  static void run(std::shared_ptr<Shared> s, std::promise<void> done);
};

namespace {
// What the mosquitto callbacks reach through userdata while the thread runs.
struct CallbackContext {
  std::shared_ptr<void> keep;
  void* shared;
};
}  // namespace

void Session::Shared::run(std::shared_ptr<Shared> s, std::promise<void> done) {
  CallbackContext context{s, s.get()};
  mosquitto_user_data_set(s->mosq, &context);
  Backoff backoff(s->backoff);
  bool first = true;
  uint32_t failures = 0;
  while (!s->is_stopping()) {
    errno = 0;
    const SessionOptions::Broker& target = s->brokers[s->broker];
    // One broker: reconnect to it. Several: each connect names its broker.
    int rc = first || s->brokers.size() > 1
                 ? mosquitto_connect(s->mosq, target.host.c_str(), target.port, s->keepalive_s)
                 : mosquitto_reconnect(s->mosq);
    int saved_errno = errno;
    first = false;
    bool failed = rc != MOSQ_ERR_SUCCESS;  // no session with the broker came of this attempt
    if (rc == MOSQ_ERR_SUCCESS) {
      // A burst is read without waiting (timeout 0) while each read brings a message; the
      // loop is woken once a read brings none (or a burst's worth is queued, see push()),
      // and only then does the thread wait for the socket.
      bool reading = false;
      while (rc == MOSQ_ERR_SUCCESS && !s->is_stopping()) {
        const uint64_t before = s->received;
        rc = mosquitto_loop(s->mosq, reading ? 0 : 1000, 1);
        reading = s->received != before;
        if (!reading) {
          const int loop_errno = errno;
          s->announce(s);
          errno = loop_errno;
        }
      }
      if (rc != MOSQ_ERR_SUCCESS) s->announce(s);
      saved_errno = errno;
      if (s->is_stopping()) break;
      const bool was_up = s->connacked;
      s->connacked = false;
      Event event{Kind::disconnected, {}, describe_rc(rc, saved_errno), {}, 0, false};
      s->push(std::move(event), s);
      if (was_up) {
        backoff.reset();
        failures = 0;
      } else {
        failed = true;  // e.g. a TLS handshake or a CONNACK that failed after the TCP connect
      }
    }
    if (failed) {
      std::string why = describe_rc(rc, saved_errno);
      if (rc == MOSQ_ERR_TLS) {
        why += (s->tls_error.empty() ? "" : " (" + s->tls_error + ")") +
               std::string("; check the CA file and the broker's certificate and host name");
      }
      ++failures;
      // The first failure in a row is worth a warning; the retries that follow only at debug.
      if (failures == 1 || s->brokers.size() > 1) {
        LOG_WARN("mqtt") << s->adapter << " cannot connect to " << target.host << ":" << target.port << ": " << why
                         << (s->brokers.size() > 1 ? "; trying the next broker" : "; retrying with backoff");
      } else {
        LOG_DEBUG("mqtt") << s->adapter << " connect attempt " << failures << " failed: " << why;
      }
      s->broker = (s->broker + 1) % s->brokers.size();
    }
    s->tls_error.clear();  // the next attempt's failure says only its own reason
    if (!s->wait(backoff.next_delay_ms())) break;
  }
  // Leaving: say goodbye to the broker if still connected (the session stays on
  // the broker, clean_session is off) and give the DISCONNECT a moment to go out.
  mosquitto_disconnect(s->mosq);
  for (int i = 0; i < 5 && mosquitto_socket(s->mosq) != -1; ++i) {
    if (mosquitto_loop(s->mosq, 100, 1) != MOSQ_ERR_SUCCESS) break;
  }
  mosquitto_user_data_set(s->mosq, nullptr);
  done.set_value();
}

Session::Session(SessionOptions options, EventLoop& loop, Callbacks callbacks)
    : options_(std::move(options)), loop_(loop), callbacks_(std::move(callbacks)) {
  std::call_once(lib_once, [] { mosquitto_lib_init(); });
}

Session::~Session() { stop(); }

bool Session::start() {
  if (shared_) return true;
  if (options_.brokers.empty()) {
    LOG_ERROR("mqtt") << options_.log_name << " has no broker to connect to";
    return false;
  }
  auto s = std::make_shared<Shared>();
  s->adapter = options_.log_name;
  s->brokers = options_.brokers;
  s->keepalive_s = options_.keepalive_s;
  s->backoff = options_.backoff;
  s->max_payload = options_.max_payload;
  s->loop = &loop_;
  s->filters = filters_;
  s->owner = this;
  s->weak_self = s;
  // A fixed client id and clean_session off: the broker keeps our subscriptions
  // and queues QoS 1 messages while we are away.
  s->mosq = mosquitto_new(options_.client_id.c_str(), options_.clean_session, nullptr);
  if (!s->mosq) {
    LOG_ERROR("mqtt") << options_.log_name << " cannot create a libmosquitto client: " << std::strerror(errno);
    return false;
  }
  mosquitto_int_option(s->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  // Small packets go out at once: with Nagle's algorithm a second small write (a PUBLISH after a
  // PUBLISH, a PUBACK after a PUBACK) waits for the broker's delayed ACK, ~40 ms (bench/backplane.mjs).
  mosquitto_int_option(s->mosq, MOSQ_OPT_TCP_NODELAY, 1);
  // Packets we publish from the loop thread are written by our mosquitto thread.
  mosquitto_threaded_set(s->mosq, true);
  if (!options_.username.empty()) {
    const int rc = mosquitto_username_pw_set(s->mosq, options_.username.c_str(),
                                             options_.password.empty() ? nullptr : options_.password.c_str());
    if (rc != MOSQ_ERR_SUCCESS) {
      LOG_ERROR("mqtt") << options_.log_name << " user name refused: " << mosquitto_strerror(rc);
      return false;
    }
  }
  if (options_.tls.enabled) {
    const auto& tls = options_.tls;
    const char* ca_file = tls.ca_file.empty() ? nullptr : tls.ca_file.c_str();
    const char* ca_path = ca_file ? nullptr : "/etc/ssl/certs";
    const int rc = mosquitto_tls_set(s->mosq, ca_file, ca_path, tls.cert_file.empty() ? nullptr : tls.cert_file.c_str(),
                                     tls.key_file.empty() ? nullptr : tls.key_file.c_str(), nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      LOG_ERROR("mqtt") << options_.log_name << " TLS settings refused (check ca_file, cert_file, key_file): "
                        << mosquitto_strerror(rc);
      return false;
    }
  }
  if (!options_.will_topic.empty()) {
    const int rc = mosquitto_will_set(s->mosq, options_.will_topic.c_str(), static_cast<int>(options_.will_payload.size()),
                                      options_.will_payload.data(), 1, options_.will_retain);
    if (rc != MOSQ_ERR_SUCCESS) {
      LOG_ERROR("mqtt") << options_.log_name << " will refused: " << mosquitto_strerror(rc);
      return false;
    }
  }

  // libmosquitto reports OpenSSL's reasons ("certificate verify failed") only to its log.
  // Only with TLS: with a log callback set, libmosquitto formats a debug line (malloc,
  // vsnprintf, free) for every packet it reads or writes, two per QoS 1 message.
  if (options_.tls.enabled) mosquitto_log_callback_set(s->mosq, [](mosquitto*, void* obj, int level, const char* text) {
    if (!obj || !text || !(level & MOSQ_LOG_ERR)) return;
    auto* sh = static_cast<Shared*>(static_cast<CallbackContext*>(obj)->shared);
    if (std::strncmp(text, "OpenSSL Error", 13) == 0 && sh->tls_error.size() < 512) {
      sh->tls_error += (sh->tls_error.empty() ? "" : "; ") + std::string(text);
    }
  });
  mosquitto_connect_with_flags_callback_set(s->mosq, [](mosquitto* mosq, void* obj, int rc, int flags) {
    if (!obj) return;
    auto* sh = static_cast<Shared*>(static_cast<CallbackContext*>(obj)->shared);
    if (rc != 0) {
      const auto& broker = sh->brokers[sh->broker];
      LOG_ERROR("mqtt") << sh->adapter << " broker " << broker.host << ":" << broker.port
                        << " refused the connection: " << mosquitto_connack_string(rc)
                        << " (check username, password_file and client_id)";
      return;
    }
    sh->connacked = true;
    sh->session_present = (flags & 1) != 0;
    std::vector<std::string> filters;
    {
      std::lock_guard lock(sh->mu);
      filters = sh->filters;
    }
    // Every time, not only the first: a broker that lost its state has forgotten them.
    // "Connected" is reported once the broker has acknowledged them all, so that
    // devices count as online only when their messages can reach us.
    sh->awaiting_suback.clear();
    for (const auto& filter : filters) {
      int mid = 0;
      if (mosquitto_subscribe(mosq, &mid, filter.c_str(), 1) == MOSQ_ERR_SUCCESS) sh->awaiting_suback.insert(mid);
    }
    sh->subscribed = std::move(filters);
    if (sh->awaiting_suback.empty()) {
      sh->push(Shared::Event{Shared::Kind::connected, {}, {}, sh->subscribed, 0, sh->session_present}, sh->self());
    }
  });
  mosquitto_subscribe_callback_set(s->mosq, [](mosquitto*, void* obj, int mid, int count, const int* granted) {
    if (!obj) return;
    auto* sh = static_cast<Shared*>(static_cast<CallbackContext*>(obj)->shared);
    for (int i = 0; i < count; ++i) {
      if (granted[i] == 0x80) {
        LOG_ERROR("mqtt") << sh->adapter << " the broker refused a subscription (check its ACL)";
      }
    }
    if (!sh->connacked || sh->awaiting_suback.erase(mid) == 0 || !sh->awaiting_suback.empty()) return;
    sh->push(Shared::Event{Shared::Kind::connected, {}, {}, sh->subscribed, 0, sh->session_present}, sh->self());
  });
  mosquitto_message_callback_set(s->mosq, [](mosquitto*, void* obj, const mosquitto_message* m) {
    if (!obj || !m || !m->topic) return;
    auto* sh = static_cast<Shared*>(static_cast<CallbackContext*>(obj)->shared);
    ++sh->received;
    Shared::Event event{Shared::Kind::message, {}, {}, {}, 0, false};
    event.message.topic = m->topic;
    event.message.retained = m->retain;
    const size_t len = m->payloadlen > 0 ? static_cast<size_t>(m->payloadlen) : 0;
    if (len > sh->max_payload) {
      event.message.oversize = len;
    } else if (len > 0) {
      event.message.payload.assign(static_cast<const char*>(m->payload), len);
    }
    sh->push(std::move(event), sh->self());
  });

  if (callbacks_.published || callbacks_.qos0_written) {
    mosquitto_publish_callback_set(s->mosq, [](mosquitto*, void* obj, int mid) {
      if (!obj) return;
      auto* sh = static_cast<Shared*>(static_cast<CallbackContext*>(obj)->shared);
      Shared::Event event{Shared::Kind::published, {}, {}, {}, 0, false};
      event.mid = mid;
      sh->push(std::move(event), sh->self());
    });
  }

  std::promise<void> done;
  s->finished = done.get_future();
  s->thread = std::thread(&Shared::run, s, std::move(done));
  shared_ = std::move(s);
  return true;
}

void Session::stop() {
  if (!shared_) return;
  std::shared_ptr<Shared> s = std::move(shared_);
  {
    std::lock_guard lock(s->mu);
    s->stopping = true;
    s->inbox.clear();
  }
  s->owner = nullptr;
  s->cv.notify_all();
  // Wakes mosquitto_loop()'s select at once (the DISCONNECT is queued for the thread to write).
  if (connected_) mosquitto_disconnect(s->mosq);
  connected_ = false;
  if (s->finished.wait_for(std::chrono::seconds(2)) == std::future_status::ready) {
    s->thread.join();
  } else {
    LOG_WARN("mqtt") << options_.log_name
                     << " the broker connection is still in a blocking connect; leaving it to finish on its own";
    s->thread.detach();
  }
}

bool Session::publish(const std::string& topic, const std::string& payload, bool retain, int* mid) {
  if (!shared_ || !connected_) return false;
  const int rc = mosquitto_publish(shared_->mosq, mid, topic.c_str(), static_cast<int>(payload.size()),
                                   payload.data(), 1, retain);
  if (rc != MOSQ_ERR_SUCCESS) {
    LOG_WARN("mqtt") << options_.log_name << " topic=" << log::q(topic)
                     << " publish failed: " << mosquitto_strerror(rc);
    return false;
  }
  return true;
}

bool Session::publish_qos0(const std::string& topic, const std::string& payload) {
  if (!shared_ || !connected_) return false;
  int mid = 0;
  const int rc = mosquitto_publish(shared_->mosq, &mid, topic.c_str(), static_cast<int>(payload.size()), payload.data(),
                                   0, false);
  if (rc != MOSQ_ERR_SUCCESS) {
    LOG_WARN("mqtt") << options_.log_name << " topic=" << log::q(topic) << " publish failed: " << mosquitto_strerror(rc);
    return false;
  }
  // Its write is reported on this thread, after this returns (Session::deliver).
  if (callbacks_.qos0_written) qos0_unwritten_[mid] = payload.size();
  return true;
}

void Session::subscribe(const std::string& filter) {
  for (const auto& known : filters_) {
    if (known == filter) return;
  }
  filters_.push_back(filter);
  if (!shared_) return;
  {
    std::lock_guard lock(shared_->mu);
    for (const auto& known : shared_->filters) {
      if (known == filter) return;
    }
    shared_->filters.push_back(filter);
  }
  if (connected_) mosquitto_subscribe(shared_->mosq, nullptr, filter.c_str(), 1);
}

void Session::unsubscribe(const std::string& filter) {
  std::erase(filters_, filter);
  if (!shared_) return;
  {
    std::lock_guard lock(shared_->mu);
    std::erase(shared_->filters, filter);
  }
  if (connected_) mosquitto_unsubscribe(shared_->mosq, nullptr, filter.c_str());
}

void Session::deliver() {
  std::shared_ptr<Shared> s = shared_;
  if (!s) return;
  std::vector<Shared::Event> events;
  {
    std::lock_guard lock(s->mu);
    events.swap(s->inbox);
    s->woken = false;
  }
  s->cv.notify_all();
  for (auto& event : events) {
    if (s->owner != this) return;  // stopped by a callback
    switch (event.kind) {
      case Shared::Kind::connected:
        connected_ = true;
        session_present_ = event.session_present;
        // Filters added or removed while on_connect was running on the other thread.
        for (const auto& filter : filters_) {
          if (std::find(event.subscribed.begin(), event.subscribed.end(), filter) == event.subscribed.end()) {
            mosquitto_subscribe(s->mosq, nullptr, filter.c_str(), 1);
          }
        }
        for (const auto& filter : event.subscribed) {
          if (std::find(filters_.begin(), filters_.end(), filter) == filters_.end()) {
            mosquitto_unsubscribe(s->mosq, nullptr, filter.c_str());
          }
        }
        if (callbacks_.connected) callbacks_.connected();
        break;
      case Shared::Kind::disconnected:
        if (!connected_) break;
        connected_ = false;
        // libmosquitto frees the QoS 0 packets it had not written when the connection goes.
        if (!qos0_unwritten_.empty()) {
          size_t bytes = 0;
          for (const auto& entry : qos0_unwritten_) bytes += entry.second;
          qos0_unwritten_.clear();
          if (callbacks_.qos0_written) callbacks_.qos0_written(bytes);
        }
        if (callbacks_.disconnected) callbacks_.disconnected(event.why);
        break;
      case Shared::Kind::message:
        if (callbacks_.message) callbacks_.message(event.message);
        break;
      case Shared::Kind::published:
        if (auto q = qos0_unwritten_.find(event.mid); q != qos0_unwritten_.end()) {
          const size_t bytes = q->second;
          qos0_unwritten_.erase(q);
          callbacks_.qos0_written(bytes);
          break;
        }
        if (callbacks_.published) callbacks_.published(event.mid);
        break;
    }
  }
}

}  // namespace flatlink::mqtt
