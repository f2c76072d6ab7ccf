// flatlink-cloud's libwebsockets server.
#include "cloud-server/server.h"

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cloud-link/protocol.h"
#include "cloud-link/stream_frames.h"
#include "cloud-link/stream_protocol.h"
#include "cloud-server/auth.h"
#include "cloud-server/static_files.h"
#include "cloud-server/store/store_pairing.h"
#include "cloud-server/ws_frame_guard.h"
#include "common/device_model.h"
#include "common/log.h"
#include "common/uv_loop.h"

namespace flatlink::cloud {
namespace {

constexpr const char* kHttpProtocol = "http";
constexpr const char* kMetricsProtocol = "metrics";
// Request line and headers: RFC 9110 leaves the limits to the server; these are nginx's
// large_client_header_buffers (one line 8 KiB) made stricter for a URL (we serve short paths).
constexpr int kMaxUriBytes = 4096;       // longer: 414
constexpr int kMaxHeaderBytes = 8192;    // more in all: 431
constexpr unsigned kHeaderSpace = 16384; // what lws keeps per request, so that the above are answered, not dropped

// Every HTTP answer carries these (lws adds a vhost's `headers` to each response it starts,
// its own file serving included). The dashboard uses no inline script or style attribute.
constexpr const char* kCsp =
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; manifest-src 'self'; worker-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

enum class Kind { gateway, browser };

}  // namespace

// Per-HTTP-request data (lws zeroes it): the body of a dynamic response; for POST /pair the
// request's body as it comes, its id while the store works on it, and the answer to write.
struct HttpSession {
  std::string* body;
  std::string* post;       // POST /pair or POST /session: the request body so far
  bool session;            // the body is POST /session's (else POST /pair's)
  uint64_t pair_id;        // POST /pair: its id while the store works on it
  unsigned answer_status;  // POST /pair: non-zero: write `body` as this answer (JSON) and close
  HttpAnswer* answer;      // POST /session: the answer, once the login was checked
  uint64_t request;        // POST /session: its key in Server::pending_logins_ (0: none)
};

// POST /session's body: {"flat", "user", "password"} (docs/protocol.md, "Sessions").
constexpr size_t kMaxSessionBody = 4096;

// A gateway link silent this long (not a frame, not a pong) is pinged, and again each time
// as long; silent kNotRespondingMs it is "not responding" to its flat's browsers, checked
// every kLivenessCheckMs: a frozen gateway (SIGSTOP, a dead route whose socket stays open)
// shows within 9 s, long before the link's hangup (docs/protocol.md, "gateway").
constexpr int64_t kPingAfterMs = 3000;
constexpr int64_t kNotRespondingMs = 8000;
constexpr uint32_t kLivenessCheckMs = 1000;

// One WebSocket link; the Router's Peer.
class Server::Session final : public Peer {
 public:
  Session(Server& server, lws* wsi, Kind kind, uint64_t id, std::string ip)
      : server_(server), wsi_(wsi), kind_(kind), ip_(std::move(ip)), handshake_timer_(*server.loop_, [this] {
          LOG_WARN("server") << describe() << " did not " << (kind_ == Kind::gateway ? "say hello" : "log in")
                             << " within " << server_.config_.limits.handshake_timeout_s << " s; closing";
          close(proto::close_code::kHandshakeTimeout, "handshake timeout");
        }),
        resume_timer_(*server.loop_, [this] { resume_reads(); }) {
    desc_ = std::string(kind == Kind::gateway ? "gateway" : "browser") + " link=" + std::to_string(id) + " from " + ip_;
    tokens_ = server.config_.limits.burst;
    refill_ms_ = server.clock_.mono_ms();
    handshake_timer_.start(server.config_.limits.handshake_timeout_s * 1000);
  }

  ~Session() override {
    if (server_.watched_gateways_.erase(this) != 0 && server_.watched_gateways_.empty()) server_.liveness_sweep_->cancel();
    drop_queue();
  }

  void send(std::string frame) override { queue(std::move(frame), false); }
  void send_state(std::string frame) override { queue(std::move(frame), true); }

  void close(uint16_t code, const std::string& reason) override {
    if (closing_) return;
    closing_ = true;
    close_code_ = code;
    close_reason_ = reason.substr(0, 120);
    // Flush what is queued (e.g. an error message) but never wait long for a peer that does not read.
    lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, 5);
    lws_callback_on_writable(wsi_);
  }

  const std::string& describe() const override { return desc_; }
  std::string source() const override { return ip_; }
  std::string session_cookie_hash() const override { return cookie_hash_; }
  void authenticated() override { handshake_done(); }

  void send_binary(std::string frame, uint16_t stream, uint32_t duration_us) override {
    if (closing_) return;
    bin_.set_max_ms(server_.streams_->buffer_ms());
    server_.streams_->metrics().frames_dropped += bin_.push(stream, duration_us, std::move(frame), server_.clock_.mono_ms());
    lws_callback_on_writable(wsi_);
  }

  void forget_stream(uint16_t stream) override { bin_.forget(stream); }

