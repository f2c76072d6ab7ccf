// Devices described by generic rules from the configuration: a topic pattern
// with named wildcards ({device} names the device), and how to read the payload
// (fields of a JSON object, or one plain value), or what payloads mean online
// and offline. A device appears when a topic first names it; it has the
// capabilities of every rule that has matched one of its topics.
#include <map>
#include <set>

#include "device-adapters/mqtt/payload.h"
#include "device-adapters/mqtt/source.h"
#include "device-adapters/mqtt/topic_pattern.h"

namespace flatlink::adapters::mqtt {
namespace {

std::string replace_all(std::string text, const std::string& what, const std::string& with) {
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + with.size())) {
    text.replace(pos, what.size(), with);
  }
  return text;
}

class RuleSource final : public Source {
 public:
  RuleSource(SourceHost& host, const std::vector<config::MqttRule>& rules) : host_(host), rules_(rules) {
    for (const auto& rule : rules_) patterns_.emplace_back(rule.topic);
  }

  const char* kind() const override { return "rules"; }

  std::vector<std::string> subscriptions() const override {
    std::vector<std::string> out;
    for (const auto& p : patterns_) out.push_back(p.filter());
    return out;
  }

  bool handle(const Message& m) override {
    bool mine = false;
    for (size_t i = 0; i < rules_.size(); ++i) {
      Captures captures;
      if (!patterns_[i].match(m.topic, captures)) continue;
      mine = true;
      const std::string& name = captures["device"];
      Dev& dev = device_for(name, rules_[i]);
      if (!dev.rules.count(i)) {
        dev.rules.insert(i);
        for (const auto& v : rules_[i].values) {
          if (!dev.info.capability(v.capability.name)) dev.info.capabilities.push_back(v.capability);
        }
        if (!host_.announce(*this, dev.info)) continue;
      }
      read(dev, rules_[i], m);
    }
    return mine;
  }

  bool plan(const std::string& device_id, const Json& set, CommandPlan& plan, std::string& error) override {
    auto it = devices_.find(device_id);
    if (it == devices_.end()) {
      error = "unknown device " + device_id;
      return false;
    }
    const Dev& dev = it->second;
    for (const auto& [key, value] : set.items()) {
      const config::MqttRuleValue* rv = nullptr;
      for (size_t i : dev.rules) {
        for (const auto& v : rules_[i].values) {
          if (v.capability.name == key && !v.command_topic.empty()) rv = &v;
        }
      }
      if (!rv) {
        error = device_id + " has no command topic for " + key;
        return false;
      }
      const BoolTexts texts{rv->true_text, rv->false_text};
      std::string payload = replace_all(rv->command_payload, "{value_json}", value_is_bool_text(value, texts));
      payload = replace_all(payload, "{value}", value_to_text(value, texts));
      plan.publishes.emplace_back(TopicPattern(rv->command_topic).expand(Captures{{"device", dev.name}}), payload);
      plan.expect[key] = value;
    }
    return true;
  }

 private:
  struct Dev {
    std::string name;  // as in the topic
    DeviceInfo info;
    std::set<size_t> rules;
  };

  // {value_json}: JSON of the value; a boolean with texts set becomes that text, quoted.
  static std::string value_is_bool_text(const Json& value, const BoolTexts& texts) {
    if (value.is_boolean() && !texts.on.empty()) return Json(value_to_text(value, texts)).dump();
    return value.dump();
  }

  Dev& device_for(const std::string& name, const config::MqttRule& rule) {
    const std::string id = sanitize_id(name);
    auto it = devices_.find(id);
    if (it != devices_.end()) return it->second;
    Dev dev;
    dev.name = name;
    dev.info.id = id;
    dev.info.name = name;
    dev.info.kind = rule.kind;
    return devices_.emplace(id, std::move(dev)).first->second;
  }

  void read(Dev& dev, const config::MqttRule& rule, const Message& m) {
    if (rule.is_presence()) {
      if (m.payload == rule.online_payload) host_.reported_presence(dev.info.id, true);
      else if (m.payload == rule.offline_payload) host_.reported_presence(dev.info.id, false);
      else host_.bad_payload(dev.info.id, m.topic, "expected " + rule.online_payload + " or " + rule.offline_payload);
      return;
    }
    Json values = Json::object();
    if (rule.payload == config::MqttPayload::plain) {
      const auto& v = rule.values.front();
      if (auto value = value_from_text(v.capability, m.payload, BoolTexts{v.true_text, v.false_text})) {
        values[v.capability.name] = *value;
      } else {
        host_.bad_payload(dev.info.id, m.topic, v.capability.name + ": the payload does not fit a " +
                                                    std::string(to_string(v.capability.type)));
      }
      host_.state(dev.info.id, values);
      return;
    }
    Json doc;
    std::string why;
    if (!parse_json(m.payload, doc, why) || !doc.is_object()) {
      host_.bad_payload(dev.info.id, m.topic, why.empty() ? "expected a JSON object" : why);
      return;
    }
    std::string wrong;
    for (const auto& v : rule.values) {
      const Json* field = find_field(doc, v.field);
      if (!field) continue;
      if (auto value = value_from_json(v.capability, *field, BoolTexts{v.true_text, v.false_text})) {
        values[v.capability.name] = *value;
      } else {
        wrong += (wrong.empty() ? "" : ", ") + v.field + "=" + field->dump();
      }
    }
    if (!wrong.empty()) host_.bad_payload(dev.info.id, m.topic, "values that do not fit: " + wrong);
    host_.state(dev.info.id, values);
  }

  SourceHost& host_;
  std::vector<config::MqttRule> rules_;
  std::vector<TopicPattern> patterns_;
  std::map<std::string, Dev> devices_;
};

}  // namespace

std::unique_ptr<Source> make_rule_source(SourceHost& host, const std::vector<config::MqttRule>& rules) {
  return std::make_unique<RuleSource>(host, rules);
}

}  // namespace flatlink::adapters::mqtt
