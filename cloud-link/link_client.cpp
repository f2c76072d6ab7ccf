// The gateway's WebSocket client to the cloud.
#include "cloud-link/link_client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/clock.h"
#include "common/log.h"

namespace flatlink::link {
namespace {

constexpr size_t kMaxFrameFromCloud = 1 << 20;  // commands and acks are small; this is generous
constexpr size_t kBatchItems = 500;  // the cloud's max_batch and max_message_bytes cut it first
constexpr int64_t kWindow = 5000;  // statuses written but not yet acknowledged

}  // namespace

LinkClient::LinkClient(EventLoop& loop, const config::CloudLinkConfig& config, LinkListener& listener)
    : loop_(loop),
      config_(config),
      listener_(listener),
      backoff_(BackoffPolicy{config.backoff_base_ms, config.backoff_max_ms, 50}),
      retry_timer_(loop, [this] { connect(); }),
      connect_timer_(loop, [this] { give_up_connecting(); }),
      pace_timer_(loop, [this] { want_write(); }) {
  if (config_.urls.empty()) config_.urls.push_back(config_.url);
  use_url(0);
  // lws sends a ping after this much silence and hangs up if nothing valid
  // (a pong) came back within the pong timeout.
  retry_policy_.secs_since_valid_ping = static_cast<uint16_t>(config_.ping_interval_s);
  retry_policy_.secs_since_valid_hangup = static_cast<uint16_t>(config_.ping_interval_s + config_.pong_timeout_s);
  retry_policy_.conceal_count = LWS_RETRY_CONCEAL_ALWAYS;
}

void LinkClient::use_url(size_t index) {
  url_index_ = index;
  url_ = config_.urls[index];
  // Split ws[s]://host[:port][/path]. The loader checked the scheme.
  std::string url = url_;
  tls_ = url.rfind("wss://", 0) == 0;
  url = url.substr(tls_ ? 6 : 5);
  const size_t slash = url.find('/');
  path_ = slash == std::string::npos ? "/" : url.substr(slash);
  std::string hostport = url.substr(0, slash);
  port_ = tls_ ? 443 : 80;
  if (!hostport.empty() && hostport.front() == '[') {
    const size_t close = hostport.find(']');
    host_ = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size() && hostport[close + 1] == ':') port_ = std::atoi(hostport.c_str() + close + 2);
  } else {
    const size_t colon = hostport.rfind(':');
    host_ = hostport.substr(0, colon);
    if (colon != std::string::npos) port_ = std::atoi(hostport.c_str() + colon + 1);
  }
  origin_ = host_;
}

LinkClient::~LinkClient() {
  if (wsi_) lws_set_opaque_user_data(wsi_, nullptr);
}

lws_protocols LinkClient::protocol() {
  lws_protocols p{};
  p.name = proto::kGatewaySubprotocol.data();
  p.callback = &LinkClient::callback;
  p.rx_buffer_size = 0;
  return p;
}

namespace {
// Set by tune_context() for the callback that builds the client TLS context's CA store
// (during lws_create_context(), on the same thread).
bool g_system_ca_folder = true;

// Without a CA file lws adds its own compiled-in folder (Debian's build: "../share",
// relative to the working directory): the store is replaced by one that looks CAs up by
// their subject's hash in OpenSSL's default folder (SSL_CERT_DIR, else /usr/lib/ssl/certs,
// which is /etc/ssl/certs on Debian and Raspberry Pi OS, kept by update-ca-certificates).
// Returns false (logged) if it could not.
bool use_system_ca_folder(SSL_CTX* ctx) {
  X509_STORE* store = X509_STORE_new();
  X509_LOOKUP* lookup = store ? X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir()) : nullptr;
  if (!lookup || X509_LOOKUP_add_dir(lookup, nullptr, X509_FILETYPE_DEFAULT) != 1) {
    X509_STORE_free(store);
    LOG_ERROR("link") << "cannot set up the system's CA folder for wss:// (" << LinkClient::system_ca_folder() << ")";
    return false;
  }
  SSL_CTX_set_cert_store(ctx, store);  // frees lws's store
  return true;
}
}  // namespace

