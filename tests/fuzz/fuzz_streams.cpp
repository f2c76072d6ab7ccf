// Device streams' outside bytes: binary frames (cloud-link/stream_frames.h) and stream
// control messages (cloud-link/stream_protocol.h) on all four routes. Contract checked:
// nothing throws or crashes; a frame header that decodes re-encodes to the same bytes; a
// control message that decodes encodes to a frame that decodes to the same message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "cloud-link/stream_frames.h"
#include "cloud-link/stream_protocol.h"

using namespace flatlink;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto frame = stream::decode_frame(bytes)) {
    if (stream::encode_frame(frame->header, frame->payload) != bytes) std::abort();
  }
  for (auto route : {proto::StreamRoute::browser_to_cloud, proto::StreamRoute::cloud_to_gateway,
                     proto::StreamRoute::gateway_to_cloud, proto::StreamRoute::cloud_to_browser}) {
    auto decoded = proto::decode_stream(bytes, route);
    if (!decoded) continue;
    if (const auto* msg = std::get_if<proto::StreamMessage>(&*decoded)) {
      auto again = proto::decode_stream(proto::encode(*msg, route), route);
      if (!again) std::abort();
      const auto* back = std::get_if<proto::StreamMessage>(&*again);
      if (back == nullptr || !(*back == *msg)) std::abort();
    }
  }
  return 0;
}