  // Token bucket: false when the peer sends faster than allowed.
  bool take_token() {
    refill();
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  // A gateway over its rate is paced, not closed: its socket is not read until the bucket
  // holds a token again (TCP backpressure holds the gateway; its outbox keeps the backlog).
  void pace() {
    refill();
    if (tokens_ >= 1.0 || closing_) return;
    const double rate = std::max<double>(1.0, server_.config_.limits.messages_per_s);
    const auto wait_ms = static_cast<uint32_t>(std::ceil((1.0 - tokens_) * 1000.0 / rate));
    ++server_.metrics_.gateway_paced;
    pause_reads(kPausedForRate);
    resume_timer_.start(std::max<uint32_t>(1, wait_ms));
  }

  // A gateway link: watched for silence from now on.
  void watch_liveness() {
    last_rx_ms_ = server_.clock_.mono_ms();
    server_.watched_gateways_.insert(this);
    if (!server_.liveness_sweep_) {
      server_.liveness_sweep_ = std::make_unique<Timer>(*server_.loop_, [s = &server_] { s->sweep_liveness(); });
    }
    if (!server_.liveness_sweep_->active()) server_.liveness_sweep_->start(kLivenessCheckMs);
  }

  // One gateway link's silence, at each sweep (Server::sweep_liveness).
  void check_liveness() {
    if (closing_) return;
    const int64_t now = server_.clock_.mono_ms();
    if (paused_ != 0) last_rx_ms_ = now;  // we are not reading: its silence is ours
    const int64_t silent = now - last_rx_ms_;
    if (silent >= kPingAfterMs && now - last_ping_ms_ >= kPingAfterMs) {
      last_ping_ms_ = now;
      ping_due_ = true;
      lws_callback_on_writable(wsi_);
    }
    if (silent >= kNotRespondingMs && responding_) {
      responding_ = false;
      LOG_WARN("server") << describe() << " flat=" << flat_ << " not responding: nothing received for " << silent
                         << " ms";
      server_.router_->gateway_responding(*this, false);
    }
  }

  // A frame or a pong came from the peer.
  void heard() {
    last_rx_ms_ = server_.clock_.mono_ms();
    if (!responding_) {
      responding_ = true;
      LOG_INFO("server") << describe() << " flat=" << flat_ << " responding again";
      server_.router_->gateway_responding(*this, true);
    }
  }

  int writeable() {
    if (ping_due_ && !closing_) {
      ping_due_ = false;
      // With a payload: an empty ping got no RECEIVE_PONG here (lws 4.1.6), so no liveness.
      if (!write_frame("liveness", LWS_WRITE_PING)) return -1;
      if (!out_.empty() || !bin_.empty()) lws_callback_on_writable(wsi_);
      return 0;
    }
    if (!out_.empty()) {
      if (!write_frame(out_.front().text, LWS_WRITE_TEXT)) return -1;
      account(-static_cast<int64_t>(out_.front().text.size()));
      out_.pop_front();
      // Reads resume once the backlog is down to half the soft limit (hysteresis).
      if ((paused_ & kPausedForOutput) && queued_bytes_ <= server_.config_.limits.browser_queue_soft_bytes / 2) {
        over_soft_ = false;
        resume_reads(kPausedForOutput);
      }
      if (!out_.empty() || !bin_.empty() || closing_) lws_callback_on_writable(wsi_);
      return 0;
    }
    // Stream frames only when no text waits: status and results are never held up by audio.
    if (!bin_.empty() && !closing_) {
      const uint64_t dropped_before = bin_.dropped();
      auto frame = bin_.pop(server_.clock_.mono_ms());
      server_.streams_->metrics().frames_dropped += bin_.dropped() - dropped_before;
      if (frame && !write_frame(*frame, LWS_WRITE_BINARY)) return -1;
      if (!bin_.empty()) lws_callback_on_writable(wsi_);
      return 0;
    }
    if (closing_) {
      lws_close_reason(wsi_, static_cast<lws_close_status>(close_code_),
                       reinterpret_cast<unsigned char*>(close_reason_.data()), close_reason_.size());
      return -1;
    }
    return 0;
  }

  // Output is bounded in bytes (Redis' client-output-buffer-limit): a browser over its soft
  // limit (a gateway's burst of statuses, history it asks for and does not read) loses its
  // queued state frames for one fresh snapshot (again each time it passes the soft limit), and
  // its reads pause until it catches up, so it cannot ask for more; results, errors and history
  // replies stay. Over the hard limit,
  // or over the soft one while the instance's budget is spent, it does not read: closed.
  void queue(std::string frame, bool state) {
    if (closing_) return;
    const auto& limits = server_.config_.limits;
    const size_t size = frame.size();
    // Each time the queue passes the soft limit again its state frames go again: a browser
    // that stays behind is kept at one snapshot and what came after it, never closed for state.
    if (kind_ == Kind::browser && queued_bytes_ + size > limits.browser_queue_soft_bytes) {
      if (!over_soft_) {
        over_soft_ = true;
        pause_reads(kPausedForOutput);
      }
      const size_t before = queued_bytes_;
      std::erase_if(out_, [](const Frame& f) { return f.state; });
      recount();
      if (queued_bytes_ < before) {
        LOG_WARN("server") << describe() << " is " << before << " bytes behind; " << before - queued_bytes_
                           << " bytes of queued state replaced by a snapshot";
        if (!state) push(std::move(frame), false);  // a state frame is in the snapshot
        server_.router_->resync_browser(*this);
        return;
      }
    }
    const size_t hard = kind_ == Kind::gateway ? limits.gateway_queue_hard_bytes : limits.browser_queue_hard_bytes;
    const bool budget_spent = server_.queued_bytes_ + size > limits.output_budget_bytes;
    if (queued_bytes_ + size > hard || (budget_spent && kind_ == Kind::browser && over_soft_)) {
      ++server_.metrics_.slow_closed;
      LOG_WARN("server") << describe() << " is not reading (" << queued_bytes_ << " bytes queued"
                         << (budget_spent ? ", the output budget is spent" : "") << "); closing";
      drop_queue();
      close(proto::close_code::kPolicyViolation, "too slow");
      return;
    }
    push(std::move(frame), state);
  }

  // One WebSocket message; false when the link is broken (the caller drops it).
  bool write_frame(const std::string& frame, lws_write_protocol kind) {
    buf_.resize(LWS_PRE + frame.size());
    std::memcpy(buf_.data() + LWS_PRE, frame.data(), frame.size());
    const int n = lws_write(wsi_, buf_.data() + LWS_PRE, frame.size(), kind);
    if (n >= static_cast<int>(frame.size())) return true;
    LOG_WARN("server") << describe() << " write failed (" << n << " of " << frame.size() << " bytes); dropping the link";
    return false;
  }

  // From inside this link's own callback: send the close frame now; the caller returns -1.
  // (A peer that floods is not owed the replies still queued for it.)
  int close_now(uint16_t code, const char* reason) {
    closing_ = true;
    drop_queue();
    lws_close_reason(wsi_, static_cast<lws_close_status>(code),
                     reinterpret_cast<unsigned char*>(const_cast<char*>(reason)), std::strlen(reason));
    return -1;
  }

  // A gateway said hello, or a browser logged in: the handshake deadline stops holding.
  void handshake_done() {
    handshake_timer_.cancel();
    if (!authenticated_) {
      authenticated_ = true;
      server_.count_unauthenticated(ip_, kind_ == Kind::browser ? -1 : 0);
    }
  }

  Server& server_;
  lws* wsi_;
  Kind kind_;
  std::string ip_;
  bool authenticated_ = false;
  std::string flat_;     // gateways: the flat their token names
  std::string cookie_hash_;  // browsers: the SHA-256 of the session cookie of the upgrade
  std::string rx_;       // a message being reassembled
  std::string bin_rx_;   // a binary frame being reassembled
  bool bin_discarding_ = false;
  bool discarding_ = false;  // the rest of an oversized message
  bool closing_ = false;

 private:
  static constexpr int kPausedForRate = 1;
  static constexpr int kPausedForOutput = 2;

  void refill() {
    const int64_t now = server_.clock_.mono_ms();
    const auto& limits = server_.config_.limits;
    tokens_ = std::min<double>(limits.burst, tokens_ + (now - refill_ms_) * limits.messages_per_s / 1000.0);
    refill_ms_ = now;
  }
  void pause_reads(int why) {
    if (paused_ == 0) lws_rx_flow_control(wsi_, 0);
    paused_ |= why;
  }
  void resume_reads(int why = kPausedForRate) {
    const int before = paused_;
    paused_ &= ~why;
    if (before != 0 && paused_ == 0 && !closing_) lws_rx_flow_control(wsi_, 1);
  }
  void push(std::string frame, bool state) {
    account(static_cast<int64_t>(frame.size()));
    out_.push_back(Frame{std::move(frame), state});
    lws_callback_on_writable(wsi_);
  }
  void account(int64_t delta) {
    queued_bytes_ = static_cast<size_t>(static_cast<int64_t>(queued_bytes_) + delta);
    server_.queued_bytes_ = static_cast<size_t>(static_cast<int64_t>(server_.queued_bytes_) + delta);
    server_.metrics_.output_queued_bytes = static_cast<int64_t>(server_.queued_bytes_);
  }
  void recount() {
    size_t bytes = 0;
    for (const auto& f : out_) bytes += f.text.size();
    account(static_cast<int64_t>(bytes) - static_cast<int64_t>(queued_bytes_));
  }
  void drop_queue() {
    out_.clear();
    recount();
  }

  std::string desc_;
  struct Frame {
    std::string text;
    bool state;  // superseded by a snapshot (Peer::send_state)
  };
  std::deque<Frame> out_;
  size_t queued_bytes_ = 0;
  bool over_soft_ = false;
  int paused_ = 0;  // kPausedFor… bits: reads are off while any is set
  stream::FrameQueue bin_;  // stream frames, bounded in time per stream
  std::vector<unsigned char> buf_;
  uint16_t close_code_ = 0;
  std::string close_reason_;
  double tokens_ = 0;
  int64_t refill_ms_ = 0;
  Timer handshake_timer_;
  Timer resume_timer_;
  int64_t last_rx_ms_ = 0;
  int64_t last_ping_ms_ = 0;
  bool ping_due_ = false;
  bool responding_ = true;
};

namespace {
struct WsSlot {
  Server::Session* session;  // NOLINT: owned by the server, freed on LWS_CALLBACK_CLOSED
};
}  // namespace

Server::Server(config::CloudConfig config, const Clock& clock) : config_(std::move(config)), clock_(clock) {
  // Idle links are pinged by lws, and dropped if nothing comes back.
  idle_policy_.secs_since_valid_ping = 30;
  idle_policy_.secs_since_valid_hangup = 45;
}

Server::~Server() = default;

EventLoop::Options Server::loop_options() {
  EventLoop::Options options;
  lws_protocols http{};
  http.name = kHttpProtocol;
  http.callback = &Server::http_callback;
  http.per_session_data_size = sizeof(HttpSession);
  http.user = this;
  lws_protocols gateway{};
  gateway.name = proto::kGatewaySubprotocol.data();
  gateway.callback = &Server::ws_callback;
  gateway.per_session_data_size = sizeof(WsSlot);
  // lws hands larger messages over in pieces of this size, joined in Session::rx_ (and
  // bin_rx_) under limits.max_message_bytes. Small, because it is allocated per link:
  // 512 bytes keep an idle link at ~3.7 KiB of RSS (16 KiB made it ~6.4; bench/analysis.md).
  gateway.rx_buffer_size = 512;
  gateway.user = this;
  lws_protocols browser = gateway;
  browser.name = proto::kBrowserSubprotocol.data();
  options.protocols = {http, gateway, browser};
  // Security headers on every HTTP answer (and on the 101 of an upgrade).
  header_text_ = {"content-security-policy:", kCsp, "x-content-type-options:", "nosniff",
                  "x-frame-options:", "DENY", "referrer-policy:", "no-referrer"};
  if (!config_.tls.cert_file.empty()) {
    header_text_.push_back("strict-transport-security:");
    header_text_.push_back("max-age=31536000");
  }
  header_list_.assign(header_text_.size() / 2, lws_protocol_vhost_options{});
  for (size_t i = 0; i < header_list_.size(); ++i) {
    header_list_[i].name = header_text_[2 * i].c_str();
    header_list_[i].value = header_text_[2 * i + 1].c_str();
    header_list_[i].next = i + 1 < header_list_.size() ? &header_list_[i + 1] : nullptr;
  }
  if (config_.event_loop == config::CloudConfig::EventLoopKind::libuv) options.foreign = make_uv_loop();
  options.tune = [this](lws_context_creation_info& info) {
    info.headers = header_list_.data();
    info.max_http_header_data = kHeaderSpace;
    info.port = config_.port;
    info.iface = config_.listen_address.c_str();
    info.timeout_secs = config_.limits.handshake_timeout_s;
    info.retry_and_idle_policy = &idle_policy_;
    info.alpn = "http/1.1";
    // DISABLE_OS_CA_CERTS: the cloud opens no TLS connection through lws (the backplane has
    // its own), so its client TLS context needs no CA bundle (~1 MiB of heap otherwise).
    info.options |= LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    if (!config_.tls.cert_file.empty()) {
      info.ssl_cert_filepath = config_.tls.cert_file.c_str();
      info.ssl_private_key_filepath = config_.tls.key_file.c_str();
      // TLS 1.2 with forward secrecy and AEAD only (Mozilla's "intermediate" list), and 1.3.
      info.ssl_cipher_list =
          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
          "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
      info.tls1_3_plus_cipher_list = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
      info.ssl_options_set = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
                             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION;
    }
  };
  return options;
}

// /metrics on a listener of its own (loopback by default): a second vhost on the loop.
void Server::start_metrics_listener() {
  if (config_.metrics.port == 0) return;
  lws_protocols metrics{};
  metrics.name = kMetricsProtocol;
  metrics.callback = &Server::metrics_callback;
  metrics.per_session_data_size = sizeof(HttpSession);
  metrics.user = this;
  metrics_protocols_ = {metrics, lws_protocols{}};
  lws_context_creation_info info{};
  info.port = config_.metrics.port;
  info.iface = config_.metrics.listen_address.c_str();
  info.protocols = metrics_protocols_.data();
  info.vhost_name = "metrics";
  info.headers = header_list_.data();
  info.timeout_secs = 10;
  metrics_vhost_ = lws_create_vhost(loop_->context(), &info);
  if (!metrics_vhost_) {
    LOG_ERROR("server") << "metrics listener not started on " << config_.metrics.listen_address << ":"
                        << config_.metrics.port << " (in use?); /metrics is unavailable";
    return;
  }
  LOG_INFO("server") << "metrics on http://" << config_.metrics.listen_address << ":" << config_.metrics.port
                     << "/metrics";
}

void Server::start(EventLoop& loop) {
  loop_ = &loop;
  ws_guard::set_loop_thread();  // lws reads on this thread, the loop's
  router_ = std::make_unique<Router>(config_, loop, clock_, metrics_);
  if (config_.backplane.enabled) {
    backplane_ = std::make_unique<Backplane>(config_.backplane, config_.limits, loop, clock_, metrics_, *router_);
    router_->attach_backplane(backplane_.get());  // the accounts' digest is the router's to publish
    backplane_->on_fatal([this](const std::string& why) {
      failure_ = why;
      loop_->request_stop();
    });
    if (!backplane_->start()) {
      LOG_ERROR("server") << "backplane not started (see above); this instance runs alone";
      router_->attach_backplane(nullptr);
      backplane_.reset();
    }
  }
  streams_ = std::make_unique<StreamHub>(config_, *router_, loop, clock_);
  router_->attach_streams(streams_.get());
  if (backplane_) {
    streams_->attach_backplane(backplane_.get());
    backplane_->on_stream_drops([this](uint64_t frames) { streams_->metrics().frames_dropped += frames; });
  }
  start_metrics_listener();
  LOG_INFO("server") << "listening on " << (config_.tls.cert_file.empty() ? "ws" : "wss") << "://"
                     << config_.listen_address << ":" << config_.port << "/ for " << config_.flats.size() << " flats (event loop: "
                     << loop.backend() << ")";
}

std::string Server::reload(config::CloudConfig next) {
  std::vector<std::string> restart;
  if (next.listen_address != config_.listen_address || next.port != config_.port) restart.push_back("listen address/port");
  if (next.tls.cert_file != config_.tls.cert_file || next.tls.key_file != config_.tls.key_file) restart.push_back("tls");
  if (!next.dashboard_dir.empty() && next.dashboard_dir != config_.dashboard_dir) restart.push_back("dashboard_dir");
  if (next.backplane != config_.backplane) restart.push_back("backplane");
  if (next.metrics != config_.metrics) restart.push_back("metrics listener");
  if (next.event_loop != config_.event_loop) restart.push_back("event_loop");
  if (next.login.workers != config_.login.workers || next.login.queue_per_source != config_.login.queue_per_source ||
      next.login.queue_total != config_.login.queue_total) {
    restart.push_back("login workers and queues");
  }
  config_.log_level = next.log_level;
  config_.limits = next.limits;  // read per use: new connections and messages see them
  config_.login = next.login;    // bans and delays: from the next failure on (bans in force stay)
  config_.allowed_origins = next.allowed_origins;
  std::vector<config::FlatConfig> before = std::exchange(config_.flats, std::move(next.flats));
  std::string summary = router_->flats_changed(before);
  if (!restart.empty()) {
    summary += "; changed but applied only at a restart:";
    for (const auto& what : restart) summary += " " + what;
  }
  return summary;
}

void Server::stop(std::function<void()> done) {
  LOG_INFO("server") << "stopping: closing " << sessions_ << " links";
  // Once the links are closed (their releases queued), leave the backplane while the loop still runs.
  done = [this, done = std::move(done)] {
    if (backplane_) backplane_->stop();
    done();
  };
  if (sessions_ == 0) {
    done();
    return;
  }
  on_stopped_ = std::move(done);
  router_->close_all();
}

// Every watched gateway link, once per kLivenessCheckMs: pinged when silent, "not responding"
// when silent too long (Session::check_liveness).
void Server::sweep_liveness() {
  const std::vector<Session*> watched(watched_gateways_.begin(), watched_gateways_.end());
  for (Session* session : watched) {
    if (watched_gateways_.count(session) != 0) session->check_liveness();
  }
  if (!watched_gateways_.empty()) liveness_sweep_->start(kLivenessCheckMs);
}

void Server::session_closed() {
  --sessions_;
  if (sessions_ == 0 && on_stopped_) std::exchange(on_stopped_, nullptr)();
}

int Server::http_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  guard_connection(wsi, reason);
  const lws_protocols* protocol = lws_get_protocol(wsi);
  auto* self = protocol ? static_cast<Server*>(protocol->user) : nullptr;
  if (!self || !self->loop_) return lws_callback_http_dummy(wsi, reason, user, in, len);
  return self->handle_http(wsi, reason, user, in, len);
}

