// JSON lines and key=value lines: parsing and encoding.
#include "device-adapters/serial/line_protocol.h"

#include <charconv>
#include <cmath>
#include <vector>

#include "common/utf8.h"
#include "device-adapters/adapter_base.h"

namespace flatlink::adapters::serial {
namespace {

// Deeper nesting than any device needs; refused before parsing so that a hostile
// line cannot make the parser build a huge tree.

bool is_control(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

bool has_control_bytes(std::string_view line) {
  for (char c : line) {
    if (is_control(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

std::string shown(std::string_view text) {
  constexpr size_t kMax = 40;
  if (text.size() <= kMax) return std::string(text);
  return std::string(text.substr(0, kMax)) + "...";
}

// Which device a line is for: the one it names, else the port's.
bool resolve_device(const std::string& named, const std::string& port_device, DeviceLine& out, std::string& why) {
  if (named.empty()) {
    if (port_device.empty()) {
      why = "the line names no device, and the port has no \"device\" of its own";
      return false;
    }
    out.device = port_device;
    return true;
  }
  if (!port_device.empty() && named != port_device) {
    why = "the line names device " + named + " but this port carries only " + port_device;
    return false;
  }
  out.device = named;
  return true;
}

bool has_content(const DeviceLine& line, std::string& why) {
  if (!line.values.empty() || line.ok || line.error) return true;
  why = "the line carries no values";
  return false;
}

std::optional<DeviceLine> parse_json(std::string_view line, const std::string& port_device, std::string& why) {
  if (has_control_bytes(line)) {
    why = "binary data (control bytes) in a JSON line";
    return std::nullopt;
  }
  Json doc;
  if (!parse_device_json(line, doc, why)) {
    if (why == "not JSON") why = "not valid JSON";
    return std::nullopt;
  }
  if (!doc.is_object()) {
    why = "expected a JSON object";
    return std::nullopt;
  }
  DeviceLine out;
  std::string named;
  for (const auto& [key, value] : doc.items()) {
    if (key == "dev") {
      if (!value.is_string() || !valid_id(value.get_ref<const std::string&>())) {
        why = "\"dev\" must be a device id, got " + shown(value.dump());
        return std::nullopt;
      }
      named = value.get<std::string>();
    } else if (key == "ok") {
      if (value != Json(true)) {
        why = "\"ok\" must be true, got " + shown(value.dump());
        return std::nullopt;
      }
      out.ok = true;
    } else if (key == "error") {
      if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
        why = "\"error\" must be a non-empty string, got " + shown(value.dump());
        return std::nullopt;
      }
      out.error = value.get<std::string>();
    } else if (!valid_id(key)) {
      why = "\"" + shown(key) + "\" is not a capability name";
      return std::nullopt;
    } else {
      out.values[key] = value;
    }
  }
  if (!resolve_device(named, port_device, out, why) || !has_content(out, why)) return std::nullopt;
  return out;
}

struct Token {
  std::string key;    // empty for a bare word
  std::string value;  // the word itself for a bare word
  bool quoted = false;
};

// Splits a key=value line into tokens; quoted values may hold spaces and the
// escapes \" \\ \n \r \t.
bool tokenize(std::string_view line, std::vector<Token>& tokens, std::string& why) {
  size_t i = 0;
  const auto space = [&](size_t at) { return line[at] == ' ' || line[at] == '\t'; };
  while (true) {
    while (i < line.size() && space(i)) ++i;
    if (i >= line.size()) return true;
    Token token;
    const size_t start = i;
    while (i < line.size() && !space(i) && line[i] != '=') ++i;
    if (i >= line.size() || line[i] != '=') {
      token.value = std::string(line.substr(start, i - start));
      tokens.push_back(std::move(token));
      continue;
    }
    token.key = std::string(line.substr(start, i - start));
    if (token.key.empty()) {
      why = "a value without a name (\"=\" at the start of a word)";
      return false;
    }
    ++i;  // '='
    if (i < line.size() && line[i] == '"') {
      token.quoted = true;
      ++i;
      bool closed = false;
      while (i < line.size()) {
        const char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c != '\\') {
          token.value += c;
          continue;
        }
        if (i >= line.size()) break;
        switch (line[i++]) {
          case '"': token.value += '"'; break;
          case '\\': token.value += '\\'; break;
          case 'n': token.value += '\n'; break;
          case 'r': token.value += '\r'; break;
          case 't': token.value += '\t'; break;
          default:
            why = "unknown escape in the quoted value of " + shown(token.key);
            return false;
        }
      }
      if (!closed) {
        why = "unterminated quoted value of " + shown(token.key);
        return false;
      }
      if (i < line.size() && !space(i)) {
        why = "text right after the closing quote of " + shown(token.key);
        return false;
      }
    } else {
      const size_t value_start = i;
      while (i < line.size() && !space(i)) ++i;
      token.value = std::string(line.substr(value_start, i - value_start));
      if (token.value.empty()) {
        why = shown(token.key) + " has no value";
        return false;
      }
    }
    tokens.push_back(std::move(token));
  }
}

std::optional<int64_t> as_integer(const std::string& text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

std::optional<double> as_number(const std::string& text) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<bool> as_boolean(const std::string& text) {
  if (text == "true" || text == "on" || text == "1") return true;
  if (text == "false" || text == "off" || text == "0") return false;
  return std::nullopt;
}

// A key=value value typed by its capability, or guessed when it has none.
std::optional<Json> typed_value(const Token& token, const Capability* cap, std::string& why) {
  const std::string& text = token.value;
  if (cap == nullptr) {
    if (!token.quoted) {
      if (text == "true" || text == "false") return Json(text == "true");
      if (auto i = as_integer(text)) return Json(*i);
      if (auto d = as_number(text)) return Json(*d);
    }
    return Json(text);
  }
  switch (cap->type) {
    case ValueType::boolean:
      if (auto b = as_boolean(text)) return Json(*b);
      why = token.key + ": expected true or false, got " + shown(text);
      return std::nullopt;
    case ValueType::integer:
      if (auto i = as_integer(text)) return Json(*i);
      why = token.key + ": expected a whole number, got " + shown(text);
      return std::nullopt;
    case ValueType::number:
      if (auto i = as_integer(text)) return Json(*i);
      if (auto d = as_number(text)) return Json(*d);
      why = token.key + ": expected a number, got " + shown(text);
      return std::nullopt;
    case ValueType::enumeration:
    case ValueType::text:
      return Json(text);
  }
  return std::nullopt;
}

std::optional<DeviceLine> parse_keyvalue(std::string_view line, const std::string& port_device,
                                         const CapabilityLookup& lookup, std::string& why) {
  if (has_control_bytes(line) || !valid_utf8(line)) {
    why = "binary data (control bytes or broken UTF-8) in a key=value line";
    return std::nullopt;
  }
  std::vector<Token> tokens;
  if (!tokenize(line, tokens, why)) return std::nullopt;
  std::string named;
  size_t first = 0;
  if (!tokens.empty() && tokens[0].key.empty()) {
    named = tokens[0].value;
    if (!valid_id(named)) {
      why = "\"" + shown(named) + "\" is not a device id";
      return std::nullopt;
    }
    first = 1;
  }
  DeviceLine out;
  if (!resolve_device(named, port_device, out, why)) return std::nullopt;
  for (size_t i = first; i < tokens.size(); ++i) {
    const Token& token = tokens[i];
    if (token.key.empty()) {
      why = "\"" + shown(token.value) + "\" is not a key=value pair";
      return std::nullopt;
    }
    if (token.key == "ok") {
      if (token.value != "true") {
        why = "ok must be true, got " + shown(token.value);
        return std::nullopt;
      }
      out.ok = true;
    } else if (token.key == "error") {
      out.error = token.value;
    } else if (token.key == "dev" || token.key == "set" || !valid_id(token.key)) {
      why = "\"" + shown(token.key) + "\" is not a capability name";
      return std::nullopt;
    } else {
      auto value = typed_value(token, lookup ? lookup(out.device, token.key) : nullptr, why);
      if (!value) return std::nullopt;
      out.values[token.key] = std::move(*value);
    }
  }
  if (!has_content(out, why)) return std::nullopt;
  return out;
}

// A value as a key=value word: bare when it can be, quoted otherwise.
bool keyvalue_word(const Json& value, std::string& out, std::string& why) {
  if (value.is_boolean()) {
    out = value.get<bool>() ? "true" : "false";
    return true;
  }
  if (value.is_number()) {
    out = value.dump();
    return true;
  }
  if (!value.is_string()) {
    why = "a " + std::string(value.type_name()) + " cannot be written as a key=value value";
    return false;
  }
  const std::string& text = value.get_ref<const std::string&>();
  bool bare = !text.empty();
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '\\') bare = false;
  }
  if (bare) {
    out = text;
    return true;
  }
  out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (is_control(static_cast<unsigned char>(c))) {
          why = "control characters cannot be written in a key=value line";
          return false;
        }
        out += c;
    }
  }
  out += '"';
  return true;
}

}  // namespace

bool valid_utf8(std::string_view text) { return utf8::valid(text); }

std::optional<DeviceLine> parse_line(config::LineProtocol protocol, std::string_view line,
                                     const std::string& port_device, const CapabilityLookup& lookup,
                                     std::string& why) {
  if (protocol == config::LineProtocol::json) return parse_json(line, port_device, why);
  return parse_keyvalue(line, port_device, lookup, why);
}

std::string encode_command(config::LineProtocol protocol, const std::string& device, const Json& set,
                           std::string& why) {
  if (protocol == config::LineProtocol::json) {
    const Json line{{"dev", device}, {"set", set}};
    return line.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  }
  std::string line = device + " set";
  for (const auto& [key, value] : set.items()) {
    std::string word;
    if (!keyvalue_word(value, word, why)) {
      why = key + ": " + why;
      return {};
    }
    line += " " + key + "=" + word;
  }
  return line + "\n";
}

}  // namespace flatlink::adapters::serial
