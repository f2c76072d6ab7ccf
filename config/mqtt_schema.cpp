// The schema of an MQTT adapter's entry in the gateway configuration.
#include <algorithm>
#include <ostream>

#include "common/log.h"
#include "config/adapter_schemas.h"
#include "config/config_files.h"
#include "config/schemas.h"

namespace flatlink::config::detail {
namespace {

constexpr size_t kMaxPasswordFileBytes = 4096;

bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

std::vector<std::string> split_levels(const std::string& topic) {
  std::vector<std::string> levels;
  size_t start = 0;
  for (;;) {
    const size_t slash = topic.find('/', start);
    levels.push_back(topic.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return levels;
    start = slash + 1;
  }
}

// A topic pattern: levels separated by "/", each a literal or a named wildcard
// "{name}" standing for one whole level; "{device}" exactly once when required.
// Returns why not, or "" when fine.
std::string check_pattern(const std::string& topic, bool subscription) {
  if (topic.empty()) return "a non-empty topic pattern";
  if (topic.size() > 1024) return "a topic pattern of at most 1024 bytes";
  int devices = 0;
  for (const std::string& level : split_levels(topic)) {
    if (!level.empty() && level.front() == '{') {
      if (level.size() < 3 || level.back() != '}') return "named wildcards as whole levels, like tele/{device}/STATE";
      const std::string name = level.substr(1, level.size() - 2);
      for (char c : name) {
        if (!is_name_char(c)) return "wildcard names of a-z 0-9 _, like {device}";
      }
      if (name == "device") ++devices;
      if (!subscription && name != "device") return "a topic that uses no wildcard other than {device}";
      continue;
    }
    for (char c : level) {
      if (c == '+' || c == '#') return "named wildcards ({device}, {name}) instead of + and #";
      if (c == '{' || c == '}') return "named wildcards as whole levels, like tele/{device}/STATE";
      if (c == '\0') return "a topic without NUL bytes";
    }
  }
  if (subscription && devices != 1) return "a pattern with {device} exactly once, like tele/{device}/STATE";
  if (!subscription && devices > 1) return "a topic with {device} at most once";
  return {};
}

// A single topic level for a name inside topics (a Tasmota %topic%, a base topic's parts).
std::string check_topic(const std::string& topic, bool single_level) {
  if (topic.empty()) return "a non-empty topic";
  for (char c : topic) {
    if (c == '+' || c == '#' || c == '\0') return "a topic without +, # or NUL";
    if (single_level && c == '/') return "one topic level, without /";
  }
  if (topic.front() == '/' || topic.back() == '/') return "a topic that neither starts nor ends with /";
  return {};
}

void read_pattern(ObjectReader& r, std::string_view key, std::string& out, bool subscription, Need need) {
  if (!r.non_empty_string(key, out, need)) return;
  const std::string why = check_pattern(out, subscription);
  if (!why.empty()) r.errors().expected(r.path(key), why, out);
}

void read_topic(ObjectReader& r, std::string_view key, std::string& out, bool single_level) {
  if (!r.non_empty_string(key, out)) return;
  const std::string why = check_topic(out, single_level);
  if (!why.empty()) r.errors().expected(r.path(key), why, out);
}

void read_file_path(ObjectReader& r, std::string_view key, const std::string& base_dir, std::string& out) {
  if (!r.non_empty_string(key, out)) return;
  out = resolve_path(base_dir, out);
  std::string why;
  if (!readable_file(out, why)) r.errors().fail(r.path(key), "cannot read " + json_quoted(out) + ": " + why);
}

void read_tls(ObjectReader& r, const std::string& base_dir, MqttTls& tls) {
  r.only_keys({"ca_file", "cert_file", "key_file"});
  tls.enabled = true;
  read_file_path(r, "ca_file", base_dir, tls.ca_file);
  read_file_path(r, "cert_file", base_dir, tls.cert_file);
  read_file_path(r, "key_file", base_dir, tls.key_file);
  if (r.errors().ok() && tls.cert_file.empty() != tls.key_file.empty()) {
    r.errors().fail(r.path(), "expected both \"cert_file\" and \"key_file\" (a client certificate), or neither");
  }
}

void read_strings(ObjectReader& r, std::string_view key, size_t min_items, std::vector<std::string>& out) {
  const Json* items = r.array(key, min_items);
  if (items == nullptr) return;
  for (size_t i = 0; i < items->size() && r.errors().ok(); ++i) {
    const Json& item = (*items)[i];
    if (!item.is_string() || item.get_ref<const std::string&>().empty()) {
      r.errors().expected(index_path(r.path(key), i), "a non-empty string", item);
      return;
    }
    out.push_back(item.get<std::string>());
  }
}

void read_value(ObjectReader& r, MqttPayload payload, MqttRuleValue& value) {
  Errors& errors = r.errors();
  r.only_keys({"field", "capability", "type", "min", "max", "options", "unit", "true", "false", "command_topic",
               "command_payload"});
  if (payload == MqttPayload::json) {
    r.non_empty_string("field", value.field);  // defaults to the capability's name
  } else if (r.has("field") && errors.ok()) {
    errors.fail(r.path("field"), "a plain payload has no fields; use \"payload\": \"json\" to read one");
  }
  r.id("capability", value.capability.name, Need::required);
  if (value.field.empty()) value.field = value.capability.name;
  read_value_type(r, "type", value.capability.type, Need::required);
  const bool numeric = value.capability.type == ValueType::integer || value.capability.type == ValueType::number;
  for (const char* key : {"min", "max"}) {
    if (!r.has(key) || !errors.ok()) continue;
    if (!numeric) {
      errors.fail(r.path(key), "only an int or number capability has a range");
      return;
    }
    double bound = 0;
    if (r.number(key, bound, -1e15, 1e15)) (key[1] == 'i' ? value.capability.min : value.capability.max) = bound;
  }
  if (errors.ok() && value.capability.min && value.capability.max && *value.capability.min > *value.capability.max) {
    errors.fail(r.path("max"), "expected a maximum not below \"min\"");
  }
  if (value.capability.type == ValueType::enumeration) {
    read_strings(r, "options", 1, value.capability.options);
  } else if (r.has("options") && errors.ok()) {
    errors.fail(r.path("options"), "only an enum capability has options");
  }
  r.string("unit", value.capability.unit);
  for (const char* key : {"true", "false"}) {
    if (!r.has(key) || !errors.ok()) continue;
    if (value.capability.type != ValueType::boolean) {
      errors.fail(r.path(key), "only a bool capability has texts for true and false");
      return;
    }
    r.non_empty_string(key, key[0] == 't' ? value.true_text : value.false_text);
  }
  read_pattern(r, "command_topic", value.command_topic, false, Need::optional);
  value.capability.writable = !value.command_topic.empty();
  if (r.string("command_payload", value.command_payload) && value.command_topic.empty() && errors.ok()) {
    errors.fail(r.path("command_payload"), "expected \"command_topic\" with it");
  }
}

void read_rule(ObjectReader& r, MqttRule& rule) {
  Errors& errors = r.errors();
  r.only_keys({"topic", "kind", "payload", "values", "presence"});
  read_pattern(r, "topic", rule.topic, true, Need::required);
  r.id("kind", rule.kind);
  r.choice("payload", rule.payload, {{"json", MqttPayload::json}, {"plain", MqttPayload::plain}});
  if (errors.ok() && r.has("values") == r.has("presence")) {
    errors.fail(r.path(), std::string("expected exactly one of \"values\" and \"presence\", got ") +
                              (r.has("values") ? "both" : "neither"));
    return;
  }
  if (const Json* presence = r.object("presence")) {
    ObjectReader p(*presence, r.path("presence"), errors);
    p.only_keys({"online", "offline"});
    p.non_empty_string("online", rule.online_payload, Need::required);
    p.non_empty_string("offline", rule.offline_payload, Need::required);
    if (errors.ok() && rule.online_payload == rule.offline_payload) {
      errors.fail(p.path("offline"), "expected a payload other than the one for online");
    }
    return;
  }
  const Json* values = r.array("values", 1, Need::required);
  if (values == nullptr) return;
  if (rule.payload == MqttPayload::plain && values->size() != 1 && errors.ok()) {
    errors.fail(r.path("values"), "a plain payload carries exactly one value");
    return;
  }
  for (size_t i = 0; i < values->size() && errors.ok(); ++i) {
    const std::string path = index_path(r.path("values"), i);
    if (!(*values)[i].is_object()) {
      errors.expected(path, "an object", (*values)[i]);
      return;
    }
    ObjectReader v((*values)[i], path, errors);
    MqttRuleValue value;
    read_value(v, rule.payload, value);
    for (const auto& earlier : rule.values) {
      if (errors.ok() && earlier.capability.name == value.capability.name) {
        errors.fail(v.path("capability"), "capability " + json_quoted(value.capability.name) + " appears twice");
      }
    }
    rule.values.push_back(std::move(value));
  }
}

void read_preset(ObjectReader& r, MqttPreset& preset) {
  Errors& errors = r.errors();
  if (!r.choice("preset", preset.kind,
                {{"tasmota", MqttPresetKind::tasmota},
                 {"zigbee2mqtt", MqttPresetKind::zigbee2mqtt},
                 {"homeassistant", MqttPresetKind::homeassistant}},
                Need::required)) {
    return;
  }
  switch (preset.kind) {
    case MqttPresetKind::tasmota: {
      r.only_keys({"preset", "devices"});
      read_strings(r, "devices", 1, preset.devices);
      if (!r.has("devices") && errors.ok()) errors.fail(r.path("devices"), "required key is missing");
      for (size_t i = 0; i < preset.devices.size() && errors.ok(); ++i) {
        const std::string why = check_topic(preset.devices[i], true);
        if (!why.empty()) errors.expected(index_path(r.path("devices"), i), why, preset.devices[i]);
        for (size_t j = 0; j < i && errors.ok(); ++j) {
          if (preset.devices[j] == preset.devices[i]) {
            errors.fail(index_path(r.path("devices"), i), "device " + json_quoted(preset.devices[i]) + " appears twice");
          }
        }
      }
      break;
    }
    case MqttPresetKind::zigbee2mqtt:
      r.only_keys({"preset", "base_topic"});
      read_topic(r, "base_topic", preset.base_topic, false);
      break;
    case MqttPresetKind::homeassistant:
      r.only_keys({"preset", "discovery_prefix"});
      read_topic(r, "discovery_prefix", preset.discovery_prefix, false);
      break;
  }
}

const char* preset_name(MqttPresetKind kind) {
  switch (kind) {
    case MqttPresetKind::zigbee2mqtt: return "zigbee2mqtt";
    case MqttPresetKind::homeassistant: return "homeassistant";
    case MqttPresetKind::tasmota: break;
  }
  return "tasmota";
}

}  // namespace

bool read_password_file(ObjectReader& r, const std::string& base_dir, std::string& password_out, std::string& path_out) {
  std::string given;
  if (!r.non_empty_string("password_file", given)) return false;
  const std::string path = resolve_path(base_dir, given);
  FileRead file;
  std::string why;
  if (!read_file(path, kMaxPasswordFileBytes, file, why)) {
    r.errors().fail(r.path("password_file"), "cannot read " + json_quoted(path) + ": " + why);
    return false;
  }
  // One line; a trailing newline from an editor is not part of the password.
  std::string password = file.text;
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
  if (password.empty()) {
    r.errors().fail(r.path("password_file"), json_quoted(path) + " is empty");
    return false;
  }
  if (password.find('\n') != std::string::npos) {
    r.errors().fail(r.path("password_file"), json_quoted(path) + " must hold only the password, on one line");
    return false;
  }
  if (file.readable_by_others) {
    LOG_WARN("config") << r.path("password_file") << " " << log::q(path)
                       << " is readable by every local user; restrict it with: chmod 600 " << path;
  }
  password_out = std::move(password);
  path_out = path;
  return true;
}

void read_mqtt_adapter(ObjectReader& r, AdapterContext& ctx, MqttAdapterConfig& mqtt) {
  Errors& errors = r.errors();
  r.only_keys({"name", "type", "host", "port", "tls", "username", "password_file", "client_id", "keepalive_s",
               "backoff_base_ms", "backoff_max_ms", "command_timeout_ms", "max_payload_bytes", "presets", "rules"});
  if (r.id("name", mqtt.name, Need::required)) claim_adapter_name(r, ctx.names, mqtt.name);
  r.non_empty_string("host", mqtt.host);
  r.integer("port", mqtt.port, 1, 65535);
  if (const Json* tls = r.object("tls")) {
    ObjectReader t(*tls, r.path("tls"), errors);
    read_tls(t, ctx.base_dir, mqtt.tls);
  }
  r.non_empty_string("username", mqtt.username);
  read_password_file(r, ctx.base_dir, mqtt.password, mqtt.password_file);
  if (errors.ok() && !mqtt.password.empty() && mqtt.username.empty()) {
    errors.fail(r.path("password_file"), "expected \"username\" with it (MQTT sends a password only with a user name)");
  }
  mqtt.client_id = "flatlink-" + mqtt.name;
  if (r.non_empty_string("client_id", mqtt.client_id) && mqtt.client_id.size() > 128 && errors.ok()) {
    errors.expected(r.path("client_id"), "a client id of at most 128 bytes", mqtt.client_id);
  }
  r.integer("keepalive_s", mqtt.keepalive_s, 5, 65535);
  r.integer("backoff_base_ms", mqtt.backoff_base_ms, 10, 600'000);
  if (!r.integer("backoff_max_ms", mqtt.backoff_max_ms, mqtt.backoff_base_ms, 3'600'000)) {
    mqtt.backoff_max_ms = std::max(mqtt.backoff_max_ms, mqtt.backoff_base_ms);
  }
  mqtt.command_timeout_ms = ctx.default_timeout_ms;
  r.integer("command_timeout_ms", mqtt.command_timeout_ms, 100, 600'000);
  r.integer("max_payload_bytes", mqtt.max_payload_bytes, 256, 16 * 1024 * 1024);

  if (const Json* presets = r.array("presets", 0)) {
    for (size_t i = 0; i < presets->size() && errors.ok(); ++i) {
      const std::string path = index_path(r.path("presets"), i);
      if (!(*presets)[i].is_object()) {
        errors.expected(path, "an object", (*presets)[i]);
        return;
      }
      ObjectReader p((*presets)[i], path, errors);
      MqttPreset preset;
      read_preset(p, preset);
      mqtt.presets.push_back(std::move(preset));
    }
  }
  if (const Json* rules = r.array("rules", 0)) {
    for (size_t i = 0; i < rules->size() && errors.ok(); ++i) {
      const std::string path = index_path(r.path("rules"), i);
      if (!(*rules)[i].is_object()) {
        errors.expected(path, "an object", (*rules)[i]);
        return;
      }
      ObjectReader rr((*rules)[i], path, errors);
      MqttRule rule;
      read_rule(rr, rule);
      mqtt.rules.push_back(std::move(rule));
    }
  }
  if (errors.ok() && mqtt.presets.empty() && mqtt.rules.empty()) {
    errors.fail(r.path(), "expected at least one entry in \"presets\" or \"rules\"; without them no device is known");
  }
}

void summarize_adapter(std::ostream& out, const MqttAdapterConfig& mqtt) {
  out << "  mqtt '" << mqtt.name << "' to broker " << mqtt.host << ":" << mqtt.port << (mqtt.tls.enabled ? " (TLS)" : "")
      << " as " << mqtt.client_id;
  if (!mqtt.username.empty()) out << ", user " << mqtt.username << (mqtt.password.empty() ? "" : " with a password");
  out << ", command timeout " << mqtt.command_timeout_ms << " ms";
  for (const auto& preset : mqtt.presets) {
    out << ", preset " << preset_name(preset.kind);
    if (preset.kind == MqttPresetKind::tasmota) out << " (" << preset.devices.size() << " devices)";
    if (preset.kind == MqttPresetKind::zigbee2mqtt) out << " on " << preset.base_topic;
    if (preset.kind == MqttPresetKind::homeassistant) out << " on " << preset.discovery_prefix;
  }
  if (!mqtt.rules.empty()) out << ", " << mqtt.rules.size() << " rules";
  out << "\n";
}

}  // namespace flatlink::config::detail
