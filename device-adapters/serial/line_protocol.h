// The serial line protocols, JSON lines and key=value lines: parsing what a
// device sends and encoding the commands sent to it. Pure code: no port, no loop.
// The exact syntax is documented in docs/adapters/serial.md.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/device_model.h"
#include "config/gateway_config.h"

namespace flatlink::adapters::serial {

// One line from a device, understood.
struct DeviceLine {
  std::string device;                // from the line, or the port's own device
  Json values = Json::object();      // capability -> value (not yet checked against the capability)
  bool ok = false;                   // "ok": true — the device confirms the last command
  std::optional<std::string> error;  // "error": "..." — the device refuses or failed the last command
};

// The capability a device declares under a name, or nullptr; key=value lines
// are typed by it ("1" is the text "1" for a text capability, the number 1 otherwise).
using CapabilityLookup = std::function<const Capability*(const std::string& device, const std::string& name)>;

// Parses one line (without its newline). `port_device` is the port's configured
// device ("" when lines name their device). On garbage returns nothing and says
// why, for a log line.
std::optional<DeviceLine> parse_line(config::LineProtocol protocol, std::string_view line,
                                     const std::string& port_device, const CapabilityLookup& lookup,
                                     std::string& why);

// The line (with its '\n') that asks `device` to set `set`. Empty, with why, when a
// value cannot be written in this protocol.
std::string encode_command(config::LineProtocol protocol, const std::string& device, const Json& set,
                           std::string& why);

// True when text is well-formed UTF-8 (JSON strings must be).
bool valid_utf8(std::string_view text);

}  // namespace flatlink::adapters::serial