int Server::metrics_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  return http_callback(wsi, reason, user, in, len);
}

int Server::ws_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  guard_connection(wsi, reason);
  const lws_protocols* protocol = lws_get_protocol(wsi);
  auto* self = protocol ? static_cast<Server*>(protocol->user) : nullptr;
  if (!self || !self->loop_) return 0;
  return self->handle_ws(wsi, reason, user, in, len);
}

namespace {

// Bytes of all headers lws parsed (a close bound: each counted with its separators).
int header_bytes(lws* wsi) {
  int total = 0;
  for (int t = 0; t < WSI_TOKEN_COUNT; ++t) {
    const int n = lws_hdr_total_length(wsi, static_cast<lws_token_indexes>(t));
    if (n > 0) total += n + 4;  // ": " and CRLF, roughly; a name is at least that long too
  }
  return total;
}

// A complete short answer of our own, written at once (lws adds the vhost's security
// headers); the connection closes after it. False if it could not be written.
bool write_answer(lws* wsi, unsigned status, std::string_view body, const char* extra_name = nullptr,
                  const char* extra_value = nullptr, const char* type = "text/plain; charset=utf-8") {
  std::vector<unsigned char> buf(LWS_PRE + 2048 + body.size());
  unsigned char* start = buf.data() + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = buf.data() + buf.size() - body.size() - 1;
  const auto value = [](const char* v) { return reinterpret_cast<const unsigned char*>(v); };
  if (lws_add_http_header_status(wsi, status, &p, end) ||
      lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, value(type), static_cast<int>(std::strlen(type)),
                                   &p, end) ||
      lws_add_http_header_content_length(wsi, body.size(), &p, end) ||
      lws_add_http_header_by_name(wsi, value("connection:"), value("close"), 5, &p, end) ||
      (extra_name && lws_add_http_header_by_name(wsi, value(extra_name), value(extra_value),
                                                 static_cast<int>(std::strlen(extra_value)), &p, end)) ||
      lws_finalize_http_header(wsi, &p, end)) {
    return false;
  }
  std::memcpy(p, body.data(), body.size());
  p += body.size();
  const auto n = static_cast<int>(p - start);
  return lws_write(wsi, start, static_cast<size_t>(n), LWS_WRITE_HTTP_HEADERS) == n;
}

