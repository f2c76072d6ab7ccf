// One connection to a WiFly module or WebSocket client, whatever carries it
// (plain lines, hixie-75/76 frames, or RFC 6455 through libwebsockets), and the
// interface through which it reports to its owner, the adapter.
//
// Contract: everything runs on the loop thread. A session calls its owner back
// only until it is closed: by close() (no callback), or by the peer or an error
// (exactly one on_closed). The owner never destroys a session inside one of its
// callbacks; it marks it dead and destroys it later from a timer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "device-adapters/wifly/wifly_markers.h"

namespace flatlink::adapters::wifly {

class Session {
 public:
  explicit Session(std::string peer) : peer_(std::move(peer)) {}
  virtual ~Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Sends one message (JSON text without a line break): a line, or one frame.
  virtual void send(std::string_view message) = 0;
  // Closes the connection; no callback follows.
  virtual void close() = 0;
  // "lines", "hixie-75", "hixie-76", "RFC 6455"; "opening" before the handshake.
  virtual std::string_view kind() const = 0;

  // The peer's address as "ip:port" (or the module's configured host:port).
  const std::string& peer() const { return peer_; }

  // The owner's bookkeeping, kept here so that one list holds all sessions.
  std::string device;   // the device this connection carries, once known
  int module = -1;      // index of the configured module for an outgoing connection
  bool incoming = false;
  bool dead = false;    // closed; to be destroyed from the reaper timer
  bool saw_message = false;

 private:
  std::string peer_;
};

class SessionOwner {
 public:
  virtual ~SessionOwner() = default;
  // The session carries messages now (after its handshake, if it has one).
  virtual void on_open(Session& session) = 0;
  virtual void on_message(Session& session, std::string_view message) = 0;
  virtual void on_marker(Session& session, Marker marker) = 0;
  // The peer went away or the session failed; `why` is for the log.
  virtual void on_closed(Session& session, std::string_view why) = 0;
  // An RFC 6455 upgrade was read: the owner hands `fd` (now its own) and the
  // bytes read so far to libwebsockets. The session is finished after this.
  virtual void on_rfc6455(Session& session, int fd, std::string already_read) = 0;
};

}  // namespace flatlink::adapters::wifly
