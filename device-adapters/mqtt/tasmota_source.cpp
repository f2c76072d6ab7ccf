// Tasmota devices (the "tasmota" preset), with Tasmota's default FullTopic
// %prefix%/%topic%/: tele/<topic>/STATE and SENSOR (periodic telemetry),
// stat/<topic>/RESULT and POWER (answers to commands), tele/<topic>/LWT
// ("Online"/"Offline", retained), and commands on cmnd/<topic>/<Command>.
//
// Tasmota does not announce what a device can do, so capabilities are learned
// from what it reports: POWER<n> -> on<n>, Dimmer -> brightness (0..100),
// CT -> color_temp (153..500), and every number in SENSOR as <sensor>_<field>.
// On every connect the adapter asks each device for its state (cmnd/<topic>/STATE
// and STATUS 10), so that they are known without waiting for the next TelePeriod.
#include <map>

#include "device-adapters/mqtt/payload.h"
#include "device-adapters/mqtt/source.h"
#include "device-adapters/mqtt/topic_pattern.h"

namespace flatlink::adapters::mqtt {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// "POWER" -> "", "POWER2" -> "2"; nullopt for anything else.
std::optional<std::string> power_index(std::string_view key) {
  if (key.substr(0, 5) != "POWER") return std::nullopt;
  const std::string_view rest = key.substr(5);
  if (rest.size() > 1 || (rest.size() == 1 && (rest[0] < '1' || rest[0] > '8'))) return std::nullopt;
  return std::string(rest);
}

std::string unit_for(std::string_view field, const std::string& temp_unit) {
  if (field == "Temperature" || field == "DewPoint") return temp_unit.empty() ? "°C" : "°" + temp_unit;
  if (field == "Humidity") return "%";
  if (field == "Pressure") return "hPa";
  if (field == "Power" || field == "ApparentPower" || field == "ReactivePower") return "W";
  if (field == "Voltage") return "V";
  if (field == "Current") return "A";
  if (field == "Total" || field == "Today" || field == "Yesterday") return "kWh";
  if (field == "Illuminance") return "lx";
  return "";
}

class TasmotaSource final : public Source {
 public:
  TasmotaSource(SourceHost& host, const config::MqttPreset& preset) : host_(host) {
    for (const auto& topic : preset.devices) {
      Dev dev;
      dev.topic = topic;
      dev.info.id = sanitize_id(topic);
      dev.info.name = topic;
      dev.info.kind = "tasmota";
      by_topic_[topic] = dev.info.id;
      devices_.emplace(dev.info.id, std::move(dev));
    }
  }

  const char* kind() const override { return "tasmota"; }

  std::vector<std::string> subscriptions() const override {
    std::vector<std::string> out;
    for (const auto& [id, dev] : devices_) {
      out.push_back("tele/" + dev.topic + "/+");
      out.push_back("stat/" + dev.topic + "/+");
    }
    return out;
  }

  void start() override {
    for (auto& [id, dev] : devices_) host_.announce(*this, dev.info);
  }

  void connected() override {
    for (auto& [id, dev] : devices_) {
      host_.publish("cmnd/" + dev.topic + "/STATE", "");
      host_.publish("cmnd/" + dev.topic + "/STATUS", "10");
    }
  }

  bool handle(const Message& m) override {
    const auto levels = split_topic(m.topic);
    if (levels.size() != 3 || (levels[0] != "tele" && levels[0] != "stat")) return false;
    auto t = by_topic_.find(std::string(levels[1]));
    if (t == by_topic_.end()) return false;
    Dev& dev = devices_.at(t->second);
    const std::string_view prefix = levels[0];
    const std::string_view suffix = levels[2];
    if (prefix == "tele" && suffix == "LWT") {
      if (m.payload == "Online") {
        host_.reported_presence(dev.info.id, true);
      } else if (m.payload == "Offline") {
        host_.reported_presence(dev.info.id, false);
      } else {
        host_.bad_payload(dev.info.id, m.topic, "expected Online or Offline");
      }
      return true;
    }
    if (prefix == "stat") {
      if (auto index = power_index(suffix)) {
        Json values = Json::object();
        read_power(dev, m.topic, std::string(suffix), Json(m.payload), values);
        publish_values(dev, values);
        return true;
      }
    }
    const bool state = (prefix == "tele" && suffix == "STATE") || (prefix == "stat" && suffix == "RESULT");
    const bool sensor = prefix == "tele" && suffix == "SENSOR";
    const bool status10 = prefix == "stat" && suffix == "STATUS10";
    if (!state && !sensor && !status10) return true;  // INFO1, STATUS, HASS_STATE, ...: not device state
    Json doc;
    std::string why;
    if (!parse_json(m.payload, doc, why) || !doc.is_object()) {
      host_.bad_payload(dev.info.id, m.topic, why.empty() ? "expected a JSON object" : why);
      return true;
    }
    Json values = Json::object();
    if (state) {
      read_state(dev, m.topic, doc, values);
    } else if (sensor) {
      read_sensors(dev, m.topic, doc, values);
    } else if (const Json* sns = find_field(doc, "StatusSNS"); sns && sns->is_object()) {
      read_sensors(dev, m.topic, *sns, values);
    }
    publish_values(dev, values);
    return true;
  }