std::string header(lws* wsi, lws_token_indexes token);
std::string peer_address(lws* wsi);

// A static file's 304: its validator, and Vary when the file has a gzip variant.
bool write_not_modified(lws* wsi, const std::string& etag, bool vary) {
  unsigned char buf[LWS_PRE + 512];
  unsigned char* start = buf + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = buf + sizeof buf - 1;
  const auto value = [](const char* v) { return reinterpret_cast<const unsigned char*>(v); };
  if (lws_add_http_header_status(wsi, HTTP_STATUS_NOT_MODIFIED, &p, end) ||
      lws_add_http_header_content_length(wsi, 0, &p, end) ||
      lws_add_http_header_by_name(wsi, value("etag:"), value(etag.c_str()), static_cast<int>(etag.size()), &p, end) ||
      lws_add_http_header_by_name(wsi, value("cache-control:"), value("no-cache"), 8, &p, end) ||
      (vary && lws_add_http_header_by_name(wsi, value("vary:"), value("Accept-Encoding"), 15, &p, end)) ||
      lws_add_http_header_by_name(wsi, value("connection:"), value("close"), 5, &p, end) ||
      lws_finalize_http_header(wsi, &p, end)) {
    return false;
  }
  const auto n = static_cast<int>(p - start);
  return lws_write(wsi, start, static_cast<size_t>(n), LWS_WRITE_HTTP_HEADERS) == n;
}

// The answer to POST /session: JSON, never cached, with the session cookie when one was made.
bool write_session_answer(lws* wsi, const HttpAnswer& answer) {
  std::vector<unsigned char> buf(LWS_PRE + 2048 + answer.body.size());
  unsigned char* start = buf.data() + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = buf.data() + buf.size() - answer.body.size() - 1;
  const auto value = [](const std::string& v) { return reinterpret_cast<const unsigned char*>(v.c_str()); };
  const std::string type = "application/json", no_store = "no-store", close = "close";
  if (lws_add_http_header_status(wsi, answer.status, &p, end) ||
      lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, value(type), int(type.size()), &p, end) ||
      lws_add_http_header_content_length(wsi, answer.body.size(), &p, end) ||
      lws_add_http_header_by_name(wsi, value("cache-control:"), value(no_store), int(no_store.size()), &p, end) ||
      lws_add_http_header_by_name(wsi, value("connection:"), value(close), int(close.size()), &p, end) ||
      (!answer.set_cookie.empty() &&
       lws_add_http_header_by_name(wsi, value("set-cookie:"), value(answer.set_cookie), int(answer.set_cookie.size()),
                                   &p, end)) ||
      lws_finalize_http_header(wsi, &p, end)) {
    return false;
  }
  std::memcpy(p, answer.body.data(), answer.body.size());
  p += answer.body.size();
  const auto n = static_cast<int>(p - start);
  return lws_write(wsi, start, static_cast<size_t>(n), LWS_WRITE_HTTP_HEADERS) == n;
}

}  // namespace

