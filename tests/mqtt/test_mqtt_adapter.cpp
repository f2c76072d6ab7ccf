// The mqtt adapter against a real Mosquitto broker: each preset's state,
// presence and command round trip with payloads shaped like the real projects',
// generic rules, bad payloads, command timeouts, and a broker restart with QoS 1
// messages queued for the adapter's persistent session.
#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "broker.h"
#include "common/event_loop.h"
#include "device-adapters/mqtt/mqtt_adapter.h"
#include "fake_device.h"

using namespace flatlink;
using flatlink::test::Broker;
using flatlink::test::FakeDevice;

namespace {

class RecordingHost final : public adapters::AdapterHost {
 public:
  void device_added(const DeviceInfo& d) override { devices[d.id] = d; }
  void device_removed(const std::string& id) override {
    devices.erase(id);
    removed.push_back(id);
  }
  void status(const std::string& id, const Json& values, int64_t) override {
    REQUIRE(devices.count(id));  // the contract: announced before any status
    for (const auto& [k, v] : values.items()) state[id][k] = v;
    ++statuses[id];
    history[id].push_back(values);
  }
  void presence(const std::string& id, bool on) override {
    REQUIRE(devices.count(id));
    online[id] = on;
  }

  bool is_online(const std::string& id) const {
    auto it = online.find(id);
    return it != online.end() && it->second;
  }
  bool is_offline(const std::string& id) const {
    auto it = online.find(id);
    return it != online.end() && !it->second;
  }
  bool has(const std::string& id, const std::string& key, const Json& value) const {
    auto it = state.find(id);
    return it != state.end() && it->second.contains(key) && it->second[key] == value;
  }
  const Capability* capability(const std::string& id, const std::string& name) const {
    auto it = devices.find(id);
    return it == devices.end() ? nullptr : it->second.capability(name);
  }

  std::map<std::string, DeviceInfo> devices;
  std::map<std::string, Json> state;
  std::map<std::string, std::vector<Json>> history;
  std::map<std::string, int> statuses;
  std::map<std::string, bool> online;
  std::vector<std::string> removed;
};

struct Fixture {
  EventLoop loop{{}};
  RecordingHost host;
  config::MqttAdapterConfig config;
  std::unique_ptr<adapters::Adapter> adapter;
  int commands = 0;

  explicit Fixture(const std::string& name) {
    config.name = name;
    config.port = static_cast<uint16_t>(Broker::shared().port());
    config.client_id = "flatlink-test-" + name;
    config.backoff_base_ms = 50;
    config.backoff_max_ms = 300;
    config.command_timeout_ms = 3000;
  }
  ~Fixture() {
    if (adapter) adapter->stop();
  }

  void start() {
    adapter = adapters::mqtt::make_mqtt_adapter(config, loop, host, SystemClock::instance());
    REQUIRE(adapter);
    adapter->start();
  }

  // Runs the loop until cond() or max_ms (the loop's own timer, not a sleep).
  template <class F>
  bool run_until(F cond, uint32_t max_ms = 5000) {
    if (cond()) return true;
    Timer guard(loop, [this] { loop.quit(); });
    Timer tick(loop, [&] {
      if (cond()) {
        loop.quit();
      } else {
        tick.start(2);
      }
    });
    tick.start(2);
    guard.start(max_ms);
    loop.run();
    return cond();
  }

  std::optional<CommandResult> execute(const std::string& device, Json set) {
    std::optional<CommandResult> result;
    adapter->execute(Command{"c" + std::to_string(++commands), device, std::move(set), 0},
                     [&](CommandResult r) { result = std::move(r); });
    run_until([&] { return result.has_value(); }, 6000);
    return result;
  }
};

// The first part of a topic after prefix, e.g. "POWER" of "cmnd/plug/POWER".
std::string after(const std::string& topic, const std::string& prefix) { return topic.substr(prefix.size()); }

}  // namespace

