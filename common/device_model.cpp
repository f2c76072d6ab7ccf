// Capability checks and the names of the device model's enums.
#include "common/device_model.h"

#include <cmath>
#include <sstream>

namespace flatlink {

std::string_view to_string(ValueType type) {
  switch (type) {
    case ValueType::boolean: return "bool";
    case ValueType::integer: return "int";
    case ValueType::number: return "number";
    case ValueType::enumeration: return "enum";
    case ValueType::text: return "text";
  }
  return "?";
}

std::optional<ValueType> value_type_from(std::string_view text) {
  for (ValueType t : {ValueType::boolean, ValueType::integer, ValueType::number, ValueType::enumeration, ValueType::text}) {
    if (to_string(t) == text) return t;
  }
  return std::nullopt;
}

Capability Capability::boolean(std::string name, bool writable) {
  Capability c;
  c.name = std::move(name);
  c.type = ValueType::boolean;
  c.writable = writable;
  return c;
}

Capability Capability::integer(std::string name, double min, double max, bool writable) {
  Capability c = boolean(std::move(name), writable);
  c.type = ValueType::integer;
  c.min = min;
  c.max = max;
  return c;
}

Capability Capability::number(std::string name, double min, double max, bool writable) {
  Capability c = integer(std::move(name), min, max, writable);
  c.type = ValueType::number;
  return c;
}

Capability Capability::enumeration(std::string name, std::vector<std::string> options, bool writable) {
  Capability c = boolean(std::move(name), writable);
  c.type = ValueType::enumeration;
  c.options = std::move(options);
  return c;
}

const Capability* DeviceInfo::capability(std::string_view cap_name) const {
  for (const auto& cap : capabilities) {
    if (cap.name == cap_name) return &cap;
  }
  return nullptr;
}

namespace {

std::string describe_range(const Capability& cap) {
  std::ostringstream os;
  if (cap.min && cap.max) {
    os << " between " << *cap.min << " and " << *cap.max;
  } else if (cap.min) {
    os << " of at least " << *cap.min;
  } else if (cap.max) {
    os << " of at most " << *cap.max;
  }
  return os.str();
}

std::optional<std::string> check_range(const Capability& cap, double v) {
  if ((cap.min && v < *cap.min) || (cap.max && v > *cap.max)) {
    std::ostringstream os;
    os << cap.name << ": " << v << " is out of range, expected a value" << describe_range(cap);
    return os.str();
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> check_value(const Capability& cap, const Json& value) {
  switch (cap.type) {
    case ValueType::boolean:
      if (!value.is_boolean()) return cap.name + ": expected true or false, got " + value.dump();
      return std::nullopt;
    case ValueType::integer: {
      if (value.is_number_integer()) return check_range(cap, value.get<double>());
      if (value.is_number_float()) {
        const double v = value.get<double>();
        if (std::isfinite(v) && std::floor(v) == v) return check_range(cap, v);
      }
      return cap.name + ": expected a whole number" + describe_range(cap) + ", got " + value.dump();
    }
    case ValueType::number: {
      if (!value.is_number()) return cap.name + ": expected a number" + describe_range(cap) + ", got " + value.dump();
      const double v = value.get<double>();
      if (!std::isfinite(v)) return cap.name + ": expected a finite number";
      return check_range(cap, v);
    }
    case ValueType::enumeration: {
      if (value.is_string()) {
        for (const auto& option : cap.options) {
          if (option == value.get_ref<const std::string&>()) return std::nullopt;
        }
      }
      std::string expected;
      for (size_t i = 0; i < cap.options.size(); ++i) expected += (i ? ", " : "") + cap.options[i];
      return cap.name + ": expected one of " + expected + ", got " + value.dump();
    }
    case ValueType::text:
      if (!value.is_string()) return cap.name + ": expected a string, got " + value.dump();
      if (value.get_ref<const std::string&>().size() > cap.max_length) {
        return cap.name + ": text longer than " + std::to_string(cap.max_length) + " bytes";
      }
      return std::nullopt;
  }
  return cap.name + ": unknown capability type";
}

bool valid_id(std::string_view id, size_t max_len) {
  if (id.empty() || id.size() > max_len) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string_view to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::ok: return "ok";
    case Outcome::rejected: return "rejected";
    case Outcome::expired: return "expired";
    case Outcome::timeout: return "timeout";
    case Outcome::offline: return "offline";
    case Outcome::device_error: return "device_error";
  }
  return "?";
}

std::optional<Outcome> outcome_from(std::string_view text) {
  for (Outcome o : {Outcome::ok, Outcome::rejected, Outcome::expired, Outcome::timeout, Outcome::offline,
                    Outcome::device_error}) {
    if (to_string(o) == text) return o;
  }
  return std::nullopt;
}

Json to_json(const Capability& cap) {
  Json j = {{"name", cap.name}, {"type", to_string(cap.type)}, {"writable", cap.writable}};
  if (cap.min) j["min"] = *cap.min;
  if (cap.max) j["max"] = *cap.max;
  if (!cap.options.empty()) j["options"] = cap.options;
  if (!cap.unit.empty()) j["unit"] = cap.unit;
  if (cap.confirm) j["confirm"] = true;
  return j;
}

Json to_json(const DeviceInfo& device) {
  Json caps = Json::array();
  for (const auto& cap : device.capabilities) caps.push_back(to_json(cap));
  Json j = {{"id", device.id}, {"name", device.name}, {"kind", device.kind}, {"capabilities", caps}};
  if (!device.room.empty()) j["room"] = device.room;
  return j;
}

}  // namespace flatlink