int Server::handle_http(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  auto* http = static_cast<HttpSession*>(user);
  const bool metrics_listener = lws_get_vhost(wsi) == metrics_vhost_ && metrics_vhost_;
  switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
      // A WebSocket upgrade that named none of our subprotocols.
      LOG_WARN("server") << "WebSocket upgrade without a flatlink subprotocol refused";
      ++metrics_.refused_upgrades_invalid;
      write_answer(wsi, HTTP_STATUS_BAD_REQUEST, "a WebSocket needs the subprotocol flatlink-gateway.v1 or flatlink-browser.v1\n");
      return 1;

    case LWS_CALLBACK_HTTP: {
      const std::string path(static_cast<const char*>(in), len);
      char* uri = nullptr;
      int uri_len = 0;
      const int method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
      if (uri_len > kMaxUriBytes || header_bytes(wsi) > kMaxHeaderBytes) {
        ++metrics_.refused_http;
        const bool long_uri = uri_len > kMaxUriBytes;
        write_answer(wsi, long_uri ? HTTP_STATUS_REQ_URI_TOO_LONG : 431,
                     long_uri ? "URI too long\n" : "request header fields too large\n");
        return -1;
      }
      if (metrics_listener && (path == "/bans" || path == "/bans/lift")) {
        auto [code, text] = bans_request(wsi, path, method == LWSHUMETH_POST);
        write_answer(wsi, code, text, code == HTTP_STATUS_METHOD_NOT_ALLOWED ? "allow:" : nullptr,
                     path == "/bans" ? "GET" : "POST");
        return -1;
      }
      if (!metrics_listener && path == "/pair") return pair_request(wsi, http, method == LWSHUMETH_POST);
      if (!metrics_listener && path == "/session") {
        if (method != LWSHUMETH_POST) {
          ++metrics_.refused_http;
          write_answer(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "POST /session\n", "allow:", "POST");
          return -1;
        }
        if (!origin_allowed(wsi)) {
          ++metrics_.refused_upgrades_origin;
          write_answer(wsi, HTTP_STATUS_FORBIDDEN, "origin not allowed\n");
          return -1;
        }
        const std::string length = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
        if (length.empty() || length.size() > 6 || length.find_first_not_of("0123456789") != std::string::npos ||
            std::stoul(length) > kMaxSessionBody) {
          ++metrics_.refused_http;
          write_answer(wsi, length.empty() ? 411 : HTTP_STATUS_REQ_ENTITY_TOO_LARGE,
                       "a JSON body of at most 4096 bytes with its Content-Length\n");
          return -1;
        }
        http->post = new std::string;
        http->session = true;
        return 0;  // the body follows (LWS_CALLBACK_HTTP_BODY)
      }
      if (method != LWSHUMETH_GET && method != LWSHUMETH_HEAD) {
        ++metrics_.refused_http;
        write_answer(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "method not allowed\n", "allow:", "GET, HEAD");
        return -1;
      }
      int status = HTTP_STATUS_OK;
      std::string body;
      const char* type = "text/plain; charset=utf-8";
      if (path == "/healthz") {
        body = "ok\n";
      } else if (path == "/metrics" && metrics_listener) {
        metrics_.active_bans = static_cast<int64_t>(router_->login_gate().throttle().bans().size());
        body = metrics_.render() + streams_->metrics().render();
        type = "text/plain; version=0.0.4; charset=utf-8";
      } else if (!metrics_listener && !config_.dashboard_dir.empty() && path.find("..") == std::string::npos) {
        std::string file = config_.dashboard_dir + (path == "/" ? "/index.html" : path);
        struct stat st {};
        if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
          const char* mime = extra_media_type(file);
          if (!mime) mime = lws_get_mimetype(file.c_str(), nullptr);
          // The build's gzip variant beside the file (cmake/dashboard_stage.cmake), sent to a
          // browser that accepts gzip; the answer then varies with Accept-Encoding. Each
          // variant has its own validator: the browser keeps the file and asks each time
          // (no-cache) whether it changed; an unchanged one is a 304 without a body.
          const std::string gz_file = file + ".gz";
          struct stat gz_st {};
          const bool has_gzip = ::stat(gz_file.c_str(), &gz_st) == 0 && S_ISREG(gz_st.st_mode);
          const bool send_gzip = has_gzip && accepts_gzip(header(wsi, WSI_TOKEN_HTTP_ACCEPT_ENCODING));
          const std::string etag = send_gzip ? gzip_etag(gz_st) : file_etag(st);
          if (header(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH) == etag) {
            write_not_modified(wsi, etag, has_gzip);
            return -1;
          }
          unsigned char extra[512];
          unsigned char* p = extra;
          unsigned char* const extra_end = extra + sizeof extra;
          const auto value = [](const std::string& v) { return reinterpret_cast<const unsigned char*>(v.c_str()); };
          const std::string no_cache = "no-cache", gzip = "gzip", vary = "Accept-Encoding";
          if (lws_add_http_header_by_name(wsi, value("etag:"), value(etag), static_cast<int>(etag.size()), &p,
                                          extra_end) ||
              lws_add_http_header_by_name(wsi, value("cache-control:"), value(no_cache),
                                          static_cast<int>(no_cache.size()), &p, extra_end) ||
              (send_gzip && lws_add_http_header_by_name(wsi, value("content-encoding:"), value(gzip),
                                                        static_cast<int>(gzip.size()), &p, extra_end)) ||
              (has_gzip && lws_add_http_header_by_name(wsi, value("vary:"), value(vary),
                                                       static_cast<int>(vary.size()), &p, extra_end))) {
            return 1;
          }
          const int n = lws_serve_http_file(wsi, (send_gzip ? gz_file : file).c_str(),
                                            mime ? mime : "application/octet-stream",
                                            reinterpret_cast<const char*>(extra), static_cast<int>(p - extra));
          if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi))) return -1;
          return 0;
        }
        status = HTTP_STATUS_NOT_FOUND;
        body = "not found\n";
      } else {
        status = HTTP_STATUS_NOT_FOUND;
        body = "not found\n";
      }
      std::vector<unsigned char> buf(LWS_PRE + 2048);
      unsigned char* start = buf.data() + LWS_PRE;
      unsigned char* p = start;
      unsigned char* end = buf.data() + buf.size() - 1;
      if (lws_add_http_common_headers(wsi, static_cast<unsigned>(status), type, body.size(), &p, end) ||
          lws_finalize_write_http_header(wsi, start, &p, end)) {
        return 1;
      }
      if (method == LWSHUMETH_HEAD) {
        if (lws_http_transaction_completed(wsi)) return -1;
        return 0;
      }
      http->body = new std::string(std::move(body));
      lws_callback_on_writable(wsi);
      return 0;
    }

    case LWS_CALLBACK_HTTP_BODY:
      if (!http || !http->post) return lws_callback_http_dummy(wsi, reason, user, in, len);
      if (http->session) {
        if (http->post->size() + len > kMaxSessionBody) return -1;
      } else if (http->post->size() + len > kPairRequestMaxBytes) {
        write_answer(wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, "{\"error\": \"the request is too large\"}\n", nullptr,
                     nullptr, "application/json");
        return -1;
      }
      http->post->append(static_cast<const char*>(in), len);
      return 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
      if (!http || !http->post) return lws_callback_http_dummy(wsi, reason, user, in, len);
      if (!http->session) return pair_body_done(wsi, http);
      const Json j = Json::parse(*http->post, nullptr, false);
      delete http->post;
      http->post = nullptr;
      proto::Login login;
      const auto field = [&](const char* key, std::string& out) {
        auto it = j.is_object() ? j.find(key) : j.end();
        if (!j.is_object() || it == j.end() || !it->is_string()) return false;
        out = it->get<std::string>();
        return out.size() <= 256;
      };
      if (!field("flat", login.flat) || !field("user", login.user) || !field("password", login.password) ||
          !valid_id(login.flat) || login.user.empty()) {
        ++metrics_.refused_http;
        write_session_answer(wsi, {HTTP_STATUS_BAD_REQUEST, R"({"error":"invalid_login"})", ""});
        return -1;
      }
      const uint64_t request = next_login_request_++;
      http->request = request;
      pending_logins_[request] = wsi;
      const std::string ip = peer_address(wsi);
      const std::string client = ip + " " + header(wsi, WSI_TOKEN_HTTP_USER_AGENT).substr(0, 120);
      router_->http_login(ip, client, login, !config_.tls.cert_file.empty(), [this, request](HttpAnswer answer) {
        auto it = pending_logins_.find(request);
        if (it == pending_logins_.end()) return;  // the client left
        auto* pending = static_cast<HttpSession*>(lws_wsi_user(it->second));
        if (!pending || pending->answer) return;
        pending->answer = new HttpAnswer(std::move(answer));
        lws_callback_on_writable(it->second);
      });
      return 0;
    }

    case LWS_CALLBACK_HTTP_WRITEABLE: {
      if (http && http->answer) {
        write_session_answer(wsi, *http->answer);
        return -1;  // connection: close
      }
      if (http && http->answer_status && http->body) {
        write_answer(wsi, http->answer_status, *http->body, "cache-control:", "no-store", "application/json");
        return -1;
      }
      if (!http || !http->body) return lws_callback_http_dummy(wsi, reason, user, in, len);
      std::vector<unsigned char> buf(LWS_PRE + http->body->size());
      std::memcpy(buf.data() + LWS_PRE, http->body->data(), http->body->size());
      const int n = lws_write(wsi, buf.data() + LWS_PRE, http->body->size(), LWS_WRITE_HTTP_FINAL);
      delete http->body;
      http->body = nullptr;
      if (n < 0) return -1;
      if (lws_http_transaction_completed(wsi)) return -1;
      return 0;
    }

    case LWS_CALLBACK_CLOSED_HTTP:
      if (http && http->body) {
        delete http->body;
        http->body = nullptr;
      }
      if (http && http->post) delete std::exchange(http->post, nullptr);
      if (http && http->pair_id) pairs_.erase(http->pair_id);  // its answer, when it comes, is dropped
      if (http && http->request) pending_logins_.erase(std::exchange(http->request, 0));
      if (http && http->answer) delete std::exchange(http->answer, nullptr);
      return 0;

    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

