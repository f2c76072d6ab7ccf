// Reading device payloads safely: text checks (size, UTF-8), JSON without
// exceptions, values converted to and from a capability's type, device ids
// made from names found in topics.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/device_model.h"

namespace flatlink::adapters::mqtt {

// Empty when text is valid UTF-8 without NUL bytes; otherwise why not.
std::string check_text(std::string_view text);

// Parses a JSON document after the contract's depth check; false with `why` set when it
// is not one or nests deeper than 16 levels.
bool parse_json(std::string_view text, Json& out, std::string& why);

// A field of a JSON object by dotted path ("ENERGY.Power"); nullptr when absent.
const Json* find_field(const Json& object, std::string_view dotted);

// Typed reads of an object's field that never throw: `fallback` when absent or of another type.
std::string string_at(const Json& object, std::string_view key, std::string fallback = {});
int64_t int_at(const Json& object, std::string_view key, int64_t fallback);
bool bool_at(const Json& object, std::string_view key, bool fallback);

// A valid device id (common/device_model.h) from a name found in a topic: every
// character outside [A-Za-z0-9_.:-] becomes '_', and it is cut to 64 bytes.
std::string sanitize_id(std::string_view name);

// Texts that stand for true and false; empty ones mean the usual spellings
// (true/false, on/off, 1/0, yes/no, any case) when reading and "true"/"false" when writing.
struct BoolTexts {
  std::string on;
  std::string off;
};

// A value for cap from a plain payload or a JSON value; nullopt when it does not fit.
std::optional<Json> value_from_text(const Capability& cap, std::string_view text, const BoolTexts& texts = {});
std::optional<Json> value_from_json(const Capability& cap, const Json& value, const BoolTexts& texts = {});

// A value as payload text: strings raw, booleans by `texts`, numbers as JSON.
std::string value_to_text(const Json& value, const BoolTexts& texts = {});

// Equal as device values: numbers by value (50 == 50.0), strings exactly.
bool same_value(const Json& a, const Json& b);

}  // namespace flatlink::adapters::mqtt
