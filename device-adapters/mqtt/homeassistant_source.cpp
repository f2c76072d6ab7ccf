// Home Assistant MQTT discovery (the "homeassistant" preset): each retained
// <prefix>/<component>/[<node_id>/]<object_id>/config message describes one
// entity; an empty payload there removes it. Each entity becomes one device,
// id "<component>.<object_id>" (or "<component>.<node_id>_<object_id>"), like
// Home Assistant's own entity ids. Abbreviated keys (stat_t, cmd_t, avty_t, ...)
// and the "~" base topic are expanded.
//
// Components: switch and light (default and json schema) -> "on" (+ "brightness"
// 0..brightness_scale), lock -> "lock" (locked/unlocked), binary_sensor -> a
// boolean named by device_class, sensor -> a number (or text) named by
// device_class. value_template is understood in its simple forms
// ({{ value }}, {{ value_json.a.b }}, {{ value_json['a'] }}); other templates
// and other components are logged once and left out.
#include <map>
#include <set>

#include "common/log.h"
#include "device-adapters/mqtt/payload.h"
#include "device-adapters/mqtt/source.h"
#include "device-adapters/mqtt/topic_pattern.h"

namespace flatlink::adapters::mqtt {
namespace {

const std::map<std::string, std::string>& abbreviations() {
  static const std::map<std::string, std::string> table = {
      {"avty", "availability"}, {"avty_t", "availability_topic"}, {"avty_mode", "availability_mode"},
      {"pl_avail", "payload_available"}, {"pl_not_avail", "payload_not_available"}, {"t", "topic"},
      {"stat_t", "state_topic"}, {"cmd_t", "command_topic"}, {"cmd_tpl", "command_template"},
      {"val_tpl", "value_template"}, {"stat_val_tpl", "state_value_template"}, {"pl_on", "payload_on"},
      {"pl_off", "payload_off"}, {"stat_on", "state_on"}, {"stat_off", "state_off"},
      {"bri_cmd_t", "brightness_command_topic"}, {"bri_stat_t", "brightness_state_topic"},
      {"bri_scl", "brightness_scale"}, {"bri_val_tpl", "brightness_value_template"},
      {"unit_of_meas", "unit_of_measurement"}, {"dev_cla", "device_class"}, {"stat_cla", "state_class"},
      {"uniq_id", "unique_id"}, {"dev", "device"}, {"pl_lock", "payload_lock"}, {"pl_unlk", "payload_unlock"},
      {"stat_locked", "state_locked"}, {"stat_unlocked", "state_unlocked"}, {"opt", "optimistic"},
      {"ids", "identifiers"}, {"name", "name"}};
  return table;
}

bool is_topic_key(const std::string& key) { return key == "topic" || (key.size() > 6 && key.substr(key.size() - 6) == "_topic"); }

// Full key names, and "~" replaced in topics, recursively.
Json expand(const Json& in, const std::string& base) {
  if (in.is_array()) {
    Json out = Json::array();
    for (const auto& item : in) out.push_back(expand(item, base));
    return out;
  }
  if (!in.is_object()) return in;
  Json out = Json::object();
  for (const auto& [key, value] : in.items()) {
    if (key == "~") continue;
    auto a = abbreviations().find(key);
    const std::string full = a == abbreviations().end() ? key : a->second;
    Json v = expand(value, base);
    if (is_topic_key(full) && v.is_string() && !base.empty()) {
      std::string t = v.get<std::string>();
      if (!t.empty() && t.front() == '~') t = base + t.substr(1);
      else if (!t.empty() && t.back() == '~') t = t.substr(0, t.size() - 1) + base;
      v = t;
    }
    out[full] = v;
  }
  return out;
}

// "{{ value_json.a.b }}" -> "a.b"; "{{ value }}" -> ""; nullopt when not understood.
std::optional<std::string> template_path(const std::string& tpl) {
  std::string t;
  for (char c : tpl) {
    if (c != ' ') t += c;
  }
  if (t.size() < 4 || t.substr(0, 2) != "{{" || t.substr(t.size() - 2) != "}}") return std::nullopt;
  t = t.substr(2, t.size() - 4);
  if (t == "value") return std::string();
  if (t.rfind("value_json", 0) != 0) return std::nullopt;
  std::string rest = t.substr(10), path;
  while (!rest.empty()) {
    std::string key;
    if (rest[0] == '.') {
      size_t end = rest.find_first_of(".[", 1);
      key = rest.substr(1, end == std::string::npos ? std::string::npos : end - 1);
      rest = end == std::string::npos ? "" : rest.substr(end);
    } else if (rest.size() > 4 && rest[0] == '[' && (rest[1] == '\'' || rest[1] == '"')) {
      const size_t close = rest.find(rest[1], 2);
      if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ']') return std::nullopt;
      key = rest.substr(2, close - 2);
      rest = rest.substr(close + 2);
    } else {
      return std::nullopt;
    }
    if (key.empty() || key.find('.') != std::string::npos) return std::nullopt;
    path += (path.empty() ? "" : ".") + key;
  }
  if (path.empty()) return std::nullopt;
  return path;
}

struct Availability {
  std::string topic;
  std::string available = "online";
  std::string not_available = "offline";
};

struct Entity {
  std::string config_topic;
  std::string component;
  DeviceInfo info;
  Json config;
  bool json_schema = false;
  std::string state_topic, command_topic, brightness_state_topic, brightness_command_topic;
  std::optional<std::string> value_path, brightness_path;  // nullopt: template not understood
  std::string payload_on = "ON", payload_off = "OFF", state_on, state_off;
  std::string payload_lock = "LOCK", payload_unlock = "UNLOCK", state_locked = "LOCKED", state_unlocked = "UNLOCKED";
  std::vector<Availability> availability;
  std::string value_cap;  // sensor / binary_sensor capability name
};

class HomeassistantSource final : public Source {
 public:
  HomeassistantSource(SourceHost& host, const config::MqttPreset& preset) : host_(host), prefix_(preset.discovery_prefix) {}