std::optional<std::string> Server::bearer_flat(lws* wsi) {
  const int len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
  if (len <= 0 || len > 1024) return std::nullopt;
  std::string header(static_cast<size_t>(len) + 1, '\0');
  if (lws_hdr_copy(wsi, header.data(), len + 1, WSI_TOKEN_HTTP_AUTHORIZATION) < 0) return std::nullopt;
  header.resize(static_cast<size_t>(len));
  constexpr std::string_view prefix = "Bearer ";
  if (header.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  return router_->flat_for_token(std::string_view(header).substr(prefix.size()));
}

std::pair<unsigned, std::string> Server::bans_request(lws* wsi, const std::string& path, bool post) {
  if (path == "/bans") {
    if (post) return {HTTP_STATUS_METHOD_NOT_ALLOWED, "GET /bans\n"};
    std::string text;
    for (const auto& ban : router_->login_gate().throttle().bans()) {
      text += ban.source + " " + std::to_string((ban.remaining_ms + 999) / 1000) + " s left, " +
              std::to_string(ban.failures) + " failed logins\n";
    }
    return {HTTP_STATUS_OK, text.empty() ? "no bans\n" : text};
  }
  if (!post) return {HTTP_STATUS_METHOD_NOT_ALLOWED, "POST /bans/lift[?address=A]\n"};
  char buf[160] = "";
  // lws copies the whole "address=…" fragment into buf and returns where its value starts.
  const char* value = lws_get_urlarg_by_name(wsi, "address=", buf, sizeof buf);
  const std::string address = value ? value : "";
  const size_t lifted = router_->login_gate().throttle().lift(address);
  metrics_.active_bans = static_cast<int64_t>(router_->login_gate().throttle().bans().size());
  LOG_WARN("server") << "login: " << lifted << " ban(s) lifted by the operator"
                     << (address.empty() ? std::string(" (all)") : " for address " + address);
  return {HTTP_STATUS_OK, std::to_string(lifted) + " lifted\n"};
}

namespace {

std::string header(lws* wsi, lws_token_indexes token) {
  const int len = lws_hdr_total_length(wsi, token);
  if (len <= 0) return {};
  std::string out(static_cast<size_t>(len) + 1, '\0');
  if (lws_hdr_copy(wsi, out.data(), len + 1, token) < 0) return {};
  out.resize(static_cast<size_t>(len));
  return out;
}

// RFC 6455 4.1: the key is 16 random bytes in base64 (24 characters, "==" at the end).
bool valid_websocket_key(const std::string& key) {
  if (key.size() != 24 || key.compare(22, 2, "==") != 0) return false;
  for (size_t i = 0; i < 22; ++i) {
    const char c = key[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) return false;
  }
  // The last character before the padding carries 4 bits of zero-padding: one of 16 letters.
  return std::string_view("AQgw").find(key[21]) != std::string_view::npos;
}

// The peer's address as people write it: an IPv4 peer of a dual-stack listener is
// "192.0.2.7", not "::ffff:192.0.2.7" (bans, caps and the operator's /bans/lift use it).
std::string peer_address(lws* wsi) {
  char ip[64] = "?";
  lws_get_peer_simple(wsi, ip, sizeof ip);
  std::string out(ip);
  if (out.rfind("::ffff:", 0) == 0 && out.find('.') != std::string::npos) out.erase(0, 7);
  return out;
}



std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace

// Every accepted connection's bytes go through the frame guard (ws_frame_guard.h) from its
// first read until it closes.
void Server::guard_connection(lws* wsi, lws_callback_reasons reason) {
  switch (reason) {
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
      ws_guard::watch(lws_get_socket_fd(wsi), peer_address(wsi));
      break;
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_CLOSED_HTTP:
      ws_guard::forget(lws_get_socket_fd(wsi));
      break;
    default:
      break;
  }
}

// A browser's page must come from an allowed origin: the one it was served from (the
// Host it connects to, over the scheme of this listener) or one in allowed_origins.
// Cross-site WebSocket hijacking: without this a page elsewhere drives a visitor's login.
bool Server::origin_allowed(lws* wsi) {
  const std::string origin = lower(header(wsi, WSI_TOKEN_ORIGIN));
  if (origin.empty()) return true;  // not a browser: browsers always send Origin on a WebSocket
  for (const auto& allowed : config_.allowed_origins) {
    if (origin == allowed) return true;
  }
  const std::string host = lower(header(wsi, WSI_TOKEN_HOST));
  const std::string own = (config_.tls.cert_file.empty() ? "http://" : "https://") + host;
  return !host.empty() && origin == own;
}

Server::Refusal Server::check_upgrade(lws* wsi, bool is_gateway, const std::string& ip) {
  if (header(wsi, WSI_TOKEN_VERSION) != "13") {
    ++metrics_.refused_upgrades_invalid;
    return {426, "only WebSocket version 13 (RFC 6455) is served", "sec-websocket-version:", "13"};
  }
  if (!valid_websocket_key(header(wsi, WSI_TOKEN_KEY))) {
    ++metrics_.refused_upgrades_invalid;
    return {HTTP_STATUS_BAD_REQUEST, "Sec-WebSocket-Key must be 16 bytes in base64"};
  }
  if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > kMaxUriBytes) {
    ++metrics_.refused_upgrades_invalid;
    return {HTTP_STATUS_REQ_URI_TOO_LONG, "URI too long"};
  }
  if (header_bytes(wsi) > kMaxHeaderBytes) {
    ++metrics_.refused_upgrades_invalid;
    return {431, "request header fields too large"};
  }
  if (!ws_guard::upgraded(lws_get_socket_fd(wsi))) {  // counted and logged by the guard
    return {HTTP_STATUS_BAD_REQUEST, "a frame sent behind the upgrade request is not masked (RFC 6455 5.1)"};
  }
  if (is_gateway) {
    if (!bearer_flat(wsi)) {
      ++metrics_.auth_failures;
      return {HTTP_STATUS_UNAUTHORIZED, "unauthorized: missing or unknown token", "www-authenticate:",
              "Bearer realm=\"flatlink\""};
    }
    return {};
  }
  if (!origin_allowed(wsi)) {
    ++metrics_.refused_upgrades_origin;
    return {HTTP_STATUS_FORBIDDEN, "origin not allowed: " + header(wsi, WSI_TOKEN_ORIGIN).substr(0, 100)};
  }
  // A session cookie is a browser's: it counts only with the Origin of an allowed page.
  if (!session_token_from_cookie_header(header(wsi, WSI_TOKEN_HTTP_COOKIE)).empty() &&
      header(wsi, WSI_TOKEN_ORIGIN).empty()) {
    ++metrics_.refused_upgrades_origin;
    return {HTTP_STATUS_FORBIDDEN, "a session cookie needs the Origin of an allowed page"};
  }
  const auto it = per_ip_.find(ip);
  if (it != per_ip_.end()) {
    const auto& limits = config_.limits;
    if (it->second.browsers >= limits.max_browsers_per_ip) {
      ++metrics_.refused_upgrades_caps;
      return {429, "too many browser links from this address (limits.max_browsers_per_ip " +
                       std::to_string(limits.max_browsers_per_ip) + ")"};
    }
    if (it->second.unauthenticated >= limits.max_unauthenticated_per_ip) {
      ++metrics_.refused_upgrades_caps;
      return {429, "too many browser links not logged in from this address (limits.max_unauthenticated_per_ip " +
                       std::to_string(limits.max_unauthenticated_per_ip) + ")"};
    }
  }
  return {};
}

void Server::count_unauthenticated(const std::string& ip, int delta) {
  auto it = per_ip_.find(ip);
  if (it == per_ip_.end()) return;
  it->second.unauthenticated = static_cast<uint32_t>(static_cast<int>(it->second.unauthenticated) + delta);
}

int Server::handle_ws(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  auto* slot = static_cast<WsSlot*>(user);
  const bool is_gateway = std::strcmp(lws_get_protocol(wsi)->name, proto::kGatewaySubprotocol.data()) == 0;
  switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
      if (loop_->stopping()) {
        write_answer(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "shutting down\n");
        return 1;
      }
      const std::string ip = peer_address(wsi);
      const Refusal refusal = check_upgrade(wsi, is_gateway, ip);
      if (refusal.status == 0) return 0;
      // The token itself is never logged.
      LOG_WARN("server") << (is_gateway ? "gateway" : "browser") << " from " << ip << " refused with "
                         << refusal.status << ": " << log::q(refusal.reason);
      write_answer(wsi, refusal.status, refusal.reason + "\n", refusal.extra_name, refusal.extra_value);
      return 1;
    }

    case LWS_CALLBACK_ESTABLISHED: {
      auto* session = new Session(*this, wsi, is_gateway ? Kind::gateway : Kind::browser, next_session_id_++,
                                  peer_address(wsi));
      slot->session = session;
      ++sessions_;
      if (!is_gateway) {
        PerIp& counts = per_ip_[session->ip_];
        ++counts.browsers;
        ++counts.unauthenticated;
      }
      stream::limit_unsent(lws_get_socket_fd(wsi));  // audio waits in our bounded queue, not the kernel's
      if (is_gateway) {
        auto flat = bearer_flat(wsi);
        if (!flat) {  // cannot happen after the filter, but never route an unauthenticated link
          session->close(proto::close_code::kUnauthorized, "unauthorized");
          return 0;
        }
        session->flat_ = *flat;
        router_->gateway_connected(*session, *flat);
        session->watch_liveness();
      } else {
        const std::string token = session_token_from_cookie_header(header(wsi, WSI_TOKEN_HTTP_COOKIE));
        if (!token.empty()) session->cookie_hash_ = hash_token(token);
        router_->browser_connected(*session);
      }
      return 0;
    }

    case LWS_CALLBACK_RECEIVE_PONG: {
      Session* session = slot ? slot->session : nullptr;
      if (session && session->kind_ == Kind::gateway) session->heard();
      return 0;
    }

    case LWS_CALLBACK_RECEIVE: {
      Session* session = slot ? slot->session : nullptr;
      if (!session || session->closing_) return 0;
      if (session->kind_ == Kind::gateway) session->heard();
      if (lws_frame_is_binary(wsi)) {
        // Stream data (cloud-server/streams.h); from a peer without a stream, refused as before.
        const size_t cap = stream::kHeaderBytes + stream::kMaxPayloadBytes;
        if (session->bin_rx_.size() + len > cap) {
          session->bin_rx_.clear();
          session->bin_discarding_ = true;
        }
        if (!session->bin_discarding_) session->bin_rx_.append(static_cast<const char*>(in), len);
        if (!lws_is_final_fragment(wsi)) return 0;
        std::string frame;
        frame.swap(session->bin_rx_);
        if (std::exchange(session->bin_discarding_, false)) frame.clear();  // oversized: refused like a malformed one
        if (!streams_->binary(*session, session->kind_ == Kind::gateway, std::move(frame))) {
          LOG_WARN("server") << session->describe() << " sent a binary frame without an open stream; closing";
          return session->close_now(proto::close_code::kBinaryNotAccepted, "binary frames are not accepted");
        }
        return 0;
      }
      const size_t cap = config_.limits.max_message_bytes;
      if (!session->discarding_ && session->rx_.size() + len > cap) {
        ++metrics_.refused_messages;
        LOG_WARN("server") << session->describe() << " sent a message over " << cap << " bytes; refused";
        session->rx_.clear();
        session->discarding_ = true;
      }
      if (!session->discarding_) session->rx_.append(static_cast<const char*>(in), len);
      if (!lws_is_final_fragment(wsi)) return 0;
      if (session->discarding_) {
        session->discarding_ = false;
        session->send(proto::encode(proto::Error{std::string(proto::error_code::kMessageTooBig),
                                                 "message over " + std::to_string(cap) + " bytes refused"}));
        // docs/protocol.md, "Validation and limits": a refused frame is answered, then the link
        // closes; for a gateway's frame, which may hold statuses, so that nothing after it is ever
        // acknowledged (delivery rule 4a).
        session->close(proto::close_code::kMessageTooBig, "message too big");
        return 0;
      }
      std::string text;
      text.swap(session->rx_);
      if (session->kind_ == Kind::browser && !session->take_token()) {
        ++metrics_.rate_limited;
        LOG_WARN("server") << session->describe() << " exceeded " << config_.limits.messages_per_s
                           << " messages/s; closing";
        return session->close_now(proto::close_code::kPolicyViolation, "rate limit exceeded");
      }
      if (session->kind_ == Kind::gateway && !session->take_token()) session->pace();
      proto::Limits limits;
      limits.max_message_bytes = cap;
      auto refuse = [&](const proto::DecodeError& error) {
        ++metrics_.refused_messages;
        LOG_WARN("server") << session->describe() << " message refused: " << error.message;
        session->send(proto::encode(proto::Error{error.code, error.message}));
        session->close(proto::close_code_for(error), error.code);  // as above, for both kinds of link
      };
      if (auto stream = proto::decode_stream(text, session->kind_ == Kind::gateway
                                                       ? proto::StreamRoute::gateway_to_cloud
                                                       : proto::StreamRoute::browser_to_cloud)) {
        if (auto* error = std::get_if<proto::DecodeError>(&*stream)) {
          refuse(*error);
        } else if (session->kind_ == Kind::gateway) {
          streams_->gateway_message(*session, std::get<proto::StreamMessage>(*stream));
        } else {
          streams_->browser_message(*session, std::get<proto::StreamMessage>(*stream));
        }
        return 0;
      }
      if (session->kind_ == Kind::gateway) {
        auto decoded = proto::decode_from_gateway(text, limits);
        if (auto* error = std::get_if<proto::DecodeError>(&decoded)) {
          refuse(*error);
          return 0;
        }
        router_->gateway_message(*session, std::get<proto::GatewayToCloud>(decoded));
        if (router_->gateway_said_hello(*session)) session->handshake_done();
      } else {
        auto decoded = proto::decode_from_browser(text, limits);
        if (auto* error = std::get_if<proto::DecodeError>(&decoded)) {
          refuse(*error);
          return 0;
        }
        router_->browser_message(*session, std::get<proto::BrowserToCloud>(decoded));
      }
      return 0;
    }

    case LWS_CALLBACK_SERVER_WRITEABLE:
      if (!slot || !slot->session) return 0;
      return slot->session->writeable();

    case LWS_CALLBACK_CLOSED: {
      Session* session = slot ? slot->session : nullptr;
      if (!session) return 0;
      slot->session = nullptr;
      streams_->peer_gone(*session);
      if (session->kind_ == Kind::gateway) {
        router_->gateway_disconnected(*session);
      } else {
        router_->browser_disconnected(*session);
      }
      if (session->kind_ == Kind::browser) {
        auto it = per_ip_.find(session->ip_);
        if (it != per_ip_.end()) {
          --it->second.browsers;
          if (!session->authenticated_) --it->second.unauthenticated;
          if (it->second.browsers == 0) per_ip_.erase(it);
        }
      }
      delete session;
      session_closed();
      return 0;
    }

    default:
      return 0;
  }
}

