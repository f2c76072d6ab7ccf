// The backplane's messages: the strict check of an incoming one, the encoders.
#include "cloud-server/backplane_messages.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <initializer_list>
#include <utility>

#include "cloud-link/stream_frames.h"
#include "common/device_model.h"

namespace flatlink::cloud::backplane {
namespace {

// The keys of an object are exactly `required` plus any of `optional`.
bool has_keys(const Json& j, std::initializer_list<const char*> required, std::initializer_list<const char*> optional,
              std::string& why) {
  size_t seen = 0;
  for (const char* key : required) {
    if (!j.contains(key)) {
      why = std::string("missing key \"") + key + "\"";
      return false;
    }
    ++seen;
  }
  for (const char* key : optional) {
    if (j.contains(key)) ++seen;
  }
  if (seen != j.size()) {
    why = "unexpected keys";
    return false;
  }
  return true;
}

bool is_int(const Json& j, int64_t min = 0) {
  return j.is_number_integer() && j.get<int64_t>() >= min && j.get<int64_t>() <= proto::kMaxSeq;
}

bool is_id(const Json& j, bool may_be_empty = false) {
  if (!j.is_string()) return false;
  const auto& s = j.get_ref<const std::string&>();
  return (may_be_empty && s.empty()) || valid_id(s);
}

std::vector<std::string> split_topic(std::string_view topic) {
  std::vector<std::string> levels;
  size_t start = 0;
  for (;;) {
    const size_t slash = topic.find('/', start);
    if (slash == std::string_view::npos) {
      levels.emplace_back(topic.substr(start));
      return levels;
    }
    levels.emplace_back(topic.substr(start, slash - start));
    start = slash + 1;
  }
}

Refused refused(std::string why) { return Refused{std::move(why)}; }

Json envelope(const std::string& flat, const std::string& from) {
  return Json{{"v", 1}, {"flat", flat}, {"from", from}};
}

// The envelope with a message proto::encode wrote as its "msg", spliced in as text: parsing
// it only to write it out again would cost a parse and a dump per status batch.
std::string with_msg(const Json& envelope, const std::string& encoded) {
  std::string out = envelope.dump();  // a non-empty object: "{...}"
  out.pop_back();
  out += ",\"msg\":";
  out += encoded;
  out += '}';
  return out;
}

// flatlink/v1/flats/<flat>/<kind>, the envelope's flat and from already checked.
Checked check_flat_message(const std::string& flat, const std::string& kind, const Json& payload,
                           const CheckContext& context) {
  const std::string& from = payload["from"].get_ref<const std::string&>();
  proto::Limits limits;
  limits.max_message_bytes = context.max_message_bytes;
  std::string why;
  const auto embedded = [&](const char* key) -> std::string {
    const Json* msg = payload.contains(key) ? &payload[key] : nullptr;
    return msg && msg->is_object() ? msg->dump() : std::string();
  };

  // A status topic's message, or one sent again on a result topic (resent: true).
  const auto gateway_message = [&](bool resent) -> Checked {
    if (!has_keys(payload, resent ? std::initializer_list<const char*>{"v", "flat", "from", "gateway", "msg", "resent"}
                                  : std::initializer_list<const char*>{"v", "flat", "from", "gateway", "msg"},
                  {"epoch", "prev"}, why) ||
        !is_id(payload["gateway"])) {
      return refused(why.empty() ? "bad gateway id" : why);
    }
    if (payload.contains("epoch") &&
        (!payload["epoch"].is_string() || !proto::valid_epoch(payload["epoch"].get_ref<const std::string&>()))) {
      return refused("bad epoch");
    }
    if (payload.contains("prev") && !is_int(payload["prev"])) return refused("bad prev");
    if (resent && payload["resent"] != true) return refused("bad resent");
    if (from == context.instance) return Ignored{Ignored::Reason::own_message};
    auto decoded = proto::decode_from_gateway(embedded("msg"), limits);
    if (auto* error = std::get_if<proto::DecodeError>(&decoded)) return refused("msg: " + error->message);
    auto& message = std::get<proto::GatewayToCloud>(decoded);
    if (!std::holds_alternative<proto::StatusBatch>(message) && !std::holds_alternative<proto::Presence>(message) &&
        !std::holds_alternative<proto::DeviceList>(message)) {
      return refused("msg: only status, presence and devices travel on a status topic");
    }
    if (resent && !std::holds_alternative<proto::StatusBatch>(message)) return refused("msg: only a status batch is resent");
    return GatewayMessage{flat,
                          from,
                          payload["gateway"].get<std::string>(),
                          std::move(message),
                          payload.contains("epoch") ? payload["epoch"].get<std::string>() : std::string(),
                          payload.contains("prev") ? payload["prev"].get<int64_t>() : -1,
                          resent};
  };
  const auto epoch_of = [&](std::string& out) {
    if (!payload.contains("epoch")) return true;
    if (!payload["epoch"].is_string() || !proto::valid_epoch(payload["epoch"].get_ref<const std::string&>())) return false;
    out = payload["epoch"].get<std::string>();
    return true;
  };

  if (kind == "status") return gateway_message(false);
  if (kind == "resend") {
    ResendRequest r;
    if (!has_keys(payload, {"v", "flat", "from", "to", "gateway", "after", "upto"}, {"epoch"}, why) ||
        !is_id(payload["to"]) || !is_id(payload["gateway"]) || !is_int(payload["after"]) || !is_int(payload["upto"]) ||
        !epoch_of(r.epoch)) {
      return refused(why.empty() ? "bad resend fields" : why);
    }
    if (from == context.instance) return Ignored{Ignored::Reason::own_message};
    r.flat = flat;
    r.from = from;
    r.to = payload["to"].get<std::string>();
    r.gateway = payload["gateway"].get<std::string>();
    r.after = payload["after"].get<int64_t>();
    r.upto = payload["upto"].get<int64_t>();
    if (r.upto != 0 && r.upto <= r.after) return refused("bad resend range");
    return r;
  }
  if (kind == "state") {
    if (!has_keys(payload, {"v", "flat", "from", "gateway", "online", "since", "seq", "reset", "dropped", "msg"},
                  {"epoch", "lost"}, why) ||
        !is_id(payload["gateway"], true) || !payload["online"].is_boolean() || !is_int(payload["since"]) ||
        !is_int(payload["seq"]) || !payload["reset"].is_boolean() || !is_int(payload["dropped"])) {
      return refused(why.empty() ? "bad state fields" : why);
    }
    if ((payload.contains("epoch") &&
         (!payload["epoch"].is_string() || !proto::valid_epoch(payload["epoch"].get_ref<const std::string&>()))) ||
        (payload.contains("lost") && (!is_int(payload["lost"]) || payload["lost"].get<int64_t>() < 0))) {
      return refused("bad state epoch or lost");
    }
    if (from == context.instance) return Ignored{Ignored::Reason::own_message};
    auto decoded = proto::decode_from_gateway(embedded("msg"), limits);
    auto* list = std::get_if<proto::GatewayToCloud>(&decoded);
    if (!list || !std::holds_alternative<proto::DeviceList>(*list)) {
      return refused("msg: expected a valid devices message");
    }
    StateMessage out;
    out.flat = flat;
    RemoteState& state = out.state;
    state.from = from;
    state.gateway = payload["gateway"].get<std::string>();
    state.online = payload["online"].get<bool>();
    state.since = payload["since"].get<int64_t>();
    state.seq = payload["seq"].get<int64_t>();
    state.reset = payload["reset"].get<bool>();
    state.dropped = payload["dropped"].get<int64_t>();
    if (payload.contains("epoch")) state.epoch = payload["epoch"].get<std::string>();
    if (payload.contains("lost")) state.lost = payload["lost"].get<int64_t>();
    state.devices = std::move(std::get<proto::DeviceList>(*list).devices);
    return out;
  }
  if (kind == "holder") {
    if (!has_keys(payload, {"v", "flat", "from", "instance", "since", "gateway"}, {}, why) ||
        !is_id(payload["instance"], true) || !is_int(payload["since"]) || !is_id(payload["gateway"], true)) {
      return refused(why.empty() ? "bad holder fields" : why);
    }
    HolderMessage out;
    out.flat = flat;
    HolderClaim& claim = out.claim;
    claim.from = from;
    claim.instance = payload["instance"].get<std::string>();
    claim.since = payload["since"].get<int64_t>();
    claim.gateway = payload["gateway"].get<std::string>();
    if (!claim.instance.empty() && claim.instance != from) return refused("a claim made for another instance");
    return out;
  }
  if (kind == "commands") {
    if (!has_keys(payload, {"v", "flat", "from", "msg"}, {}, why)) return refused(why);
    if (from == context.instance) return Ignored{Ignored::Reason::own_message};
    auto decoded = proto::decode_from_cloud_for_gateway(embedded("msg"), limits);
    auto* message = std::get_if<proto::CloudToGateway>(&decoded);
    if (!message || !std::holds_alternative<proto::CommandMsg>(*message)) {
      return refused("msg: expected a valid command");
    }
    return CommandMessage{flat, from, std::move(std::get<proto::CommandMsg>(*message))};
  }
  if (kind == "results") {
    if (payload.contains("resent")) return gateway_message(true);
    if (payload.contains("through")) {
      RepairDone d;
      if (!has_keys(payload, {"v", "flat", "from", "gateway", "after", "through", "missing"}, {"epoch"}, why) ||
          !is_id(payload["gateway"]) || !is_int(payload["after"]) || !is_int(payload["through"]) ||
          !is_int(payload["missing"]) || !epoch_of(d.epoch)) {
        return refused(why.empty() ? "bad repair fields" : why);
      }
      d.flat = flat;
      d.from = from;
      d.gateway = payload["gateway"].get<std::string>();
      d.after = payload["after"].get<int64_t>();
      d.through = payload["through"].get<int64_t>();
      d.missing = payload["missing"].get<int64_t>();
      return d;
    }
    if (payload.contains("accepted")) {
      if (!has_keys(payload, {"v", "flat", "from", "accepted"}, {}, why) || !payload["accepted"].is_string() ||
          payload["accepted"].get_ref<const std::string&>().size() > limits.max_string) {
        return refused(why.empty() ? "bad accepted id" : why);
      }
      return ResultMessage{flat, from, proto::Result{payload["accepted"].get<std::string>(), Outcome::ok, ""}, true};
    }
    if (!has_keys(payload, {"v", "flat", "from", "msg"}, {}, why)) return refused(why);
    auto decoded = proto::decode_from_gateway(embedded("msg"), limits);
    auto* message = std::get_if<proto::GatewayToCloud>(&decoded);
    if (!message || !std::holds_alternative<proto::Result>(*message)) return refused("msg: expected a valid result");
    return ResultMessage{flat, from, std::move(std::get<proto::Result>(*message)), false};
  }
  return refused("not a kind of message the backplane has");
}

}  // namespace

std::string flat_topic(const std::string& flat, const std::string& kind) {
  return std::string(kRoot) + "flats/" + flat + "/" + kind;
}

std::string instance_topic(const std::string& instance) { return std::string(kRoot) + "instances/" + instance; }
std::string ping_topic(const std::string& instance) { return std::string(kRoot) + "ping/" + instance; }

Checked check_message(const Incoming& in, const CheckContext& context) {
  const std::string_view topic = in.topic;
  if (in.oversize > 0) return refused("payload of " + std::to_string(in.oversize) + " bytes is over the cap");
  if (topic.size() > kMaxTopicBytes || topic.substr(0, kRoot.size()) != kRoot) {
    return refused("not a flatlink/v1 topic");
  }
  const std::vector<std::string> levels = split_topic(topic);
  // An empty retained payload clears a retained message: nothing to act on.
  if (in.payload.empty()) {
    if (!in.retained) return refused("empty payload");
    return Ignored{Ignored::Reason::cleared_retained};
  }
  if (in.payload.size() > max_payload_bytes(context.max_message_bytes)) return refused("payload over the cap");
  // Before parsing: a deep tree would overflow the stack when dumped or compared.
  if (proto::nested_deeper_than(in.payload, kMaxDepth)) {
    return refused("payload nested deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  Json payload = Json::parse(in.payload.begin(), in.payload.end(), nullptr, false);
  if (payload.is_discarded() || !payload.is_object()) return refused("payload is not a JSON object");
  if (!payload.contains("v") || payload["v"] != 1) return refused("not a version 1 backplane message");
  std::string why;
  if (levels.size() == 4 && levels[2] == "instances") {
    if (!has_keys(payload, {"v", "instance", "online"}, {"run", "started", "at", "accounts"}, why) ||
        !is_id(payload["instance"]) || !payload["online"].is_boolean()) {
      return refused(why.empty() ? "bad instance message" : why);
    }
    InstanceStatus status;
    status.instance = payload["instance"].get<std::string>();
    status.online = payload["online"].get<bool>();
    if (payload.contains("run")) {
      if (!is_id(payload["run"]) || !payload.contains("started") || !is_int(payload["started"]) ||
          !payload.contains("at") || !is_int(payload["at"]) || !payload.contains("accounts") ||
          !is_id(payload["accounts"])) {
        return refused("bad run of an instance message");
      }
      status.run = payload["run"].get<std::string>();
      status.started_ms = payload["started"].get<int64_t>();
      status.at_ms = payload["at"].get<int64_t>();
      status.accounts = payload["accounts"].get<std::string>();
    }
    if (status.instance != levels[3]) return refused("instance in the payload differs from the topic's");
    // Ours, unless another process runs with our instance_id: the Backplane says so.
    if (status.instance == context.instance && (status.run.empty() || status.run == context.run)) {
      return Ignored{Ignored::Reason::own_message};
    }
    return status;
  }
  if (levels.size() == 4 && levels[2] == "ping") {
    if (!has_keys(payload, {"v", "instance", "run", "n"}, {}, why) || !is_id(payload["instance"]) ||
        !is_id(payload["run"]) || !is_int(payload["n"])) {
      return refused(why.empty() ? "bad ping" : why);
    }
    if (payload["instance"] != levels[3]) return refused("instance in the payload differs from the topic's");
    // Only this process's own pings count: another's (a twin's, or an earlier run's) say nothing about ours.
    if (levels[3] != context.instance || payload["run"] != context.run) return refused("not this process's ping");
    return Ping{payload["n"].get<int64_t>()};
  }
  // flatlink/v1/flats/<flat>/<kind> or flatlink/v1/flats/<flat>/results/<us>
  if (levels.size() < 5 || levels[2] != "flats" || !valid_id(levels[3]) ||
      (levels.size() == 6 && (levels[4] != "results" || levels[5] != context.instance)) || levels.size() > 6) {
    return refused("not a topic of the backplane's layout");
  }
  const std::string& flat = levels[3];
  if (!context.knows_flat || !context.knows_flat(flat)) {
    return refused("flat " + flat + " is not in this instance's config");
  }
  if (!payload.contains("flat") || payload["flat"] != flat) {
    return refused("the flat in the payload is not the topic's flat " + flat);
  }
  if (!payload.contains("from") || !is_id(payload["from"])) return refused("missing or bad \"from\"");
  // A persistent session may still carry a subscription of an earlier run.
  if (!context.watching || !context.watching(flat)) return Ignored{Ignored::Reason::not_watched};
  const std::string kind = levels.size() == 6 ? "results" : levels[4];
  return check_flat_message(flat, kind, payload, context);
}

std::string stream_topic(const std::string& to, const std::string& flat, const std::string& origin, uint16_t id,
                         const std::string& nonce) {
  return std::string(kStreamsRoot) + to + "/" + flat + "/" + origin + "/" + std::to_string(id) + "/" + nonce;
}

bool is_stream_topic(std::string_view topic) { return topic.substr(0, kStreamsRoot.size()) == kStreamsRoot; }

CheckedStream check_stream(const Incoming& in, const CheckContext& context) {
  if (in.oversize > 0) return refused("payload of " + std::to_string(in.oversize) + " bytes is over the cap");
  if (in.topic.size() > kMaxTopicBytes || !is_stream_topic(in.topic)) return refused("not a stream topic");
  if (in.payload.empty()) return refused("empty payload");
  if (in.retained) return refused("a retained stream message");
  // flatlink v1 streams <to> <flat> <origin> <id> <nonce>
  const std::vector<std::string> levels = split_topic(in.topic);
  if (levels.size() != 8 || !valid_id(levels[3]) || !valid_id(levels[4]) || !valid_id(levels[5])) {
    return refused("not a topic of the backplane's layout");
  }
  if (levels[3] != context.instance) return refused("a stream message for another instance");
  const std::string& id_text = levels[6];
  if (id_text.empty() || id_text.size() > 5 || id_text[0] == '0' ||
      id_text.find_first_not_of("0123456789") != std::string::npos || std::stoul(id_text) > proto::kMaxStreamId) {
    return refused("bad stream id");
  }
  const std::string& nonce = levels[7];
  if (nonce.size() != kNonceHexBytes || nonce.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return refused("bad stream nonce");
  }
  const std::string& flat = levels[4];
  if (!context.knows_flat || !context.knows_flat(flat)) return refused("flat " + flat + " is not in this instance's config");
  if (!context.watching || !context.watching(flat)) return Ignored{Ignored::Reason::not_watched};
  const auto id = static_cast<uint16_t>(std::stoul(id_text));
  const std::string& origin = levels[5];
  if (in.payload.front() != '{') {
    std::string why;
    if (!stream::decode_frame(in.payload, &why)) return refused("frame: " + why);
    return StreamData{flat, origin, id, nonce, std::string(in.payload)};
  }
  if (in.payload.size() > max_payload_bytes(context.max_message_bytes)) return refused("payload over the cap");
  if (proto::nested_deeper_than(in.payload, kMaxDepth)) return refused("payload nested too deep");
  Json payload = Json::parse(in.payload.begin(), in.payload.end(), nullptr, false);
  if (payload.is_discarded() || !payload.is_object()) return refused("payload is not a JSON object");
  std::string why;
  if (!has_keys(payload, {"v", "flat", "from", "msg"}, {}, why)) return refused(why);
  if (payload["v"] != 1) return refused("not a version 1 backplane message");
  if (payload["flat"] != flat) return refused("the flat in the payload is not the topic's flat " + flat);
  if (!is_id(payload["from"])) return refused("missing or bad \"from\"");
  const std::string from = payload["from"].get<std::string>();
  if (from == context.instance) return Ignored{Ignored::Reason::own_message};
  // From the browser's instance to the holder, or the holder's answer to the browser's instance.
  const bool to_holder = from == origin;
  if (!to_holder && origin != context.instance) return refused("a stream answer for a stream another instance opened");
  if (!payload["msg"].is_object()) return refused("msg: not an object");
  auto decoded = proto::decode_stream(payload["msg"].dump(), to_holder ? proto::StreamRoute::cloud_to_gateway
                                                                       : proto::StreamRoute::cloud_to_browser);
  if (!decoded) return refused("msg: not a stream message");
  if (auto* error = std::get_if<proto::DecodeError>(&*decoded)) return refused("msg: " + error->message);
  return StreamControl{flat, from, origin, id, nonce, std::get<proto::StreamMessage>(*decoded), to_holder};
}

std::string encode_stream_control(const std::string& flat, const std::string& from, const std::string& encoded) {
  return with_msg(envelope(flat, from), encoded);
}

std::string encode_instance(const std::string& instance, bool online, const InstanceRun& run) {
  Json j{{"v", 1}, {"instance", instance}, {"online", online}};
  if (!run.run.empty()) {
    j["run"] = run.run;
    j["started"] = run.started_ms;
    j["at"] = run.at_ms;
    j["accounts"] = run.accounts;
  }
  return j.dump();
}

std::string encode_gateway_message(const std::string& flat, const std::string& from, const std::string& gateway,
                                   const std::string& encoded, const std::string& epoch, int64_t prev, bool resent) {
  Json j = envelope(flat, from);
  j["gateway"] = gateway;
  if (!epoch.empty()) j["epoch"] = epoch;
  if (prev >= 0) j["prev"] = prev;
  if (resent) j["resent"] = true;
  return with_msg(j, encoded);
}

std::string encode_resend(const ResendRequest& r) {
  Json j = envelope(r.flat, r.from);
  j["to"] = r.to;
  j["gateway"] = r.gateway;
  if (!r.epoch.empty()) j["epoch"] = r.epoch;
  j["after"] = r.after;
  j["upto"] = r.upto;
  return j.dump();
}

std::string encode_repair_done(const RepairDone& d) {
  Json j = envelope(d.flat, d.from);
  j["gateway"] = d.gateway;
  if (!d.epoch.empty()) j["epoch"] = d.epoch;
  j["after"] = d.after;
  j["through"] = d.through;
  j["missing"] = d.missing;
  return j.dump();
}

std::string encode_state(const std::string& flat, const std::string& from, const RemoteState& state) {
  Json j = envelope(flat, from);
  j["gateway"] = state.gateway;
  j["online"] = state.online;
  j["since"] = state.since;
  j["seq"] = state.seq;
  j["reset"] = state.reset;
  j["dropped"] = state.dropped;
  if (!state.epoch.empty()) j["epoch"] = state.epoch;
  if (state.lost > 0) j["lost"] = state.lost;
  return with_msg(j, proto::encode(proto::DeviceList{state.devices}));
}

std::string encode_holder(const std::string& flat, const std::string& from, const HolderClaim& claim) {
  Json j = envelope(flat, from);
  j["instance"] = claim.instance;
  j["since"] = claim.since;
  j["gateway"] = claim.gateway;
  return j.dump();
}

std::string encode_ping(const std::string& instance, const std::string& run, int64_t n) {
  return Json{{"v", 1}, {"instance", instance}, {"run", run}, {"n", n}}.dump();
}

std::string encode_command(const std::string& flat, const std::string& from, const proto::CommandMsg& command) {
  return with_msg(envelope(flat, from), proto::encode(command));
}

std::string encode_result(const std::string& flat, const std::string& from, const proto::Result& result) {
  return with_msg(envelope(flat, from), proto::encode(result));
}

std::string encode_accepted(const std::string& flat, const std::string& from, const std::string& command_id) {
  Json j = envelope(flat, from);
  j["accepted"] = command_id;
  return j.dump();
}

namespace {

// HMAC-SHA256 of topic + '\0' + payload, in lowercase hex.
std::string tag_of(std::string_view key, std::string_view topic, std::string_view payload) {
  std::string input;
  input.reserve(topic.size() + 1 + payload.size());
  input.append(topic);
  input += '\0';
  input.append(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[mac[i] >> 4];
    hex += kHex[mac[i] & 15];
  }
  return hex;
}

bool has_tag(std::string_view payload) {
  return payload.size() > kSignedOverhead && payload.substr(0, kSigPrefix.size()) == kSigPrefix &&
         payload.substr(kSigPrefix.size() + kSigHexBytes, 2) == "\",";
}

// {"sig":"<tag>",REST -> {REST
std::string without_tag(std::string_view payload) {
  std::string out = "{";
  out.append(payload.substr(kSignedOverhead));
  return out;
}

}  // namespace

std::string sign(std::string_view key, std::string_view topic, std::string_view payload) {
  std::string out(kSigPrefix);
  out += tag_of(key, topic, payload);
  out += "\",";
  out.append(payload.substr(1));  // a JSON object's text: "{...}"
  return out;
}

std::optional<std::string> verify(std::string_view key, std::string_view topic, std::string_view payload,
                                  std::string& why) {
  if (!has_tag(payload)) {
    why = "no tag (not signed with the backplane's key)";
    return std::nullopt;
  }
  std::string inner = without_tag(payload);
  const std::string expected = tag_of(key, topic, inner);
  if (CRYPTO_memcmp(expected.data(), payload.data() + kSigPrefix.size(), kSigHexBytes) != 0) {
    why = "wrong tag (signed with another key, or changed on the way)";
    return std::nullopt;
  }
  return inner;
}

std::string sign_frame(std::string_view key, std::string_view topic, std::string_view frame) {
  std::string out = key.empty() ? std::string(kFrameTagBytes, '0') : tag_of(key, topic, frame);
  out.append(frame);
  return out;
}

std::optional<std::string> verify_frame(std::string_view key, std::string_view topic, std::string_view payload,
                                        std::string& why) {
  if (payload.size() <= kFrameTagBytes) {
    why = "no tag (not signed with the backplane's key)";
    return std::nullopt;
  }
  std::string frame(payload.substr(kFrameTagBytes));
  if (key.empty()) return frame;
  const std::string expected = tag_of(key, topic, frame);
  if (CRYPTO_memcmp(expected.data(), payload.data(), kFrameTagBytes) != 0) {
    why = "wrong tag (signed with another key, or changed on the way)";
    return std::nullopt;
  }
  return frame;
}

std::string strip_tag(std::string_view payload) {
  return has_tag(payload) ? without_tag(payload) : std::string(payload);
}

}  // namespace flatlink::cloud::backplane
