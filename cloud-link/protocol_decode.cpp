// Decoding of the wire protocol: size and depth checks before parsing, then field-by-field
// validation whose every refusal names the field ("status.items[3].seq: ...").
#include "cloud-link/protocol.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <initializer_list>
#include <set>

namespace flatlink::proto {
namespace {

const std::string kIdRule = "an id (1 to 64 characters of A-Z a-z 0-9 _ . : -)";
const std::string kScalarRule = "a scalar (true/false, a number or a string)";

std::string dump_safe(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// What kind of value j is, for messages that must not echo the value itself (a password).
std::string kind_of(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return "a number";
    case Json::value_t::string: return "a string";
    case Json::value_t::array: return "an array";
    case Json::value_t::object: return "an object";
    default: return "an unusable value";
  }
}

// A string quoted and escaped for a message, cut so that a refusal stays short.
std::string quote(std::string_view text) {
  constexpr size_t kMaxQuoted = 40;
  const std::string clipped = clip_utf8(text, kMaxQuoted);
  return dump_safe(Json(clipped)) + (clipped.size() < text.size() ? "..." : "");
}

// Literals and numbers as they are (they are short and help most), anything else by kind.
std::string describe(const Json& j) {
  if (j.is_null() || j.is_boolean() || j.is_number()) return dump_safe(j);
  return kind_of(j);
}

std::string item_path(const std::string& path, size_t index) { return path + "[" + std::to_string(index) + "]"; }

// Collects the first refusal; readers return false as soon as they fail.
struct Reader {
  const Limits& limits;
  std::optional<DecodeError> error;

  bool fail(const std::string& path, const std::string& what) {
    if (!error) error = DecodeError{std::string(error_code::kInvalidMessage), path + ": " + what};
    return false;
  }
};

// ---- values -----------------------------------------------------------------------------------

bool read_int(Reader& r, const Json& v, const std::string& path, int64_t lo, int64_t hi, int64_t& out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(hi) && static_cast<int64_t>(u) >= lo) {
      out = static_cast<int64_t>(u);
      return true;
    }
  } else if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= lo && i <= hi) {
      out = i;
      return true;
    }
  }
  return r.fail(path, "expected an integer between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                          describe(v));
}

bool read_bool(Reader& r, const Json& v, const std::string& path, bool& out) {
  if (!v.is_boolean()) return r.fail(path, "expected true or false, got " + describe(v));
  out = v.get<bool>();
  return true;
}

bool read_finite(Reader& r, const Json& v, const std::string& path, double& out) {
  if (!v.is_number() || !std::isfinite(v.get<double>())) return r.fail(path, "expected a finite number, got " + describe(v));
  out = v.get<double>();
  return true;
}

bool read_string(Reader& r, const Json& v, const std::string& path, bool allow_empty, size_t max_bytes,
                 std::string& out, bool secret = false) {
  if (!v.is_string()) return r.fail(path, "expected a string, got " + (secret ? kind_of(v) : describe(v)));
  const auto& s = v.get_ref<const std::string&>();
  if (!allow_empty && s.empty()) return r.fail(path, "expected a non-empty string");
  if (s.size() > max_bytes) {
    return r.fail(path, "expected at most " + std::to_string(max_bytes) + " bytes, got " + std::to_string(s.size()));
  }
  out = s;
  return true;
}

bool read_id(Reader& r, const Json& v, const std::string& path, std::string& out) {
  if (!v.is_string()) return r.fail(path, "expected " + kIdRule + ", got " + describe(v));
  const auto& s = v.get_ref<const std::string&>();
  if (!valid_id(s)) return r.fail(path, "expected " + kIdRule + ", got " + quote(s));
  out = s;
  return true;
}

bool read_scalar(Reader& r, const Json& v, const std::string& path) {
  if (v.is_boolean()) return true;
  if (v.is_number()) {
    if (!std::isfinite(v.get<double>())) return r.fail(path, "expected a finite number, got " + describe(v));
    return true;
  }
  if (v.is_string()) {
    const size_t size = v.get_ref<const std::string&>().size();
    if (size > r.limits.max_string) {
      return r.fail(path, "expected a string of at most " + std::to_string(r.limits.max_string) + " bytes, got " +
                              std::to_string(size));
    }
    return true;
  }
  return r.fail(path, "expected " + kScalarRule + ", got " + describe(v));
}