namespace {

std::string json_error(const std::string& why) { return nlohmann::json({{"error", why}}).dump() + "\n"; }

}  // namespace

int Server::pair_request(lws* wsi, HttpSession* http, bool post) {
  const auto answer = [&](unsigned status, const std::string& why, const char* name = nullptr,
                          const char* value = nullptr) {
    write_answer(wsi, status, json_error(why), name, value, "application/json");
    return -1;
  };
  if (!post) return answer(HTTP_STATUS_METHOD_NOT_ALLOWED, "POST /pair {\"code\": ...}", "allow:", "POST");
  if (!router_->store_worker()) return answer(HTTP_STATUS_NOT_FOUND, "pairing needs the cloud's store");
  const std::string ip = peer_address(wsi);
  if (const int64_t wait = pair_throttle_.refused_for(ip, clock_.wall_ms())) {
    const std::string seconds = std::to_string((wait + 999) / 1000);
    LOG_WARN("pair") << "attempt from " << ip << " refused: too many wrong codes (" << seconds << " s left)";
    return answer(429, "too many wrong codes: try again in " + seconds + " s", "retry-after:", seconds.c_str());
  }
  const std::string length = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
  const bool digits = !length.empty() && length.size() <= 6 &&
                      std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoul(length) > kPairRequestMaxBytes) {
    return answer(length.empty() ? 411 : HTTP_STATUS_REQ_ENTITY_TOO_LARGE,
                  "a JSON body of at most " + std::to_string(kPairRequestMaxBytes) + " bytes, with Content-Length");
  }
  http->post = new std::string();
  return 0;
}

