// Schema-checking reads from a parsed JSON document, and parsing that reports
// errors as values (line and column, duplicate keys) instead of exceptions.
#include "config/json_reader.h"

#include <cstdio>
#include <set>
#include <vector>

#include "common/device_model.h"

namespace flatlink::config::detail {
namespace {

constexpr size_t kMaxShownChars = 80;

std::string dump(const Json& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string format_number(double value) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", value);
  return buf;
}

std::string format_options(const std::vector<std::string_view>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ", ";
    out += json_quoted(names[i]);
  }
  return out;
}

// Bytes from the parser's own message that may be raw input: keep them printable.
std::string printable(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// nlohmann's messages look like "[json.exception.parse_error.101] parse error at
// line 3, column 1: syntax error ... - unexpected '}'; last read: '...'; expected ...".
// The "last read" part echoes raw input, which may be a secret (a token with a
// stray newline), so it is dropped: the line and column point to the place anyway.
std::string parser_message(std::string what) {
  if (what.rfind("[json.exception.", 0) == 0) {
    const size_t close = what.find("] ");
    if (close != std::string::npos) what.erase(0, close + 2);
  }
  if (what.rfind("parse error at ", 0) == 0) what.erase(0, std::string_view("parse error at ").size());
  const size_t last_read = what.find("; last read: '");
  if (last_read != std::string::npos) {
    size_t end = what.find("'; expected ", last_read);
    end = (end == std::string::npos) ? what.size() : end + 1;
    what.erase(last_read, end - last_read);
  }
  return printable(what);
}

// Tracks where the parser is, to name the path of a key that appears twice.
class DuplicateKeyFinder {
 public:
  void on_event(Json::parse_event_t event, const Json& parsed) {
    using Event = Json::parse_event_t;
    switch (event) {
      case Event::object_start: frames_.push_back(Frame{true, {}, {}, 0}); break;
      case Event::array_start: frames_.push_back(Frame{false, {}, {}, 0}); break;
      case Event::object_end:
      case Event::array_end:
        if (!frames_.empty()) frames_.pop_back();
        element_done();
        break;
      case Event::key:
        if (!frames_.empty() && parsed.is_string()) {
          Frame& top = frames_.back();
          top.key = parsed.get<std::string>();
          if (!top.keys.insert(top.key).second && duplicate_.empty()) duplicate_ = current_path();
        }
        break;
      case Event::value: element_done(); break;
    }
  }
  // The path of the first duplicate key, or empty.
  const std::string& duplicate() const { return duplicate_; }

 private:
  struct Frame {
    bool object;
    std::set<std::string> keys;
    std::string key;  // the key being read, in an object
    size_t index;     // the element being read, in an array
  };

  void element_done() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
  }
  std::string current_path() const {
    std::string path;
    for (const Frame& frame : frames_) {
      path = frame.object ? key_path(path, frame.key) : index_path(path, frame.index);
    }
    return path;
  }

  std::vector<Frame> frames_;
  std::string duplicate_;
};

}  // namespace

std::string key_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out = parent;
  out += '.';
  out += key;
  return out;
}

std::string index_path(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

std::string describe(const Json& value) {
  std::string text = dump(value);
  if (text.size() <= kMaxShownChars) return text;
  size_t cut = kMaxShownChars - 3;
  // Never cut a UTF-8 sequence in half.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text + "...";
}

std::string describe_kind(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return value.get<bool>() ? "true" : "false";
    case Json::value_t::string: {
      const size_t n = value.get_ref<const std::string&>().size();
      if (n == 0) return "an empty string";
      return "a string of " + std::to_string(n) + (n == 1 ? " character" : " characters");
    }
    case Json::value_t::array: return "an array";
    case Json::value_t::object: return "an object";
    default: return "a number";
  }
}

std::string json_quoted(std::string_view text) { return dump(Json(std::string(text))); }

void Errors::fail(const std::string& path, const std::string& what) {
  if (!ok()) return;
  message_ = name_ + ": ";
  if (!path.empty()) message_ += path + ": ";
  message_ += what;
}

void Errors::expected(const std::string& path, const std::string& expected, const Json& got) {
  fail(path, "expected " + expected + ", got " + describe(got));
}

bool ObjectReader::has(std::string_view key) const { return find(key) != nullptr; }