TEST_CASE("a tasmota plug reports state, sensors and presence, and a POWER command is confirmed by its RESULT") {
  Broker& broker = Broker::shared();
  Fixture f("tasmota");
  config::MqttPreset preset;
  preset.kind = config::MqttPresetKind::tasmota;
  preset.devices = {"plug_t1"};
  f.config.presets = {preset};

  FakeDevice plug("DVES_plug_t1", broker.port());
  plug.on("cmnd/plug_t1/#", [](FakeDevice& d, const std::string& topic, const std::string& payload) {
    const std::string cmd = after(topic, "cmnd/plug_t1/");
    if (cmd == "POWER") {
      const std::string power = payload == "ON" || payload == "1" ? "ON" : "OFF";
      d.reply("stat/plug_t1/RESULT", R"({"POWER":")" + power + R"("})");
      d.reply("stat/plug_t1/POWER", power);
    } else if (cmd == "Dimmer") {
      d.reply("stat/plug_t1/RESULT", R"({"POWER":"ON","Dimmer":)" + payload + "}");
    } else if (cmd == "STATE") {
      d.reply("stat/plug_t1/RESULT",
              R"({"Time":"2024-02-24T22:20:38","Uptime":"0T00:10:11","UptimeSec":611,"Heap":24,)"
              R"("SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"POWER":"OFF","Dimmer":30,)"
              R"("Wifi":{"AP":1,"SSId":"ESP-Network","BSSId":"E6:8D:8C:4B:BE:F7","Channel":3,"RSSI":44,"Signal":-78}})");
    }
  });
  plug.publish("tele/plug_t1/LWT", "Online", true);

  f.start();
  REQUIRE(f.run_until([&] {
    return f.host.is_online("plug_t1") && f.host.has("plug_t1", "on", false) && f.host.has("plug_t1", "brightness", 30);
  }));
  const Capability* on = f.host.capability("plug_t1", "on");
  REQUIRE(on);
  CHECK(on->writable);

  plug.publish("tele/plug_t1/SENSOR",
               R"({"Time":"2024-02-24T22:25:38","AM2301":{"Temperature":21.3,"Humidity":45.2},"TempUnit":"C"})");
  REQUIRE(f.run_until([&] { return f.host.has("plug_t1", "am2301_temperature", 21.3); }));
  CHECK(f.host.capability("plug_t1", "am2301_temperature")->unit == "°C");
  CHECK(f.host.has("plug_t1", "am2301_humidity", 45.2));

  auto result = f.execute("plug_t1", Json{{"on", true}});
  REQUIRE(result);
  CHECK(result->outcome == Outcome::ok);
  CHECK(f.host.has("plug_t1", "on", true));

  result = f.execute("plug_t1", Json{{"brightness", 75}});
  REQUIRE(result);
  CHECK(result->outcome == Outcome::ok);
  CHECK(f.host.has("plug_t1", "brightness", 75));

  plug.publish("tele/plug_t1/LWT", "Offline", true);
  CHECK(f.run_until([&] { return f.host.is_offline("plug_t1"); }));
}

TEST_CASE("a command nobody confirms ends in timeout") {
  Broker& broker = Broker::shared();
  Fixture f("timeout");
  config::MqttPreset preset;
  preset.kind = config::MqttPresetKind::tasmota;
  preset.devices = {"plug_t4"};
  f.config.presets = {preset};
  f.config.command_timeout_ms = 300;
  FakeDevice plug("DVES_plug_t4", broker.port());
  plug.publish("tele/plug_t4/LWT", "Online", true);
  f.start();
  REQUIRE(f.run_until([&] { return f.host.is_online("plug_t4"); }));
  const auto result = f.execute("plug_t4", Json{{"on", true}});
  REQUIRE(result);
  CHECK(result->outcome == Outcome::timeout);
}

