// A connected gateway or browser as the cloud's routing parts see it: what they send
// through and close. The server's WebSocket session implements it; tests fake it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace flatlink::cloud {

// A connected gateway or browser, as the router sees it.
class Peer {
 public:
  virtual ~Peer() = default;
  virtual void send(std::string frame) = 0;
  // A frame of the flat's state (snapshot, update, presence, device list, gateway state),
  // which one later snapshot supersedes: a browser too far behind may get that snapshot
  // instead (Router::resync_browser).
  virtual void send_state(std::string frame) { send(std::move(frame)); }
  // Sends a close frame with this code and reason, then drops the connection.
  virtual void close(uint16_t code, const std::string& reason) = 0;
  virtual const std::string& describe() const = 0;  // for log lines, e.g. "peer=12 from 127.0.0.1"
  // A binary stream frame (cloud-server/streams.h): queued apart from text, bounded in time per
  // stream, dropped oldest first, and written only when no text waits.
  virtual void send_binary(std::string frame, uint16_t stream, uint32_t duration_us) {
    (void)frame, (void)stream, (void)duration_us;
  }
  // A stream ended: its queued frames are of no use any more.
  virtual void forget_stream(uint16_t stream) { (void)stream; }
  // Where it connects from (the address logins are throttled by); "" when unknown.
  virtual std::string source() const { return {}; }
  // A browser's login succeeded: the handshake deadline stops, per-address counts move on.
  virtual void authenticated() {}
  // The SHA-256 (hex) of the session cookie the browser's upgrade carried; "" without one.
  virtual std::string session_cookie_hash() const { return {}; }
};

}  // namespace flatlink::cloud