void LinkClient::tune_context(const config::CloudLinkConfig& config, lws_context_creation_info& info) {
  // Not lws's "OS CA certs": they load the system's whole CA bundle (~140 certificates,
  // ~1 MiB of heap for a gateway that talks to one cloud). use_system_ca_folder() below
  // puts the system's CA folder in their place, read one CA file at a time when a handshake
  // needs it. A configured ca_file (a private CA: a few certificates) is loaded whole.
  info.options |= LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
  // A ws:// cloud needs no TLS: without lws's global OpenSSL set-up (and the client
  // SSL_CTX it builds) libcrypto maps far fewer pages (~3 MiB of the gateway's idle RSS,
  // docs/benchmarks.md). An MQTT broker over TLS still works: libmosquitto initialises
  // OpenSSL itself.
  bool any_wss = config.url.rfind("wss://", 0) == 0;
  for (const auto& url : config.urls) any_wss = any_wss || url.rfind("wss://", 0) == 0;
  if (!any_wss) {
    info.options &= ~static_cast<uint64_t>(LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT);
  }
  static std::string ca;
  ca = config.ca_file;
  g_system_ca_folder = ca.empty();
  info.client_ssl_ca_filepath = ca.empty() ? nullptr : ca.c_str();
}

std::string LinkClient::system_ca_folder() {
  const char* env = std::getenv(X509_get_default_cert_dir_env());
  return env && *env ? env : X509_get_default_cert_dir();
}

void LinkClient::start() {
  started_ = true;
  if (config_.insecure) {
    LOG_WARN("link") << "TLS certificate verification is OFF (cloud.insecure=true): for development only";
  } else if (tls_) {
    LOG_INFO("link") << "the cloud's certificate is checked against "
                     << (config_.ca_file.empty() ? "the system's CA folder " + system_ca_folder()
                                                 : "the CAs in " + config_.ca_file);
  }
  connect();
}

void LinkClient::connect() {
  if (stopping_ || wsi_) return;
  lws_client_connect_info i{};
  i.context = loop_.context();
  i.address = host_.c_str();
  i.port = port_;
  i.path = path_.c_str();
  i.host = host_.c_str();
  i.origin = origin_.c_str();
  i.protocol = proto::kGatewaySubprotocol.data();
  i.local_protocol_name = proto::kGatewaySubprotocol.data();
  i.alpn = "http/1.1";
  if (tls_) {
    i.ssl_connection = LCCSCF_USE_SSL;
    if (config_.insecure) {
      i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_EXPIRED |
                          LCCSCF_ALLOW_INSECURE;
    }
  }
  i.retry_and_idle_policy = &retry_policy_;
  i.opaque_user_data = this;
  i.pwsi = &wsi_;
  LOG_INFO("link") << "connecting to " << url_;
  if (!lws_client_connect_via_info(&i)) {
    wsi_ = nullptr;
    schedule_retry("could not start the connection");
    return;
  }
  // The same bound as for a dead peer: an overloaded cloud may swallow the attempt.
  connect_timer_.start((config_.ping_interval_s + config_.pong_timeout_s) * 1000);
}

