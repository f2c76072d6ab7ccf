// Typed configuration of the MQTT adapter (device-adapters/mqtt); see docs/adapters/mqtt.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/device_model.h"
#include "config/mqtt_tls.h"

namespace flatlink::config {

// How a rule reads a message's payload.
enum class MqttPayload { json, plain };

// One value a rule reads from a payload, and optionally how to set it.
struct MqttRuleValue {
  std::string field;                 // json: the field holding it ("a.b" for nested); plain: empty
  Capability capability;             // name, type, range, options, unit; writable when command_topic is set
  std::string true_text;             // boolean as text (plain payloads, {value} in commands); empty: "true"
  std::string false_text;            // ... empty: "false"
  std::string command_topic;         // a pattern that may use {device}; empty: read-only
  std::string command_payload = "{value}";  // {value}: the value as text; {value_json}: as JSON
};

// A subscription pattern with named wildcards ("tele/{device}/STATE") and what
// its messages mean: values of capabilities, or the device's presence.
struct MqttRule {
  std::string topic;
  std::string kind = "device";       // the kind of a device first seen through this rule
  MqttPayload payload = MqttPayload::json;
  std::vector<MqttRuleValue> values;
  std::string online_payload;        // presence rule when set: this payload means online,
  std::string offline_payload;       // and this one offline
  bool is_presence() const { return !online_payload.empty(); }
};

enum class MqttPresetKind { tasmota, zigbee2mqtt, homeassistant };

struct MqttPreset {
  MqttPresetKind kind = MqttPresetKind::tasmota;
  std::vector<std::string> devices;            // tasmota: each device's %topic%
  std::string base_topic = "zigbee2mqtt";      // zigbee2mqtt
  std::string discovery_prefix = "homeassistant";  // homeassistant
};

struct MqttAdapterConfig {
  std::string name;
  std::string host = "127.0.0.1";
  uint16_t port = 1883;
  MqttTls tls;
  std::string username;
  std::string password;        // read from password_file; never logged
  std::string password_file;
  std::string client_id;       // the loader sets "flatlink-<name>" when absent
  uint16_t keepalive_s = 30;
  uint32_t backoff_base_ms = 500;
  uint32_t backoff_max_ms = 30'000;
  uint32_t command_timeout_ms = 5000;     // the loader sets the gateway's command_timeout_ms when absent
  uint32_t max_payload_bytes = 65'536;    // larger messages are logged and dropped
  std::vector<MqttPreset> presets;
  std::vector<MqttRule> rules;
};

}  // namespace flatlink::config
