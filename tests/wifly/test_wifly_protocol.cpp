// The WiFly byte-stream pieces without sockets: markers, lines, hixie frames
// and the WebSocket opening handshakes (the hixie-76 draft's example as a vector).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "device-adapters/wifly/websocket_handshake.h"
#include "device-adapters/wifly/wifly_framing.h"
#include "device-adapters/wifly/wifly_markers.h"

using namespace flatlink::adapters::wifly;

namespace {

struct Filtered {
  std::string data;
  std::vector<Marker> markers;
};

Filtered filter_chunks(const std::vector<std::string>& chunks, MarkerFilter::Strings strings = {}) {
  MarkerFilter filter(strings);
  Filtered out;
  for (const auto& chunk : chunks) filter.feed(chunk, out.data, [&](Marker m) { out.markers.push_back(m); });
  return out;
}

std::vector<std::string> split_lines(LineFramer& framer, std::string_view data, int* overlong = nullptr) {
  std::vector<std::string> lines;
  framer.feed(
      data, [&](std::string_view line) { lines.emplace_back(line); },
      [&](size_t) {
        if (overlong) ++*overlong;
      });
  return lines;
}

constexpr std::string_view kKey1 = "4 @1  46546xW%0l 1 5";
constexpr std::string_view kKey2 = "12998 5 Y3 1  .P00";
constexpr std::string_view kKey3 = "^n:ds[4U";
constexpr std::string_view kAnswer = "8jKS'y:G*Co,Wxa-";

std::string draft_request(std::string_view key1 = kKey1, std::string_view key2 = kKey2) {
  return std::string("GET /demo HTTP/1.1\r\n") + "Host: example.com\r\n" + "Connection: Upgrade\r\n" +
         "Sec-WebSocket-Key2: " + std::string(key2) + "\r\n" + "Sec-WebSocket-Protocol: sample\r\n" +
         "Upgrade: WebSocket\r\n" + "Sec-WebSocket-Key1: " + std::string(key1) + "\r\n" +
         "Origin: http://example.com\r\n" + "\r\n" + std::string(kKey3);
}

}  // namespace

// ---------------------------------------------------------------- markers

TEST_CASE("the module's markers are taken out of the stream wherever they stand and reported in order") {
  const Filtered f = filter_chunks({"*HELLO*{\"dev\":\"t1\",\"te*OPEN*mp\":21}\n*CLOS*"});
  CHECK(f.data == "{\"dev\":\"t1\",\"temp\":21}\n");
  CHECK(f.markers == std::vector<Marker>{Marker::hello, Marker::open, Marker::close});
}

TEST_CASE("a marker split over two reads is still recognised and never leaks as data") {
  const Filtered f = filter_chunks({"{\"a\":1}\n*HE", "LLO*", "{\"b\":2}\n*CL", "OS", "*"});
  CHECK(f.data == "{\"a\":1}\n{\"b\":2}\n");
  CHECK(f.markers == std::vector<Marker>{Marker::hello, Marker::close});
}

TEST_CASE("stars that do not make a marker are data, also when they are held back for a moment") {
  MarkerFilter filter;
  std::string out;
  int markers = 0;
  filter.feed("5*3=15 *OPE", out, [&](Marker) { ++markers; });
  CHECK(out == "5*3=15 ");
  CHECK(filter.pending() == 4);
  filter.feed("X*", out, [&](Marker) { ++markers; });
  CHECK(out == "5*3=15 *OPEX");
  filter.flush(out);
  CHECK(out == "5*3=15 *OPEX*");
  CHECK(markers == 0);
}

TEST_CASE("marker strings follow the module's configuration and an empty one is disabled") {
  MarkerFilter::Strings strings;
  strings.open = "[up]";
  strings.close = "";
  strings.hello = "*HELLO*";
  const Filtered f = filter_chunks({"[up]x*CLOS*y\n"}, strings);
  CHECK(f.data == "x*CLOS*y\n");
  CHECK(f.markers == std::vector<Marker>{Marker::open});
}

// ---------------------------------------------------------------- lines