  bool plan(const std::string& device_id, const Json& set, CommandPlan& plan, std::string& error) override {
    auto it = devices_.find(device_id);
    if (it == devices_.end()) {
      error = "unknown device " + device_id;
      return false;
    }
    const std::string base = "cmnd/" + it->second.topic + "/";
    for (const auto& [key, value] : set.items()) {
      if (key.rfind("on", 0) == 0 && value.is_boolean()) {
        plan.publishes.emplace_back(base + "POWER" + key.substr(2), value.get<bool>() ? "ON" : "OFF");
      } else if (key == "brightness" && value.is_number()) {
        plan.publishes.emplace_back(base + "Dimmer", value_to_text(value));
      } else if (key == "color_temp" && value.is_number()) {
        plan.publishes.emplace_back(base + "CT", value_to_text(value));
      } else {
        error = device_id + " has no Tasmota command for " + key;
        return false;
      }
      plan.expect[key] = value;
    }
    return true;
  }

 private:
  struct Dev {
    std::string topic;
    DeviceInfo info;
    bool changed = false;
  };

  void add_capability(Dev& dev, const Capability& cap) {
    if (dev.info.capability(cap.name)) return;
    dev.info.capabilities.push_back(cap);
    dev.changed = true;
  }

  void read_power(Dev& dev, const std::string& topic, const std::string& key, const Json& value, Json& values) {
    const std::string name = "on" + *power_index(key);
    if (!value.is_string() || (value != "ON" && value != "OFF")) {
      host_.bad_payload(dev.info.id, topic, key + ": expected \"ON\" or \"OFF\", got " + value.dump());
      return;
    }
    add_capability(dev, Capability::boolean(name, true));
    values[name] = value == "ON";
  }

  void read_state(Dev& dev, const std::string& topic, const Json& doc, Json& values) {
    for (const auto& [key, value] : doc.items()) {
      if (power_index(key)) {
        read_power(dev, topic, key, value, values);
      } else if (key == "Dimmer" || key == "CT") {
        Capability cap = key == "Dimmer" ? Capability::integer("brightness", 0, 100, true)
                                         : Capability::integer("color_temp", 153, 500, true);
        if (key == "Dimmer") cap.unit = "%";
        auto v = value_from_json(cap, value);
        if (!v) {
          host_.bad_payload(dev.info.id, topic, key + ": expected a whole number in range, got " + value.dump());
          continue;
        }
        add_capability(dev, cap);
        values[cap.name] = *v;
      }
    }
  }

  void read_sensors(Dev& dev, const std::string& topic, const Json& doc, Json& values) {
    std::string temp_unit;
    if (const Json* u = find_field(doc, "TempUnit"); u && u->is_string()) temp_unit = u->get<std::string>();
    for (const auto& [sensor, reading] : doc.items()) {
      if (reading.is_object()) {
        for (const auto& [field, value] : reading.items()) {
          if (!value.is_number() || value.is_boolean()) continue;
          Capability cap;
          cap.name = sanitize_id(lower(sensor + "_" + field));
          cap.type = ValueType::number;
          cap.unit = unit_for(field, temp_unit);
          add_capability(dev, cap);
          values[cap.name] = value;
        }
      } else if (reading.is_number() && !reading.is_boolean()) {
        Capability cap;
        cap.name = sanitize_id(lower(sensor));
        cap.type = ValueType::number;
        add_capability(dev, cap);
        values[cap.name] = reading;
      } else if (reading.is_string() && (reading == "ON" || reading == "OFF")) {
        // Switch1: "ON" — an input, not a relay.
        const Capability cap = Capability::boolean(sanitize_id(lower(sensor)), false);
        add_capability(dev, cap);
        values[cap.name] = reading == "ON";
      }
    }
    (void)topic;
  }

  void publish_values(Dev& dev, const Json& values) {
    if (dev.changed) {
      dev.changed = false;
      host_.announce(*this, dev.info);
    }
    host_.state(dev.info.id, values);
  }

  SourceHost& host_;
  std::map<std::string, Dev> devices_;
  std::map<std::string, std::string> by_topic_;
};

}  // namespace

std::unique_ptr<Source> make_tasmota_source(SourceHost& host, const config::MqttPreset& preset) {
  return std::make_unique<TasmotaSource>(host, preset);
}

}  // namespace flatlink::adapters::mqtt
