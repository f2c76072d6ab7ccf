// Typed configuration of flatlinkd, the gateway daemon. Loaded and validated by
// config_loader; adapters receive their own struct and never see JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/device_model.h"
#include "common/log.h"
#include "config/audio_adapter_config.h"
#include "config/mqtt_adapter_config.h"
#include "config/wifly_adapter_config.h"

namespace flatlink::config {

// A simulated device (device-adapters/sim).
struct SimDeviceConfig {
  std::string id;
  std::string kind;             // "lamp", "thermometer" or "lock"
  std::string name;             // defaults to the id
  std::string room;             // may be empty
  uint32_t interval_ms = 5000;  // thermometer: how often it reports
  double initial = 21.0;        // thermometer: starting temperature
};

struct SimAdapterConfig {
  std::string name = "sim";       // instance name, unique among adapters
  uint32_t latency_ms = 20;       // how long a simulated device takes to carry out a command
  uint64_t seed = 0;              // 0: random; otherwise the thermometers drift reproducibly
  std::vector<SimDeviceConfig> devices;
};

enum class Parity { none, odd, even };
enum class FlowControl { none, rtscts, xonxoff };
enum class LineProtocol { json, keyvalue };

// One device on a serial port, as declared in the configuration. With no
// capabilities declared, the device learns read-only ones from what it reports.
struct SerialDeviceConfig {
  std::string id;
  std::string name;             // defaults to the id
  std::string kind = "sensor";  // lamp, thermometer, plug, sensor, ...
  std::string room;             // may be empty
  std::vector<Capability> capabilities;
};

// A UART device (device-adapters/serial). The port is a path or "usb:VID:PID[:serial]".
// Lines name their device, or `device` names the one device that sends every line.
// At least one of `device` and `devices` is set; with both, `devices` declares exactly `device`.
struct SerialAdapterConfig {
  std::string name;
  std::string port;
  uint32_t baud = 9600;  // one of 1200 2400 4800 9600 19200 38400 57600 115200 230400
  uint8_t data_bits = 8; // 5..8
  Parity parity = Parity::none;
  uint8_t stop_bits = 1; // 1 or 2
  FlowControl flow_control = FlowControl::none;
  LineProtocol protocol = LineProtocol::json;
  uint32_t max_line_bytes = 1024;
  uint32_t command_timeout_ms = 3000;  // the loader sets the gateway's command_timeout_ms when absent
  std::string device;    // when set, every line on this port belongs to this device id
  std::vector<SerialDeviceConfig> devices;  // the devices on this port; the loader adds `device` when absent
  uint32_t reopen_min_ms = 500;     // first retry after the port went away or failed to open
  uint32_t reopen_max_ms = 30'000;  // retries back off up to this
};

using AdapterConfig =
    std::variant<SimAdapterConfig, SerialAdapterConfig, WiflyAdapterConfig, MqttAdapterConfig, AudioAdapterConfig>;

struct CloudLinkConfig {
  std::string url;                    // ws://host:port/path or wss://host:port/path: the first of urls
  std::vector<std::string> urls;      // every cloud URL, tried in turn when one is down ("url" as a list)
  std::string token;                  // the flat's gateway token (from "token" or "token_file")
  std::string token_file;             // where the token came from, if a file
  std::string flat;                   // GatewayConfig::flat, set by the loader: named when the cloud refuses the token
  std::string ca_file;                // CA bundle for wss://; empty = the system's
  bool insecure = false;              // development only: no certificate verification
  uint32_t backoff_base_ms = 500;
  uint32_t backoff_max_ms = 30'000;   // the loader raises it to backoff_base_ms when absent and smaller
  uint32_t ping_interval_s = 20;      // send a ping after this much silence
  uint32_t pong_timeout_s = 10;       // no answer this long after a ping: the peer is dead
  uint32_t send_queue_max = 10'000;   // frames waiting for the socket
};

enum class Durability { group, sync };

// The durable outbox (gateway/durable_outbox.h): where statuses wait for the cloud's ack.
struct OutboxConfig {
  Durability durability = Durability::group;  // group: commit in groups (WAL, synchronous=NORMAL);
                                              // sync: every status committed with fsync before it is sent
  uint32_t commit_interval_ms = 50;  // group: a commit gathers statuses for at most this long
  uint32_t commit_max_items = 500;   // group: ... or until this many are waiting
  uint32_t max_items = 100'000;      // bound on statuses waiting for an ack
  uint64_t max_bytes = 32ull << 20;  // bound on their size (JSON bytes)
  uint32_t memory_items = 2'000;     // statuses kept in memory for sending; the rest is read back from disk
};

struct GatewayConfig {
  std::string source;        // the file it came from, for messages
  std::string gateway_id;    // [A-Za-z0-9_.:-]{1,64}
  std::string flat;          // the flat this gateway serves
  std::string state_dir;     // where the outbox and the command memory live; loader default /var/lib/flatlink
  log::Level log_level = log::Level::info;
  CloudLinkConfig cloud;
  uint32_t command_timeout_ms = 5000;  // default time a device gets to carry out a command
  OutboxConfig outbox;
  std::vector<AdapterConfig> adapters;
};

}  // namespace flatlink::config
