// The schema of a serial adapter's entry in the gateway configuration.
#include "config/adapter_schemas.h"

#include <algorithm>
#include <ostream>

namespace flatlink::config::detail {
namespace {

bool is_token_char(char c) { return c > 0x20 && c < 0x7f; }

bool is_hex4(const std::string& text) {
  if (text.size() != 4) return false;
  for (char c : text) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

// A device path ("/dev/ttyUSB0", "/dev/serial/by-id/...") or "usb:VID:PID[:serial]".
bool valid_serial_port(const std::string& port) {
  if (port.size() > 1 && port[0] == '/') return true;
  if (port.rfind("usb:", 0) != 0) return false;
  const std::string rest = port.substr(4);
  if (rest.size() < 9 || rest[4] != ':') return false;
  if (!is_hex4(rest.substr(0, 4)) || !is_hex4(rest.substr(5, 4))) return false;
  if (rest.size() == 9) return true;
  if (rest[9] != ':' || rest.size() == 10) return false;
  for (char c : rest.substr(10)) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

char parity_letter(Parity parity) {
  switch (parity) {
    case Parity::odd: return 'O';
    case Parity::even: return 'E';
    case Parity::none: break;
  }
  return 'N';
}

const char* flow_name(FlowControl flow) {
  switch (flow) {
    case FlowControl::rtscts: return "rtscts";
    case FlowControl::xonxoff: return "xonxoff";
    case FlowControl::none: break;
  }
  return "none";
}

const char* protocol_name(LineProtocol protocol) {
  return protocol == LineProtocol::keyvalue ? "keyvalue" : "json";
}

// Keys that the line protocol uses itself and so cannot name a capability.
void read_serial_device(ObjectReader& r, FirstSeen& device_ids, SerialDeviceConfig& device) {
  Errors& errors = r.errors();
  r.only_keys({"id", "name", "kind", "room", "capabilities"});
  if (r.id("id", device.id, Need::required)) claim_device_id(errors, device_ids, device.id, r.path("id"));
  if (!r.non_empty_string("name", device.name)) device.name = device.id;
  r.id("kind", device.kind);
  r.string("room", device.room);
  r.objects("capabilities", 0, Need::optional, [&](ObjectReader& cap_reader) {
    Capability cap;
    read_capability(cap_reader, cap, /*line_device=*/true);
    if (!errors.ok()) return;
    if (device.capabilities.end() != std::find_if(device.capabilities.begin(), device.capabilities.end(),
                                                  [&](const Capability& c) { return c.name == cap.name; })) {
      errors.fail(cap_reader.path("name"),
                  "duplicate capability " + json_quoted(cap.name) + " in device " + json_quoted(device.id));
      return;
    }
    device.capabilities.push_back(std::move(cap));
  });
}

void read_serial_devices(ObjectReader& r, FirstSeen& device_ids, SerialAdapterConfig& serial) {
  r.objects("devices", 1, Need::optional, [&](ObjectReader& device_reader) {
    SerialDeviceConfig device;
    read_serial_device(device_reader, device_ids, device);
    serial.devices.push_back(std::move(device));
  });
}

}  // namespace

void read_serial_adapter(ObjectReader& r, AdapterContext& ctx, SerialAdapterConfig& serial) {
  FirstSeen& names = ctx.names;
  FirstSeen& device_ids = ctx.device_ids;
  FirstSeen& ports = ctx.ports;
  const uint32_t default_timeout_ms = ctx.default_timeout_ms;
  Errors& errors = r.errors();
  r.only_keys({"name", "port", "baud", "data_bits", "parity", "stop_bits", "flow_control", "protocol",
               "max_line_bytes", "command_timeout_ms", "device", "devices", "reopen_min_ms", "reopen_max_ms",
               "type"});
  if (r.id("name", serial.name, Need::required)) claim_adapter_name(r, names, serial.name);
  if (r.non_empty_string("port", serial.port, Need::required)) {
    if (!valid_serial_port(serial.port)) {
      errors.expected(r.path("port"),
                      "a device path starting with \"/\" or usb:VID:PID[:serial] with VID and PID of 4 hex digits",
                      serial.port);
    } else if (const auto [it, fresh] = ports.emplace(serial.port, r.path()); !fresh) {
      errors.fail(r.path("port"), "port " + json_quoted(serial.port) + " is already used by " + it->second);
    }
  }
  r.choice("baud", serial.baud, {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400});
  r.integer("data_bits", serial.data_bits, 5, 8);
  r.choice("parity", serial.parity, {{"none", Parity::none}, {"odd", Parity::odd}, {"even", Parity::even}});
  r.choice("stop_bits", serial.stop_bits, {1, 2});
  r.choice("flow_control", serial.flow_control,
           {{"none", FlowControl::none}, {"rtscts", FlowControl::rtscts}, {"xonxoff", FlowControl::xonxoff}});
  r.choice("protocol", serial.protocol, {{"json", LineProtocol::json}, {"keyvalue", LineProtocol::keyvalue}});
  r.integer("max_line_bytes", serial.max_line_bytes, 16, 65'536);
  serial.command_timeout_ms = default_timeout_ms;
  r.integer("command_timeout_ms", serial.command_timeout_ms, 100, 600'000);
  r.integer("reopen_min_ms", serial.reopen_min_ms, 10, 600'000);
  if (!r.integer("reopen_max_ms", serial.reopen_max_ms, serial.reopen_min_ms, 3'600'000)) {
    serial.reopen_max_ms = std::max(serial.reopen_max_ms, serial.reopen_min_ms);
  }
  r.id("device", serial.device);
  read_serial_devices(r, device_ids, serial);
  if (!errors.ok()) return;
  if (serial.device.empty() && serial.devices.empty()) {
    errors.fail(r.path(), "expected \"devices\" (the devices on this port) or \"device\" (the one device that "
                          "sends every line), got neither");
  } else if (serial.devices.empty()) {
    // One device per port, declared by its id alone: it learns its capabilities.
    claim_device_id(errors, device_ids, serial.device, r.path("device"));
    serial.devices.push_back(SerialDeviceConfig{serial.device, serial.device, "sensor", "", {}});
  } else if (!serial.device.empty() && (serial.devices.size() != 1 || serial.devices[0].id != serial.device)) {
    errors.fail(r.path("devices"), "with \"device\": " + json_quoted(serial.device) + " every line belongs to " +
                                       serial.device + ", so \"devices\" must declare exactly that one device");
  }
}

void summarize_adapter(std::ostream& out, const SerialAdapterConfig& serial) {
  out << "  serial '" << serial.name << "' on " << serial.port << ", " << serial.baud << " "
      << static_cast<unsigned>(serial.data_bits) << parity_letter(serial.parity)
      << static_cast<unsigned>(serial.stop_bits) << ", flow control " << flow_name(serial.flow_control) << ", "
      << protocol_name(serial.protocol) << " lines up to " << serial.max_line_bytes << " bytes, command timeout "
      << serial.command_timeout_ms << " ms";
  if (!serial.device.empty()) out << ", all lines for device " << serial.device;
  if (serial.device.empty() || !serial.devices.at(0).capabilities.empty()) {
    out << ", " << serial.devices.size() << (serial.devices.size() == 1 ? " device:" : " devices:");
    for (const auto& device : serial.devices) {
      out << " " << device.id << " (" << device.kind << ", " << device.capabilities.size() << " capabilities)";
    }
  }
  out << "\n";
}

}  // namespace flatlink::config::detail
