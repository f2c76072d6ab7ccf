// A fake WiFly module for the tests: real loopback TCP on the test's event loop,
// speaking the module's markers, plain lines, and the hixie-75/76 handshakes and
// frames that the old mbed WebSocket client sends. No threads, no sleeps: the
// test runs the loop until what it waits for has happened.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/event_loop.h"

namespace flatlink::testing {

// One TCP connection seen from the module's side.
class FakeConnection {
 public:
  FakeConnection(EventLoop& loop, int fd);
  ~FakeConnection();

  // Sends `bytes`: what the socket takes at once, the rest from the loop when it is writable.
  void send(std::string_view bytes);
  // Bytes not sent yet.
  size_t unsent() const { return out_.size() - sent_; }
  void close();

  // Everything the adapter sent so far, and whether it closed the connection.
  const std::string& received() const { return received_; }
  bool peer_closed() const { return peer_closed_; }
  bool open() const { return fd_ >= 0; }
  // Complete lines received so far (without "\n").
  std::vector<std::string> lines() const;
  // hixie text frames received after the handshake answer (which ends at `skip`).
  std::vector<std::string> hixie_frames(size_t skip) const;

 private:
  void on_events(int events);
  void flush();
  int fd_;
  std::string out_;
  size_t sent_ = 0;
  std::unique_ptr<FdWatch> watch_;
  std::string received_;
  bool peer_closed_ = false;
};

// A module in TCP server mode: listens on a free loopback port.
class FakeModuleServer {
 public:
  explicit FakeModuleServer(EventLoop& loop, uint16_t port = 0);
  ~FakeModuleServer();
  uint16_t port() const { return port_; }
  // Called for each new connection (e.g. to send "*HELLO*").
  std::function<void(FakeConnection&)> on_accept;
  std::vector<std::unique_ptr<FakeConnection>> connections;
  // Stops listening (connections stay).
  void stop_listening();

 private:
  EventLoop& loop_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::unique_ptr<FdWatch> watch_;
};

// A module (or mbed WebSocket client) connecting in to 127.0.0.1:port.
std::unique_ptr<FakeConnection> connect_to(EventLoop& loop, uint16_t port);

// A loopback port that was free a moment ago.
uint16_t free_port();

// The hixie-76 draft's example request, with the given keys and 8-byte body.
std::string hixie76_request(std::string_view key1, std::string_view key2, std::string_view key3,
                            std::string_view path = "/demo");
std::string hixie75_request(std::string_view path = "/demo");
std::string hixie_text_frame(std::string_view text);

}  // namespace flatlink::testing
