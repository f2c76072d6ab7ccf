// The WiFly listener's opening (device-adapters/wifly/websocket_handshake.h): the
// sniff, the WebSocket upgrade parser (hixie-75, hixie-76 with its 8-byte key3,
// RFC 6455), the hixie-76 key arithmetic and the answers built from what was parsed.
// Checked: no crash; a complete parse consumes no more than it was given, and the
// same request split in two needs more data first and then parses the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "device-adapters/wifly/websocket_handshake.h"

using namespace flatlink::adapters::wifly;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)sniff_opening(text);
  constexpr size_t kMax = 4096;
  const UpgradeParse parse = parse_upgrade(text, kMax);
  if (parse.status == UpgradeParse::Status::ok) {
    const UpgradeRequest& r = parse.request;
    if (r.consumed == 0 || r.consumed > text.size() || r.consumed > kMax) std::abort();
    (void)to_string(r.version);
    if (r.version == WsVersion::hixie75) (void)hixie75_response(r);
    if (r.version == WsVersion::hixie76) {
      if (const auto answer = hixie76_answer(r.key1, r.key2, r.key3)) (void)hixie76_response(r, *answer);
    }
    // Every prefix short of the request is incomplete or already wrong, never "ok".
    const UpgradeParse shorter = parse_upgrade(text.substr(0, r.consumed - 1), kMax);
    if (shorter.status == UpgradeParse::Status::ok) std::abort();
    // Exactly the request parses the same.
    const UpgradeParse exact = parse_upgrade(text.substr(0, r.consumed), kMax);
    if (exact.status != UpgradeParse::Status::ok || exact.request.consumed != r.consumed ||
        exact.request.key3 != r.key3 || exact.request.path != r.path)
      std::abort();
  } else if (parse.status == UpgradeParse::Status::error && parse.error.empty()) {
    std::abort();
  }
  // The key arithmetic on arbitrary keys.
  const size_t half = size / 2;
  (void)hixie76_key_number(text.substr(0, half));
  (void)hixie76_answer(text.substr(0, half), text.substr(half), text.substr(0, 8));
  (void)http_error_response(400, text.substr(0, 64));
  return 0;
}