// State and command "set" objects: id keys, scalar values.
bool read_state(Reader& r, const Json& v, const std::string& path, bool require_key, Json& out) {
  if (!v.is_object()) return r.fail(path, "expected an object, got " + describe(v));
  if (require_key && v.empty()) return r.fail(path, "expected at least one key");
  if (v.size() > r.limits.max_state_keys) {
    return r.fail(path, "expected at most " + std::to_string(r.limits.max_state_keys) + " keys, got " +
                            std::to_string(v.size()));
  }
  for (const auto& [key, value] : v.items()) {
    if (!valid_id(key)) return r.fail(path, "key " + quote(key) + " is not " + kIdRule);
    if (!read_scalar(r, value, path + "." + key)) return false;
  }
  out = v;
  return true;
}

bool expect_object(Reader& r, const Json& v, const std::string& path) {
  return v.is_object() || r.fail(path, "expected an object, got " + describe(v));
}

bool expect_array(Reader& r, const Json& v, const std::string& path, size_t min_items, size_t max_items) {
  if (!v.is_array()) return r.fail(path, "expected an array, got " + describe(v));
  if (v.size() < min_items || v.size() > max_items) {
    const std::string expected = min_items == 0 ? "at most " + std::to_string(max_items)
                                                : std::to_string(min_items) + " to " + std::to_string(max_items);
    return r.fail(path, "expected " + expected + " items, got " + std::to_string(v.size()));
  }
  return true;
}

// ---- objects ----------------------------------------------------------------------------------

// One JSON object being read (the caller has checked that it is one), with its path for refusals.
class Fields {
 public:
  Fields(Reader& r, const Json& object, std::string path) : r_(r), object_(object), path_(std::move(path)) {}

  // Strict: a key the protocol does not define is refused, to catch typos and version skew early.
  bool only(std::initializer_list<std::string_view> allowed) {
    for (const auto& [key, value] : object_.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        return r_.fail(path_, "unknown key " + quote(key));
      }
    }
    return true;
  }

  std::string at(std::string_view key) const { return path_ + "." + std::string(key); }

  const Json* find(std::string_view key) const {
    const auto it = object_.find(std::string(key));
    return it == object_.end() ? nullptr : &*it;
  }

  const Json* need(std::string_view key) {
    const Json* v = find(key);
    if (!v) r_.fail(at(key), "required but missing");
    return v;
  }

  bool id(std::string_view key, std::string& out) {
    const Json* v = need(key);
    return v && read_id(r_, *v, at(key), out);
  }
  bool string(std::string_view key, bool allow_empty, size_t max_bytes, std::string& out, bool secret = false) {
    const Json* v = need(key);
    return v && read_string(r_, *v, at(key), allow_empty, max_bytes, out, secret);
  }
  bool optional_string(std::string_view key, size_t max_bytes, std::string& out) {
    const Json* v = find(key);
    return !v || read_string(r_, *v, at(key), true, max_bytes, out);
  }
  bool integer(std::string_view key, int64_t lo, int64_t hi, int64_t& out) {
    const Json* v = need(key);
    return v && read_int(r_, *v, at(key), lo, hi, out);
  }
  bool optional_integer(std::string_view key, int64_t lo, int64_t hi, int64_t& out) {
    const Json* v = find(key);
    return !v || read_int(r_, *v, at(key), lo, hi, out);
  }
  bool boolean(std::string_view key, bool& out) {
    const Json* v = need(key);
    return v && read_bool(r_, *v, at(key), out);
  }
  bool optional_boolean(std::string_view key, bool& out) {
    const Json* v = find(key);
    return !v || read_bool(r_, *v, at(key), out);
  }
  bool state(std::string_view key, bool require_key, Json& out) {
    const Json* v = need(key);
    return v && read_state(r_, *v, at(key), require_key, out);
  }

 private:
  Reader& r_;
  const Json& object_;
  std::string path_;
};

