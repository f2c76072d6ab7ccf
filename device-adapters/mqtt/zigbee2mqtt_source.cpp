// Zigbee2MQTT devices (the "zigbee2mqtt" preset): the device list with each
// device's capabilities from <base>/bridge/devices (retained; its "exposes"),
// JSON state on <base>/<friendly_name>, presence on <base>/<friendly_name>/availability
// ({"state":"online"}, or the legacy plain "online"/"offline"), commands as a
// JSON object on <base>/<friendly_name>/set.
//
// Exposes map to capabilities by property: binary -> boolean (value_on and
// value_off map to true and false; a light's or switch's "state" becomes "on"),
// numeric -> number, or integer with value_min/value_max, enum -> enumeration,
// text -> text. Access bit 2 (settable) makes it writable; without bit 1
// (published) a set value is not echoed, so the command is done once published.
// Composite (colour) and list exposes are left out.
#include <map>

#include "device-adapters/mqtt/payload.h"
#include "device-adapters/mqtt/source.h"

namespace flatlink::adapters::mqtt {
namespace {

constexpr size_t kMaxEarlyMessages = 256;

struct Property {
  std::string property;  // the key in Z2M's JSON
  Capability cap;
  Json value_on = "ON";
  Json value_off = "OFF";
  bool published = true;  // access bit 1
};

class Zigbee2mqttSource final : public Source {
 public:
  Zigbee2mqttSource(SourceHost& host, const config::MqttPreset& preset)
      : host_(host), base_(preset.base_topic + "/") {}

  const char* kind() const override { return "zigbee2mqtt"; }
  std::vector<std::string> subscriptions() const override { return {base_ + "#"}; }

  bool handle(const Message& m) override {
    if (m.topic.compare(0, base_.size(), base_) != 0) return false;
    const std::string rest = m.topic.substr(base_.size());
    if (rest == "bridge/devices") {
      read_devices(m);
      return true;
    }
    if (rest.rfind("bridge/", 0) == 0) return true;
    auto ends_with = [&](const char* suffix) {
      const std::string s(suffix);
      return rest.size() > s.size() && rest.compare(rest.size() - s.size(), s.size(), s) == 0;
    };
    if (ends_with("/set") || ends_with("/get")) return true;  // commands, ours or others'
    const bool availability = ends_with("/availability");
    const std::string name = availability ? rest.substr(0, rest.size() - 13) : rest;
    auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      // State may come before the device list (retained messages arrive in any
      // order): keep the latest few and replay them when the list names the device.
      if (early_.size() < kMaxEarlyMessages || early_.count(m.topic)) early_[m.topic] = m;
      return true;
    }
    Dev& dev = devices_.at(it->second);
    if (availability) {
      read_availability(dev, m);
    } else {
      read_state(dev, m);
    }
    return true;
  }

  bool plan(const std::string& device_id, const Json& set, CommandPlan& plan, std::string& error) override {
    auto it = devices_.find(device_id);
    if (it == devices_.end()) {
      error = "unknown device " + device_id;
      return false;
    }
    Json body = Json::object();
    for (const auto& [key, value] : set.items()) {
      const Property* p = find(it->second, key);
      if (!p || !p->cap.writable) {
        error = device_id + " cannot set " + key;
        return false;
      }
      if (p->cap.type == ValueType::boolean) {
        body[p->property] = value.get<bool>() ? p->value_on : p->value_off;
      } else {
        body[p->property] = value;
      }
      if (p->published) plan.expect[key] = value;
    }
    plan.publishes.emplace_back(base_ + it->second.friendly_name + "/set", body.dump());
    return true;
  }

 private:
  struct Dev {
    std::string friendly_name;
    DeviceInfo info;
    std::vector<Property> properties;
  };

  static const Property* find(const Dev& dev, const std::string& capability) {
    for (const auto& p : dev.properties) {
      if (p.cap.name == capability) return &p;
    }
    return nullptr;
  }

  static void add_expose(const Json& e, const std::string& parent_type, Dev& dev) {
    if (!e.is_object()) return;
    const std::string type = string_at(e, "type");
    if (const Json* features = find_field(e, "features"); features && features->is_array() && type != "composite") {
      if (type == "light" || type == "switch" || type == "lock" || type == "cover" || type == "fan" || type == "climate") {
        if (dev.info.kind == "sensor") dev.info.kind = type;
      }
      for (const auto& f : *features) add_expose(f, type, dev);
      return;
    }
    const Json* property = find_field(e, "property");
    if (!property || !property->is_string()) return;
    Property p;
    p.property = property->get<std::string>();
    const int64_t access = int_at(e, "access", 1);
    p.published = (access & 1) != 0;
    std::string name = p.property;
    if (type == "binary") {
      p.cap.type = ValueType::boolean;
      if (const Json* on = find_field(e, "value_on")) p.value_on = *on;
      if (const Json* off = find_field(e, "value_off")) p.value_off = *off;
      if (name == "state" && (parent_type == "light" || parent_type == "switch")) name = "on";
    } else if (type == "numeric") {
      const Json* min = find_field(e, "value_min");
      const Json* max = find_field(e, "value_max");
      const bool whole = min && max && min->is_number_integer() && max->is_number_integer();
      p.cap.type = whole ? ValueType::integer : ValueType::number;
      if (min && min->is_number()) p.cap.min = min->get<double>();
      if (max && max->is_number()) p.cap.max = max->get<double>();
      if (const Json* unit = find_field(e, "unit"); unit && unit->is_string()) p.cap.unit = unit->get<std::string>();
    } else if (type == "enum") {
      p.cap.type = ValueType::enumeration;
      if (const Json* values = find_field(e, "values"); values && values->is_array()) {
        for (const auto& v : *values) {
          if (v.is_string()) p.cap.options.push_back(v.get<std::string>());
        }
      }
      if (p.cap.options.empty()) return;
    } else if (type == "text") {
      p.cap.type = ValueType::text;
    } else {
      return;  // composite, list: not a single value
    }
    p.cap.name = sanitize_id(name);
    p.cap.writable = (access & 2) != 0;
    if (find(dev, p.cap.name)) return;
    dev.info.capabilities.push_back(p.cap);
    dev.properties.push_back(std::move(p));
  }

