#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

// RFC 6455 5.1: "The server MUST close the connection upon receiving a frame that is not
// masked." libwebsockets 4.1.6 (Debian's) reads the mask bit and processes such frames all the
// same, and tells its callbacks nothing about it. So the cloud looks at the bytes itself, on
// their way from the socket to lws: the executable's read hooks (ws_read_hooks.cpp: recv for
// plain links, SSL_read for TLS, both on the loop's thread) hand every byte a watched
// connection reads to ws_guard::received(). Once the upgrade is accepted the guard follows the
// frame headers; at the first unmasked one it cuts the read there and the connection ends
// (the read returns end of stream, and the socket's read side is shut so lws is woken to
// read it): the unmasked frame and whatever follows it never reach lws, so never a callback.
// No close frame is sent (the RFC's MAY; the connection is closed at once instead).
namespace flatlink::cloud::ws_guard {

// One connection's byte stream, pure (tests/cloud-server/test_ws_frame_guard.cpp).
class Stream {
 public:
  // Bytes the peer sent, in order. Returns how many of them may go to lws: all of them,
  // unless an unmasked frame starts among them (then the bytes before it), or the stream
  // was refused before (0).
  size_t feed(const uint8_t* data, size_t size);

  // The upgrade request was read: the bytes after its head are frames, and so is everything
  // after. The bytes already read past the head went to lws as HTTP; they are checked now,
  // and false means one of them began an unmasked frame (the caller refuses the upgrade,
  // so that lws never gets to process them).
  bool upgraded();

  bool refused() const { return refused_; }
  size_t kept_bytes() const { return tail_.size(); }

  // What an HTTP request keeps of its bytes: only what came after the newest head (the
  // frames a client may send right behind its upgrade request), at most this much.
  static constexpr size_t kMaxTailBytes = 16 * 1024;

 private:
  size_t scan_frames(const uint8_t* data, size_t size);

  bool framing_ = false;  // past the upgrade: following frame headers
  bool refused_ = false;
  // HTTP: how much of "\r\n\r\n" ends the bytes so far, and the bytes after the last head.
  int head_end_ = 0;
  std::string tail_;
  // Frames: where in a frame the next byte is.
  enum class At { first, second, length, mask, payload } at_ = At::first;
  int length_bytes_ = 0;   // extended length bytes still to come
  int mask_bytes_ = 0;     // mask key bytes still to come
  uint64_t remaining_ = 0; // payload bytes still to come (or the length being read)
};

// The registry the server and the read hooks share. Only the thread that runs the server's
// loop (set_loop_thread) is watched: reads on other threads (the store's, the broker client's)
// pass untouched.
void set_loop_thread();
bool on_loop_thread();
// A connection accepted (LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED); `peer` names it in logs.
void watch(int fd, std::string peer);
// Its WebSocket upgrade request read (FILTER_PROTOCOL_CONNECTION); false: refuse the upgrade,
// frames sent right behind the request were unmasked. An fd not watched: true.
bool upgraded(int fd);
void forget(int fd);    // it closed (LWS_CALLBACK_CLOSED / CLOSED_HTTP)

// From the read hooks: `size` bytes were read from `fd` into `data`. Returns how many the
// caller may hand on (see Stream::feed); the rest are dropped. An fd not watched: all.
size_t received(int fd, const uint8_t* data, size_t size);
// True when reads on `fd` must report end of stream (it was refused).
bool refused(int fd);

// Connections closed for an unmasked frame since start (/metrics).
uint64_t refused_total();

}  // namespace flatlink::cloud::ws_guard
