// The cloud's own check of RFC 6455 5.1 (a client's frames are masked), on the bytes a
// connection reads (cloud-server/ws_frame_guard.h; issue #19 finding 3). The whole path,
// through the real binary and libwebsockets: tests/integration/frontdoor.test.mjs.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cloud-server/ws_frame_guard.h"

using flatlink::cloud::ws_guard::Stream;

namespace {

// One client frame: FIN + opcode, the length in its 7-bit, 16-bit or 64-bit form, the mask
// key when masked, the payload (masked with key 0: the guard reads headers only).
std::string frame(size_t payload, bool masked = true, uint8_t opcode = 1) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  const uint8_t mask_bit = masked ? 0x80 : 0;
  if (payload < 126) {
    f.push_back(static_cast<char>(mask_bit | payload));
  } else if (payload <= 0xffff) {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(payload >> 8));
    f.push_back(static_cast<char>(payload & 0xff));
  } else {
    f.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) f.push_back(static_cast<char>((uint64_t(payload) >> shift) & 0xff));
  }
  if (masked) f.append(4, '\0');
  f.append(payload, 'x');
  return f;
}

size_t feed(Stream& s, const std::string& bytes) {
  return s.feed(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// Feeds `bytes` in pieces of `step` and returns how many went through in all.
size_t feed_in_pieces(Stream& s, const std::string& bytes, size_t step) {
  size_t passed = 0;
  for (size_t i = 0; i < bytes.size(); i += step) passed += feed(s, bytes.substr(i, step));
  return passed;
}

const std::string kUpgrade =
    "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

}  // namespace

TEST_CASE("masked frames of every length form pass whole, in any pieces") {
  const std::string frames = frame(0) + frame(5) + frame(125) + frame(126) + frame(70000, true, 2) +
                             frame(3, true, 9) + frame(300);
  for (size_t step : {size_t{1}, size_t{3}, size_t{7}, size_t{4096}, frames.size()}) {
    CAPTURE(step);
    Stream s;
    feed(s, kUpgrade);
    CHECK(s.upgraded());
    CHECK(feed_in_pieces(s, frames, step) == frames.size());
    CHECK_FALSE(s.refused());
  }
}

TEST_CASE("an unmasked frame and everything after it are cut off, the frames before it pass") {
  const std::string before = frame(10) + frame(200);
  const std::string bytes = before + frame(20, false) + frame(5);
  Stream s;
  feed(s, kUpgrade);
  REQUIRE(s.upgraded());
  CHECK(feed(s, bytes) == before.size());
  CHECK(s.refused());
  CHECK(feed(s, frame(5)) == 0);  // nothing more, ever
  CHECK_FALSE(s.upgraded());
}

TEST_CASE("an unmasked header split across reads: only the bytes before its frame pass") {
  const std::string before = frame(10);
  const std::string bad = frame(20, false);
  Stream s;
  feed(s, kUpgrade);
  REQUIRE(s.upgraded());
  // The bad frame's first byte arrives with the good frame (lws gets it, a partial frame it
  // cannot process); its second byte, the one without the mask bit, comes next.
  CHECK(feed(s, before + bad.substr(0, 1)) == before.size() + 1);
  CHECK_FALSE(s.refused());
  CHECK(feed(s, bad.substr(1)) == 0);
  CHECK(s.refused());
}

TEST_CASE("a payload's bytes are never read as a header (a 64-bit length, lengths of 126 and 65535)") {
  // Payload bytes of 0x00 would read as unmasked headers if the guard lost its place.
  for (size_t n : {size_t{126}, size_t{65535}, size_t{65536}, size_t{200000}}) {
    CAPTURE(n);
    Stream s;
    feed(s, kUpgrade);
    REQUIRE(s.upgraded());
    std::string f = frame(n);
    std::fill(f.end() - static_cast<long>(n), f.end(), '\0');
    const std::string bytes = f + frame(1);
    CHECK(feed_in_pieces(s, bytes, 1000) == bytes.size());
    CHECK_FALSE(s.refused());
  }
}

TEST_CASE("frames sent right behind the upgrade request are checked when the upgrade is read") {
  SUBCASE("masked: the upgrade goes ahead") {
    Stream s;
    const std::string bytes = kUpgrade + frame(30);
    CHECK(feed(s, bytes) == bytes.size());  // HTTP: all of it goes to lws, which parses the head
    CHECK(s.upgraded());
    CHECK(feed(s, frame(4)) == frame(4).size());
  }
  SUBCASE("unmasked: the upgrade is refused") {
    Stream s;
    const std::string bytes = kUpgrade + frame(30, false);
    CHECK(feed(s, bytes) == bytes.size());
    CHECK_FALSE(s.upgraded());
    CHECK(s.refused());
  }
  SUBCASE("the head split in every place") {
    const std::string bytes = kUpgrade + frame(30, false);
    for (size_t cut = 1; cut < bytes.size(); ++cut) {
      CAPTURE(cut);
      Stream s;
      feed(s, bytes.substr(0, cut));
      feed(s, bytes.substr(cut));
      CHECK_FALSE(s.upgraded());
    }
  }
}

TEST_CASE("HTTP requests before the upgrade (bodies, CRLFs, keep-alive) leave only what follows the last head") {
  Stream s;
  const std::string post = "POST /session HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{\"a\":\r\n}";
  const std::string get = "GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string bytes = post + get + kUpgrade + frame(8);
  CHECK(feed_in_pieces(s, bytes, 5) == bytes.size());
  CHECK(s.upgraded());
  CHECK_FALSE(s.refused());
}

TEST_CASE("what an HTTP connection keeps is bounded") {
  Stream s;
  const std::string body(1 << 20, 'x');  // a megabyte without a head's end
  feed(s, "POST /session HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n" + body);
  CHECK(s.kept_bytes() == Stream::kMaxTailBytes);
  feed(s, kUpgrade);  // a new head: what came before is forgotten
  CHECK(s.kept_bytes() == 0);
}
