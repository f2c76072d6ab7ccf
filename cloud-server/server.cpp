// flatlink-cloud's libwebsockets server.
#include "cloud-server/server.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <utility>
#include <vector>

#include "cloud-link/protocol.h"
#include "cloud-link/stream_frames.h"
#include "cloud-link/stream_protocol.h"
#include "common/log.h"

namespace flatlink::cloud {
namespace {

constexpr const char* kHttpProtocol = "http";
constexpr size_t kGatewayQueueMax = 10'000;  // frames waiting for a gateway's socket
constexpr size_t kBrowserQueueMax = 2'000;   // a browser this far behind gets a snapshot instead (Session::queue)

enum class Kind { gateway, browser };

// Per-HTTP-request data: the body of a dynamic response.
struct HttpSession {
  std::string* body;
};

}  // namespace

// One WebSocket link; the Router's Peer.
class Server::Session final : public Peer {
 public:
  Session(Server& server, lws* wsi, Kind kind, uint64_t id)
      : server_(server), wsi_(wsi), kind_(kind), handshake_timer_(*server.loop_, [this] {
          LOG_WARN("server") << describe() << " did not " << (kind_ == Kind::gateway ? "say hello" : "log in")
                             << " within " << server_.config_.limits.handshake_timeout_s << " s; closing";
          close(proto::close_code::kHandshakeTimeout, "handshake timeout");
        }) {
    char ip[64] = "?";
    lws_get_peer_simple(wsi, ip, sizeof ip);
    desc_ = std::string(kind == Kind::gateway ? "gateway" : "browser") + " link=" + std::to_string(id) + " from " + ip;
    tokens_ = server.config_.limits.burst;
    refill_ms_ = server.clock_.mono_ms();
    handshake_timer_.start(server.config_.limits.handshake_timeout_s * 1000);
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

  void send_binary(std::string frame, uint16_t stream, uint32_t duration_us) override {
    if (closing_) return;
    bin_.set_max_ms(server_.streams_->buffer_ms());
    server_.streams_->metrics().frames_dropped += bin_.push(stream, duration_us, std::move(frame), server_.clock_.mono_ms());
    lws_callback_on_writable(wsi_);
  }

  void forget_stream(uint16_t stream) override { bin_.forget(stream); }

  // Token bucket: false when the peer sends faster than allowed.
  bool take_token() {
    const int64_t now = server_.clock_.mono_ms();
    const auto& limits = server_.config_.limits;
    tokens_ = std::min<double>(limits.burst, tokens_ + (now - refill_ms_) * limits.messages_per_s / 1000.0);
    refill_ms_ = now;
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  int writeable() {
    if (!out_.empty()) {
      if (!write_frame(out_.front().text, LWS_WRITE_TEXT)) return -1;
      out_.pop_front();
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

  // A browser that falls kBrowserQueueMax frames behind (a gateway's burst of statuses, a
  // slow network) loses its queued state frames for one fresh snapshot, which it can take in
  // at once; results, errors and history replies stay. One still that far behind, or a
  // gateway that far behind, does not read: closed.
  void queue(std::string frame, bool state) {
    if (closing_) return;
    const size_t cap = kind_ == Kind::gateway ? kGatewayQueueMax : kBrowserQueueMax;
    if (out_.size() >= cap && kind_ == Kind::browser) {
      const size_t queued = out_.size();
      std::erase_if(out_, [](const Frame& f) { return f.state; });
      if (out_.size() < queued) {
        LOG_WARN("server") << describe() << " is " << queued << " frames behind; " << queued - out_.size()
                           << " queued state messages replaced by a snapshot";
        if (!state) out_.push_back(Frame{std::move(frame), false});  // a state frame is in the snapshot
        server_.router_->resync_browser(*this);
        lws_callback_on_writable(wsi_);
        return;
      }
    }
    if (out_.size() >= cap) {
      LOG_WARN("server") << describe() << " is not reading (" << out_.size() << " frames queued); closing";
      out_.clear();
      close(proto::close_code::kPolicyViolation, "too slow");
      return;
    }
    out_.push_back(Frame{std::move(frame), state});
    lws_callback_on_writable(wsi_);
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
    out_.clear();
    lws_close_reason(wsi_, static_cast<lws_close_status>(code),
                     reinterpret_cast<unsigned char*>(const_cast<char*>(reason)), std::strlen(reason));
    return -1;
  }

  void handshake_done() { handshake_timer_.cancel(); }

  Server& server_;
  lws* wsi_;
  Kind kind_;
  std::string flat_;     // gateways: the flat their token names
  std::string rx_;       // a message being reassembled
  std::string bin_rx_;   // a binary frame being reassembled
  bool bin_discarding_ = false;
  bool discarding_ = false;  // the rest of an oversized message
  bool closing_ = false;

 private:
  std::string desc_;
  struct Frame {
    std::string text;
    bool state;  // superseded by a snapshot (Peer::send_state)
  };
  std::deque<Frame> out_;
  stream::FrameQueue bin_;  // stream frames, bounded in time per stream
  std::vector<unsigned char> buf_;
  uint16_t close_code_ = 0;
  std::string close_reason_;
  double tokens_ = 0;
  int64_t refill_ms_ = 0;
  Timer handshake_timer_;
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
  options.tune = [this](lws_context_creation_info& info) {
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
    }
  };
  return options;
}

void Server::start(EventLoop& loop) {
  loop_ = &loop;
  router_ = std::make_unique<Router>(config_, loop, clock_, metrics_);
  if (config_.backplane.enabled) {
    backplane_ = std::make_unique<Backplane>(config_.backplane, config_.limits, loop, clock_, metrics_, *router_);
    router_->attach_backplane(backplane_.get());
    backplane_->set_accounts(config_.flats);
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
  LOG_INFO("server") << "listening on " << (config_.tls.cert_file.empty() ? "ws" : "wss") << "://"
                     << config_.listen_address << ":" << config_.port << "/ for " << config_.flats.size() << " flats";
}

std::string Server::reload(config::CloudConfig next) {
  std::vector<std::string> restart;
  if (next.listen_address != config_.listen_address || next.port != config_.port) restart.push_back("listen address/port");
  if (next.tls.cert_file != config_.tls.cert_file || next.tls.key_file != config_.tls.key_file) restart.push_back("tls");
  if (!next.dashboard_dir.empty() && next.dashboard_dir != config_.dashboard_dir) restart.push_back("dashboard_dir");
  if (next.backplane != config_.backplane) restart.push_back("backplane");
  config_.log_level = next.log_level;
  config_.limits = next.limits;  // read per use: new connections and messages see them
  std::vector<config::FlatConfig> before = std::exchange(config_.flats, std::move(next.flats));
  std::string summary = router_->flats_changed(before);
  if (backplane_) backplane_->set_accounts(config_.flats);
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

void Server::session_closed() {
  --sessions_;
  if (sessions_ == 0 && on_stopped_) std::exchange(on_stopped_, nullptr)();
}

int Server::http_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  const lws_protocols* protocol = lws_get_protocol(wsi);
  auto* self = protocol ? static_cast<Server*>(protocol->user) : nullptr;
  if (!self || !self->loop_) return lws_callback_http_dummy(wsi, reason, user, in, len);
  return self->handle_http(wsi, reason, user, in, len);
}

int Server::ws_callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  const lws_protocols* protocol = lws_get_protocol(wsi);
  auto* self = protocol ? static_cast<Server*>(protocol->user) : nullptr;
  if (!self || !self->loop_) return 0;
  return self->handle_ws(wsi, reason, user, in, len);
}

int Server::handle_http(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  auto* http = static_cast<HttpSession*>(user);
  switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
      // A WebSocket upgrade that named none of our subprotocols.
      LOG_WARN("server") << "WebSocket upgrade without a flatlink subprotocol refused";
      return 1;

    case LWS_CALLBACK_HTTP: {
      const std::string path(static_cast<const char*>(in), len);
      int status = HTTP_STATUS_OK;
      std::string body;
      const char* type = "text/plain; charset=utf-8";
      if (path == "/healthz") {
        body = "ok\n";
      } else if (path == "/metrics") {
        body = metrics_.render() + streams_->metrics().render();
        type = "text/plain; version=0.0.4; charset=utf-8";
      } else if (!config_.dashboard_dir.empty() && path.find("..") == std::string::npos) {
        std::string file = config_.dashboard_dir + (path == "/" ? "/index.html" : path);
        struct stat st {};
        if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
          const char* mime = lws_get_mimetype(file.c_str(), nullptr);
          if (!mime && file.size() > 4 && file.compare(file.size() - 4, 4, ".mjs") == 0) mime = "text/javascript";
          const int n = lws_serve_http_file(wsi, file.c_str(), mime ? mime : "application/octet-stream", nullptr, 0);
          if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi))) return -1;
          return 0;
        }
        status = HTTP_STATUS_NOT_FOUND;
        body = "not found\n";
      } else {
        status = HTTP_STATUS_NOT_FOUND;
        body = "not found\n";
      }
      unsigned char buf[LWS_PRE + 512];
      unsigned char* start = buf + LWS_PRE;
      unsigned char* p = start;
      unsigned char* end = buf + sizeof buf - 1;
      if (lws_add_http_common_headers(wsi, static_cast<unsigned>(status), type, body.size(), &p, end) ||
          lws_finalize_write_http_header(wsi, start, &p, end)) {
        return 1;
      }
      http->body = new std::string(std::move(body));
      lws_callback_on_writable(wsi);
      return 0;
    }

