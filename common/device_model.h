// What a device is, what it can do and how a command ends: the vocabulary that
// adapters, the gateway core, the wire protocol and the cloud share.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flatlink {

using Json = nlohmann::json;

// The longest text value the wire protocol carries, in bytes: the one definition that
// the configuration loader (a text capability's max_length) and the protocol share.
inline constexpr size_t kMaxTextLength = 256;

enum class ValueType { boolean, integer, number, enumeration, text };

std::string_view to_string(ValueType type);
std::optional<ValueType> value_type_from(std::string_view text);

// One named property of a device's state, e.g. a lamp's "on" or "brightness".
struct Capability {
  std::string name;
  ValueType type = ValueType::boolean;
  bool writable = false;                // commands may set it
  std::optional<double> min, max;       // integer and number
  std::vector<std::string> options;     // enumeration
  std::string unit;                     // e.g. "°C", "%"; informative
  bool confirm = false;                 // a person should confirm before setting (door locks)
  size_t max_length = kMaxTextLength;   // text: at most kMaxTextLength

  static Capability boolean(std::string name, bool writable);
  static Capability integer(std::string name, double min, double max, bool writable);
  static Capability number(std::string name, double min, double max, bool writable);
  static Capability enumeration(std::string name, std::vector<std::string> options, bool writable);
};

struct DeviceInfo {
  std::string id;    // unique within the gateway; [A-Za-z0-9_.:-]{1,64}
  std::string name;  // for people
  std::string kind;  // lamp, thermometer, lock, plug, sensor, ...
  std::string room;  // grouping in the dashboard; may be empty
  std::vector<Capability> capabilities;

  const Capability* capability(std::string_view name) const;
};

// Empty when value fits the capability; otherwise why not, for a person.
std::optional<std::string> check_value(const Capability& cap, const Json& value);

// Device ids, capability names and command ids share one alphabet so that they
// are safe in topics, file names and log lines.
bool valid_id(std::string_view id, size_t max_len = 64);

enum class Outcome { ok, rejected, expired, timeout, offline, device_error };

std::string_view to_string(Outcome outcome);
std::optional<Outcome> outcome_from(std::string_view text);

struct CommandResult {
  Outcome outcome = Outcome::ok;
  std::string message;
};

// A request to set some of a device's capabilities.
struct Command {
  std::string id;
  std::string device;
  Json set = Json::object();  // capability name -> value
  int64_t expires_ms = 0;     // wall clock, ms since the epoch
};

Json to_json(const Capability& cap);
Json to_json(const DeviceInfo& device);

}  // namespace flatlink
