// The wire protocol decoders (cloud-link/protocol.h), all four directions, on one
// WebSocket text frame. Contract checked: decode never throws or crashes, and a
// message it accepts encodes to a frame that decodes to the same message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "cloud-link/protocol.h"

using namespace flatlink::proto;

namespace {

template <class Msg, class Decode>
void check(std::string_view text, Decode decode) {
  const auto decoded = decode(text, Limits{});
  if (const auto* msg = std::get_if<Msg>(&decoded)) {
    const std::string again = encode(*msg);
    const auto redecoded = decode(again, Limits{});
    const auto* back = std::get_if<Msg>(&redecoded);
    if (back == nullptr || !(*back == *msg)) std::abort();  // a message that does not round-trip
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check<GatewayToCloud>(text, [](std::string_view t, const Limits& l) { return decode_from_gateway(t, l); });
  check<CloudToGateway>(text, [](std::string_view t, const Limits& l) { return decode_from_cloud_for_gateway(t, l); });
  check<BrowserToCloud>(text, [](std::string_view t, const Limits& l) { return decode_from_browser(t, l); });
  check<CloudToBrowser>(text, [](std::string_view t, const Limits& l) { return decode_from_cloud_for_browser(t, l); });
  return 0;
}