TEST_CASE("lines are split on newlines, CRLF is accepted, and a line may arrive in pieces") {
  LineFramer framer(64);
  CHECK(split_lines(framer, "{\"a\":1}\r\n{\"b\"").size() == 1);
  const auto lines = split_lines(framer, ":2}\n\n");
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "{\"b\":2}");
  CHECK(lines[1].empty());
}

TEST_CASE("an overlong line is dropped once and the framer resynchronises at the next newline") {
  LineFramer framer(16);
  int overlong = 0;
  auto lines = split_lines(framer, std::string(40, 'x'), &overlong);
  CHECK(lines.empty());
  lines = split_lines(framer, std::string(40, 'y') + "\nok\n", &overlong);
  CHECK(overlong == 1);
  CHECK(lines == std::vector<std::string>{"ok"});
  lines = split_lines(framer, std::string(17, 'z') + "\nfine\n", &overlong);
  CHECK(overlong == 2);
  CHECK(lines == std::vector<std::string>{"fine"});
  CHECK(split_lines(framer, std::string(16, 'a') + "\r\n") == std::vector<std::string>{std::string(16, 'a')});
}

// ---------------------------------------------------------------- hixie frames

TEST_CASE("hixie frames decode across reads, binary frames are skipped and 0xFF 0x00 closes") {
  HixieDecoder decoder(32);
  std::vector<std::string> messages;
  int closes = 0;
  auto on = [&](HixieDecoder::Event e, std::string_view text) {
    if (e == HixieDecoder::Event::message) messages.emplace_back(text);
    if (e == HixieDecoder::Event::close) ++closes;
    if (e == HixieDecoder::Event::error) FAIL("unexpected error: " << text);
  };
  decoder.feed(std::string("\x00{\"a\":1}\xFF\x00{\"b\"", 14), on);
  decoder.feed(std::string(":2}\xFF\x80\x03xyz\x00\xFF", 11), on);
  CHECK(messages == std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", ""});
  decoder.feed(std::string("\xFF\x00", 2), on);
  CHECK(closes == 1);
  CHECK(decoder.stopped());
  CHECK(hixie_frame("hi") == std::string("\x00hi\xFF", 4));
}

TEST_CASE("a bad hixie frame type or an overlong frame is an error") {
  std::string error;
  auto on = [&](HixieDecoder::Event e, std::string_view text) {
    if (e == HixieDecoder::Event::error) error = std::string(text);
  };
  HixieDecoder bad_type(32);
  bad_type.feed("A", on);
  CHECK(error.find("0x00") != std::string::npos);
  error.clear();
  HixieDecoder overlong(8);
  overlong.feed(std::string(1, '\0') + std::string(20, 'x'), on);
  CHECK(error == "text frame longer than the limit");
}

// ---------------------------------------------------------------- handshakes

TEST_CASE("the first bytes tell plain lines from a WebSocket request") {
  CHECK(sniff_opening("") == Opening::need_more);
  CHECK(sniff_opening("GE") == Opening::need_more);
  CHECK(sniff_opening("GET /") == Opening::http);
  CHECK(sniff_opening("{\"dev\"") == Opening::plain);
  CHECK(sniff_opening("GEX") == Opening::plain);
}

TEST_CASE("hixie-76 draft example: the keys give 829309203 and 259970620 and the answer 8jKS'y:G*Co,Wxa-") {
  CHECK(hixie76_key_number(kKey1) == 829309203u);
  CHECK(hixie76_key_number(kKey2) == 259970620u);
  const auto answer = hixie76_answer(kKey1, kKey2, kKey3);
  REQUIRE(answer);
  CHECK(std::string(answer->begin(), answer->end()) == kAnswer);

  const UpgradeParse parsed = parse_upgrade(draft_request(), 4096);
  REQUIRE(parsed.status == UpgradeParse::Status::ok);
  CHECK(parsed.request.version == WsVersion::hixie76);
  CHECK(parsed.request.key1 == kKey1);
  CHECK(parsed.request.key2 == kKey2);
  CHECK(parsed.request.key3 == kKey3);
  CHECK(parsed.request.consumed == draft_request().size());
  const std::string response = hixie76_response(parsed.request, *answer);
  CHECK(response.rfind("HTTP/1.1 101 WebSocket Protocol Handshake\r\n", 0) == 0);
  CHECK(response.find("Sec-WebSocket-Origin: http://example.com\r\n") != std::string::npos);
  CHECK(response.find("Sec-WebSocket-Location: ws://example.com/demo\r\n") != std::string::npos);
  CHECK(response.find("Sec-WebSocket-Protocol: sample\r\n") != std::string::npos);
  CHECK(response.substr(response.size() - 20) == "\r\n\r\n" + std::string(kAnswer));
}

TEST_CASE("the draft keys with their double spaces collapsed, as web pages print them, are refused") {
  const std::string key1 = "4 @1 46546xW%0l 1 5";  // 4 spaces: 4146546015 % 4 != 0
  const std::string key2 = "12998 5 Y3 1 .P00";    // 4 spaces: 1299853100 / 4 works, but key1 does not
  CHECK_FALSE(hixie76_key_number(key1));
  CHECK_FALSE(hixie76_answer(key1, key2, kKey3));
  const UpgradeParse parsed = parse_upgrade(draft_request(key1, key2), 4096);
  CHECK(parsed.status == UpgradeParse::Status::error);
  CHECK(parsed.error.find("Key1") != std::string::npos);
}

TEST_CASE("hixie-76 keys without spaces, without digits or beyond 32 bits are invalid") {
  CHECK_FALSE(hixie76_key_number("12345"));
  CHECK_FALSE(hixie76_key_number("a b c"));
  CHECK_FALSE(hixie76_key_number("99999999999 "));
  CHECK(hixie76_key_number("1 2") == 12u);
}

TEST_CASE("a hixie-76 request waits for its 8-byte key, and hixie-75 and RFC 6455 requests are told apart") {
  const std::string full = draft_request();
  CHECK(parse_upgrade(full.substr(0, full.size() - 3), 4096).status == UpgradeParse::Status::need_more);
  CHECK(parse_upgrade(full.substr(0, 40), 4096).status == UpgradeParse::Status::need_more);

  const std::string h75 =
      "GET /x HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nHost: gw:2000\r\nOrigin: null\r\n\r\n";
  UpgradeParse parsed = parse_upgrade(h75, 4096);
  REQUIRE(parsed.status == UpgradeParse::Status::ok);
  CHECK(parsed.request.version == WsVersion::hixie75);
  const std::string response = hixie75_response(parsed.request);
  CHECK(response.rfind("HTTP/1.1 101 Web Socket Protocol Handshake\r\n", 0) == 0);
  CHECK(response.find("WebSocket-Origin: null\r\n") != std::string::npos);
  CHECK(response.find("WebSocket-Location: ws://gw:2000/x\r\n") != std::string::npos);

  const std::string rfc =
      "GET / HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  parsed = parse_upgrade(rfc, 4096);
  REQUIRE(parsed.status == UpgradeParse::Status::ok);
  CHECK(parsed.request.version == WsVersion::rfc6455);
  CHECK(parsed.request.consumed == rfc.size());
}

TEST_CASE("malformed upgrade requests are refused with a reason") {
  auto error_of = [](const std::string& request, size_t max = 4096) {
    const UpgradeParse p = parse_upgrade(request, max);
    CHECK(p.status == UpgradeParse::Status::error);
    return p.error;
  };
  CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n").find("Upgrade") != std::string::npos);
  CHECK(error_of("GET / HTTP/1.0\r\nHost: a\r\n\r\n").find("request line") != std::string::npos);
  CHECK(error_of("GET / HTTP/1.1\r\nno colon here\r\n\r\n") == "malformed header line");
  CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n")
            .find("twice") != std::string::npos);
  CHECK(error_of("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key1: 1 2\r\n\r\n12345678")
            .find("Key2") != std::string::npos);
  // Oversized: refused as soon as the limit is passed, also without the end of the headers.
  CHECK(error_of("GET / HTTP/1.1\r\nX-Pad: " + std::string(5000, 'p'), 4096).find("longer than 4096") !=
        std::string::npos);
  CHECK(http_error_response(400, "Bad Request").rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
}