  void read_devices(const Message& m) {
    Json list;
    std::string why;
    if (!parse_json(m.payload, list, why) || !list.is_array()) {
      host_.bad_payload("", m.topic, why.empty() ? "expected a JSON array of devices" : why);
      return;
    }
    std::map<std::string, Dev> fresh;
    for (const auto& entry : list) {
      if (!entry.is_object() || string_at(entry, "type") == "Coordinator") continue;
      const Json* name = find_field(entry, "friendly_name");
      const Json* exposes = find_field(entry, "definition.exposes");
      if (!name || !name->is_string() || name->get_ref<const std::string&>().empty()) continue;
      if (bool_at(entry, "disabled", false)) continue;
      Dev dev;
      dev.friendly_name = name->get<std::string>();
      dev.info.id = sanitize_id(dev.friendly_name);
      dev.info.name = dev.friendly_name;
      dev.info.kind = "sensor";
      if (exposes && exposes->is_array()) {
        for (const auto& e : *exposes) add_expose(e, "", dev);
      }
      if (fresh.count(dev.info.id)) {
        host_.bad_payload(dev.info.id, m.topic, "two devices map to the id " + dev.info.id + "; the second is ignored");
        continue;
      }
      fresh.emplace(dev.info.id, std::move(dev));
    }
    for (const auto& [id, dev] : devices_) {
      if (!fresh.count(id)) host_.remove(id);
    }
    devices_.clear();
    by_name_.clear();
    for (auto& [id, dev] : fresh) {
      if (!host_.announce(*this, dev.info)) continue;
      by_name_[dev.friendly_name] = id;
      devices_.emplace(id, std::move(dev));
    }
    // Replay what came before the list.
    std::map<std::string, Message> early;
    early.swap(early_);
    for (const auto& [topic, message] : early) handle(message);
  }

  void read_availability(Dev& dev, const Message& m) {
    std::string state = m.payload;
    if (!m.payload.empty() && m.payload.front() == '{') {
      Json doc;
      std::string why;
      if (!parse_json(m.payload, doc, why) || !doc.is_object() || !doc.contains("state") || !doc["state"].is_string()) {
        host_.bad_payload(dev.info.id, m.topic, "expected {\"state\":\"online\"} or {\"state\":\"offline\"}");
        return;
      }
      state = doc["state"].get<std::string>();
    }
    if (state == "online" || state == "offline") {
      host_.reported_presence(dev.info.id, state == "online");
    } else {
      host_.bad_payload(dev.info.id, m.topic, "expected online or offline");
    }
  }

  void read_state(Dev& dev, const Message& m) {
    if (m.payload.empty()) return;  // a cleared retained state
    Json doc;
    std::string why;
    if (!parse_json(m.payload, doc, why) || !doc.is_object()) {
      host_.bad_payload(dev.info.id, m.topic, why.empty() ? "expected a JSON object" : why);
      return;
    }
    Json values = Json::object();
    std::string wrong;
    for (const auto& p : dev.properties) {
      const Json* v = find_field(doc, p.property);
      if (!v || v->is_null()) continue;
      std::optional<Json> value;
      if (p.cap.type == ValueType::boolean) {
        if (*v == p.value_on) value = true;
        if (*v == p.value_off) value = false;
      } else {
        value = value_from_json(p.cap, *v);
      }
      if (value) {
        values[p.cap.name] = *value;
      } else {
        wrong += (wrong.empty() ? "" : ", ") + p.property + "=" + v->dump();
      }
    }
    if (!wrong.empty()) host_.bad_payload(dev.info.id, m.topic, "values that do not fit the device: " + wrong);
    host_.state(dev.info.id, values);
  }

  SourceHost& host_;
  std::string base_;
  std::map<std::string, Dev> devices_;            // by device id
  std::map<std::string, std::string> by_name_;    // friendly name -> id
  std::map<std::string, Message> early_;          // topic -> latest message before the device list
};

}  // namespace

std::unique_ptr<Source> make_zigbee2mqtt_source(SourceHost& host, const config::MqttPreset& preset) {
  return std::make_unique<Zigbee2mqttSource>(host, preset);
}

}  // namespace flatlink::adapters::mqtt