bool read_capability(Reader& r, const Json& v, const std::string& path, Capability& cap) {
  if (!expect_object(r, v, path)) return false;
  Fields f(r, v, path);
  if (!f.only({"name", "type", "writable", "min", "max", "options", "unit", "confirm", "max_length"})) return false;
  if (!f.id("name", cap.name)) return false;

  const Json* type = f.need("type");
  if (!type) return false;
  const std::string type_rule = "expected one of bool, int, number, enum, text, got ";
  if (!type->is_string()) return r.fail(f.at("type"), type_rule + describe(*type));
  const auto value_type = value_type_from(type->get_ref<const std::string&>());
  if (!value_type) return r.fail(f.at("type"), type_rule + quote(type->get_ref<const std::string&>()));
  cap.type = *value_type;

  if (!f.boolean("writable", cap.writable)) return false;

  const bool numeric = cap.type == ValueType::integer || cap.type == ValueType::number;
  for (const char* key : {"min", "max"}) {
    const Json* bound = f.find(key);
    if (!bound) continue;
    if (!numeric) return r.fail(f.at(key), "only int and number capabilities have a range");
    double value = 0;
    if (!read_finite(r, *bound, f.at(key), value)) return false;
    (std::string_view(key) == "min" ? cap.min : cap.max) = value;
  }
  if (cap.min && cap.max && *cap.min > *cap.max) {
    return r.fail(f.at("max"), "expected at least min (" + dump_safe(Json(*cap.min)) + "), got " +
                                   dump_safe(Json(*cap.max)));
  }

  if (const Json* options = f.find("options")) {
    if (cap.type != ValueType::enumeration) return r.fail(f.at("options"), "only enum capabilities have options");
    if (!expect_array(r, *options, f.at("options"), 1, r.limits.max_state_keys)) return false;
    cap.options.resize(options->size());
    for (size_t i = 0; i < options->size(); ++i) {
      if (!read_string(r, (*options)[i], item_path(f.at("options"), i), false, r.limits.max_string, cap.options[i])) {
        return false;
      }
    }
  } else if (cap.type == ValueType::enumeration) {
    return r.fail(f.at("options"), "required for an enum capability but missing");
  }

  if (!f.optional_string("unit", r.limits.max_string, cap.unit)) return false;
  if (!f.optional_boolean("confirm", cap.confirm)) return false;
  if (const Json* max_length = f.find("max_length")) {
    if (cap.type != ValueType::text) return r.fail(f.at("max_length"), "only text capabilities have a max_length");
    int64_t value = 0;
    if (!read_int(r, *max_length, f.at("max_length"), 1, static_cast<int64_t>(r.limits.max_string), value)) return false;
    cap.max_length = static_cast<size_t>(value);
  }
  return true;
}

bool read_device(Reader& r, const Json& v, const std::string& path, DeviceReport& device) {
  if (!expect_object(r, v, path)) return false;
  Fields f(r, v, path);
  const size_t max = r.limits.max_string;
  if (!(f.only({"id", "name", "kind", "room", "capabilities", "state", "online", "last_ts"}) &&
        f.id("id", device.info.id) && f.string("name", true, max, device.info.name) &&
        f.string("kind", true, max, device.info.kind) && f.optional_string("room", max, device.info.room))) {
    return false;
  }

  const Json* caps = f.need("capabilities");
  if (!caps || !expect_array(r, *caps, f.at("capabilities"), 0, r.limits.max_state_keys)) return false;
  device.info.capabilities.resize(caps->size());
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < caps->size(); ++i) {
    const std::string cap_path = item_path(f.at("capabilities"), i);
    Capability& cap = device.info.capabilities[i];
    if (!read_capability(r, (*caps)[i], cap_path, cap)) return false;
    if (!names.insert(cap.name).second) return r.fail(cap_path + ".name", "duplicate capability " + quote(cap.name));
  }

  if (!(f.state("state", false, device.state) && f.boolean("online", device.online))) return false;
  if (f.find("last_ts")) {
    int64_t last_ts = 0;
    if (!f.integer("last_ts", 0, kMaxSeq, last_ts)) return false;
    device.last_ts = last_ts;
  }
  return true;
}

bool read_devices(Fields& f, Reader& r, std::string_view key, std::vector<DeviceReport>& out) {
  const Json* list = f.need(key);
  if (!list || !expect_array(r, *list, f.at(key), 0, r.limits.max_devices)) return false;
  out.resize(list->size());
  std::set<std::string, std::less<>> ids;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string path = item_path(f.at(key), i);
    if (!read_device(r, (*list)[i], path, out[i])) return false;
    if (!ids.insert(out[i].info.id).second) return r.fail(path + ".id", "duplicate device id " + quote(out[i].info.id));
  }
  return true;
}