  const char* kind() const override { return "homeassistant"; }
  std::vector<std::string> subscriptions() const override {
    return {prefix_ + "/+/+/config", prefix_ + "/+/+/+/config"};
  }

  bool handle(const Message& m) override {
    bool mine = false;
    if (m.topic.compare(0, prefix_.size() + 1, prefix_ + "/") == 0) {
      const std::string rest = m.topic.substr(prefix_.size() + 1);
      const auto levels = split_topic(rest);
      if ((levels.size() == 3 || levels.size() == 4) && levels.back() == "config") {
        read_config(m, levels);
        return true;
      }
    }
    // One topic may feed several entities (a Zigbee2MQTT device's sensors share one).
    for (auto& [id, entity] : entities_) {
      if (entity.state_topic == m.topic) {
        mine = true;
        read_state(entity, m);
      }
      if (entity.brightness_state_topic == m.topic && !entity.json_schema) {
        mine = true;
        read_brightness(entity, m);
      }
      for (const auto& a : entity.availability) {
        if (a.topic != m.topic) continue;
        mine = true;
        if (m.payload == a.available) {
          host_.reported_presence(id, true);
        } else if (m.payload == a.not_available) {
          host_.reported_presence(id, false);
        } else {
          host_.bad_payload(id, m.topic, "expected " + a.available + " or " + a.not_available);
        }
      }
    }
    return mine;
  }

  bool plan(const std::string& device_id, const Json& set, CommandPlan& plan, std::string& error) override {
    auto it = entities_.find(device_id);
    if (it == entities_.end()) {
      error = "unknown device " + device_id;
      return false;
    }
    Entity& e = it->second;
    if (e.json_schema) {
      Json body = Json::object();
      body["state"] = "ON";
      for (const auto& [key, value] : set.items()) {
        if (key == "on") body["state"] = value.get<bool>() ? "ON" : "OFF";
        else if (key == "brightness") body["brightness"] = value;
        else return fail(error, device_id, key);
        if (!e.state_topic.empty()) plan.expect[key] = value;
      }
      plan.publishes.emplace_back(e.command_topic, body.dump());
      return true;
    }
    for (const auto& [key, value] : set.items()) {
      if (key == "on" && !e.command_topic.empty()) {
        plan.publishes.emplace_back(e.command_topic, value.get<bool>() ? e.payload_on : e.payload_off);
        if (!e.state_topic.empty()) plan.expect[key] = value;
      } else if (key == "brightness" && !e.brightness_command_topic.empty()) {
        plan.publishes.emplace_back(e.brightness_command_topic, value_to_text(value));
        if (!e.brightness_state_topic.empty()) plan.expect[key] = value;
      } else if (key == "lock" && !e.command_topic.empty()) {
        plan.publishes.emplace_back(e.command_topic, value == "locked" ? e.payload_lock : e.payload_unlock);
        if (!e.state_topic.empty()) plan.expect[key] = value;
      } else {
        return fail(error, device_id, key);
      }
    }
    return true;
  }

 private:
  static bool fail(std::string& error, const std::string& device_id, const std::string& key) {
    error = device_id + " cannot set " + key;
    return false;
  }

