// How a capability is read from any adapter's configuration: one vocabulary of types,
// the wire's (bool, int, number, enum, text; the old spellings boolean, integer and
// enumeration are still read, each with a deprecation warning) and one set of rules for
// ranges, options and text lengths.
#include "common/log.h"
#include "config/adapter_schemas.h"

namespace flatlink::config::detail {
namespace {

bool reserved_name(const std::string& name) {
  return name == "dev" || name == "set" || name == "ok" || name == "error";
}

// The old spellings, still read: each names the wire's word that replaces it.
const char* old_spelling(const std::string& word) {
  if (word == "boolean") return "bool";
  if (word == "integer") return "int";
  if (word == "enumeration") return "enum";
  return nullptr;
}

}  // namespace

bool read_value_type(ObjectReader& r, std::string_view key, ValueType& out, Need need) {
  if (const Json* raw = r.find(key); raw && raw->is_string()) {
    if (const char* now = old_spelling(raw->get<std::string>())) {
      LOG_WARN("config") << r.errors().name() << ": " << r.path(key) << ": \"" << raw->get<std::string>()
                         << "\" is the old spelling of \"" << now << "\"; it is still read, write \"" << now << "\"";
      out = *value_type_from(now);
      return true;
    }
  }
  return r.choice(key, out,
                  {{"bool", ValueType::boolean},
                   {"int", ValueType::integer},
                   {"number", ValueType::number},
                   {"enum", ValueType::enumeration},
                   {"text", ValueType::text}},
                  need);
}

void read_capability(ObjectReader& r, Capability& cap, bool line_device) {
  Errors& errors = r.errors();
  r.only_keys({"name", "type", "writable", "min", "max", "options", "unit", "confirm", "max_length"});
  if (r.id("name", cap.name, Need::required) && line_device && reserved_name(cap.name)) {
    errors.fail(r.path("name"), json_quoted(cap.name) +
                                    " is reserved by the line protocol (dev, set, ok, error); choose another name");
  }
  read_value_type(r, "type", cap.type, Need::required);
  r.boolean("writable", cap.writable);
  r.boolean("confirm", cap.confirm);
  r.string("unit", cap.unit);
  if (!errors.ok()) return;
  const bool numeric = cap.type == ValueType::integer || cap.type == ValueType::number;
  const std::string type_name(to_string(cap.type));
  for (const char* key : {"min", "max"}) {
    if (!r.has(key)) continue;
    if (!numeric) {
      errors.fail(r.path(key), std::string("only int and number capabilities have a ") + key + ", this one is " +
                                   type_name);
      return;
    }
    double value = 0;
    if (!r.number(key, value, -1e15, 1e15)) return;
    (key[1] == 'i' ? cap.min : cap.max) = value;
  }
  if (cap.min && cap.max && *cap.min > *cap.max) {
    errors.fail(r.path("min"), "min " + describe(*r.find("min")) + " is larger than max " + describe(*r.find("max")));
    return;
  }
  if (r.has("max_length")) {
    if (cap.type != ValueType::text) {
      errors.fail(r.path("max_length"), "only text capabilities have a max_length, this one is " + type_name);
      return;
    }
    // The wire protocol carries text values of at most kMaxTextLength bytes.
    if (!r.integer("max_length", cap.max_length, 1, kMaxTextLength)) return;
  }
  if (cap.type != ValueType::enumeration) {
    if (r.has("options")) errors.fail(r.path("options"), "only enum capabilities have options, this one is " + type_name);
    return;
  }
  const Json* options = r.array("options", 1, Need::required);
  if (options == nullptr) return;
  for (size_t i = 0; i < options->size(); ++i) {
    const Json& option = (*options)[i];
    const std::string path = index_path(r.path("options"), i);
    if (!option.is_string() || option.get_ref<const std::string&>().empty()) {
      errors.expected(path, "a non-empty string", option);
      return;
    }
    const std::string& text = option.get_ref<const std::string&>();
    for (char c : text) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        errors.expected(path, "a string without control characters", option);
        return;
      }
    }
    for (const auto& seen : cap.options) {
      if (seen == text) {
        errors.fail(path, "duplicate option " + json_quoted(text));
        return;
      }
    }
    cap.options.push_back(text);
  }
}

}  // namespace flatlink::config::detail
