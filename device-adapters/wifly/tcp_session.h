// A WiFly connection on a TCP socket that the adapter reads itself: plain lines
// (a module in TCP server mode, or one that connects in), and, on the listener,
// the opening that decides between lines and a WebSocket, the hixie-75/76
// handshakes and their frames. An RFC 6455 upgrade is handed to the owner.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/event_loop.h"
#include "device-adapters/wifly/session.h"
#include "device-adapters/wifly/websocket_handshake.h"
#include "device-adapters/wifly/wifly_framing.h"
#include "device-adapters/wifly/wifly_markers.h"

namespace flatlink::adapters::wifly {

class TcpSession final : public Session {
 public:
  struct Limits {
    size_t max_handshake_bytes = 4096;
    size_t max_line_bytes = 1024;
    uint32_t handshake_timeout_ms = 5000;
    size_t max_rfc6455_handover_bytes = 2048;  // lws takes at most this much already-read data
    size_t max_send_backlog = 256 * 1024;      // bytes waiting for a peer that does not read
    MarkerFilter::Strings markers;
  };

  // Takes ownership of `fd` (non-blocking, connected). An incoming session first
  // works out what the client speaks; an outgoing one speaks lines at once.
  TcpSession(EventLoop& loop, SessionOwner& owner, int fd, std::string peer, bool incoming, const Limits& limits);
  ~TcpSession() override;

  // Begins reading; the owner has stored the session before this. An outgoing
  // session reports on_open from here.
  void start();
  void send(std::string_view message) override;
  void close() override;
  std::string_view kind() const override;

 private:
  enum class Mode { opening, handshake, lines, hixie, finished };

  void on_events(int events);
  void read_available();
  void process(std::string_view data);
  void process_opening();
  void process_handshake();
  void process_lines(std::string_view data);
  void process_hixie(std::string_view data);
  void on_deadline();
  void write_out(std::string_view bytes);
  void flush();
  // The one error path: log, stop, tell the owner once.
  void fail(const std::string& why, bool warn);

  EventLoop& loop_;
  SessionOwner& owner_;
  int fd_;
  Limits limits_;
  Mode mode_;
  WsVersion version_ = WsVersion::rfc6455;
  std::unique_ptr<FdWatch> watch_;
  Timer deadline_;
  MarkerFilter markers_;
  LineFramer lines_;
  HixieDecoder hixie_;
  std::string in_;   // opening and handshake bytes not yet consumed
  std::string out_;  // bytes the socket did not take yet
};

}  // namespace flatlink::adapters::wifly
