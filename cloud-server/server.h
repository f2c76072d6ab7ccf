// flatlink-cloud's network side (libwebsockets server): HTTP (/healthz,
// /metrics, the dashboard's static files), gateway links (token in the upgrade
// request) and browser links (login message). Enforces the handshake timeout,
// the message size cap and a per-connection rate limit, then hands decoded
// messages to the Router. Loop thread only.
#pragma once

#include <libwebsockets.h>

#include <memory>
#include <string>
#include <vector>

#include "cloud-server/backplane.h"
#include "cloud-server/metrics.h"
#include "cloud-server/router.h"
#include "cloud-server/streams.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

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
  static int ws_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  int handle_http(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  int handle_ws(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  std::optional<std::string> bearer_flat(lws* wsi);
  void session_closed();

  config::CloudConfig config_;
  const Clock& clock_;
  Metrics metrics_;
  EventLoop* loop_ = nullptr;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Backplane> backplane_;  // after router_: destroyed first
  std::unique_ptr<StreamHub> streams_;  // device streams (cloud-server/streams.h)
  lws_retry_bo_t idle_policy_{};
  size_t sessions_ = 0;
  std::function<void()> on_stopped_;
  uint64_t next_session_id_ = 1;
  std::string failure_;
};

}  // namespace flatlink::cloud