int Server::pair_body_done(lws* wsi, HttpSession* http) {
  std::string error;
  const auto request = parse_pair_request(*http->post, error);
  delete http->post;
  http->post = nullptr;
  const std::string ip = peer_address(wsi);
  if (!request) {
    pair_throttle_.failed(ip, clock_.wall_ms());
    write_answer(wsi, HTTP_STATUS_BAD_REQUEST, json_error(error), nullptr, nullptr, "application/json");
    return -1;
  }
  struct Answer {
    bool reachable = false;
    store::PairResult result;
  };
  const std::string token = new_gateway_token();
  const uint64_t id = next_pair_id_++;
  pairs_[id] = wsi;
  http->pair_id = id;
  const bool queued = router_->store_worker()->call<Answer>(
      [code = hash_token(request->code), hash = hash_token(token), now = clock_.wall_ms()](store::Database* db) {
        Answer a;
        if (!db) return a;
        a.result = store::redeem_pairing_code(*db, code, hash, now);
        a.reachable = true;
        return a;
      },
      [this, alive = std::weak_ptr<int>(pair_alive_), id, token, ip, name = request->name](Answer a) {
        if (alive.expired()) return;
        unsigned status = HTTP_STATUS_OK;
        std::string body;
        if (!a.reachable) {
          status = HTTP_STATUS_SERVICE_UNAVAILABLE;
          body = json_error("the cloud's store is unavailable: try again later");
          LOG_WARN("pair") << "attempt from " << ip << " not answered: the store is unavailable";
        } else if (a.result.outcome != store::PairOutcome::paired) {
          status = HTTP_STATUS_FORBIDDEN;
          const std::string why(store::to_string(a.result.outcome));
          body = json_error(why + ": ask the operator for a new one (flatlink-cloud admin pair-code FLAT)");
          pair_throttle_.failed(ip, clock_.wall_ms());
          LOG_WARN("pair") << "attempt from " << ip << " refused: " << why;
        } else {
          body = nlohmann::json({{"flat", a.result.flat}, {"token", token}}).dump() + "\n";
          LOG_INFO("pair") << "flat " << a.result.flat << ": a gateway paired"
                           << (name.empty() ? std::string() : " (" + name + ")") << " from " << ip
                           << "; its token replaces any earlier one";
          router_->accounts_changed();
        }
        const auto it = pairs_.find(id);
        if (it == pairs_.end()) return;  // the client went away; a paired flat's token stays issued
        lws* wsi = it->second;
        pairs_.erase(it);
        auto* http = static_cast<HttpSession*>(lws_wsi_user(wsi));
        http->pair_id = 0;
        http->answer_status = status;
        http->body = new std::string(std::move(body));
        lws_callback_on_writable(wsi);
      });
  if (!queued) {
    pairs_.erase(id);
    http->pair_id = 0;
    write_answer(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, json_error("the cloud's store is busy: try again later"),
                 nullptr, nullptr, "application/json");
    return -1;
  }
  return 0;
}

}  // namespace flatlink::cloud
