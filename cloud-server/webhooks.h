// Notifications to the flats' webhooks (docs/configuration.md "Notifications"): when a door
// is unlocked, a device or the gateway goes offline, the instance that holds the flat's
// gateway link POSTs one JSON object to the flat's webhook URL, signed with HMAC-SHA256 under
// the flat's secret (X-Flatlink-Signature: sha256=<hex of the body's HMAC>, plus
// X-Flatlink-Timestamp), through libwebsockets' HTTP client on the cloud's own loop: nothing
// here blocks it (host names are looked up on a thread of its own). Per flat one delivery at a
// time and a bounded queue (the oldest dropped and counted); a failed delivery (no connection,
// no answer in time, not 2xx) is retried with exponential backoff and jitter, a bounded number
// of times. https URLs are verified against the system's CA certificates. The secret is never
// logged. Loop thread only.
#pragma once

#include <libwebsockets.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cloud-server/metrics.h"
#include "cloud-server/store/store_webhooks.h"
#include "common/clock.h"
#include "common/device_model.h"
#include "common/event_loop.h"

namespace flatlink::cloud {

// The events a webhook may ask for (docs/protocol.md "webhook").
inline constexpr std::string_view kWebhookEvents[] = {"door_unlocked", "device_offline", "gateway_offline"};
bool valid_webhook_event(std::string_view event);

// Whether a lock's state says unlocked (`lock`: "unlocked" / "locked", or `locked`: false /
// true); nullopt when it says neither.
std::optional<bool> lock_unlocked(const Json& state);

struct WebhookUrl {
  bool tls = false;
  std::string host;  // a name or an address (IPv6 without its brackets)
  int port = 0;
  std::string path;  // with the query; "/" at least
};
// An http or https URL without user info or fragment, at most 1024 characters; otherwise
// nullopt and `why` says what is wrong.
std::optional<WebhookUrl> parse_webhook_url(std::string_view url, std::string& why);

// Lower-case hex HMAC-SHA256 of `body` under `secret`.
std::string webhook_signature(const std::string& secret, const std::string& body);
// A new secret: 32 random bytes as hex.
std::string new_webhook_secret();

class Webhooks {
 public:
  // Retries: the delay before retry n (ms) is kBackoffMs[n-1], ±20 % jitter; kMaxAttempts in all.
  static constexpr uint32_t kBackoffMs[] = {1000, 2000, 4000, 8000};
  static constexpr int kMaxAttempts = 5;
  static constexpr size_t kQueueMax = 32;         // waiting per flat; beyond, the oldest is dropped
  static constexpr uint32_t kAttemptTimeoutMs = 10'000;

  // `ca_file`: more CA certificates for https receivers (the config's webhooks.ca_file), or "".
  Webhooks(EventLoop& loop, const Clock& clock, Metrics& metrics, std::string ca_file = {});
  ~Webhooks();
  Webhooks(const Webhooks&) = delete;
  Webhooks& operator=(const Webhooks&) = delete;

  // The store's webhooks replace the ones known (a flat whose hook is gone loses its queue).
  void configure(const std::vector<store::WebhookRow>& rows);
  bool has(const std::string& flat) const { return hooks_.contains(flat); }

  // An event of the flat: queued for its webhook if it has one that wants this event.
  // `detail` goes into the body beside flat, event, id and ts.
  void notify(const std::string& flat, const std::string& event, Json detail);

  size_t waiting(const std::string& flat) const;

 private:
  struct Hook {
    WebhookUrl url;
    std::string secret;
    std::set<std::string> events;
  };
  struct Pending {
    std::string body;
    std::string event;
    int attempts = 0;
  };
  struct FlatQueue {
    std::deque<Pending> queue;
    lws* in_flight = nullptr;          // the delivery under way
    bool resolving = false;            // its host name being looked up
    std::unique_ptr<Timer> retry;      // the backoff before the next attempt
    std::unique_ptr<Timer> deadline;   // the attempt's time bound
    unsigned status = 0;               // the answer's HTTP status
  };
  struct Attempt {  // per client connection, lws' per-session data
    std::string flat;
    std::string body;
    std::string signature;
    std::string timestamp;
    bool body_sent = false;
  };

  static int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  int handle(lws* wsi, lws_callback_reasons reason, void* in, size_t len);
  bool ensure_vhost();
  void kick(const std::string& flat);
  void connect(const std::string& flat, const std::string& address);
  void finished(const std::string& flat, bool ok, const std::string& why);
  void resolved(const std::string& flat, const std::string& host, std::optional<std::string> address);
  void resolver_main();

  EventLoop& loop_;
  const Clock& clock_;
  Metrics& metrics_;
  std::string ca_file_;
  lws_vhost* vhost_ = nullptr;
  std::map<std::string, Hook> hooks_;
  std::map<std::string, FlatQueue> queues_;
  std::unordered_map<lws*, std::unique_ptr<Attempt>> attempts_;
  std::unique_ptr<Attempt> pending_attempt_;  // during lws_client_connect_via_info
  uint64_t next_id_ = 0;
  std::string instance_tag_;  // makes the body's id unique across restarts
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  // Host names are looked up here (lws 4.1 as Debian builds it resolves synchronously).
  std::mutex lookups_mutex_;
  std::condition_variable lookups_cv_;
  std::deque<std::pair<std::string, std::string>> lookups_;  // flat, host
  bool stopping_ = false;
  std::thread resolver_;
};

}  // namespace flatlink::cloud
