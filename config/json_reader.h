// Schema-checking reads from a parsed JSON document: typed getters that name the
// JSON path and what was expected, keeping only the first error. Private to config/.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace flatlink::config::detail {

using Json = nlohmann::json;

// "cloud" + "url" -> "cloud.url"; "" + "flat" -> "flat".
std::string key_path(const std::string& parent, std::string_view key);
// "adapters" + 1 -> "adapters[1]".
std::string index_path(const std::string& parent, size_t index);

// A value as it appears in an error message: compact JSON, cut short when long.
std::string describe(const Json& value);
// What a value is without showing it, for secrets: "a number", "a string of 12 characters".
std::string describe_kind(const Json& value);
// A path or a name quoted for a message, e.g. "/etc/flatlink/token".
std::string json_quoted(std::string_view text);

// The first error found while reading one document. Later errors are dropped, so
// the report is deterministic: the first problem in schema order.
class Errors {
 public:
  explicit Errors(std::string name) : name_(std::move(name)) {}

  bool ok() const { return message_.empty(); }
  // "<name>: <path>: <what>", or "<name>: <what>" for the document itself.
  void fail(const std::string& path, const std::string& what);
  // "<name>: <path>: expected <expected>, got <value>".
  void expected(const std::string& path, const std::string& expected, const Json& got);
  const std::string& message() const { return message_; }
  // The document's name (its file), for warnings.
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::string message_;
};

enum class Need { optional, required };

// Reads the fields of one JSON object. Every getter does nothing once an error has
// been recorded, leaves `out` untouched when an optional key is absent (so the
// struct's default stays), and returns true only when it stored a value.
class ObjectReader {
 public:
  // `object` must be a JSON object and must outlive the reader.
  ObjectReader(const Json& object, std::string path, Errors& errors)
      : object_(object), path_(std::move(path)), errors_(errors) {}

  const std::string& path() const { return path_; }
  std::string path(std::string_view key) const { return key_path(path_, key); }
  Errors& errors() const { return errors_; }
  bool has(std::string_view key) const;
  // The value under key, or nullptr.
  const Json* find(std::string_view key) const;

  // Refuses any key not in `allowed`; the message lists them in this order.
  bool only_keys(std::initializer_list<std::string_view> allowed);
  // Records "required key is missing" when absent.
  bool require(std::string_view key);

  bool string(std::string_view key, std::string& out, Need need = Need::optional);
  bool non_empty_string(std::string_view key, std::string& out, Need need = Need::optional);
  // An id in the shared alphabet (common/device_model.h valid_id).
  bool id(std::string_view key, std::string& out, Need need = Need::optional);
  bool boolean(std::string_view key, bool& out);
  // A whole number in [min, max]; fractions, booleans and strings are refused.
  bool unsigned_integer(std::string_view key, uint64_t& out, uint64_t min, uint64_t max,
                        Need need = Need::optional);
  // A JSON number (integer or not) in [min, max].
  bool number(std::string_view key, double& out, double min, double max);
  // One of a fixed list of whole numbers.
  bool unsigned_choice(std::string_view key, uint64_t& out, std::initializer_list<uint64_t> options,
                       Need need = Need::optional);
  // One of a fixed list of strings; `out` receives the position in the list.
  bool string_choice(std::string_view key, size_t& out, std::initializer_list<std::string_view> options,
                     Need need = Need::optional);

  // An object or an array (with at least min_items elements); nullptr when absent or wrong.
  const Json* object(std::string_view key, Need need = Need::optional);
  const Json* array(std::string_view key, size_t min_items, Need need = Need::optional);
  // An array of objects (at least min_items): read(ObjectReader&) for each element in
  // order, while no error is recorded; an element that is not an object is an error.
  template <class Read>
  void objects(std::string_view key, size_t min_items, Need need, Read&& read) {
    const Json* items = array(key, min_items, need);
    if (items == nullptr) return;
    for (size_t i = 0; i < items->size() && errors_.ok(); ++i) {
      const std::string item_path = index_path(path(key), i);
      const Json& item = (*items)[i];
      if (!item.is_object()) {
        errors_.expected(item_path, "an object", item);
        return;
      }
      ObjectReader item_reader(item, item_path, errors_);
      read(item_reader);
    }
  }

  // Narrowing helpers over unsigned_integer / unsigned_choice / string_choice.
  template <class T>
  bool integer(std::string_view key, T& out, uint64_t min, uint64_t max, Need need = Need::optional) {
    static_assert(std::is_unsigned_v<T>);
    uint64_t value = 0;
    if (!unsigned_integer(key, value, min, max, need)) return false;
    out = static_cast<T>(value);
    return true;
  }
  template <class T>
  bool choice(std::string_view key, T& out, std::initializer_list<uint64_t> options, Need need = Need::optional) {
    uint64_t value = 0;
    if (!unsigned_choice(key, value, options, need)) return false;
    out = static_cast<T>(value);
    return true;
  }
  template <class E>
  bool choice(std::string_view key, E& out, std::initializer_list<std::pair<std::string_view, E>> options,
              Need need = Need::optional) {
    // Names only, for the message; the value is picked by position.
    std::vector<std::string_view> names;
    for (const auto& option : options) names.push_back(option.first);
    size_t index = 0;
    if (!string_choice_of(key, index, names, need)) return false;
    out = (options.begin() + index)->second;
    return true;
  }

 private:
  bool string_choice_of(std::string_view key, size_t& out, const std::vector<std::string_view>& names, Need need);
  // The value under key when reading should go on; records a missing required key.
  const Json* value_for(std::string_view key, Need need);

  const Json& object_;
  std::string path_;
  Errors& errors_;
};

// Parses JSON text. On failure returns false and sets `error` to
// "<name>: line L, column C: <what>" (or "<name>: <what>"), also for a key that
// appears twice in one object ("<name>: <path>: duplicate key"). Never throws.
bool parse_json(const std::string& text, const std::string& name, Json& out, std::string& error);

}  // namespace flatlink::config::detail
