// An RFC 6455 WebSocket client of the WiFly listener, served by libwebsockets:
// the listener has read the upgrade request and hands the socket, with those
// bytes, to lws (lws_adopt_socket_vhost_readbuf). The framing is lws' job.
//
// The adopted sockets live on a vhost of their own ("flatlink-wifly") whose only
// protocol is this one, so that a client that names no subprotocol lands here
// and not on another protocol of the process (the default vhost's first one).
#pragma once

#include <libwebsockets.h>

#include <deque>
#include <string>

#include "common/event_loop.h"
#include "device-adapters/wifly/session.h"

namespace flatlink::adapters::wifly {

class Rfc6455Session final : public Session {
 public:
  static constexpr const char* kProtocolName = "flatlink-wifly";
  // The vhost for adopted sockets of this loop, created on first use; null on failure.
  static lws_vhost* vhost(EventLoop& loop);

  Rfc6455Session(SessionOwner& owner, std::string peer, size_t max_message_bytes);
  ~Rfc6455Session() override;

  // Hands `fd` (owned from now on by lws) and the bytes already read to lws. The
  // owner has stored the session already: on_open / on_closed may run from here.
  void adopt(lws_vhost* vhost, int fd, std::string_view already_read);
  void send(std::string_view message) override;
  void close() override;
  std::string_view kind() const override { return "RFC 6455"; }

 private:
  static int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  int handle(lws* wsi, lws_callback_reasons reason, void* in, size_t len);
  void finish(const std::string& why);
  void detach();

  SessionOwner& owner_;
  size_t max_message_bytes_;
  lws* wsi_ = nullptr;
  int fd_ = -1;
  bool established_ = false;
  bool finished_ = false;
  std::deque<std::string> queue_;
  std::string rx_;
};

}  // namespace flatlink::adapters::wifly
