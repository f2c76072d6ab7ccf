// What the MQTT adapter's device sources have in common: each preset
// (tasmota, zigbee2mqtt, homeassistant) and the generic rules is a Source that
// turns topics and payloads into devices, states and presence, and commands
// into publishes. The adapter (mqtt_adapter.cpp) owns the connection, the
// device table, the command confirmation and the bad-payload log.
//
// Everything here runs on the loop thread.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/device_model.h"
#include "config/mqtt_adapter_config.h"
#include "mqtt/mqtt_session.h"

namespace flatlink::adapters::mqtt {

using flatlink::mqtt::Message;
using flatlink::mqtt::Session;
using flatlink::mqtt::SessionOptions;

class Source;

// The adapter, as its sources see it.
class SourceHost {
 public:
  virtual ~SourceHost() = default;
  virtual const std::string& adapter_name() const = 0;
  // A device of this source exists, or its description changed. False when the
  // id is taken by another source's device (logged).
  virtual bool announce(Source& source, const DeviceInfo& info) = 0;
  virtual void remove(const std::string& device_id) = 0;
  // New values of some capabilities, as the device reported them.
  virtual void state(const std::string& device_id, const Json& values) = 0;
  // What the device says about itself (LWT, availability).
  virtual void reported_presence(const std::string& device_id, bool online) = 0;
  virtual bool publish(const std::string& topic, const std::string& payload) = 0;
  // Listen to one more filter (kept across reconnects).
  virtual void subscribe(const std::string& filter) = 0;
  // A payload that cannot be used: logged with a rate limit per device and topic.
  virtual void bad_payload(const std::string& device_id, const std::string& topic, const std::string& why) = 0;
};

// What a command turns into: the messages to publish, and the values the
// device's own state echo must show before the command counts as done.
struct CommandPlan {
  std::vector<std::pair<std::string, std::string>> publishes;  // topic, payload
  Json expect = Json::object();  // capability -> value; empty: done once published
};

class Source {
 public:
  virtual ~Source() = default;
  virtual const char* kind() const = 0;
  virtual std::vector<std::string> subscriptions() const = 0;
  // Announces the devices known from the configuration alone.
  virtual void start() {}
  // After every (re)connect: e.g. ask devices for their state.
  virtual void connected() {}
  // True when the topic is this source's (even when the payload was bad).
  // The payload is valid UTF-8 and within the size cap.
  virtual bool handle(const Message& message) = 0;
  // Builds the publishes for set on one of this source's devices; a message for
  // a person when it cannot be done.
  virtual bool plan(const std::string& device_id, const Json& set, CommandPlan& plan, std::string& error) = 0;
};

std::unique_ptr<Source> make_tasmota_source(SourceHost& host, const config::MqttPreset& preset);
std::unique_ptr<Source> make_zigbee2mqtt_source(SourceHost& host, const config::MqttPreset& preset);
std::unique_ptr<Source> make_homeassistant_source(SourceHost& host, const config::MqttPreset& preset);
std::unique_ptr<Source> make_rule_source(SourceHost& host, const std::vector<config::MqttRule>& rules);

}  // namespace flatlink::adapters::mqtt