  void read_config(const Message& m, const std::vector<std::string_view>& levels) {
    const std::string component(levels[0]);
    const std::string object = levels.size() == 4 ? std::string(levels[1]) + "_" + std::string(levels[2])
                                                   : std::string(levels[1]);
    const std::string id = sanitize_id(component + "." + object);
    if (m.payload.empty()) {
      if (entities_.erase(id)) host_.remove(id);
      return;
    }
    static const std::set<std::string> supported = {"switch", "light", "lock", "sensor", "binary_sensor"};
    if (!supported.count(component)) {
      if (unsupported_.insert(component).second) {
        LOG_INFO("mqtt") << "adapter=" << host_.adapter_name() << " topic=" << log::q(m.topic) << " component "
                         << log::q(component) << " is not supported; its entities are left out";
      }
      return;
    }
    Json raw;
    std::string why;
    if (!parse_json(m.payload, raw, why) || !raw.is_object()) {
      host_.bad_payload(id, m.topic, why.empty() ? "expected a JSON object" : why);
      return;
    }
    const Json c = expand(raw, string_at(raw, "~"));
    Entity e;
    e.config_topic = m.topic;
    e.component = component;
    e.config = c;
    e.info.id = id;
    e.info.kind = component;
    std::string name = string_at(c, "name");
    if (name.empty()) name = string_at(c, "device.name");
    e.info.name = name.empty() ? object : name;
    e.state_topic = string_at(c, "state_topic");
    e.command_topic = string_at(c, "command_topic");
    e.json_schema = component == "light" && string_at(c, "schema") == "json";
    e.value_path = template_path(string_at(c, component == "light" ? "state_value_template" : "value_template",
                                           "{{ value }}"));
    e.payload_on = string_at(c, "payload_on", "ON");
    e.payload_off = string_at(c, "payload_off", "OFF");
    e.state_on = string_at(c, "state_on", e.payload_on);
    e.state_off = string_at(c, "state_off", e.payload_off);
    e.payload_lock = string_at(c, "payload_lock", "LOCK");
    e.payload_unlock = string_at(c, "payload_unlock", "UNLOCK");
    e.state_locked = string_at(c, "state_locked", "LOCKED");
    e.state_unlocked = string_at(c, "state_unlocked", "UNLOCKED");
    if (const Json* list = find_field(c, "availability"); list && list->is_array()) {
      for (const auto& item : *list) {
        Availability a;
        a.topic = string_at(item, "topic");
        a.available = string_at(item, "payload_available", "online");
        a.not_available = string_at(item, "payload_not_available", "offline");
        if (!a.topic.empty()) e.availability.push_back(a);
      }
    } else if (std::string t = string_at(c, "availability_topic"); !t.empty()) {
      e.availability.push_back(Availability{t, string_at(c, "payload_available", "online"),
                                            string_at(c, "payload_not_available", "offline")});
    }
    const std::string device_class = sanitize_id(string_at(c, "device_class"));
    if (component == "switch" || component == "light") {
      e.info.capabilities.push_back(Capability::boolean("on", !e.command_topic.empty()));
      const int64_t scale = int_at(c, "brightness_scale", 255);
      if (e.json_schema) {
        if (bool_at(c, "brightness", false)) {
          e.info.capabilities.push_back(Capability::integer("brightness", 0, static_cast<double>(scale), true));
        }
      } else {
        e.brightness_state_topic = string_at(c, "brightness_state_topic");
        e.brightness_command_topic = string_at(c, "brightness_command_topic");
        e.brightness_path = template_path(string_at(c, "brightness_value_template", "{{ value }}"));
        if (!e.brightness_state_topic.empty() || !e.brightness_command_topic.empty()) {
          e.info.capabilities.push_back(Capability::integer("brightness", 0, static_cast<double>(scale),
                                                            !e.brightness_command_topic.empty()));
        }
      }
    } else if (component == "lock") {
      Capability lock = Capability::enumeration("lock", {"locked", "unlocked"}, !e.command_topic.empty());
      lock.confirm = true;
      e.info.capabilities.push_back(lock);
    } else if (component == "binary_sensor") {
      e.value_cap = string_at(c, "device_class").empty() ? "on" : device_class;
      e.info.capabilities.push_back(Capability::boolean(e.value_cap, false));
      e.state_on = string_at(c, "payload_on", "ON");
      e.state_off = string_at(c, "payload_off", "OFF");
    } else {  // sensor
      e.value_cap = string_at(c, "device_class").empty() ? "value" : device_class;
      Capability cap;
      cap.name = e.value_cap;
      const bool numeric = c.contains("unit_of_measurement") || c.contains("device_class") || c.contains("state_class");
      cap.type = numeric ? ValueType::number : ValueType::text;
      cap.unit = string_at(c, "unit_of_measurement");
      e.info.capabilities.push_back(cap);
    }
    if (!e.value_path) {
      LOG_INFO("mqtt") << "adapter=" << host_.adapter_name() << " device=" << id
                       << " value_template is not one of the simple forms; its state is not read";
    }
    if (!host_.announce(*this, e.info)) return;
    for (const std::string& t : {e.state_topic, e.brightness_state_topic}) {
      if (!t.empty()) host_.subscribe(t);
    }
    for (const auto& a : e.availability) host_.subscribe(a.topic);
    entities_[id] = std::move(e);
  }

