// The opening of a connection on the WiFly listener: plain lines or a WebSocket
// upgrade, and which WebSocket (hixie-75, hixie-76 or RFC 6455). Builds the
// hixie answers; RFC 6455 is answered by libwebsockets. Pure code: no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flatlink::adapters::wifly {

// What the first bytes of a connection say.
enum class Opening { need_more, http, plain };
// "GET " starts a WebSocket upgrade; anything else is a plain line module.
Opening sniff_opening(std::string_view first_bytes);

enum class WsVersion { hixie75, hixie76, rfc6455 };
std::string_view to_string(WsVersion version);

struct UpgradeRequest {
  WsVersion version = WsVersion::rfc6455;
  std::string path;
  std::string host;
  std::string origin;
  std::string protocol;   // Sec-WebSocket-Protocol / WebSocket-Protocol, may be empty
  std::string key1, key2;  // hixie-76
  std::string key3;        // hixie-76: the 8 bytes after the headers
  size_t consumed = 0;     // bytes of the request (headers, and key3 for hixie-76)
};

struct UpgradeParse {
  enum class Status { need_more, ok, error };
  Status status = Status::need_more;
  UpgradeRequest request;
  std::string error;  // for people and the log: what was wrong
};

// Parses a WebSocket upgrade request at the start of `data`. need_more until the
// headers (and, for hixie-76, the 8-byte key) are complete; error when anything is
// malformed or the request would exceed max_bytes.
UpgradeParse parse_upgrade(std::string_view data, size_t max_bytes);

// A hixie-76 key: its digits as a number divided by its spaces. Empty when there
// are no spaces, the division leaves a remainder, or the result exceeds 32 bits.
std::optional<uint32_t> hixie76_key_number(std::string_view key);
// MD5(number1 big-endian, number2 big-endian, key3); empty when a key is invalid.
std::optional<std::array<unsigned char, 16>> hixie76_answer(std::string_view key1, std::string_view key2,
                                                            std::string_view key3);

// The server's side of the handshake, ready to write. For hixie-76 it includes the
// 16-byte answer (the request must have passed hixie76_answer).
std::string hixie75_response(const UpgradeRequest& request);
std::string hixie76_response(const UpgradeRequest& request, const std::array<unsigned char, 16>& answer);
// A short HTTP error answer, after which the connection is closed.
std::string http_error_response(int status, std::string_view reason);

}  // namespace flatlink::adapters::wifly
