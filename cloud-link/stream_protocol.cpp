// Stream control messages: strict encode/decode.
#include "cloud-link/stream_protocol.h"

#include <set>

#include "cloud-link/stream_frames.h"

namespace flatlink::proto {
namespace {

constexpr std::string_view kTypeNames[] = {"stream_open", "stream_close", "stream_opened", "stream_closed"};

bool allowed(StreamRoute route, StreamType type) {
  switch (route) {
    case StreamRoute::browser_to_cloud:
    case StreamRoute::cloud_to_gateway: return type == StreamType::open || type == StreamType::close;
    case StreamRoute::gateway_to_cloud:
    case StreamRoute::cloud_to_browser: return type == StreamType::opened || type == StreamType::closed;
  }
  return false;
}

// The keys each message carries on its route (all required except "reason").
std::set<std::string_view> keys_of(StreamRoute route, StreamType type) {
  const bool from_browser = route == StreamRoute::browser_to_cloud;
  const bool to_browser = route == StreamRoute::cloud_to_browser;
  switch (type) {
    case StreamType::open:
      if (from_browser) return {"type", "ref", "device", "direction", "codec", "rate", "channels"};
      return {"type", "stream", "device", "direction", "codec", "rate", "channels"};
    case StreamType::close:
      if (from_browser) return {"type", "stream"};
      return {"type", "stream", "reason"};
    case StreamType::opened:
      if (to_browser) return {"type", "ref", "stream", "device", "direction", "codec", "rate", "channels"};
      return {"type", "stream"};
    case StreamType::closed:
      if (to_browser) return {"type", "ref", "stream", "reason"};
      return {"type", "stream", "reason"};
  }
  return {};
}

}  // namespace

uint32_t StreamMessage::frame_duration_us(size_t payload_bytes) const {
  return stream::frame_duration_us(opus(), payload_bytes, rate, channels);
}

std::string_view to_string(StreamDirection direction) {
  return direction == StreamDirection::from_device ? "from_device" : "to_device";
}

std::string encode(const StreamMessage& m, StreamRoute route) {
  Json j = Json::object();
  j["type"] = kTypeNames[static_cast<int>(m.type)];
  for (std::string_view key : keys_of(route, m.type)) {
    if (key == "ref") j["ref"] = m.ref;
    if (key == "stream") j["stream"] = m.stream;
    if (key == "device") j["device"] = m.device;
    if (key == "direction") j["direction"] = to_string(m.direction);
    if (key == "codec") j["codec"] = m.codec;
    if (key == "rate") j["rate"] = m.rate;
    if (key == "channels") j["channels"] = m.channels;
    if (key == "reason") j["reason"] = clip_utf8(m.reason, Limits{}.max_text);
  }
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<Decoded<StreamMessage>> decode_stream(std::string_view text, StreamRoute route) {
  // Cheap test first: the v1 messages never need this parser.
  if (text.find("\"stream_") == std::string_view::npos) return std::nullopt;
  // Stream messages are flat objects; anything nested belongs to the v1 decoder. Brackets
  // inside strings do not count: a reason may say "[usb]" (fuzz_streams found that such a
  // reason, once encoded, no longer decoded as a stream message).
  if (nested_deeper_than(text, 1)) return std::nullopt;
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto type_it = j.find("type");
  if (type_it == j.end() || !type_it->is_string()) return std::nullopt;
  const std::string type_name = type_it->get<std::string>();
  StreamMessage m;
  bool known = false;
  for (int i = 0; i < 4; ++i) {
    if (type_name == kTypeNames[i]) {
      m.type = static_cast<StreamType>(i);
      known = true;
    }
  }
  if (!known || !allowed(route, m.type)) return std::nullopt;

  auto fail = [&](const std::string& message) -> std::optional<Decoded<StreamMessage>> {
    return Decoded<StreamMessage>{DecodeError{std::string(error_code::kInvalidMessage), type_name + "." + message}};
  };
  const auto keys = keys_of(route, m.type);
  for (const auto& [key, value] : j.items()) {
    if (!keys.count(key)) return fail(key + ": unknown key");
  }
  for (std::string_view key : keys) {
    if (key != "reason" && !j.contains(std::string(key))) return fail(std::string(key) + ": required key is missing");
  }
  auto id_field = [&](const char* key, std::string& out) -> bool {
    const Json& v = j.at(key);
    if (!v.is_string() || !valid_id(v.get<std::string>())) return false;
    out = v.get<std::string>();
    return true;
  };
  auto uint_field = [&](const char* key, uint32_t lo, uint32_t hi, uint32_t& out) -> bool {
    const Json& v = j.at(key);
    if (!v.is_number_integer()) return false;
    const int64_t n = v.get<int64_t>();
    if (n < lo || n > hi) return false;
    out = static_cast<uint32_t>(n);
    return true;
  };
  if (keys.count("ref") && !id_field("ref", m.ref)) return fail("ref: expected an id (1 to 64 of A-Z a-z 0-9 _ . : -)");
  if (keys.count("stream")) {
    const uint32_t lo = (m.type == StreamType::closed && route == StreamRoute::cloud_to_browser) ? 0 : 1;
    if (!uint_field("stream", lo, kMaxStreamId, m.stream)) {
      return fail("stream: expected an integer between " + std::to_string(lo) + " and 65535");
    }
  }
  if (keys.count("device") && !id_field("device", m.device)) return fail("device: expected a device id");
  if (keys.count("direction")) {
    const Json& v = j.at("direction");
    if (v == "from_device") {
      m.direction = StreamDirection::from_device;
    } else if (v == "to_device") {
      m.direction = StreamDirection::to_device;
    } else {
      return fail("direction: expected \"from_device\" or \"to_device\"");
    }
  }
  if (keys.count("codec")) {
    const Json& v = j.at("codec");
    if (v != kCodecPcm16 && v != kCodecOpus) return fail("codec: expected \"pcm16\" or \"opus\"");
    m.codec = v.get<std::string>();
  }
  if (keys.count("rate")) {
    const Json& v = j.at("rate");
    if (!v.is_number_integer() || (v != 8000 && v != 16000 && v != 24000 && v != 48000)) {
      return fail("rate: expected 8000, 16000, 24000 or 48000");
    }
    m.rate = v.get<uint32_t>();
  }
  if (keys.count("channels")) {
    const Json& v = j.at("channels");
    if (v != 1) return fail("channels: expected 1");
    m.channels = 1;
  }
  if (keys.count("reason") && j.contains("reason")) {
    const Json& v = j.at("reason");
    if (!v.is_string() || v.get_ref<const std::string&>().size() > Limits{}.max_text) {
      return fail("reason: expected a string of at most 1024 bytes");
    }
    m.reason = v.get<std::string>();
  }
  return Decoded<StreamMessage>{std::move(m)};
}

}  // namespace flatlink::proto