TEST_CASE("zigbee2mqtt devices come from bridge/devices with their exposes, and a /set is confirmed by the state") {
  Broker& broker = Broker::shared();
  Fixture f("z2m");
  config::MqttPreset preset;
  preset.kind = config::MqttPresetKind::zigbee2mqtt;
  preset.base_topic = "z2m_t2";
  f.config.presets = {preset};

  const std::string coordinator =
      R"({"ieee_address":"0x00124b00120144ae","type":"Coordinator","network_address":0,"supported":false,)"
      R"("friendly_name":"Coordinator","disabled":false,"definition":null,"interview_completed":true})";
  const std::string lamp =
      R"({"ieee_address":"0x000b57fffec6a5b2","type":"Router","network_address":29159,"supported":true,)"
      R"("friendly_name":"living room/lamp","disabled":false,"interview_completed":true,"definition":{)"
      R"("model":"LED1545G12","vendor":"IKEA","description":"TRADFRI LED bulb E27 980 lumen",)"
      R"("exposes":[{"type":"light","features":[)"
      R"({"type":"binary","name":"state","property":"state","access":7,"value_on":"ON","value_off":"OFF","value_toggle":"TOGGLE"},)"
      R"({"type":"numeric","name":"brightness","property":"brightness","access":7,"value_min":0,"value_max":254},)"
      R"({"type":"numeric","name":"color_temp","property":"color_temp","access":7,"unit":"mired","value_min":250,"value_max":454}]},)"
      R"({"type":"enum","name":"effect","property":"effect","access":2,"values":["blink","breathe","okay","stop_effect"]},)"
      R"({"type":"numeric","name":"linkquality","property":"linkquality","access":1,"unit":"lqi","value_min":0,"value_max":255}]}})";
  const std::string sensor =
      R"({"ieee_address":"0x00158d0001a2b3c4","type":"EndDevice","network_address":4242,"supported":true,)"
      R"("friendly_name":"0x00158d0001a2b3c4","disabled":false,"interview_completed":true,"definition":{)"
      R"("model":"WSDCGQ01LM","vendor":"Xiaomi","description":"MiJia temperature & humidity sensor",)"
      R"("exposes":[{"type":"numeric","name":"temperature","property":"temperature","access":1,"unit":"°C"},)"
      R"({"type":"numeric","name":"humidity","property":"humidity","access":1,"unit":"%"},)"
      R"({"type":"numeric","name":"battery","property":"battery","access":1,"unit":"%","value_min":0,"value_max":100}]}})";

  FakeDevice z2m("zigbee2mqtt_t2", broker.port());
  // Like Zigbee2MQTT: apply the /set and publish the device's whole new state.
  auto lamp_state = std::make_shared<Json>(Json{{"state", "OFF"}, {"brightness", 215}, {"color_temp", 325}, {"linkquality", 80}});
  z2m.on("z2m_t2/living room/lamp/set", [lamp_state](FakeDevice& d, const std::string&, const std::string& payload) {
    const Json set = Json::parse(payload);
    for (const auto& [k, v] : set.items()) {
      if (k != "effect") (*lamp_state)[k] = v;
    }
    d.reply("z2m_t2/living room/lamp", lamp_state->dump());
  });
  z2m.publish("z2m_t2/living room/lamp", lamp_state->dump(), true);
  z2m.publish("z2m_t2/living room/lamp/availability", R"({"state":"online"})", true);
  z2m.publish("z2m_t2/0x00158d0001a2b3c4/availability", "online", true);  // legacy form
  z2m.publish("z2m_t2/bridge/devices", "[" + coordinator + "," + lamp + "," + sensor + "]", true);

  f.start();
  REQUIRE(f.run_until([&] {
    return f.host.is_online("living_room_lamp") && f.host.is_online("0x00158d0001a2b3c4") &&
           f.host.has("living_room_lamp", "brightness", 215);
  }));
  CHECK(f.host.devices.size() == 2);  // not the coordinator
  CHECK(f.host.has("living_room_lamp", "on", false));
  const Capability* brightness = f.host.capability("living_room_lamp", "brightness");
  REQUIRE(brightness);
  CHECK(brightness->type == ValueType::integer);
  CHECK(*brightness->max == 254);
  CHECK(brightness->writable);
  CHECK_FALSE(f.host.capability("living_room_lamp", "linkquality")->writable);
  CHECK(f.host.devices["living_room_lamp"].kind == "light");

  z2m.publish("z2m_t2/0x00158d0001a2b3c4", R"({"temperature":27.34,"humidity":44.72,"battery":90,"linkquality":120})");
  REQUIRE(f.run_until([&] { return f.host.has("0x00158d0001a2b3c4", "temperature", 27.34); }));

  auto result = f.execute("living_room_lamp", Json{{"on", true}, {"brightness", 200}});
  REQUIRE(result);
  CHECK(result->outcome == Outcome::ok);
  CHECK(f.host.has("living_room_lamp", "on", true));
  CHECK(f.host.has("living_room_lamp", "brightness", 200));

  // effect is settable but never published in the state: done once published.
  result = f.execute("living_room_lamp", Json{{"effect", "blink"}});
  REQUIRE(result);
  CHECK(result->outcome == Outcome::ok);

  z2m.publish("z2m_t2/0x00158d0001a2b3c4/availability", "offline", true);
  REQUIRE(f.run_until([&] { return f.host.is_offline("0x00158d0001a2b3c4"); }));
  z2m.publish("z2m_t2/living room/lamp/availability", R"({"state":"offline"})", true);
  REQUIRE(f.run_until([&] { return f.host.is_offline("living_room_lamp"); }));

  // The sensor leaves the network: the next device list lacks it.
  z2m.publish("z2m_t2/bridge/devices", "[" + coordinator + "," + lamp + "]", true);
  REQUIRE(f.run_until([&] { return !f.host.devices.count("0x00158d0001a2b3c4"); }));
  CHECK(f.host.removed == std::vector<std::string>{"0x00158d0001a2b3c4"});
  CHECK(f.host.devices.count("living_room_lamp"));
}

