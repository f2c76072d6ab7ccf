// Encoding of the wire protocol's messages to JSON text, and the small helpers the messages share.
#include "cloud-link/protocol.h"

#include <algorithm>

namespace flatlink::proto {

namespace {

bool same(const Capability& a, const Capability& b) {
  return a.name == b.name && a.type == b.type && a.writable == b.writable && a.min == b.min && a.max == b.max &&
         a.options == b.options && a.unit == b.unit && a.confirm == b.confirm && a.max_length == b.max_length;
}

bool same(const DeviceInfo& a, const DeviceInfo& b) {
  return a.id == b.id && a.name == b.name && a.kind == b.kind && a.room == b.room &&
         std::equal(a.capabilities.begin(), a.capabilities.end(), b.capabilities.begin(), b.capabilities.end(),
                    [](const Capability& x, const Capability& y) { return same(x, y); });
}

}  // namespace

bool DeviceReport::operator==(const DeviceReport& other) const {
  return same(info, other.info) && state == other.state && online == other.online && last_ts == other.last_ts;
}

Command to_command(const CommandMsg& msg) { return Command{msg.id, msg.device, msg.set, msg.expires}; }

CommandMsg to_message(const Command& command) {
  return CommandMsg{command.id, command.device, command.set, command.expires_ms};
}

namespace {

// Length of the valid UTF-8 sequence at text[i], or 0 if the bytes there are not one.
size_t utf8_sequence_length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t len = 0;
  uint32_t cp = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
    cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    cp = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    cp = lead & 0x07;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
  return len;
}

// Never throws over bad UTF-8 (replaced by U+FFFD). Non-finite numbers dump as null.
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json state_or_empty(const Json& state) { return state.is_null() ? Json::object() : state; }

Json capability_json(const Capability& cap) {
  Json j = flatlink::to_json(cap);
  // common's to_json leaves out max_length; send it when it differs from the default, so
  // that a text capability's limit survives the trip.
  if (cap.type == ValueType::text && cap.max_length != Capability{}.max_length) j["max_length"] = cap.max_length;
  return j;
}

Json devices_json(const std::vector<DeviceReport>& devices) {
  Json list = Json::array();
  for (const auto& device : devices) list.push_back(to_json(device));
  return list;
}

}  // namespace

std::string clip_utf8(std::string_view text, size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  size_t i = 0;
  while (i < text.size()) {
    const size_t len = utf8_sequence_length(text, i);
    const std::string_view piece = len ? text.substr(i, len) : kReplacement;
    if (out.size() + piece.size() > max_bytes) break;
    out += piece;
    i += len ? len : 1;
  }
  return out;
}

Json to_json(const DeviceReport& device) {
  Json caps = Json::array();
  for (const auto& cap : device.info.capabilities) caps.push_back(capability_json(cap));
  Json j = flatlink::to_json(device.info);
  j["capabilities"] = std::move(caps);
  j["state"] = state_or_empty(device.state);
  j["online"] = device.online;
  if (device.last_ts) j["last_ts"] = *device.last_ts;
  return j;
}