bool read_outcome(Fields& f, Reader& r, Outcome& out) {
  const Json* v = f.need("outcome");
  if (!v) return false;
  const std::string rule = "expected one of ok, rejected, expired, timeout, offline, device_error, got ";
  if (!v->is_string()) return r.fail(f.at("outcome"), rule + describe(*v));
  const auto outcome = outcome_from(v->get_ref<const std::string&>());
  if (!outcome) return r.fail(f.at("outcome"), rule + quote(v->get_ref<const std::string&>()));
  out = *outcome;
  return true;
}

// ---- messages ---------------------------------------------------------------------------------
// Each reads a top-level object whose "type" the dispatcher has already matched.

bool read(Reader& r, const Json& j, Hello& m) {
  Fields f(r, j, "hello");
  if (!(f.only({"type", "gateway", "version", "devices", "epoch", "next_seq", "dropped", "coalesced", "lost", "acked"}) &&
        f.id("gateway", m.gateway) && f.string("version", false, r.limits.max_string, m.version) &&
        read_devices(f, r, "devices", m.devices) && f.optional_string("epoch", 32, m.epoch) &&
        f.integer("next_seq", 1, kMaxSeq, m.next_seq) && f.optional_integer("dropped", 0, kMaxSeq, m.dropped) &&
        f.optional_integer("coalesced", 0, kMaxSeq, m.coalesced) && f.optional_integer("lost", 0, kMaxSeq, m.lost) &&
        f.optional_integer("acked", 0, kMaxSeq, m.acked))) {
    return false;
  }
  if (f.find("epoch") && !valid_epoch(m.epoch)) {
    return r.fail(f.at("epoch"), "expected 32 lowercase hex digits, got " + quote(m.epoch));
  }
  // Nothing can have been acknowledged that was not numbered yet.
  return m.acked < m.next_seq ||
         r.fail(f.at("acked"), "expected below next_seq (" + std::to_string(m.next_seq) + "), got " +
                                   std::to_string(m.acked));
}

bool read(Reader& r, const Json& j, StatusBatch& m) {
  Fields f(r, j, "status");
  if (!f.only({"type", "items", "dropped", "coalesced"}) || !f.optional_integer("dropped", 0, kMaxSeq, m.dropped) ||
      !f.optional_integer("coalesced", 0, kMaxSeq, m.coalesced)) {
    return false;
  }
  const Json* items = f.need("items");
  if (!items || !expect_array(r, *items, f.at("items"), 1, r.limits.max_batch)) return false;
  m.items.reserve(items->size());
  for (size_t i = 0; i < items->size(); ++i) {
    const std::string path = item_path(f.at("items"), i);
    if (!expect_object(r, (*items)[i], path)) return false;
    Fields g(r, (*items)[i], path);
    StatusItem item;
    if (!(g.only({"seq", "device", "state", "ts"}) && g.integer("seq", 1, kMaxSeq, item.seq) &&
          g.id("device", item.device) && g.state("state", true, item.state) && g.integer("ts", 0, kMaxSeq, item.ts))) {
      return false;
    }
    if (!m.items.empty() && item.seq <= m.items.back().seq) {
      return r.fail(g.at("seq"), "expected more than " + std::to_string(m.items.back().seq) +
                                     " (seq increases strictly within a batch), got " + std::to_string(item.seq));
    }
    m.items.push_back(std::move(item));
  }
  return true;
}

bool read(Reader& r, const Json& j, Presence& m) {
  Fields f(r, j, "presence");
  return f.only({"type", "device", "online", "ts"}) && f.id("device", m.device) && f.boolean("online", m.online) &&
         f.integer("ts", 0, kMaxSeq, m.ts);
}

bool read(Reader& r, const Json& j, DeviceList& m) {
  Fields f(r, j, "devices");
  return f.only({"type", "devices"}) && read_devices(f, r, "devices", m.devices);
}

bool read(Reader& r, const Json& j, Result& m) {
  Fields f(r, j, "result");
  return f.only({"type", "id", "outcome", "message"}) && f.id("id", m.id) && read_outcome(f, r, m.outcome) &&
         f.string("message", true, r.limits.max_text, m.message);
}