TEST_CASE("home assistant discovery adds entities, a switch command is confirmed, and an empty config removes one") {
  Broker& broker = Broker::shared();
  Fixture f("ha");
  config::MqttPreset preset;
  preset.kind = config::MqttPresetKind::homeassistant;
  preset.discovery_prefix = "ha_t3";
  f.config.presets = {preset};

  FakeDevice dev("irrigation_t3", broker.port());
  // The abbreviated form with a "~" base topic, as in Home Assistant's documentation.
  dev.publish("ha_t3/switch/irrigation/config",
              R"({"~":"ha_t3/switch/irrigation","name":"garden","cmd_t":"~/set","stat_t":"~/state",)"
              R"("avty_t":"~/available","uniq_id":"irrigation01"})",
              true);
  dev.publish("ha_t3/switch/irrigation/available", "online", true);
  dev.publish("ha_t3/switch/irrigation/state", "OFF", true);
  dev.on("ha_t3/switch/irrigation/set", [](FakeDevice& d, const std::string&, const std::string& payload) {
    d.reply("ha_t3/switch/irrigation/state", payload, true);
  });
  dev.publish("ha_t3/sensor/bedroom/temperature/config",
              R"({"name":"Temperature","device_class":"temperature","unit_of_measurement":"°C",)"
              R"("state_topic":"ha_t3_state/bedroom","value_template":"{{ value_json.temperature }}",)"
              R"("unique_id":"bedroom_t","device":{"identifiers":["bedroom01"],"name":"Bedroom"}})",
              true);

  f.start();
  REQUIRE(f.run_until([&] {
    return f.host.is_online("switch.irrigation") && f.host.has("switch.irrigation", "on", false) &&
           f.host.devices.count("sensor.bedroom_temperature");
  }));
  CHECK(f.host.devices["switch.irrigation"].name == "garden");
  CHECK(f.host.capability("switch.irrigation", "on")->writable);

  // Retained: the adapter subscribes to a discovered state topic only once it has
  // read the config, and a non-retained message sent before that never reaches it.
  dev.publish("ha_t3_state/bedroom", R"({"temperature":22.5,"humidity":40})", true);
  REQUIRE(f.run_until([&] { return f.host.has("sensor.bedroom_temperature", "temperature", 22.5); }));
  CHECK(f.host.capability("sensor.bedroom_temperature", "temperature")->unit == "°C");

  const auto result = f.execute("switch.irrigation", Json{{"on", true}});
  REQUIRE(result);
  CHECK(result->outcome == Outcome::ok);
  CHECK(f.host.has("switch.irrigation", "on", true));

  dev.publish("ha_t3/switch/irrigation/available", "offline", true);
  REQUIRE(f.run_until([&] { return f.host.is_offline("switch.irrigation"); }));

  dev.publish("ha_t3/switch/irrigation/config", "", true);
  REQUIRE(f.run_until([&] { return !f.host.devices.count("switch.irrigation"); }));
  CHECK(f.host.removed == std::vector<std::string>{"switch.irrigation"});
  CHECK(f.host.devices.count("sensor.bedroom_temperature"));
}