bool valid_epoch(std::string_view epoch) {
  return epoch.size() == 32 &&
         std::all_of(epoch.begin(), epoch.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string encode(const Hello& msg) {
  Json j = {{"type", "hello"},
            {"gateway", msg.gateway},
            {"version", msg.version},
            {"devices", devices_json(msg.devices)},
            {"next_seq", msg.next_seq}};
  if (!msg.epoch.empty()) j["epoch"] = msg.epoch;
  if (msg.dropped != 0) j["dropped"] = msg.dropped;
  if (msg.coalesced != 0) j["coalesced"] = msg.coalesced;
  if (msg.lost != 0) j["lost"] = msg.lost;
  if (msg.acked != 0) j["acked"] = msg.acked;
  return dump(j);
}

namespace {
Json item_json(const StatusItem& item) {
  return {{"seq", item.seq}, {"device", item.device}, {"state", state_or_empty(item.state)}, {"ts", item.ts}};
}
constexpr std::string_view kBatchHead = R"({"type":"status","items":[)";
}  // namespace

std::string encode(const StatusBatch& msg) {
  Json items = Json::array();
  for (const auto& item : msg.items) items.push_back(item_json(item));
  Json j = {{"type", "status"}, {"items", std::move(items)}};
  if (msg.dropped > 0) j["dropped"] = msg.dropped;
  if (msg.coalesced > 0) j["coalesced"] = msg.coalesced;
  return dump(j);
}

void StatusBatchEncoder::set_counts(int64_t dropped, int64_t coalesced) {
  dropped_ = dropped;
  coalesced_ = coalesced;
  tail_ = "]";
  if (dropped_ > 0) tail_ += ",\"dropped\":" + std::to_string(dropped_);
  if (coalesced_ > 0) tail_ += ",\"coalesced\":" + std::to_string(coalesced_);
  tail_ += "}";
}

namespace {

// A string as nlohmann::json dumps it (the same escapes, bad UTF-8 replaced), without a
// tree for the common case of plain printable ASCII.
void append_json_string(std::string& out, std::string_view text) {
  const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f && c != '"' && c != '\\';
  });
  if (!plain) {
    out += dump(Json(std::string(text)));
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

// One item as dump(item_json(item)) writes it: keys in nlohmann's (sorted) order.
void encode_item(std::string& out, int64_t seq, std::string_view device, std::string_view state, int64_t ts) {
  out += R"({"device":)";
  append_json_string(out, device);
  out += R"(,"seq":)";
  out += std::to_string(seq);
  out += R"(,"state":)";
  out += state.empty() ? std::string_view("{}") : state;
  out += R"(,"ts":)";
  out += std::to_string(ts);
  out += '}';
}

}  // namespace

size_t StatusBatchEncoder::frame_size_of(const StatusItem& item) const {
  return kBatchHead.size() + dump(item_json(item)).size() + tail_.size();
}

size_t StatusBatchEncoder::frame_size_of(const EncodedStatus& item) const {
  std::string text;
  encode_item(text, item.seq, item.device, item.state, item.ts);
  return kBatchHead.size() + text.size() + tail_.size();
}

bool StatusBatchEncoder::add(const StatusItem& item) {
  if (items_ >= max_items_) return false;
  return add_text(dump(item_json(item)));
}

bool StatusBatchEncoder::add(const EncodedStatus& item) {
  if (items_ >= max_items_) return false;
  item_.clear();
  encode_item(item_, item.seq, item.device, item.state, item.ts);
  return add_text(item_);
}

bool StatusBatchEncoder::add_text(std::string_view text) {
  const size_t size = (items_ ? body_.size() + 1 : kBatchHead.size()) + text.size() + tail_.size();
  if (size > max_bytes_) return false;
  if (body_.empty()) {
    body_.reserve(std::min<size_t>(max_bytes_, 64 * 1024));
    body_ += kBatchHead;
  } else {
    body_ += ',';
  }
  body_ += text;
  ++items_;
  return true;
}

std::string StatusBatchEncoder::finish() {
  if (body_.empty()) body_ += kBatchHead;
  body_ += tail_;
  std::string frame = std::move(body_);
  body_ = std::string();
  items_ = 0;
  return frame;
}

std::string encode(const Presence& msg) {
  return dump({{"type", "presence"}, {"device", msg.device}, {"online", msg.online}, {"ts", msg.ts}});
}

std::string encode(const DeviceList& msg) { return dump({{"type", "devices"}, {"devices", devices_json(msg.devices)}}); }

std::string encode(const Result& msg) {
  return dump({{"type", "result"},
               {"id", msg.id},
               {"outcome", to_string(msg.outcome)},
               {"message", clip_utf8(msg.message, Limits{}.max_text)}});
}

std::string encode(const Ack& msg) {
  Json j = {{"type", "ack"}, {"seq", msg.seq}};
  if (msg.limits) {
    j["limits"] = {{"max_message_bytes", msg.limits->max_message_bytes},
                   {"max_batch", msg.limits->max_batch},
                   {"max_devices", msg.limits->max_devices},
                   {"max_state_keys", msg.limits->max_state_keys},
                   {"max_string", msg.limits->max_string}};
    if (msg.limits->messages_per_s > 0) {
      j["limits"]["messages_per_s"] = msg.limits->messages_per_s;
      j["limits"]["burst"] = std::max<uint32_t>(1, msg.limits->burst);
    }
  }
  return dump(j);
}

std::string encode(const CommandMsg& msg) {
  return dump({{"type", "command"},
               {"id", msg.id},
               {"device", msg.device},
               {"set", state_or_empty(msg.set)},
               {"expires", msg.expires}});
}

std::string encode(const Error& msg) {
  return dump({{"type", "error"}, {"code", msg.code}, {"message", clip_utf8(msg.message, Limits{}.max_text)}});
}

std::string encode(const Login& msg) {
  return dump({{"type", "login"}, {"flat", msg.flat}, {"user", msg.user}, {"password", msg.password}});
}

std::string encode(const BrowserCommand& msg) {
  return dump({{"type", "command"},
               {"id", msg.id},
               {"device", msg.device},
               {"set", state_or_empty(msg.set)},
               {"ttl_ms", msg.ttl_ms}});
}

std::string encode(const HistoryRequest& msg) {
  Json j = {{"type", "history"}, {"device", msg.device}, {"capability", msg.capability}};
  if (!msg.id.empty()) j["id"] = msg.id;
  if (!msg.range.empty()) j["range"] = msg.range;
  if (msg.from >= 0) j["from"] = msg.from;
  if (msg.to >= 0) j["to"] = msg.to;
  if (!msg.resolution.empty()) j["resolution"] = msg.resolution;
  if (msg.limit > 0) j["limit"] = msg.limit;
  return dump(std::move(j));
}

std::string encode(const Resume&) { return dump({{"type", "resume"}}); }

std::string encode(const Logout& msg) { return dump({{"type", "logout"}, {"everywhere", msg.everywhere}}); }

std::string encode(const EventsRequest& msg) {
  Json j = {{"type", "events"}, {"limit", msg.limit}};
  if (!msg.id.empty()) j["id"] = msg.id;
  if (msg.from) j["from"] = msg.from;
  if (msg.to) j["to"] = msg.to;
  if (!msg.device.empty()) j["device"] = msg.device;
  if (!msg.kinds.empty()) j["kinds"] = msg.kinds;
  if (msg.before) j["before"] = msg.before;
  return dump(j);
}

std::string encode(const WebhookRequest& msg) {
  Json j = {{"type", "webhook"}, {"action", msg.action}};
  if (!msg.url.empty()) j["url"] = msg.url;
  if (msg.action == "set") j["events"] = msg.events;
  if (!msg.secret.empty()) j["secret"] = msg.secret;
  return dump(j);
}

std::string encode(const DeviceLabelRequest& msg) {
  Json j = {{"type", "device_label"}, {"device", msg.device}, {"name", msg.name}, {"room", msg.room}};
  if (!msg.id.empty()) j["id"] = msg.id;
  return dump(j);
}

std::string encode(const Snapshot& msg) {
  return dump({{"type", "snapshot"},
               {"flat", msg.flat},
               {"name", msg.name},
               {"gateway_online", msg.gateway_online},
               {"devices", devices_json(msg.devices)}});
}

std::string encode(const Update& msg) {
  Json j = {{"type", "update"}, {"device", msg.device}, {"state", state_or_empty(msg.state)}, {"ts", msg.ts}};
  if (msg.seq > 0) j["seq"] = msg.seq;
  return dump(j);
}

std::string encode(const GatewayState& msg) { return dump({{"type", "gateway"}, {"online", msg.online}}); }

std::string encode(const HistoryReply& msg) {
  Json points = Json::array();
  for (const auto& point : msg.points) points.push_back(Json::array({point.ts, point.value}));
  return dump({{"type", "history"}, {"device", msg.device}, {"capability", msg.capability}, {"points", std::move(points)}});
}

std::string encode(const GatewayToCloud& msg) {
  return std::visit([](const auto& m) { return encode(m); }, msg);
}

std::string encode(const CloudToGateway& msg) {
  return std::visit([](const auto& m) { return encode(m); }, msg);
}

std::string encode(const BrowserToCloud& msg) {
  return std::visit([](const auto& m) { return encode(m); }, msg);
}

std::string encode(const CloudToBrowser& msg) {
  return std::visit([](const auto& m) { return encode(m); }, msg);
}

}  // namespace flatlink::proto
