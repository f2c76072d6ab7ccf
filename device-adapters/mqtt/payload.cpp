// Payload checks and value conversions.
#include "device-adapters/mqtt/payload.h"

#include "device-adapters/adapter_base.h"

#include <cmath>
#include <cstdlib>

namespace flatlink::adapters::mqtt {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string trim(std::string_view text) {
  const char* space = " \t\r\n";
  const size_t first = text.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(space);
  return std::string(text.substr(first, last - first + 1));
}

std::optional<bool> bool_from_text(std::string_view raw, const BoolTexts& texts) {
  const std::string text = trim(raw);
  if (!texts.on.empty() || !texts.off.empty()) {
    if (text == texts.on) return true;
    if (text == texts.off) return false;
    return std::nullopt;
  }
  const std::string l = lower(text);
  if (l == "true" || l == "on" || l == "1" || l == "yes") return true;
  if (l == "false" || l == "off" || l == "0" || l == "no") return false;
  return std::nullopt;
}

bool in_range(const Capability& cap, double v) {
  if (!std::isfinite(v)) return false;
  if (cap.min && v < *cap.min) return false;
  if (cap.max && v > *cap.max) return false;
  return true;
}

}  // namespace

std::string check_text(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0) return "a NUL byte at offset " + std::to_string(i);
    size_t extra = 0;
    unsigned min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      min = 0x10000;
    } else {
      return "invalid UTF-8 at offset " + std::to_string(i);
    }
    if (i + extra >= text.size()) {
      return "truncated UTF-8 at offset " + std::to_string(i);
    }
    unsigned code = c & (0x3F >> extra);
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return "invalid UTF-8 at offset " + std::to_string(i);
      code = (code << 6) | (cc & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return "invalid UTF-8 at offset " + std::to_string(i);
    }
    i += extra + 1;
  }
  return {};
}

bool parse_json(std::string_view text, Json& out, std::string& why) {
  // The contract's check (adapter_base.h): refused above 16 levels before any tree is built.
  return parse_device_json(text, out, why);
}

const Json* find_field(const Json& object, std::string_view dotted) {
  const Json* at = &object;
  size_t start = 0;
  for (;;) {
    if (!at->is_object()) return nullptr;
    const size_t dot = dotted.find('.', start);
    const std::string key(dotted.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
    if (dot == std::string_view::npos) return at;
    start = dot + 1;
  }
}

std::string string_at(const Json& object, std::string_view key, std::string fallback) {
  const Json* v = object.is_object() ? find_field(object, key) : nullptr;
  return v && v->is_string() ? v->get<std::string>() : fallback;
}

int64_t int_at(const Json& object, std::string_view key, int64_t fallback) {
  const Json* v = object.is_object() ? find_field(object, key) : nullptr;
  return v && v->is_number_integer() ? v->get<int64_t>() : fallback;
}

bool bool_at(const Json& object, std::string_view key, bool fallback) {
  const Json* v = object.is_object() ? find_field(object, key) : nullptr;
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}

std::string sanitize_id(std::string_view name) {
  std::string id;
  for (char c : name.substr(0, 64)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == ':' || c == '-';
    id += ok ? c : '_';
  }
  return id.empty() ? "_" : id;
}

std::optional<Json> value_from_text(const Capability& cap, std::string_view text, const BoolTexts& texts) {
  switch (cap.type) {
    case ValueType::boolean:
      if (auto b = bool_from_text(text, texts)) return Json(*b);
      return std::nullopt;
    case ValueType::integer:
    case ValueType::number: {
      const std::string t = trim(text);
      if (t.empty()) return std::nullopt;
      char* end = nullptr;
      const double v = std::strtod(t.c_str(), &end);
      if (end != t.c_str() + t.size() || !in_range(cap, v)) return std::nullopt;
      if (cap.type == ValueType::integer) {
        if (std::floor(v) != v) return std::nullopt;
        return Json(static_cast<int64_t>(v));
      }
      return Json(v);
    }
    case ValueType::enumeration:
      for (const auto& option : cap.options) {
        if (option == text) return Json(option);
      }
      return std::nullopt;
    case ValueType::text:
      if (text.size() > cap.max_length) return std::nullopt;
      return Json(std::string(text));
  }
  return std::nullopt;
}

std::optional<Json> value_from_json(const Capability& cap, const Json& value, const BoolTexts& texts) {
  switch (cap.type) {
    case ValueType::boolean:
      if (value.is_boolean()) return value;
      if (value.is_string()) return value_from_text(cap, value.get_ref<const std::string&>(), texts);
      return std::nullopt;
    case ValueType::integer:
    case ValueType::number: {
      if (!value.is_number() || value.is_boolean()) return std::nullopt;
      const double v = value.get<double>();
      if (!in_range(cap, v)) return std::nullopt;
      if (cap.type == ValueType::integer) {
        if (std::floor(v) != v) return std::nullopt;
        return Json(static_cast<int64_t>(v));
      }
      return Json(v);
    }
    case ValueType::enumeration:
    case ValueType::text:
      if (!value.is_string()) return std::nullopt;
      return value_from_text(cap, value.get_ref<const std::string&>(), texts);
  }
  return std::nullopt;
}

std::string value_to_text(const Json& value, const BoolTexts& texts) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) {
    const bool b = value.get<bool>();
    if (b) return texts.on.empty() ? "true" : texts.on;
    return texts.off.empty() ? "false" : texts.off;
  }
  if (value.is_number_float()) {
    const double v = value.get<double>();
    if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  }
  return value.dump();
}

bool same_value(const Json& a, const Json& b) { return same_device_value(a, b); }

}  // namespace flatlink::adapters::mqtt
