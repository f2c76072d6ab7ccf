// The adapter contract's table (tests/adapter_contract/contract.h) against the mqtt
// adapter on a real Mosquitto, once per preset (Tasmota, Zigbee2MQTT, Home Assistant
// discovery) and for a generic rule. The test plays the device with a plain libmosquitto client.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>

#include "../adapter_contract/contract.h"
#include "broker.h"
#include "device-adapters/mqtt/mqtt_adapter.h"
#include "fake_device.h"

using namespace flatlink;
using flatlink::test::Broker;
using flatlink::test::FakeDevice;

namespace {

enum class Kind { tasmota, zigbee2mqtt, homeassistant, rule };

std::atomic<int> g_instance{0};

class MqttHarness final : public contract::Harness, public adapters::AdapterHost {
 public:
  explicit MqttHarness(Kind kind) : kind_(kind), n_(std::to_string(++g_instance)) {
    Broker& broker = Broker::shared();
    config::MqttAdapterConfig c;
    c.name = "mqtt";
    c.port = static_cast<uint16_t>(broker.port());
    c.client_id = "flatlink-contract-" + n_;
    c.backoff_base_ms = 50;
    c.backoff_max_ms = 300;
    c.command_timeout_ms = 5000;
    c.max_payload_bytes = 16 * 1024 * 1024;  // the most the schema allows
    device_ = std::make_unique<FakeDevice>("contract-device-" + n_, broker.port());
    if (kind == Kind::tasmota) {
      topic_ = "plug_c" + n_;
      id_ = topic_;
      config::MqttPreset preset;
      preset.kind = config::MqttPresetKind::tasmota;
      preset.devices = {topic_};
      c.presets = {preset};
      device_->on("cmnd/" + topic_ + "/+", [this](FakeDevice&, const std::string& topic, const std::string& payload) {
        const std::string cmd = topic.substr(topic.rfind('/') + 1);
        std::lock_guard lock(mu_);
        if (cmd == "POWER") commands_.push_back(Json{{"on", payload == "ON"}});
        if (cmd == "Dimmer") commands_.push_back(Json{{"brightness", std::stoi(payload)}});
      });
    } else if (kind == Kind::zigbee2mqtt) {
      base_ = "z2m_c" + n_;
      id_ = "lamp_c" + n_;
      config::MqttPreset preset;
      preset.kind = config::MqttPresetKind::zigbee2mqtt;
      preset.base_topic = base_;
      c.presets = {preset};
      device_->on(base_ + "/" + id_ + "/set", [this](FakeDevice&, const std::string&, const std::string& payload) {
        Json set = Json::parse(payload);
        if (set.contains("state")) set = Json{{"on", set["state"] == "ON"}};
        std::lock_guard lock(mu_);
        commands_.push_back(set);
      });
      const std::string lamp =
          R"({"ieee_address":"0x000b57fffec6a5b2","type":"Router","supported":true,"friendly_name":")" + id_ +
          R"(","interview_completed":true,"definition":{"model":"LED1545G12","vendor":"IKEA","exposes":[)"
          R"({"type":"light","features":[{"type":"binary","name":"state","property":"state","access":7,"value_on":"ON","value_off":"OFF"},)"
          R"({"type":"numeric","name":"brightness","property":"brightness","access":7,"value_min":0,"value_max":254}]}]}})";
      device_->publish(base_ + "/bridge/devices", "[" + lamp + "]", true);
    } else if (kind == Kind::homeassistant) {
      // A light discovered the way Zigbee2MQTT announces one to Home Assistant: one JSON
      // state topic read by value templates (so input is parsed as JSON), plain command
      // topics, an availability topic; the abbreviated keys and "~" of HA's documentation.
      base_ = "ha_c" + n_;
      id_ = "light.lamp_c" + n_;
      config::MqttPreset preset;
      preset.kind = config::MqttPresetKind::homeassistant;
      preset.discovery_prefix = base_;
      c.presets = {preset};
      const std::string tilde = base_ + "/lamp";
      device_->on(tilde + "/set", [this](FakeDevice&, const std::string&, const std::string& payload) {
        std::lock_guard lock(mu_);
        commands_.push_back(Json{{"on", payload == "ON"}});
      });
      device_->on(tilde + "/bri/set", [this](FakeDevice&, const std::string&, const std::string& payload) {
        std::lock_guard lock(mu_);
        commands_.push_back(Json{{"brightness", std::stoi(payload)}});
      });
      device_->publish(tilde + "/avail", "online", true);
      device_->publish(base_ + "/light/lamp_c" + n_ + "/config",
                       R"({"~":")" + tilde + R"(","name":"Lamp","uniq_id":"lamp_c)" + n_ +
                           R"(","stat_t":"~/state","stat_val_tpl":"{{ value_json.state }}","cmd_t":"~/set",)"
                           R"("bri_stat_t":"~/state","bri_val_tpl":"{{ value_json.brightness }}","bri_cmd_t":"~/bri/set",)"
                           R"("bri_scl":100,"avty_t":"~/avail"})",
                       true);
    } else {
      id_ = "dev_c" + n_;
      config::MqttRule rule;
      rule.topic = "rule_c" + n_ + "/{device}/state";
      config::MqttRuleValue on;
      on.field = "on";
      on.capability = Capability::boolean("on", true);
      on.command_topic = "rule_c" + n_ + "/{device}/set/on";
      config::MqttRuleValue brightness;
      brightness.field = "brightness";
      brightness.capability = Capability::integer("brightness", 0, 100, true);
      brightness.command_topic = "rule_c" + n_ + "/{device}/set/brightness";
      rule.values = {on, brightness};
      config::MqttRule presence;
      presence.topic = "rule_c" + n_ + "/{device}/avail";
      presence.online_payload = "up";
      presence.offline_payload = "down";
      c.rules = {rule, presence};
      device_->on("rule_c" + n_ + "/+/set/+", [this](FakeDevice&, const std::string& topic, const std::string& payload) {
        const std::string key = topic.substr(topic.rfind('/') + 1);
        Json value = Json::parse(payload, nullptr, false);
        if (value.is_discarded()) value = payload;
        if (key == "on" && value.is_string()) value = value == "true" || value == "ON";
        std::lock_guard lock(mu_);
        commands_.push_back(Json{{key, value}});
      });
      device_->publish(state_topic(), R"({"on":false,"brightness":1})");
    }
    adapter_ = adapters::mqtt::make_mqtt_adapter(c, loop_, *this, SystemClock::instance());
    REQUIRE(adapter_);
    adapter_->start();
    if (kind == Kind::rule) {
      // A rule's device exists once it has said something after the adapter subscribed.
      for (int i = 0; i < 50 && !is_online(); ++i) {
        device_->publish(state_topic(), R"({"on":false,"brightness":1})");
        run_until([&] { return is_online(); }, 100);
      }
    }
    REQUIRE(run_until([&] { return is_online(); }));
  }
  ~MqttHarness() override { adapter_->stop(); }

  std::string label() const override {
    switch (kind_) {
      case Kind::tasmota: return "mqtt (tasmota)";
      case Kind::zigbee2mqtt: return "mqtt (zigbee2mqtt)";
      case Kind::homeassistant: return "mqtt (homeassistant)";
      case Kind::rule: break;
    }
    return "mqtt (rule)";
  }
  EventLoop& loop() override { return loop_; }
  adapters::Adapter& adapter() override { return *adapter_; }
  std::string device() const override { return id_; }
  Json first_set() const override { return {{"on", true}}; }
  Json second_set() const override { return {{"brightness", 40}}; }
  bool host_online() const override { return is_online(); }
  size_t host_statuses() const override { return statuses_; }

  void go_offline() override { set_presence(false); }
  void go_online() override { set_presence(true); }
  // Publishes the device's availability until the adapter shows it. Not retained, so said
  // again: the adapter may subscribe to the availability topic only after the device was
  // found (Home Assistant's discovery names it), and a message before that is not delivered
  // (seen under the sanitizers, where the adapter is slower).
  void set_presence(bool online) {
    for (int i = 0; i < 80 && is_online() != online; ++i) {
      if (kind_ == Kind::tasmota) device_->publish("tele/" + topic_ + "/LWT", online ? "Online" : "Offline");
      if (kind_ == Kind::zigbee2mqtt) {
        device_->publish(base_ + "/" + id_ + "/availability", online ? R"({"state":"online"})" : R"({"state":"offline"})");
      }
      if (kind_ == Kind::homeassistant) device_->publish(base_ + "/lamp/avail", online ? "online" : "offline");
      if (kind_ == Kind::rule) device_->publish("rule_c" + n_ + "/" + id_ + "/avail", online ? "up" : "down");
      run_until([&] { return is_online() == online; }, 100);
    }
    REQUIRE(is_online() == online);
  }
  std::vector<Json> received() override {
    std::lock_guard lock(mu_);
    return commands_;
  }
  void report(const Json& values) override {
    if (kind_ == Kind::tasmota) {
      Json r = Json::object();
      if (values.contains("on")) r["POWER"] = values["on"].get<bool>() ? "ON" : "OFF";
      if (values.contains("brightness")) r["Dimmer"] = values["brightness"];
      device_->publish("stat/" + topic_ + "/RESULT", r.dump());
    } else if (kind_ == Kind::zigbee2mqtt) {
      Json r = Json::object();
      if (values.contains("on")) r["state"] = values["on"].get<bool>() ? "ON" : "OFF";
      if (values.contains("brightness")) r["brightness"] = values["brightness"];
      device_->publish(base_ + "/" + id_, r.dump());
    } else if (kind_ == Kind::homeassistant) {
      Json r = Json::object();
      if (values.contains("on")) r["state"] = values["on"].get<bool>() ? "ON" : "OFF";
      if (values.contains("brightness")) r["brightness"] = values["brightness"];
      device_->publish(base_ + "/lamp/state", r.dump());
    } else {
      device_->publish(state_topic(), values.dump());
    }
  }
  void send_raw(const std::string& text) override {
    if (kind_ == Kind::tasmota) device_->publish("tele/" + topic_ + "/STATE", text);
    if (kind_ == Kind::zigbee2mqtt) device_->publish(base_ + "/" + id_, text);
    if (kind_ == Kind::homeassistant) device_->publish(base_ + "/lamp/state", text);
    if (kind_ == Kind::rule) device_->publish(state_topic(), text);
  }
  size_t max_raw_bytes() const override { return 16 * 1024 * 1024; }

 private:
  std::string state_topic() const { return "rule_c" + n_ + "/" + id_ + "/state"; }
  bool is_online() const {
    const auto it = online_.find(id_);
    return it != online_.end() && it->second;
  }
  void device_added(const DeviceInfo& d) override { known_.insert(d.id); }
  void device_removed(const std::string& id) override { known_.erase(id); }
  void status(const std::string& id, const Json&, int64_t) override { statuses_ += id == id_; }
  void presence(const std::string& id, bool online) override { online_[id] = online; }

  Kind kind_;
  std::string n_, topic_, base_, id_;
  EventLoop loop_{{}};
  std::mutex mu_;
  std::vector<Json> commands_;
  std::set<std::string> known_;
  std::map<std::string, bool> online_;
  size_t statuses_ = 0;
  std::unique_ptr<adapters::Adapter> adapter_;
  std::unique_ptr<FakeDevice> device_;  // last: its thread stops first
};

}  // namespace

TEST_CASE("the adapter contract holds for the mqtt adapter's tasmota preset") {
  contract::check_contract([] { return std::make_unique<MqttHarness>(Kind::tasmota); });
}

TEST_CASE("the adapter contract holds for the mqtt adapter's zigbee2mqtt preset") {
  contract::check_contract([] { return std::make_unique<MqttHarness>(Kind::zigbee2mqtt); });
}

TEST_CASE("the adapter contract holds for the mqtt adapter's homeassistant discovery preset") {
  contract::check_contract([] { return std::make_unique<MqttHarness>(Kind::homeassistant); });
}

TEST_CASE("the adapter contract holds for the mqtt adapter with a generic rule") {
  contract::check_contract([] { return std::make_unique<MqttHarness>(Kind::rule); });
}
