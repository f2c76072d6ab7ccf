// MQTT payload and topic helpers (device-adapters/mqtt/payload.h, topic_pattern.h):
// the text check, the exception-free JSON parser, dotted field lookup, typed reads,
// plain and JSON values converted for a capability of every type, and topic patterns.
// Input: "<pattern>\n<topic>\n<payload>" (missing parts are empty).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "device-adapters/mqtt/payload.h"
#include "device-adapters/mqtt/topic_pattern.h"

using namespace flatlink;
using namespace flatlink::adapters::mqtt;

namespace {

std::string_view next_part(std::string_view& rest) {
  const size_t nl = rest.find('\n');
  const std::string_view part = rest.substr(0, nl);
  rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
  return part;
}

const Capability* capabilities() {
  static const Capability caps[] = {
      Capability::boolean("on", true),
      Capability::integer("brightness", 0, 254, true),
      Capability::number("temperature", -40, 125, false),
      Capability::enumeration("mode", {"eco", "comfort", "off"}, true),
      [] {
        Capability c;
        c.name = "note";
        c.type = ValueType::text;
        c.max_length = 32;
        return c;
      }(),
  };
  return caps;
}
constexpr size_t kCapabilities = 5;

void check_value(const Capability& cap, const std::optional<Json>& value) {
  if (!value) return;
  // A value accepted for a capability is of its type.
  switch (cap.type) {
    case ValueType::boolean: if (!value->is_boolean()) std::abort(); break;
    case ValueType::integer: if (!value->is_number_integer()) std::abort(); break;
    case ValueType::number: if (!value->is_number()) std::abort(); break;
    case ValueType::enumeration:
    case ValueType::text: if (!value->is_string()) std::abort(); break;
  }
  (void)value_to_text(*value);
  (void)value_to_text(*value, BoolTexts{"ON", "OFF"});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const std::string_view pattern_text = next_part(rest);
  const std::string_view topic = next_part(rest);
  const std::string_view payload = rest;

  // Topics: the pattern's text has passed the config loader in the product, but
  // nothing here may crash on any text.
  const TopicPattern pattern(pattern_text);
  (void)pattern.filter();
  Captures captures;
  if (pattern.match(topic, captures)) {
    for (const auto& [name, value] : captures) {
      if (value.empty()) std::abort();  // a wildcard captures a non-empty level
    }
    (void)pattern.expand(captures);
  }
  (void)split_topic(topic);
  const std::string id = sanitize_id(topic);
  if (!id.empty() && !valid_id(id)) std::abort();

  // Payloads.
  (void)check_text(payload);
  for (size_t i = 0; i < kCapabilities; ++i) {
    const Capability& cap = capabilities()[i];
    check_value(cap, value_from_text(cap, payload));
    check_value(cap, value_from_text(cap, payload, BoolTexts{"Online", "Offline"}));
  }
  Json doc;
  std::string why;
  if (parse_json(payload, doc, why)) {
    const std::string field(topic);
    (void)find_field(doc, field);
    (void)string_at(doc, field, "x");
    (void)int_at(doc, field, -1);
    (void)bool_at(doc, field, false);
    for (size_t i = 0; i < kCapabilities; ++i) {
      const Capability& cap = capabilities()[i];
      check_value(cap, value_from_json(cap, doc));
      if (const Json* f = find_field(doc, field)) check_value(cap, value_from_json(cap, *f));
    }
    (void)same_value(doc, doc);
  } else if (why.empty()) {
    std::abort();
  }
  return 0;
}