void LinkClient::give_up_connecting() {
  if (up_ || !wsi_) return;
  lws* stuck = wsi_;
  wsi_ = nullptr;
  lws_set_opaque_user_data(stuck, nullptr);  // its last callbacks are not ours any more
  lws_set_timeout(stuck, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
  const std::string why =
      "no answer within " + std::to_string(config_.ping_interval_s + config_.pong_timeout_s) + " s";
  schedule_retry(why.c_str());
}

void LinkClient::schedule_retry(const char* why) {
  if (stopping_) return;
  const std::string was = url_;
  // Several clouds (instances behind no balancer, or fallbacks): the next one is tried.
  if (config_.urls.size() > 1) use_url((url_index_ + 1) % config_.urls.size());
  const uint32_t delay = backoff_.next_delay_ms();
  LOG_WARN("link") << "link to " << was << " down (" << why << "); retry " << backoff_.attempts()
                   << (was == url_ ? "" : " with " + url_) << " in "
                   << delay << " ms";
  retry_timer_.start(delay);
}

void LinkClient::stop(std::function<void()> closed) {
  stopping_ = true;
  retry_timer_.cancel();
  connect_timer_.cancel();
  if (!wsi_) {
    if (closed) closed();
    return;
  }
  on_closed_ = std::move(closed);
  lws_callback_on_writable(wsi_);
}

void LinkClient::send_result(const proto::Result& result) {
  if (results_.size() >= config_.send_queue_max) {
    LOG_ERROR("link") << "result queue full (" << results_.size() << "); dropping the result of command="
                      << results_.front().substr(0, 64);
    results_.pop_front();
  }
  results_.push_back(proto::encode(result));
  want_write();
}

void LinkClient::send_presence(const proto::Presence& presence) {
  if (!up_) return;  // the next hello carries presence
  queue_control(Control::presence, proto::encode(presence));
}

void LinkClient::devices_changed() {
  if (!up_) return;  // the next hello carries the device list
  queue_control(Control::devices, {});
}

void LinkClient::queue_control(Control kind, std::string text) {
  if (kind == Control::devices && devices_waiting_) return;  // built when written: it carries this change
  bool presence_lost = false;
  while (control_.size() >= config_.send_queue_max) {
    auto oldest = std::find_if(control_.begin(), control_.end(),
                               [](const ControlMessage& m) { return m.kind != Control::devices; });
    const bool self = oldest == control_.end();  // only the device list waits: the new message goes
    const Control dropped = self ? kind : oldest->kind;
    if (!self) control_.erase(oldest);
    presence_lost = presence_lost || dropped == Control::presence;
    ++stats_.control_dropped;
    if ((stats_.control_dropped & (stats_.control_dropped - 1)) == 0) {  // 1, 2, 4, ...: counted always
      LOG_WARN("link") << "control queue full (" << config_.send_queue_max << " messages): dropped a "
                       << (dropped == Control::presence ? "presence" : "stream message") << ", "
                       << stats_.control_dropped << " dropped so far";
    }
    if (self) return;  // the waiting device list carries every device's presence
  }
  control_.push_back(ControlMessage{kind, std::move(text)});
  devices_waiting_ = devices_waiting_ || kind == Control::devices;
  // A presence went: the device list, built when written, gives the cloud every device's online state.
  if (presence_lost && !devices_waiting_) queue_control(Control::devices, {});
  want_write();
}

void LinkClient::statuses_available() { want_write(); }

void LinkClient::send_stream_message(const proto::StreamMessage& message) {
  if (!up_) return;  // the cloud ends a link's streams when it closes
  queue_control(Control::stream, proto::encode(message, proto::StreamRoute::gateway_to_cloud));
}

uint64_t LinkClient::forget_stream(uint16_t stream) {
  frames_.forget(stream);
  uint64_t dropped = frames_.take_dropped(stream);
  if (auto it = dropped_offline_.find(stream); it != dropped_offline_.end()) {
    dropped += it->second;
    dropped_offline_.erase(it);
  }
  return dropped;
}

void LinkClient::send_stream_frame(uint16_t stream, uint32_t duration_us, std::string frame) {
  if (!up_ || !acked_once_) {
    ++dropped_offline_[stream];
    return;
  }
  frames_.push(stream, duration_us, std::move(frame), SystemClock::instance().mono_ms());  // counts what it drops
  want_write();
}

void LinkClient::want_write() {
  if (wsi_ && up_) lws_callback_on_writable(wsi_);
}

int LinkClient::callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS) {  // context creation, no link yet
    return g_system_ca_folder && !use_system_ca_folder(static_cast<SSL_CTX*>(user)) ? 1 : 0;
  }
  auto* self = static_cast<LinkClient*>(lws_get_opaque_user_data(wsi));
  if (!self) return 0;
  if (reason == LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION) {
    // Only to say why a server is refused: OpenSSL's verdict stands.
    if (len == 0 && user) {
      auto* store = static_cast<X509_STORE_CTX*>(user);
      self->tls_error_ = std::string("server certificate refused: ") +
                         X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)) + " (depth " +
                         std::to_string(X509_STORE_CTX_get_error_depth(store)) + ")";
    }
    return 0;
  }
  return self->handle(wsi, reason, in, len);
}