bool read(Reader& r, const Json& j, Ack& m) {
  Fields f(r, j, "ack");
  if (!(f.only({"type", "seq", "limits"}) && f.integer("seq", 0, kMaxSeq, m.seq))) return false;
  const Json* limits = f.find("limits");
  if (!limits) return true;
  if (!expect_object(r, *limits, f.at("limits"))) return false;
  Fields g(r, *limits, f.at("limits"));
  // Lower bounds a working link needs (a frame must hold a hello with one device); upper
  // bounds keep a gateway's memory in check whatever a cloud says.
  // A limit this gateway does not know is ignored, not refused: clouds are upgraded before
  // gateways (protocol.md), so a newer cloud may announce limits an older gateway cannot
  // apply, and it must still be able to connect. The known ones are checked as strictly.
  int64_t bytes = 0, batch = 0, devices = 0, keys = 0, string = 0, rate = 0, burst = 0;
  if (!(g.integer("max_message_bytes", 1024, 16 << 20, bytes) && g.integer("max_batch", 1, 100'000, batch) &&
        g.integer("max_devices", 1, 100'000, devices) && g.integer("max_state_keys", 1, 4096, keys) &&
        g.integer("max_string", 16, 65536, string))) {
    return false;
  }
  // The rate comes with its burst, or not at all (an older cloud: not paced).
  if (g.find("messages_per_s") || g.find("burst")) {
    if (!(g.integer("messages_per_s", 1, 1'000'000, rate) && g.integer("burst", 1, 1'000'000, burst))) return false;
  }
  m.limits = Limits{};
  m.limits->max_message_bytes = static_cast<size_t>(bytes);
  m.limits->max_batch = static_cast<size_t>(batch);
  m.limits->max_devices = static_cast<size_t>(devices);
  m.limits->max_state_keys = static_cast<size_t>(keys);
  m.limits->max_string = static_cast<size_t>(string);
  m.limits->messages_per_s = static_cast<uint32_t>(rate);
  m.limits->burst = static_cast<uint32_t>(burst);
  return true;
}

bool read(Reader& r, const Json& j, CommandMsg& m) {
  Fields f(r, j, "command");
  return f.only({"type", "id", "device", "set", "expires"}) && f.id("id", m.id) && f.id("device", m.device) &&
         f.state("set", true, m.set) && f.integer("expires", 0, kMaxSeq, m.expires);
}

bool read(Reader& r, const Json& j, Error& m) {
  Fields f(r, j, "error");
  return f.only({"type", "code", "message"}) && f.id("code", m.code) &&
         f.string("message", true, r.limits.max_text, m.message);
}

bool read(Reader& r, const Json& j, Login& m) {
  Fields f(r, j, "login");
  return f.only({"type", "flat", "user", "password"}) && f.id("flat", m.flat) &&
         f.string("user", false, r.limits.max_string, m.user) &&
         f.string("password", true, r.limits.max_string, m.password, /*secret=*/true);
}

bool read(Reader& r, const Json& j, BrowserCommand& m) {
  Fields f(r, j, "command");
  return f.only({"type", "id", "device", "set", "ttl_ms"}) && f.id("id", m.id) && f.id("device", m.device) &&
         f.state("set", true, m.set) && f.optional_integer("ttl_ms", kMinTtlMs, kMaxTtlMs, m.ttl_ms);
}

bool read(Reader& r, const Json& j, HistoryRequest& m) {
  Fields f(r, j, "history");
  if (!(f.only({"type", "device", "capability", "id", "range", "from", "to", "resolution", "limit"}) &&
        f.id("device", m.device) && f.id("capability", m.capability))) {
    return false;
  }
  if (const Json* id = f.find("id"); id && !read_id(r, *id, f.at("id"), m.id)) return false;
  return f.optional_string("range", 16, m.range) && f.optional_string("resolution", 16, m.resolution) &&
         f.optional_integer("from", 0, kMaxSeq, m.from) && f.optional_integer("to", 0, kMaxSeq, m.to) &&
         f.optional_integer("limit", 1, static_cast<int64_t>(r.limits.max_points), m.limit);
}

bool read(Reader& r, const Json& j, Resume&) {
  Fields f(r, j, "resume");
  return f.only({"type"});
}

bool read(Reader& r, const Json& j, Logout& m) {
  Fields f(r, j, "logout");
  return f.only({"type", "everywhere"}) && f.optional_boolean("everywhere", m.everywhere);
}

constexpr std::array<std::string_view, 8> kEventKinds = {"command", "presence", "gateway", "login",
                                                         "login_failed", "logout", "member", "admin"};

bool read(Reader& r, const Json& j, EventsRequest& m) {
  Fields f(r, j, "events");
  if (!f.only({"type", "id", "from", "to", "device", "kinds", "before", "limit"})) return false;
  if (const Json* id = f.find("id"); id && !read_id(r, *id, f.at("id"), m.id)) return false;
  if (const Json* device = f.find("device"); device && !read_id(r, *device, f.at("device"), m.device)) return false;
  if (!f.optional_integer("from", 0, kMaxSeq, m.from) || !f.optional_integer("to", 0, kMaxSeq, m.to) ||
      !f.optional_integer("before", 1, kMaxSeq, m.before) || !f.optional_integer("limit", 1, 500, m.limit)) {
    return false;
  }
  if (m.to && m.from > m.to) return r.fail(f.at("from"), "after to");
  if (const Json* kinds = f.find("kinds")) {
    if (!expect_array(r, *kinds, f.at("kinds"), 1, kEventKinds.size())) return false;
    for (size_t i = 0; i < kinds->size(); ++i) {
      const Json& k = (*kinds)[i];
      const std::string path = f.at("kinds") + "[" + std::to_string(i) + "]";
      if (!k.is_string() || std::find(kEventKinds.begin(), kEventKinds.end(), k.get_ref<const std::string&>()) ==
                                kEventKinds.end()) {
        return r.fail(path, "expected one of command, presence, gateway, login, login_failed, logout, member, admin, got " +
                                describe(k));
      }
      m.kinds.push_back(k.get<std::string>());
    }
  }
  return true;
}

constexpr std::array<std::string_view, 3> kWebhookEvents = {"door_unlocked", "device_offline", "gateway_offline"};

bool read(Reader& r, const Json& j, WebhookRequest& m) {
  Fields f(r, j, "webhook");
  if (!f.only({"type", "action", "url", "events", "secret"}) || !f.string("action", false, 16, m.action)) return false;
  if (m.action != "get" && m.action != "set" && m.action != "clear") {
    return r.fail(f.at("action"), "expected get, set or clear, got " + quote(m.action));
  }
  if (m.action != "set") {
    if (f.find("url") || f.find("events") || f.find("secret")) return r.fail(f.at("action"), "only set takes url, events, secret");
    return true;
  }
  if (!f.string("url", false, 1024, m.url)) return false;
  if (const Json* secret = f.find("secret")) {
    if (!read_string(r, *secret, f.at("secret"), false, 128, m.secret, true)) return false;
    if (m.secret.size() < 16) return r.fail(f.at("secret"), "shorter than 16 characters");
  }
  const Json* events = f.need("events");
  if (!events || !expect_array(r, *events, f.at("events"), 0, kWebhookEvents.size())) return false;
  for (size_t i = 0; i < events->size(); ++i) {
    const Json& e = (*events)[i];
    const std::string path = f.at("events") + "[" + std::to_string(i) + "]";
    if (!e.is_string() ||
        std::find(kWebhookEvents.begin(), kWebhookEvents.end(), e.get_ref<const std::string&>()) == kWebhookEvents.end()) {
      return r.fail(path, "expected one of door_unlocked, device_offline, gateway_offline, got " + describe(e));
    }
    if (std::find(m.events.begin(), m.events.end(), e.get<std::string>()) != m.events.end()) {
      return r.fail(path, "named twice");
    }
    m.events.push_back(e.get<std::string>());
  }
  return true;
}

bool read(Reader& r, const Json& j, Snapshot& m) {
  Fields f(r, j, "snapshot");
  return f.only({"type", "flat", "name", "gateway_online", "devices"}) && f.id("flat", m.flat) &&
         f.string("name", true, r.limits.max_string, m.name) && f.boolean("gateway_online", m.gateway_online) &&
         read_devices(f, r, "devices", m.devices);
}

bool read(Reader& r, const Json& j, Update& m) {
  Fields f(r, j, "update");
  return f.only({"type", "device", "state", "ts", "seq"}) && f.id("device", m.device) &&
         f.state("state", true, m.state) && f.integer("ts", 0, kMaxSeq, m.ts) &&
         f.optional_integer("seq", 1, kMaxSeq, m.seq);
}

bool read(Reader& r, const Json& j, GatewayState& m) {
  Fields f(r, j, "gateway");
  return f.only({"type", "online"}) && f.boolean("online", m.online);
}

bool read(Reader& r, const Json& j, HistoryReply& m) {
  Fields f(r, j, "history");
  if (!(f.only({"type", "device", "capability", "points"}) && f.id("device", m.device) &&
        f.id("capability", m.capability))) {
    return false;
  }
  const Json* points = f.need("points");
  if (!points || !expect_array(r, *points, f.at("points"), 0, r.limits.max_points)) return false;
  m.points.resize(points->size());
  for (size_t i = 0; i < points->size(); ++i) {
    const std::string path = item_path(f.at("points"), i);
    const Json& point = (*points)[i];
    if (!point.is_array() || point.size() != 2) return r.fail(path, "expected [ts, value], got " + describe(point));
    if (!read_int(r, point[0], path + "[0]", 0, kMaxSeq, m.points[i].ts)) return false;
    if (i > 0 && m.points[i].ts < m.points[i - 1].ts) {
      return r.fail(path + "[0]", "expected at least " + std::to_string(m.points[i - 1].ts) +
                                      " (points are in time order), got " + std::to_string(m.points[i].ts));
    }
    if (!read_scalar(r, point[1], path + "[1]")) return false;
    m.points[i].value = point[1];
  }
  return true;
}

// A name or room up to 1024 bytes is read; the cloud refuses one over 64 characters itself
// (error bad_label, the link stays), so that a long name typed in a page is an answer, not a close.
bool read(Reader& r, const Json& j, DeviceLabelRequest& m) {
  Fields f(r, j, "device_label");
  if (!f.only({"type", "id", "device", "name", "room"}) || !f.id("device", m.device)) return false;
  if (const Json* id = f.find("id"); id && !read_id(r, *id, f.at("id"), m.id)) return false;
  return f.string("name", true, 1024, m.name) && f.string("room", true, 1024, m.room);
}

// ---- dispatch ---------------------------------------------------------------------------------

// Every type name of every direction, to tell "wrong direction" from "unknown".
constexpr std::array<std::string_view, 18> kAllTypes = {"hello",   "status", "presence", "devices", "result",
                                                        "ack",     "command", "error",   "login",   "history",
                                                        "snapshot", "update", "gateway", "resume",  "logout",
                                                        "events",  "webhook", "device_label"};

template <class V>
struct Entry {
  std::string_view type;
  bool (*read)(Reader&, const Json&, V&);
};

template <class T, class V>
bool read_as(Reader& r, const Json& j, V& out) {
  T msg;
  if (!read(r, j, msg)) return false;
  out = std::move(msg);
  return true;
}

// Only the interesting part of nlohmann's message: no exception id, and no "last read" echo of the input.
std::string tidy_parse_error(std::string_view what) {
  if (what.size() > 0 && what.front() == '[') {
    const size_t close = what.find("] ");
    if (close != std::string_view::npos) what.remove_prefix(close + 2);
  }
  std::string out(what.substr(0, what.find("; last read:")));
  const size_t expected = what.find("; expected ");
  if (expected != std::string_view::npos && what.find("; last read:") != std::string_view::npos) {
    out += what.substr(expected);
  }
  return clip_utf8(out, 200);
}

DecodeError refuse(std::string_view code, std::string message) { return DecodeError{std::string(code), std::move(message)}; }

template <class V, size_t N>
Decoded<V> decode(std::string_view text, const Limits& limits, std::string_view direction,
                  const std::array<Entry<V>, N>& table) {
  try {
    if (text.size() > limits.max_message_bytes) {
      return refuse(error_code::kMessageTooBig, "message: " + std::to_string(text.size()) +
                                                    " bytes, more than the limit of " +
                                                    std::to_string(limits.max_message_bytes));
    }
    if (nested_deeper_than(text, kMaxDepth)) {
      return refuse(error_code::kInvalidJson, "message: nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    Json j;
    try {
      j = Json::parse(text);
    } catch (const Json::exception& e) {
      return refuse(error_code::kInvalidJson, "message: not valid JSON: " + tidy_parse_error(e.what()));
    }
    if (!j.is_object()) return refuse(error_code::kInvalidJson, "message: expected a JSON object, got " + describe(j));

    const auto type_it = j.find("type");
    if (type_it == j.end()) return refuse(error_code::kUnknownType, "type: required but missing");
    if (!type_it->is_string()) {
      return refuse(error_code::kUnknownType, "type: expected a string, got " + describe(*type_it));
    }
    const auto& type = type_it->get_ref<const std::string&>();
    for (const auto& entry : table) {
      if (entry.type != type) continue;
      Reader r{limits, std::nullopt};
      V out;
      if (entry.read(r, j, out)) return out;
      return *r.error;
    }
    if (std::find(kAllTypes.begin(), kAllTypes.end(), type) != kAllTypes.end()) {
      return refuse(error_code::kUnknownType,
                    "type: " + quote(type) + " is not a " + std::string(direction) + " message");
    }
    return refuse(error_code::kUnknownType, "type: unknown message type " + quote(type));
  } catch (const std::exception& e) {
    // A bug or std::bad_alloc; still no exception leaves the decoder.
    return refuse(error_code::kInvalidMessage, std::string("message: could not be decoded: ") + e.what());
  }
}

}  // namespace

std::optional<std::string> check_state(const Json& state, const Limits& limits, const std::string& path) {
  Reader r{limits, std::nullopt};
  Json out;
  if (read_state(r, state, path, true, out)) return std::nullopt;
  return r.error->message;
}

std::optional<std::string> check_device(const DeviceReport& device, const Limits& limits) {
  Reader r{limits, std::nullopt};
  DeviceReport out;
  if (read_device(r, to_json(device), "device", out)) return std::nullopt;
  return r.error->message;
}

Decoded<GatewayToCloud> decode_from_gateway(std::string_view text, const Limits& limits) {
  using V = GatewayToCloud;
  static constexpr std::array<Entry<V>, 5> kTable = {{{"hello", read_as<Hello, V>},
                                                      {"status", read_as<StatusBatch, V>},
                                                      {"presence", read_as<Presence, V>},
                                                      {"devices", read_as<DeviceList, V>},
                                                      {"result", read_as<Result, V>}}};
  return decode(text, limits, "gateway -> cloud", kTable);
}

Decoded<CloudToGateway> decode_from_cloud_for_gateway(std::string_view text, const Limits& limits) {
  using V = CloudToGateway;
  static constexpr std::array<Entry<V>, 3> kTable = {
      {{"ack", read_as<Ack, V>}, {"command", read_as<CommandMsg, V>}, {"error", read_as<Error, V>}}};
  return decode(text, limits, "cloud -> gateway", kTable);
}

Decoded<BrowserToCloud> decode_from_browser(std::string_view text, const Limits& limits) {
  using V = BrowserToCloud;
  static constexpr std::array<Entry<V>, 8> kTable = {{{"login", read_as<Login, V>},
                                                      {"command", read_as<BrowserCommand, V>},
                                                      {"history", read_as<HistoryRequest, V>},
                                                      {"resume", read_as<Resume, V>},
                                                      {"logout", read_as<Logout, V>},
                                                      {"events", read_as<EventsRequest, V>},
                                                      {"webhook", read_as<WebhookRequest, V>},
                                                      {"device_label", read_as<DeviceLabelRequest, V>}}};
  return decode(text, limits, "browser -> cloud", kTable);
}

Decoded<CloudToBrowser> decode_from_cloud_for_browser(std::string_view text, const Limits& limits) {
  using V = CloudToBrowser;
  static constexpr std::array<Entry<V>, 8> kTable = {{{"snapshot", read_as<Snapshot, V>},
                                                      {"update", read_as<Update, V>},
                                                      {"presence", read_as<Presence, V>},
                                                      {"gateway", read_as<GatewayState, V>},
                                                      {"devices", read_as<DeviceList, V>},
                                                      {"result", read_as<Result, V>},
                                                      {"history", read_as<HistoryReply, V>},
                                                      {"error", read_as<Error, V>}}};
  return decode(text, limits, "cloud -> browser", kTable);
}

uint16_t close_code_for(const DecodeError& error) {
  return error.code == error_code::kMessageTooBig ? close_code::kMessageTooBig : close_code::kProtocolError;
}

}  // namespace flatlink::proto
