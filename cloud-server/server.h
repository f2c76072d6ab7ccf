// flatlink-cloud's network side (libwebsockets server): HTTP (/healthz, the
// dashboard's static files; /metrics on its own loopback listener), gateway links
// (token in the upgrade request) and browser links (login message). The front
// door: strict RFC 6455 upgrades (400/426), an Origin allowlist (403), 401 for a
// bad gateway token, security headers, 405/414/431, connection caps per address,
// output bounded in bytes per link and in all, the handshake timeout, the message
// size cap, a per-link rate limit (gateways paced, browsers closed). Hands decoded
// messages to the Router. Loop thread only.
#pragma once

#include <libwebsockets.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cloud-server/backplane.h"
#include "cloud-server/metrics.h"
#include "cloud-server/pairing.h"
#include "cloud-server/router.h"
#include "cloud-server/streams.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

struct HttpSession;

class Server {
 public:
  Server(config::CloudConfig config, const Clock& clock = SystemClock::instance());
  ~Server();

  // What the EventLoop must be created with.
  EventLoop::Options loop_options();
  // Starts serving on the loop (created with loop_options()).
  void start(EventLoop& loop);
  // Closes every link with "going away"; `done` runs once they are closed.
  void stop(std::function<void()> done);

  Metrics& metrics() { return metrics_; }
  // Why the server asked to stop with an error (e.g. its backplane instance_id is taken); empty: it did not.
  const std::string& failure() const { return failure_; }

  // Applies a newly loaded config (SIGHUP) without dropping links: flats, users,
  // tokens (see Router::flats_changed) and limits take effect now; listen address,
  // port, TLS files and dashboard_dir only at a restart. Returns a summary for the
  // log, naming what waits for a restart. After start().
  std::string reload(config::CloudConfig next);

 public:
  class Session;

 private:
  friend class Session;
  static int http_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  static void guard_connection(lws* wsi, lws_callback_reasons reason);
  static int metrics_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  static int ws_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  int handle_http(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  int handle_ws(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  std::optional<std::string> bearer_flat(lws* wsi);
  void session_closed();
  // Why a WebSocket upgrade is refused (status and a reason for the body and the log), or 0.
  struct Refusal {
    unsigned status = 0;
    std::string reason;
    const char* extra_name = nullptr;  // one more header, e.g. "sec-websocket-version:"
    const char* extra_value = nullptr;
  };
  Refusal check_upgrade(lws* wsi, bool is_gateway, const std::string& ip);
  bool origin_allowed(lws* wsi);
  void count_unauthenticated(const std::string& ip, int delta);
  void start_metrics_listener();
  // GET /bans, POST /bans/lift[?address=A] on the metrics listener: status and body.
  std::pair<unsigned, std::string> bans_request(lws* wsi, const std::string& path, bool post);
  // POST /pair (cloud-server/pairing.h): the request's start, its body's end (the store
  // answers later, through the worker) and the answer written when it came.
  int pair_request(lws* wsi, HttpSession* http, bool post);
  int pair_body_done(lws* wsi, HttpSession* http);

  struct PerIp {
    uint32_t browsers = 0;
    uint32_t unauthenticated = 0;
  };
  std::unordered_map<std::string, PerIp> per_ip_;  // entries leave with their last browser
  size_t queued_bytes_ = 0;                        // all sessions' queued output
  std::vector<std::string> header_text_;           // what header_list_ points into
  std::vector<lws_protocol_vhost_options> header_list_;
  std::vector<lws_protocols> metrics_protocols_;
  lws_vhost* metrics_vhost_ = nullptr;

  config::CloudConfig config_;
  const Clock& clock_;
  Metrics metrics_;
  EventLoop* loop_ = nullptr;
  std::unique_ptr<Router> router_;  // with its LoginGate, which owns the password-check workers
  std::unique_ptr<Backplane> backplane_;  // after router_: destroyed first
  std::unique_ptr<StreamHub> streams_;  // device streams (cloud-server/streams.h)
  lws_retry_bo_t idle_policy_{};
  // Gateway links whose silence is watched, all checked by one timer: a timer per link would
  // cost each re-arm a walk of lws' sorted timer list, O(links) each second per link.
  std::unordered_set<Session*> watched_gateways_;
  std::unique_ptr<Timer> liveness_sweep_;
  void sweep_liveness();
  size_t sessions_ = 0;
  std::function<void()> on_stopped_;
  uint64_t next_session_id_ = 1;
  std::unordered_map<uint64_t, lws*> pending_logins_;  // POST /session requests waiting for their check
  uint64_t next_login_request_ = 1;
  std::string failure_;
  PairThrottle pair_throttle_;
  std::unordered_map<uint64_t, lws*> pairs_;  // POST /pair requests waiting for the store, by id
  uint64_t next_pair_id_ = 1;
  std::shared_ptr<int> pair_alive_ = std::make_shared<int>(0);  // store answers after destruction are dropped
};

}  // namespace flatlink::cloud