const Json* ObjectReader::find(std::string_view key) const {
  const auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

bool ObjectReader::only_keys(std::initializer_list<std::string_view> allowed) {
  if (!errors_.ok()) return false;
  for (const auto& [key, value] : object_.items()) {
    bool known = false;
    for (std::string_view name : allowed) known = known || name == key;
    if (known) continue;
    std::string list;
    for (std::string_view name : allowed) {
      if (!list.empty()) list += ", ";
      list += name;
    }
    errors_.fail(path(key), "unknown key (expected one of: " + list + ")");
    return false;
  }
  return true;
}

bool ObjectReader::require(std::string_view key) {
  if (!errors_.ok()) return false;
  if (has(key)) return true;
  errors_.fail(path(key), "required key is missing");
  return false;
}

const Json* ObjectReader::value_for(std::string_view key, Need need) {
  if (!errors_.ok()) return nullptr;
  const Json* value = find(key);
  if (value == nullptr && need == Need::required) errors_.fail(path(key), "required key is missing");
  return value;
}

bool ObjectReader::string(std::string_view key, std::string& out, Need need) {
  const Json* value = value_for(key, need);
  if (value == nullptr) return false;
  if (!value->is_string()) {
    errors_.expected(path(key), "a string", *value);
    return false;
  }
  out = value->get<std::string>();
  return true;
}

bool ObjectReader::non_empty_string(std::string_view key, std::string& out, Need need) {
  const Json* value = value_for(key, need);
  if (value == nullptr) return false;
  if (!value->is_string() || value->get_ref<const std::string&>().empty()) {
    errors_.expected(path(key), "a non-empty string", *value);
    return false;
  }
  out = value->get<std::string>();
  return true;
}

bool ObjectReader::id(std::string_view key, std::string& out, Need need) {
  const Json* value = value_for(key, need);
  if (value == nullptr) return false;
  if (!value->is_string() || !valid_id(value->get_ref<const std::string&>())) {
    errors_.expected(path(key), "an id (1 to 64 of A-Z a-z 0-9 _ . : -)", *value);
    return false;
  }
  out = value->get<std::string>();
  return true;
}

bool ObjectReader::boolean(std::string_view key, bool& out) {
  const Json* value = value_for(key, Need::optional);
  if (value == nullptr) return false;
  if (!value->is_boolean()) {
    errors_.expected(path(key), "true or false", *value);
    return false;
  }
  out = value->get<bool>();
  return true;
}

bool ObjectReader::unsigned_integer(std::string_view key, uint64_t& out, uint64_t min, uint64_t max, Need need) {
  const Json* value = value_for(key, need);
  if (value == nullptr) return false;
  // nlohmann stores every non-negative integer literal as number_unsigned, negative
  // ones as number_integer, and anything with a fraction or exponent as number_float.
  if (value->is_number_unsigned()) {
    const uint64_t v = value->get<uint64_t>();
    if (v >= min && v <= max) {
      out = v;
      return true;
    }
  }
  if (max == std::numeric_limits<uint64_t>::max() && min == 0) {
    errors_.expected(path(key), "a non-negative integer", *value);
  } else {
    errors_.expected(path(key), "an integer from " + std::to_string(min) + " to " + std::to_string(max), *value);
  }
  return false;
}

bool ObjectReader::number(std::string_view key, double& out, double min, double max) {
  const Json* value = value_for(key, Need::optional);
  if (value == nullptr) return false;
  if (value->is_number()) {
    const double v = value->get<double>();
    if (v >= min && v <= max) {
      out = v;
      return true;
    }
  }
  errors_.expected(path(key), "a number from " + format_number(min) + " to " + format_number(max), *value);
  return false;
}

bool ObjectReader::unsigned_choice(std::string_view key, uint64_t& out, std::initializer_list<uint64_t> options,
                                   Need need) {
  const Json* value = value_for(key, need);
  if (value == nullptr) return false;
  if (value->is_number_unsigned()) {
    const uint64_t v = value->get<uint64_t>();
    for (uint64_t option : options) {
      if (v == option) {
        out = v;
        return true;
      }
    }
  }
  std::string list;
  for (uint64_t option : options) {
    if (!list.empty()) list += ", ";
    list += std::to_string(option);
  }
  errors_.expected(path(key), "one of " + list, *value);
  return false;
}

bool ObjectReader::string_choice(std::string_view key, size_t& out, std::initializer_list<std::string_view> options,
                                 Need need) {
  return string_choice_of(key, out, std::vector<std::string_view>(options), need);
}

bool ObjectReader::string_choice_of(std::string_view key, size_t& out, const std::vector<std::string_view>& names,
                                    Need need) {
  const Json* value = value_for(key, need);
  if (value == nullptr) return false;
  if (value->is_string()) {
    const std::string& text = value->get_ref<const std::string&>();
    for (size_t i = 0; i < names.size(); ++i) {
      if (text == names[i]) {
        out = i;
        return true;
      }
    }
  }
  errors_.expected(path(key), "one of " + format_options(names), *value);
  return false;
}

const Json* ObjectReader::object(std::string_view key, Need need) {
  const Json* value = value_for(key, need);
  if (value == nullptr) return nullptr;
  if (!value->is_object()) {
    errors_.expected(path(key), "an object", *value);
    return nullptr;
  }
  return value;
}

const Json* ObjectReader::array(std::string_view key, size_t min_items, Need need) {
  const Json* value = value_for(key, need);
  if (value == nullptr) return nullptr;
  if (!value->is_array() || value->size() < min_items) {
    errors_.expected(path(key), min_items > 0 ? "a non-empty array" : "an array", *value);
    return nullptr;
  }
  return value;
}

bool parse_json(const std::string& text, const std::string& name, Json& out, std::string& error) {
  DuplicateKeyFinder duplicates;
  try {
    out = Json::parse(
        text,
        [&duplicates](int, Json::parse_event_t event, Json& parsed) {
          duplicates.on_event(event, parsed);
          return true;
        },
        /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Json::exception& e) {
    error = name + ": " + parser_message(e.what());
    return false;
  }
  if (!duplicates.duplicate().empty()) {
    error = name + ": " + duplicates.duplicate() + ": duplicate key";
    return false;
  }
  return true;
}

}  // namespace flatlink::config::detail