void LinkClient::went_down() {
  connect_timer_.cancel();
  pace_timer_.cancel();
  const bool was_up = up_;
  wsi_ = nullptr;
  up_ = false;
  acked_once_ = false;
  rx_.clear();
  control_.clear();
  devices_waiting_ = false;
  frames_.clear();
  bin_rx_.clear();
  bin_discarding_ = false;
  hello_.clear();
  if (was_up) listener_.on_link_state(false);
}

int LinkClient::handle(lws* wsi, lws_callback_reasons reason, void* in, size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
      auto** p = static_cast<unsigned char**>(in);
      const std::string bearer = "Bearer " + config_.token;
      if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                       reinterpret_cast<const unsigned char*>(bearer.data()),
                                       static_cast<int>(bearer.size()), p, *p + len)) {
        return -1;
      }
      return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      connect_timer_.cancel();
      ++stats_.connects;
      stream::limit_unsent(lws_get_socket_fd(wsi));  // audio waits in frames_, bounded, not in the kernel
      up_ = true;
      acked_once_ = false;
      sent_upto_ = 0;
      refill_ms_ = SystemClock::instance().mono_ms();  // the cloud's bucket started full just before
      hello_ = proto::encode(listener_.make_hello());
      LOG_INFO("link") << "connected to " << url_ << "; saying hello";
      lws_callback_on_writable(wsi);
      listener_.on_link_state(true);
      return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE: {
      if (lws_frame_is_binary(wsi)) {
        if (!bin_discarding_ && bin_rx_.size() + len > stream::kHeaderBytes + stream::kMaxPayloadBytes) {
          LOG_WARN("link") << "binary frame from the cloud over " << stream::kMaxPayloadBytes << " bytes; dropped";
          bin_rx_.clear();
          bin_discarding_ = true;
        }
        if (!bin_discarding_) bin_rx_.append(static_cast<const char*>(in), len);
        if (lws_is_final_fragment(wsi)) {
          std::string frame;
          frame.swap(bin_rx_);
          if (!std::exchange(bin_discarding_, false) && streams_) streams_->on_stream_frame(std::move(frame));
        }
        return 0;
      }
      if (rx_.size() + len > kMaxFrameFromCloud) {
        LOG_ERROR("link") << "message from the cloud over " << kMaxFrameFromCloud << " bytes; closing the link";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, nullptr, 0);
        return -1;
      }
      rx_.append(static_cast<const char*>(in), len);
      if (lws_is_final_fragment(wsi)) {
        std::string text;
        text.swap(rx_);
        on_frame(text);
      }
      return 0;
    }

    case LWS_CALLBACK_CLIENT_WRITEABLE:
      return on_writeable(wsi);

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
      uint16_t code = 0;
      std::string reason_text;
      if (len >= 2) {
        const auto* b = static_cast<const unsigned char*>(in);
        code = static_cast<uint16_t>(b[0] << 8 | b[1]);
        reason_text.assign(reinterpret_cast<const char*>(b + 2), len - 2);
      }
      LOG_WARN("link") << "cloud closed the link: code=" << code << " reason=" << log::q(reason_text);
      return 0;
    }

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
      std::string why = in ? std::string(static_cast<const char*>(in), strnlen(static_cast<const char*>(in), 256))
                           : std::string("connection error");
      if (!tls_error_.empty()) why = std::exchange(tls_error_, std::string()) + "; " + why;
      // The cloud answered the upgrade 401: the token is wrong, and retrying soon will not fix it.
      const bool unauthorized = wsi && lws_http_client_http_response(wsi) == HTTP_STATUS_UNAUTHORIZED;
      went_down();
      if (stopping_) {
        if (on_closed_) std::exchange(on_closed_, nullptr)();
        return 0;
      }
      if (unauthorized) {
        const uint32_t delay = std::max<uint32_t>(config_.backoff_max_ms, 60'000);
        LOG_ERROR("link") << "unauthorized: check the token for flat " << config_.flat << " ("
                          << (config_.token_file.empty() ? "cloud.token in the config" : config_.token_file)
                          << "); the cloud refused it with HTTP 401; retrying in " << delay / 1000 << " s";
        retry_timer_.start(delay);
        return 0;
      }
      schedule_retry(why.c_str());
      return 0;
    }

    case LWS_CALLBACK_CLIENT_CLOSED:
      went_down();
      if (stopping_) {
        LOG_INFO("link") << "link closed";
        if (on_closed_) std::exchange(on_closed_, nullptr)();
        return 0;
      }
      schedule_retry("connection closed");
      return 0;

    case LWS_CALLBACK_WSI_DESTROY:
      // Our connection going away without CLIENT_CONNECTION_ERROR or CLIENT_CLOSED first: lws
      // 4.1 ends an attempt whose upgrade request got no answer in time that way (after
      // CLOSED_CLIENT_HTTP), e.g. from a cloud swamped by a reconnect storm. Without this the
      // link waited for the connect timer and then held a freed wsi.
      if (wsi != wsi_) return 0;  // already handled, or a connection given up
      went_down();
      if (stopping_) {
        if (on_closed_) std::exchange(on_closed_, nullptr)();
        return 0;
      }
      schedule_retry("closed before the WebSocket upgrade was answered");
      return 0;

    default:
      return 0;
  }
}