    case LWS_CALLBACK_HTTP_WRITEABLE: {
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

int Server::handle_ws(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  auto* slot = static_cast<WsSlot*>(user);
  const bool is_gateway = std::strcmp(lws_get_protocol(wsi)->name, proto::kGatewaySubprotocol.data()) == 0;
  switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
      if (loop_->stopping()) return 1;
      if (!is_gateway) return 0;  // browsers log in with a message
      if (!bearer_flat(wsi)) {
        ++metrics_.auth_failures;
        char ip[64] = "?";
        lws_get_peer_simple(wsi, ip, sizeof ip);
        // The token itself is never logged.
        LOG_WARN("server") << "gateway from " << ip << " refused: missing or unknown token";
        return 1;
      }
      return 0;
    }

    case LWS_CALLBACK_ESTABLISHED: {
      auto* session = new Session(*this, wsi, is_gateway ? Kind::gateway : Kind::browser, next_session_id_++);
      slot->session = session;
      ++sessions_;
      stream::limit_unsent(lws_get_socket_fd(wsi));  // audio waits in our bounded queue, not the kernel's
      if (is_gateway) {
        auto flat = bearer_flat(wsi);
        if (!flat) {  // cannot happen after the filter, but never route an unauthenticated link
          session->close(proto::close_code::kUnauthorized, "unauthorized");
          return 0;
        }
        session->flat_ = *flat;
        router_->gateway_connected(*session, *flat);
      } else {
        router_->browser_connected(*session);
      }
      return 0;
    }

    case LWS_CALLBACK_RECEIVE: {
      Session* session = slot ? slot->session : nullptr;
      if (!session || session->closing_) return 0;
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
        // A gateway's refused frame may hold statuses: the link closes, so that nothing after
        // it is ever acknowledged (docs/protocol.md, delivery rule 4a).
        if (session->kind_ == Kind::gateway) session->close(proto::close_code::kMessageTooBig, "message too big");
        return 0;
      }
      std::string text;
      text.swap(session->rx_);
      if (!session->take_token()) {
        ++metrics_.rate_limited;
        LOG_WARN("server") << session->describe() << " exceeded " << config_.limits.messages_per_s
                           << " messages/s; closing";
        return session->close_now(proto::close_code::kPolicyViolation, "rate limit exceeded");
      }
      proto::Limits limits;
      limits.max_message_bytes = cap;
      auto refuse = [&](const proto::DecodeError& error) {
        ++metrics_.refused_messages;
        LOG_WARN("server") << session->describe() << " message refused: " << error.message;
        session->send(proto::encode(proto::Error{error.code, error.message}));
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
          session->close(proto::close_code_for(*error), "message refused");  // rule 4a, as above
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
        if (std::holds_alternative<proto::Login>(std::get<proto::BrowserToCloud>(decoded))) session->handshake_done();
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
      delete session;
      session_closed();
      return 0;
    }

    default:
      return 0;
  }
}

}  // namespace flatlink::cloud