  // The value a template points at, as text for comparisons; nullopt when absent.
  std::optional<Json> extract(const Entity& e, const std::optional<std::string>& path, const Message& m) {
    if (!path) return std::nullopt;
    if (path->empty()) return Json(m.payload);
    Json doc;
    std::string why;
    if (!parse_json(m.payload, doc, why) || !doc.is_object()) {
      host_.bad_payload(e.info.id, m.topic, why.empty() ? "expected a JSON object" : why);
      return std::nullopt;
    }
    const Json* v = find_field(doc, *path);
    if (!v) return std::nullopt;  // another entity's part of a shared topic
    return *v;
  }

  void read_state(Entity& e, const Message& m) {
    if (e.json_schema) {
      Json doc;
      std::string why;
      if (!parse_json(m.payload, doc, why) || !doc.is_object()) {
        host_.bad_payload(e.info.id, m.topic, why.empty() ? "expected a JSON object" : why);
        return;
      }
      Json values = Json::object();
      const std::string state = string_at(doc, "state");
      if (state == "ON" || state == "OFF") values["on"] = state == "ON";
      if (const Capability* cap = e.info.capability("brightness")) {
        if (const Json* b = find_field(doc, "brightness")) {
          if (auto v = value_from_json(*cap, *b)) values["brightness"] = *v;
          else host_.bad_payload(e.info.id, m.topic, "brightness: " + b->dump() + " does not fit");
        }
      }
      host_.state(e.info.id, values);
      return;
    }
    std::optional<Json> raw = extract(e, e.value_path, m);
    if (!raw) return;
    const std::string text = raw->is_string() ? raw->get<std::string>() : raw->dump();
    Json values = Json::object();
    if (e.component == "switch" || e.component == "light" || e.component == "binary_sensor") {
      const std::string name = e.component == "binary_sensor" ? e.value_cap : "on";
      if (text == e.state_on) values[name] = true;
      else if (text == e.state_off) values[name] = false;
      else if (raw->is_boolean()) values[name] = raw->get<bool>();
      else host_.bad_payload(e.info.id, m.topic, "expected " + e.state_on + " or " + e.state_off + ", got " + text);
    } else if (e.component == "lock") {
      if (text == e.state_locked) values["lock"] = "locked";
      else if (text == e.state_unlocked) values["lock"] = "unlocked";
      else host_.bad_payload(e.info.id, m.topic, "expected " + e.state_locked + " or " + e.state_unlocked);
    } else {
      const Capability& cap = e.info.capabilities.front();
      std::optional<Json> v = raw->is_string() ? value_from_text(cap, text) : value_from_json(cap, *raw);
      if (v) values[cap.name] = *v;
      else host_.bad_payload(e.info.id, m.topic, "expected a " + std::string(to_string(cap.type)) + ", got " + text);
    }
    host_.state(e.info.id, values);
  }

  void read_brightness(Entity& e, const Message& m) {
    const Capability* cap = e.info.capability("brightness");
    std::optional<Json> raw = extract(e, e.brightness_path, m);
    if (!cap || !raw) return;
    std::optional<Json> v = raw->is_string() ? value_from_text(*cap, raw->get<std::string>()) : value_from_json(*cap, *raw);
    if (!v) {
      host_.bad_payload(e.info.id, m.topic, "brightness does not fit: " + raw->dump());
      return;
    }
    host_.state(e.info.id, Json{{"brightness", *v}});
  }

  SourceHost& host_;
  std::string prefix_;
  std::map<std::string, Entity> entities_;
  std::set<std::string> unsupported_;
};

}  // namespace

std::unique_ptr<Source> make_homeassistant_source(SourceHost& host, const config::MqttPreset& preset) {
  return std::make_unique<HomeassistantSource>(host, preset);
}

}  // namespace flatlink::adapters::mqtt
