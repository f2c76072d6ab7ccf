// The MQTT adapter's device sources (device-adapters/mqtt/source.h): the Tasmota,
// Zigbee2MQTT (bridge/devices discovery and states) and Home Assistant discovery
// presets and the generic rules, fed the messages a broker would deliver. Each
// announced device's writable capabilities are then planned as commands.
// Input: topic NUL payload NUL topic NUL payload ... (payloads that are not UTF-8
// text are refused before the sources, as mqtt_adapter.cpp does).
// Checked: no throw or crash, and every announced device has a valid id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "device-adapters/mqtt/payload.h"
#include "device-adapters/mqtt/source.h"

using namespace flatlink;
using namespace flatlink::adapters::mqtt;
using namespace flatlink::config;

namespace {

class Host final : public SourceHost {
 public:
  std::map<std::string, DeviceInfo> devices;
  std::map<std::string, Source*> owners;

  const std::string& adapter_name() const override { return name_; }
  bool announce(Source& source, const DeviceInfo& info) override {
    if (!valid_id(info.id)) std::abort();  // a device id outside [A-Za-z0-9_.:-]{1,64}
    auto owner = owners.find(info.id);
    if (owner != owners.end() && owner->second != &source) return false;
    owners[info.id] = &source;
    devices[info.id] = info;
    return true;
  }
  void remove(const std::string& device_id) override {
    devices.erase(device_id);
    owners.erase(device_id);
  }
  void state(const std::string&, const Json& values) override {
    if (!values.is_object()) std::abort();
  }
  void reported_presence(const std::string&, bool) override {}
  bool publish(const std::string&, const std::string&) override { return true; }
  void subscribe(const std::string&) override {}
  void bad_payload(const std::string&, const std::string&, const std::string&) override {}

 private:
  std::string name_ = "fuzz";
};

std::vector<MqttRule> rules() {
  std::vector<MqttRule> out;
  {
    MqttRule r;
    r.topic = "shellies/{device}/relay/0";
    r.kind = "plug";
    r.payload = MqttPayload::plain;
    MqttRuleValue v;
    v.capability = Capability::boolean("on", true);
    v.true_text = "on";
    v.false_text = "off";
    v.command_topic = "shellies/{device}/relay/0/command";
    r.values.push_back(v);
    out.push_back(r);
  }
  {
    MqttRule r;
    r.topic = "shellies/{device}/online";
    r.payload = MqttPayload::plain;
    r.online_payload = "true";
    r.offline_payload = "false";
    out.push_back(r);
  }
  {
    MqttRule r;
    r.topic = "home/{room}/{device}/climate";
    r.kind = "thermostat";
    r.payload = MqttPayload::json;
    MqttRuleValue t;
    t.field = "temperature";
    t.capability = Capability::number("temperature", -40, 80, false);
    t.capability.unit = "°C";
    r.values.push_back(t);
    MqttRuleValue s;
    s.field = "target.value";
    s.capability = Capability::number("target", 5, 30, true);
    s.command_topic = "home/{device}/target/set";
    s.command_payload = "{\"target\":{value_json}}";
    r.values.push_back(s);
    MqttRuleValue m;
    m.field = "mode";
    m.capability = Capability::enumeration("mode", {"eco", "comfort"}, true);
    m.command_topic = "home/{device}/mode/set";
    r.values.push_back(m);
    out.push_back(r);
  }
  return out;
}

// Values to try on a capability in a command; those that fail check_value are skipped.
std::vector<Json> trial_values(const Capability& cap) {
  std::vector<Json> values{Json(true), Json(1), Json(0.5), Json("x")};
  if (cap.min) values.push_back(Json(*cap.min));
  if (cap.max) values.push_back(Json(*cap.max + 1));
  for (const auto& o : cap.options) values.push_back(Json(o));
  return values;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The sources log every message they refuse: at fuzzing speed that is most of the time spent.
  static const bool quiet = [] {
    log::set_level(log::Level::error);
    return true;
  }();
  (void)quiet;
  Host host;
  MqttPreset tasmota;
  tasmota.kind = MqttPresetKind::tasmota;
  tasmota.devices = {"plug_t1", "tasmota_A1B2C3"};
  MqttPreset z2m;
  z2m.kind = MqttPresetKind::zigbee2mqtt;
  MqttPreset ha;
  ha.kind = MqttPresetKind::homeassistant;

  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(make_tasmota_source(host, tasmota));
  sources.push_back(make_zigbee2mqtt_source(host, z2m));
  sources.push_back(make_homeassistant_source(host, ha));
  sources.push_back(make_rule_source(host, rules()));
  for (auto& s : sources) {
    (void)s->subscriptions();
    s->start();
    s->connected();
  }

  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty()) {
    const size_t t_end = rest.find('\0');
    Message m;
    m.topic = std::string(rest.substr(0, t_end));
    rest.remove_prefix(t_end == std::string_view::npos ? rest.size() : t_end + 1);
    const size_t p_end = rest.find('\0');
    m.payload = std::string(rest.substr(0, p_end));
    rest.remove_prefix(p_end == std::string_view::npos ? rest.size() : p_end + 1);
    m.retained = (m.topic.size() % 2) == 1;
    if (!check_text(m.payload).empty()) continue;
    for (auto& s : sources) {
      if (s->handle(m)) break;
    }
  }

  for (const auto& [id, info] : host.devices) {
    Source* source = host.owners[id];
    for (const auto& cap : info.capabilities) {
      if (!cap.writable) continue;
      for (const Json& value : trial_values(cap)) {
        // The gateway validates a command against the capability before execute()
        // (device-adapters/adapter.h): plan() only ever sees values that pass.
        if (check_value(cap, value)) continue;
        CommandPlan plan;
        std::string error;
        (void)source->plan(id, Json{{cap.name, value}}, plan, error);
      }
    }
  }
  return 0;
}
