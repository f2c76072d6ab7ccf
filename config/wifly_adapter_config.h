// Typed configuration of the WiFly adapter (device-adapters/wifly).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/device_model.h"

namespace flatlink::config {

// A device behind a WiFly module, with the capabilities it reports and accepts.
struct WiflyDeviceConfig {
  std::string id;
  std::string name;     // defaults to the id
  std::string kind;     // informative: lamp, thermometer, sensor, ...
  std::string room;     // may be empty
  std::string address;  // a module connecting in from this IP address is this device; may be empty
  std::vector<Capability> capabilities;
};

// A module in TCP server mode that the adapter connects out to.
struct WiflyModuleConfig {
  std::string host;     // an IPv4 or IPv6 address (no name lookups on the loop)
  uint16_t port = 2000; // the module's `set ip localport`, 2000 by default
  std::string device;   // the device this connection carries; empty: named by its first line
};

// Where the adapter accepts modules and WebSocket clients that connect in.
struct WiflyListenConfig {
  bool enabled = false;
  std::string address = "127.0.0.1";
  uint16_t port = 2000;
};

struct WiflyAdapterConfig {
  std::string name;
  WiflyListenConfig listen;
  std::vector<WiflyModuleConfig> modules;
  std::vector<WiflyDeviceConfig> devices;
  // The module's connection markers (`set comm open/close/remote`); empty disables one.
  std::string marker_open = "*OPEN*";
  std::string marker_close = "*CLOS*";
  std::string marker_hello = "*HELLO*";
  uint32_t handshake_timeout_ms = 5000;  // from accept until the WebSocket handshake is done
  uint32_t max_handshake_bytes = 4096;   // request line, headers and hixie-76 key together
  uint32_t max_line_bytes = 1024;        // a line or a WebSocket message from a device
  uint32_t max_connections = 64;         // connected-in sockets at once; more are refused
  uint32_t connect_timeout_ms = 5000;    // an outgoing connect that takes longer is retried
  uint32_t backoff_base_ms = 500;
  uint32_t backoff_max_ms = 30'000;
  uint32_t command_timeout_ms = 5000;    // the loader sets the gateway's command_timeout_ms when absent
};

}  // namespace flatlink::config
