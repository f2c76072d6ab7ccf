// RFC 6455 clients of the WiFly listener, adopted by libwebsockets.
#include "device-adapters/wifly/rfc6455_session.h"

#include <unistd.h>

#include <algorithm>
#include <vector>

#include "common/log.h"
#include "device-adapters/adapter_base.h"

namespace flatlink::adapters::wifly {
namespace {

constexpr const char* kTag = "wifly";
constexpr const char* kVhostName = "flatlink-wifly";
constexpr size_t kMaxQueued = 256;  // messages waiting for a client that does not read

// The session being adopted: lws runs the first callbacks of the new wsi inside
// lws_adopt_socket_vhost_readbuf(), before we could set its opaque pointer.
thread_local Rfc6455Session* t_adopting = nullptr;
thread_local int t_adopting_fd = -1;

const lws_protocols* protocols(lws_callback_function* callback) {
  static lws_protocols list[2] = {};
  if (!list[0].name) {
    list[0].name = Rfc6455Session::kProtocolName;
    list[0].callback = callback;
    list[0].rx_buffer_size = 4096;
  }
  return list;
}

}  // namespace

lws_vhost* Rfc6455Session::vhost(EventLoop& loop) {
  if (!loop.context()) return nullptr;
  if (lws_vhost* existing = lws_get_vhost_by_name(loop.context(), kVhostName)) return existing;
  lws_context_creation_info info{};
  info.vhost_name = kVhostName;
  info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
  info.protocols = protocols(&Rfc6455Session::callback);
  lws_vhost* vh = lws_create_vhost(loop.context(), &info);
  if (!vh) LOG_ERROR(kTag) << "libwebsockets could not create the vhost for RFC 6455 clients";
  return vh;
}

Rfc6455Session::Rfc6455Session(SessionOwner& owner, std::string peer, size_t max_message_bytes)
    : Session(std::move(peer)), owner_(owner), max_message_bytes_(max_message_bytes) {
  incoming = true;
}

Rfc6455Session::~Rfc6455Session() {
  finished_ = true;
  detach();
}

void Rfc6455Session::adopt(lws_vhost* vhost, int fd, std::string_view already_read) {
  fd_ = fd;
  t_adopting = this;
  t_adopting_fd = fd;
  lws* wsi = vhost ? lws_adopt_socket_vhost_readbuf(vhost, fd, already_read.data(), already_read.size()) : nullptr;
  t_adopting = nullptr;
  t_adopting_fd = -1;
  if (!vhost) ::close(fd);
  if (!wsi && !finished_) {
    wsi_ = nullptr;
    finish("libwebsockets refused the socket");
  }
}

void Rfc6455Session::send(std::string_view message) {
  if (finished_ || !wsi_ || !established_) return;
  if (queue_.size() >= kMaxQueued) {
    LOG_WARN(kTag) << "peer=" << peer() << " does not read: " << kMaxQueued << " messages waiting; closing";
    lws_close_reason(wsi_, LWS_CLOSE_STATUS_POLICY_VIOLATION, nullptr, 0);
    finish("client does not read");
    detach();
    return;
  }
  queue_.emplace_back(message);
  lws_callback_on_writable(wsi_);
}

void Rfc6455Session::close() {
  finished_ = true;
  detach();
}

void Rfc6455Session::detach() {
  if (!wsi_) return;
  lws* wsi = wsi_;
  wsi_ = nullptr;
  lws_set_opaque_user_data(wsi, nullptr);
  // Asynchronous: close() may run inside this wsi's own callback.
  lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

void Rfc6455Session::finish(const std::string& why) {
  if (finished_) return;
  finished_ = true;
  LOG_INFO(kTag) << "peer=" << peer() << " RFC 6455 " << why;
  owner_.on_closed(*this, why);
}

int Rfc6455Session::callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  auto* self = static_cast<Rfc6455Session*>(lws_get_opaque_user_data(wsi));
  if (!self && t_adopting && !t_adopting->wsi_ && t_adopting_fd >= 0 && lws_get_socket_fd(wsi) == t_adopting_fd) {
    self = t_adopting;
    self->wsi_ = wsi;
    lws_set_opaque_user_data(wsi, self);
  }
  if (!self) {
    // A connection whose session is gone (closing) or lws' own housekeeping.
    if (reason == LWS_CALLBACK_RECEIVE || reason == LWS_CALLBACK_SERVER_WRITEABLE) return -1;
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
  const int rc = self->handle(wsi, reason, in, len);
  if (rc != 0) return rc;
  return reason == LWS_CALLBACK_ESTABLISHED || reason == LWS_CALLBACK_RECEIVE ||
                 reason == LWS_CALLBACK_SERVER_WRITEABLE || reason == LWS_CALLBACK_CLOSED ||
                 reason == LWS_CALLBACK_WSI_DESTROY
             ? 0
             : lws_callback_http_dummy(wsi, reason, user, in, len);
}

int Rfc6455Session::handle(lws* wsi, lws_callback_reasons reason, void* in, size_t len) {
  switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
      established_ = true;
      LOG_INFO(kTag) << "peer=" << peer() << " RFC 6455 WebSocket open";
      owner_.on_open(*this);
      return 0;
    case LWS_CALLBACK_RECEIVE: {
      if (finished_) return -1;
      if (lws_frame_is_binary(wsi)) return 0;  // reserved for device streams; nothing here uses them
      if (rx_.size() + len > max_message_bytes_) {
        LOG_WARN(kTag) << "peer=" << peer() << " sent a message of more than " << max_message_bytes_
                       << " bytes; closing";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, nullptr, 0);
        finish("message too large");
        return -1;
      }
      rx_.append(static_cast<const char*>(in), len);
      if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0) return 0;
      std::string message = std::move(rx_);
      rx_.clear();
      // RFC 6455 8.1: a text message must be valid UTF-8, or the connection fails with 1007.
      if (!valid_utf8(message)) {
        LOG_WARN(kTag) << "peer=" << peer() << " sent a text message that is not valid UTF-8: "
                       << log::q(message) << "; closing (1007)";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_INVALID_PAYLOAD, nullptr, 0);
        finish("invalid UTF-8 in a text message");
        return -1;
      }
      // A message is one JSON object; tolerate a client that batches lines in one.
      size_t start = 0;
      while (start <= message.size() && !finished_) {
        size_t nl = message.find('\n', start);
        if (nl == std::string::npos) nl = message.size();
        std::string_view line(message.data() + start, nl - start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!line.empty()) owner_.on_message(*this, line);
        start = nl + 1;
      }
      return finished_ ? -1 : 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
      if (finished_) return -1;
      if (queue_.empty()) return 0;
      // Out of the queue before writing: nothing below refers to the popped message.
      const std::string message = std::move(queue_.front());
      queue_.pop_front();
      std::vector<unsigned char> buf(LWS_PRE + message.size());
      std::copy(message.begin(), message.end(), buf.begin() + LWS_PRE);
      const int n = lws_write(wsi, buf.data() + LWS_PRE, message.size(), LWS_WRITE_TEXT);
      if (n < static_cast<int>(message.size())) {
        finish("write failed");
        return -1;
      }
      if (!queue_.empty()) lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_CLOSED:
      lws_set_opaque_user_data(wsi, nullptr);
      wsi_ = nullptr;
      finish("closed by the WebSocket client");
      return 0;
    case LWS_CALLBACK_WSI_DESTROY:
      lws_set_opaque_user_data(wsi, nullptr);
      wsi_ = nullptr;
      finish(established_ ? "connection gone" : "handshake refused by libwebsockets");
      return 0;
    default:
      return 0;
  }
}

}  // namespace flatlink::adapters::wifly