TEST_CASE("bad payloads of every kind are ignored and the other devices keep updating") {
  Broker& broker = Broker::shared();
  Fixture f("bad");
  config::MqttRule state_rule;
  state_rule.topic = "bad_t5/{device}/state";
  config::MqttRuleValue temperature;
  temperature.field = "temperature";
  temperature.capability = Capability::number("temperature", -40, 80, false);
  config::MqttRuleValue relay;
  relay.field = "relay";
  relay.capability = Capability::boolean("on", true);
  relay.true_text = "ON";
  relay.false_text = "OFF";
  relay.command_topic = "bad_t5/{device}/set";
  state_rule.values = {temperature, relay};
  config::MqttRule presence_rule;
  presence_rule.topic = "bad_t5/{device}/avail";
  presence_rule.online_payload = "up";
  presence_rule.offline_payload = "down";
  f.config.rules = {state_rule, presence_rule};
  config::MqttPreset preset;
  preset.kind = config::MqttPresetKind::tasmota;
  preset.devices = {"plug_t5"};
  f.config.presets = {preset};

  FakeDevice dev("bad_t5", broker.port());
  dev.on("bad_t5/+/set", [](FakeDevice& d, const std::string& topic, const std::string& payload) {
    const std::string device = topic.substr(7, topic.size() - 7 - 4);
    d.reply("bad_t5/" + device + "/state", R"({"relay":")" + payload + R"("})");
  });
  f.start();
  // Connected (and so subscribed) once the configured plug is announced online.
  REQUIRE(f.run_until([&] { return f.host.is_online("plug_t5"); }));
  dev.publish("bad_t5/dev-a/state", R"({"temperature":20,"relay":"OFF"})");
  dev.publish("bad_t5/dev-a/avail", "up", true);
  REQUIRE(f.run_until([&] { return f.host.has("dev-a", "temperature", 20.0) && f.host.is_online("dev-a"); }));

  dev.publish("bad_t5/dev-a/state", "{oops");                                        // not JSON
  dev.publish("bad_t5/dev-a/state", R"({"temperature":"warm"})");                    // wrong type
  dev.publish("bad_t5/dev-a/state", R"({"temperature":500})");                       // out of range
  dev.publish("bad_t5/dev-a/state", R"(["temperature",20])");                       // not an object
  dev.publish("bad_t5/dev-a/state", "{\"temperature\":\"" + std::string(70'000, 'x') + "\"}");  // huge
  dev.publish("bad_t5/dev-a/state", std::string("\xff\xfe\x00\x01\x80", 5));         // binary
  dev.publish("bad_t5/dev-a/avail", "maybe");                                         // neither up nor down
  dev.publish("tele/plug_t5/STATE", "garbage");
  dev.publish("tele/plug_t5/STATE", R"({"POWER":5,"Dimmer":"bright"})");
  dev.publish("tele/plug_t5/LWT", std::string("\xc3\x28", 2));
  dev.publish("bad_t5/dev-b/state", R"({"temperature":21})");
  dev.publish("bad_t5/dev-a/state", R"({"temperature":22.5})");

  REQUIRE(f.run_until([&] { return f.host.has("dev-a", "temperature", 22.5) && f.host.has("dev-b", "temperature", 21.0); }));
  CHECK(f.host.is_online("dev-a"));
  CHECK(f.host.statuses["dev-a"] == 2);  // only the good first and last messages
  CHECK(f.host.state["dev-a"]["on"] == false);
  CHECK_FALSE(f.host.state.count("plug_t5"));

  // A generic rule's command round trip still works on the device that sent garbage.
  const auto result = f.execute("dev-a", Json{{"on", true}});
  REQUIRE(result);
  CHECK(result->outcome == Outcome::ok);
  CHECK(f.host.has("dev-a", "on", true));
}

TEST_CASE("after a broker restart the adapter reconnects, resubscribes, and gets what was queued while it was away") {
  Broker& broker = Broker::shared();
  config::MqttRule rule;
  rule.topic = "rt_t6/{device}/temp";
  rule.payload = config::MqttPayload::plain;
  config::MqttRuleValue value;
  value.capability = Capability::number("temperature", -1e6, 1e6, false);
  rule.values = {value};

  {
    Fixture f("restart");
    f.config.rules = {rule};
    f.start();
    {
      FakeDevice probe("rt_probe_1", broker.port());
      probe.publish("rt_t6/probe/temp", "1", true);  // retained: the adapter may not be subscribed yet
    }
    REQUIRE(f.run_until([&] { return f.host.has("probe", "temperature", 1.0) && f.host.is_online("probe"); }));

    // Part 1: the broker goes away under a running adapter and comes back.
    broker.stop();
    REQUIRE(f.run_until([&] { return f.host.is_offline("probe"); }));
    broker.start();
    REQUIRE(f.run_until([&] { return f.host.is_online("probe"); }));
    {
      FakeDevice probe("rt_probe_2", broker.port());
      probe.publish("rt_t6/probe/temp", "2");
    }
    REQUIRE(f.run_until([&] { return f.host.has("probe", "temperature", 2.0); }));
  }

  // Part 2: the gateway is away (its session stays on the broker) while the
  // device goes on publishing; the broker itself restarts in between.
  {
    FakeDevice probe("rt_probe_3", broker.port());
    for (int i = 100; i < 300; ++i) probe.publish("rt_t6/probe/temp", std::to_string(i));
  }
  broker.stop();
  broker.start();
  Fixture f("restart");  // same client id: the same persistent session
  f.config.rules = {rule};
  f.start();
  // The queued ones in order; the retained first value comes again with the resubscription.
  std::vector<double> queued;
  REQUIRE(f.run_until([&] {
    queued.clear();
    for (const auto& values : f.host.history["probe"]) {
      if (values["temperature"] != 1.0) queued.push_back(values["temperature"].get<double>());
    }
    return queued.size() >= 200;
  }, 8000));
  std::vector<double> expected;
  for (int i = 100; i < 300; ++i) expected.push_back(i);
  CHECK(queued == expected);
}

// Finding 1 of issue #18: 100,000 levels on a Tasmota or Zigbee2MQTT topic killed flatlinkd
// (stack overflow) once max_payload_bytes was raised. Every topic that is parsed as JSON
// gets a million levels here; the adapter stays up and the next good message still counts.
TEST_CASE("a million levels of JSON nesting on every preset's and rule's topic are refused and the adapter keeps working") {
  Broker& broker = Broker::shared();
  Fixture f("deep");
  f.config.max_payload_bytes = 16 * 1024 * 1024;  // the most the config allows
  config::MqttPreset tasmota;
  tasmota.kind = config::MqttPresetKind::tasmota;
  tasmota.devices = {"plug_t9"};
  config::MqttPreset z2m;
  z2m.kind = config::MqttPresetKind::zigbee2mqtt;
  z2m.base_topic = "z2m_t9";
  config::MqttPreset ha;
  ha.kind = config::MqttPresetKind::homeassistant;
  ha.discovery_prefix = "ha_t9";
  config::MqttRule rule;
  rule.topic = "deep_t9/{device}/state";
  config::MqttRuleValue temperature;
  temperature.field = "temperature";
  temperature.capability = Capability::number("temperature", -40, 80, false);
  rule.values = {temperature};
  f.config.presets = {tasmota, z2m, ha};
  f.config.rules = {rule};
  f.start();
  REQUIRE(f.run_until([&] { return f.host.is_online("plug_t9"); }));

  constexpr size_t kLevels = 1'000'000;
  const std::string arrays = std::string(kLevels, '[') + std::string(kLevels, ']');
  std::string objects;
  objects.reserve(kLevels * 6);
  for (size_t i = 0; i < kLevels; ++i) objects += "{\"a\":";
  objects += "1";
  objects += std::string(kLevels, '}');
  const std::string wrapped = "{\"POWER\":" + arrays + "}";

  FakeDevice attacker("deep_t9", broker.port());
  for (const std::string topic : {"tele/plug_t9/STATE", "tele/plug_t9/SENSOR", "stat/plug_t9/RESULT",
                                  "stat/plug_t9/STATUS10", "z2m_t9/bridge/devices", "z2m_t9/somebody",
                                  "z2m_t9/somebody/availability", "ha_t9/switch/x/config", "deep_t9/dev-d/state"}) {
    attacker.publish(topic, arrays);
    attacker.publish(topic, objects);
    attacker.publish(topic, wrapped);
  }
  attacker.publish("tele/plug_t9/STATE", R"({"POWER":"ON"})");
  attacker.publish("deep_t9/dev-d/state", R"({"temperature":21})");
  REQUIRE(f.run_until([&] { return f.host.has("plug_t9", "on", true) && f.host.has("dev-d", "temperature", 21.0); },
                      20000));
  CHECK(f.host.statuses["dev-d"] == 1);
}

// Finding 8 of issue #18 (the adapter's side): discovery added devices without a cap.
TEST_CASE("devices from discovery are capped per adapter, and the ones within the cap keep working") {
  Broker& broker = Broker::shared();
  Fixture f("cap");
  config::MqttPreset preset;
  preset.kind = config::MqttPresetKind::zigbee2mqtt;
  preset.base_topic = "z2m_t10";
  f.config.presets = {preset};
  std::string list = "[";
  for (int i = 0; i < 600; ++i) {
    if (i) list += ",";
    list += R"({"ieee_address":"0x)" + std::to_string(1000000 + i) + R"(","type":"EndDevice","supported":true,)"
            R"("friendly_name":"s)" + std::to_string(i) + R"(","interview_completed":true,"definition":{"exposes":[)"
            R"({"type":"numeric","name":"temperature","property":"temperature","access":1}]}})";
  }
  list += "]";
  FakeDevice z2m("zigbee2mqtt_t10", broker.port());
  z2m.publish("z2m_t10/bridge/devices", list, true);
  f.config.max_payload_bytes = 1024 * 1024;
  f.start();
  REQUIRE(f.run_until([&] { return f.host.devices.size() >= 512; }));
  f.run_until([] { return false; }, 100);
  CHECK(f.host.devices.size() == 512);
  z2m.publish("z2m_t10/s1", R"({"temperature":20.5})");
  REQUIRE(f.run_until([&] { return f.host.has("s1", "temperature", 20.5); }));
  z2m.publish("z2m_t10/bridge/devices", "[]", true);  // and retained clean-up for the next run
}