void LinkClient::on_frame(std::string_view text) {
  ++stats_.frames_received;
  if (auto stream = proto::decode_stream(text, proto::StreamRoute::cloud_to_gateway)) {
    if (auto* error = std::get_if<proto::DecodeError>(&*stream)) {
      ++stats_.refused_frames;
      LOG_WARN("link") << "refused a message from the cloud: " << error->message;
    } else if (streams_) {
      streams_->on_stream_message(std::get<proto::StreamMessage>(*stream));
    }
    return;
  }
  auto decoded = proto::decode_from_cloud_for_gateway(text);
  if (auto* error = std::get_if<proto::DecodeError>(&decoded)) {
    ++stats_.refused_frames;
    LOG_WARN("link") << "refused a message from the cloud: " << error->message;
    return;
  }
  auto& message = std::get<proto::CloudToGateway>(decoded);
  if (auto* ack = std::get_if<proto::Ack>(&message)) {
    if (!acked_once_) {
      // The answer to hello: the cloud's last seen seq. Resend what follows.
      acked_once_ = true;
      backoff_.reset();
      sent_upto_ = ack->seq;
      acked_ = ack->seq;
      if (ack->limits) limits_ = *ack->limits;
      // A full bucket less the hello, filled since the connection opened: the cloud's bucket
      // started full no later, so it never holds fewer tokens than this one.
      tokens_ = bucket_size() - 1.0;
      LOG_INFO("link") << "cloud holds statuses up to seq=" << ack->seq << "; streaming from there (frames up to "
                       << limits_.max_message_bytes << " bytes, " << limits_.max_batch << " statuses"
                       << (limits_.messages_per_s ? ", " + std::to_string(limits_.messages_per_s) +
                                                        " messages/s, burst " + std::to_string(limits_.burst)
                                                  : std::string())
                       << ")";
      listener_.on_ack(ack->seq);
      want_write();
      return;
    }
    if (ack->seq > sent_upto_) {
      LOG_WARN("link") << "ack for seq=" << ack->seq << " beyond what was sent (" << sent_upto_ << "); ignored";
      return;
    }
    if (ack->seq > acked_) {
      const bool window_was_full = sent_upto_ - acked_ >= kWindow;
      acked_ = ack->seq;
      listener_.on_ack(ack->seq);
      if (window_was_full) want_write();
    }
  } else if (auto* command = std::get_if<proto::CommandMsg>(&message)) {
    listener_.on_command(*command);
  } else if (auto* error = std::get_if<proto::Error>(&message)) {
    // A refused frame of ours: the cloud closes the link after this (1002/1009), and nothing
    // after it is acknowledged; the reconnect resends from the cloud's last ack.
    LOG_ERROR("link") << "cloud refused a frame: " << error->code << ": " << error->message;
  }
}

// A tenth of the cloud's burst (at least one token) is never used: frames that the network
// delays and then delivers together still find tokens in the cloud's bucket.
double LinkClient::bucket_size() const {
  const uint32_t burst = limits_.burst;
  return burst > 1 ? burst - std::max<uint32_t>(1, burst / 10) : burst;
}

bool LinkClient::token_ready() {
  if (limits_.messages_per_s == 0) return true;
  const int64_t now = SystemClock::instance().mono_ms();
  tokens_ = std::min(bucket_size(), tokens_ + static_cast<double>(now - refill_ms_) * limits_.messages_per_s / 1000.0);
  refill_ms_ = now;
  if (tokens_ >= 1.0) return true;
  if (!pace_timer_.active()) {
    ++stats_.paced;
    pace_timer_.start(std::max<uint32_t>(1, static_cast<uint32_t>(std::ceil((1.0 - tokens_) * 1000.0 / limits_.messages_per_s))));
  }
  return false;
}

bool LinkClient::write_text(lws* wsi, const std::string& text) {
  tx_.resize(LWS_PRE + text.size());
  std::memcpy(tx_.data() + LWS_PRE, text.data(), text.size());
  const int n = lws_write(wsi, tx_.data() + LWS_PRE, text.size(), LWS_WRITE_TEXT);
  if (n < static_cast<int>(text.size())) {
    LOG_ERROR("link") << "write to the cloud failed; closing the link";
    return false;
  }
  ++stats_.frames_sent;
  tokens_ -= 1.0;
  return true;
}

int LinkClient::on_writeable(lws* wsi) {
  if (stopping_) {
    static const char kReason[] = "gateway stopping";
    lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, reinterpret_cast<unsigned char*>(const_cast<char*>(kReason)),
                     sizeof kReason - 1);
    return -1;
  }
  // One write per callback; ask again while there is more.
  bool more = false;
  if (!hello_.empty()) {
    if (!write_text(wsi, hello_)) return -1;
    hello_.clear();
    more = true;
  } else if (!acked_once_) {
    return 0;  // nothing else before the cloud has answered hello
  } else if (!token_ready()) {
    // Text waits for the cloud's rate (the pace timer asks again); stream data may go below.
  } else if (!results_.empty()) {
    if (!write_text(wsi, results_.front())) return -1;
    results_.pop_front();
    more = true;
  } else if (!control_.empty()) {
    ControlMessage message = std::move(control_.front());
    control_.pop_front();
    if (message.kind == Control::devices) {
      devices_waiting_ = false;
      message.text = proto::encode(listener_.device_list());
    }
    if (!write_text(wsi, message.text)) return -1;
    more = true;
  } else if (sent_upto_ - acked_ < kWindow) {
    // Encoded item by item and cut where the next would pass the cloud's frame limit: a frame
    // the cloud refuses closes the link, so a batch must never be one.
    const size_t room = std::min({kBatchItems, limits_.max_batch,
                                  static_cast<size_t>(kWindow - (sent_upto_ - acked_))});
    proto::StatusBatchEncoder encoder(limits_.max_message_bytes, room);
    encoder.set_counts(listener_.dropped(), listener_.coalesced());
    int64_t last = 0;
    for (const auto& item : listener_.statuses_after(sent_upto_, room)) {
      if (encoder.add(item)) {
        last = item.seq;
        continue;
      }
      if (encoder.items() > 0) break;
      // Alone too big for a frame: it can never be sent. Dropped, counted, said.
      ++stats_.refused_statuses;
      listener_.refuse_status(item, "its frame would take " + std::to_string(encoder.frame_size_of(item)) +
                                        " bytes, over the cloud's limit of " +
                                        std::to_string(limits_.max_message_bytes));
      more = true;
    }
    if (encoder.items() > 0) {
      const size_t count = encoder.items();
      if (!write_text(wsi, encoder.finish())) return -1;
      sent_upto_ = last;
      stats_.statuses_sent += count;
      more = true;
    }
  }
  // Stream data last: only when no text is waiting.
  if (!more && acked_once_ && !frames_.empty()) {
    auto frame = frames_.pop(SystemClock::instance().mono_ms());
    if (frame) {
      tx_.resize(LWS_PRE + frame->size());
      std::memcpy(tx_.data() + LWS_PRE, frame->data(), frame->size());
      const int n = lws_write(wsi, tx_.data() + LWS_PRE, frame->size(), LWS_WRITE_BINARY);
      if (n < static_cast<int>(frame->size())) {
        LOG_ERROR("link") << "write to the cloud failed; closing the link";
        return -1;
      }
    }
    more = !frames_.empty();
  }
  if (more) lws_callback_on_writable(wsi);
  return 0;
}

}  // namespace flatlink::link
