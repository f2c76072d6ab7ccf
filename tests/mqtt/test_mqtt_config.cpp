// The mqtt adapter's configuration schema: defaults, presets, rules, the
// password file, and clear errors for everything else.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config/config_loader.h"

using namespace flatlink;
using namespace flatlink::config;

namespace {

std::string gateway(const std::string& adapter) {
  return R"({"gateway_id":"gw","flat":"f","command_timeout_ms":4000,)"
         R"("cloud":{"url":"ws://127.0.0.1:1/x","token":"t"},"adapters":[)" + adapter + "]}";
}

Loaded<GatewayConfig> parse(const std::string& adapter, const std::string& base_dir = ".") {
  return parse_gateway_config(gateway(adapter), "gw.json", base_dir);
}

std::string error_of(const std::string& adapter, const std::string& base_dir = ".") {
  const auto loaded = parse(adapter, base_dir);
  if (const auto* e = std::get_if<ConfigError>(&loaded)) return e->message;
  return "(no error)";
}

const MqttAdapterConfig& mqtt_of(const Loaded<GatewayConfig>& loaded) {
  if (const auto* e = std::get_if<ConfigError>(&loaded)) FAIL(e->message);
  return std::get<MqttAdapterConfig>(std::get<GatewayConfig>(loaded).adapters.at(0));
}

struct TempDir {
  std::string path;
  TempDir() {
    char templ[] = "/tmp/flatlink-mqtt-config-XXXXXX";
    path = ::mkdtemp(templ);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  void write(const std::string& name, const std::string& text, mode_t mode = 0600) const {
    std::ofstream(path + "/" + name) << text;
    ::chmod((path + "/" + name).c_str(), mode);
  }
};

}  // namespace

TEST_CASE("an mqtt adapter with only a preset gets sensible defaults") {
  const auto loaded = parse(R"({"type":"mqtt","name":"home","presets":[{"preset":"zigbee2mqtt"}]})");
  const MqttAdapterConfig& m = mqtt_of(loaded);
  CHECK(m.host == "127.0.0.1");
  CHECK(m.port == 1883);
  CHECK(m.client_id == "flatlink-home");
  CHECK(m.command_timeout_ms == 4000);  // the gateway's
  CHECK(m.keepalive_s == 30);
  CHECK_FALSE(m.tls.enabled);
  REQUIRE(m.presets.size() == 1);
  CHECK(m.presets[0].kind == MqttPresetKind::zigbee2mqtt);
  CHECK(m.presets[0].base_topic == "zigbee2mqtt");
}

TEST_CASE("all three presets and a generic rule are read") {
  const auto loaded = parse(R"({"type":"mqtt","name":"home","host":"broker.lan","port":8883,"client_id":"gw-1",
    "keepalive_s":20,"backoff_base_ms":200,"backoff_max_ms":10000,"command_timeout_ms":2500,"max_payload_bytes":4096,
    "presets":[{"preset":"tasmota","devices":["plug-1","sonoff_hall"]},
               {"preset":"zigbee2mqtt","base_topic":"z2m"},
               {"preset":"homeassistant","discovery_prefix":"ha"}],
    "rules":[{"topic":"home/{room}/{device}/state","kind":"thermostat","payload":"json","values":[
               {"field":"temp.current","capability":"temperature","type":"number","min":-20,"max":50,"unit":"°C"},
               {"field":"mode","capability":"mode","type":"enum","options":["off","heat"],
                "command_topic":"home/{device}/mode/set","command_payload":"{\"mode\":{value_json}}"}]},
             {"topic":"home/{device}/relay","payload":"plain","values":[
               {"capability":"on","type":"bool","true":"1","false":"0","command_topic":"home/{device}/relay/set"}]},
             {"topic":"home/{device}/lwt","presence":{"online":"up","offline":"down"}}]})");
  const MqttAdapterConfig& m = mqtt_of(loaded);
  CHECK(m.host == "broker.lan");
  CHECK(m.client_id == "gw-1");
  CHECK(m.presets[0].devices == std::vector<std::string>{"plug-1", "sonoff_hall"});
  CHECK(m.presets[2].discovery_prefix == "ha");
  REQUIRE(m.rules.size() == 3);
  CHECK(m.rules[0].values[0].field == "temp.current");
  CHECK(*m.rules[0].values[0].capability.max == 50);
  CHECK_FALSE(m.rules[0].values[0].capability.writable);
  CHECK(m.rules[0].values[1].capability.writable);
  CHECK(m.rules[0].values[1].capability.options == std::vector<std::string>{"off", "heat"});
  CHECK(m.rules[1].values[0].field == "on");
  CHECK(m.rules[1].values[0].true_text == "1");
  CHECK(m.rules[2].is_presence());
  const std::string summary = summarize(std::get<GatewayConfig>(loaded));
  CHECK(summary.find("mqtt 'home' to broker broker.lan:8883") != std::string::npos);
}

TEST_CASE("the password comes from a file next to the config and never appears in the summary") {
  TempDir dir;
  dir.write("mqtt-password", "s3cret!\n");
  dir.write("ca.pem", "not really a CA");
  const auto loaded = parse(R"({"type":"mqtt","name":"home","username":"gw","password_file":"mqtt-password",
    "tls":{"ca_file":"ca.pem"},"presets":[{"preset":"homeassistant"}]})", dir.path);
  const MqttAdapterConfig& m = mqtt_of(loaded);
  CHECK(m.password == "s3cret!");
  CHECK(m.tls.enabled);
  CHECK(m.tls.ca_file == dir.path + "/ca.pem");
  CHECK(summarize(std::get<GatewayConfig>(loaded)).find("s3cret") == std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"home","username":"gw","password_file":"missing",
    "presets":[{"preset":"homeassistant"}]})", dir.path)
            .find("adapters[0].password_file: cannot read") != std::string::npos);
}

TEST_CASE("mistakes in an mqtt adapter are refused with the path and what was expected") {
  CHECK(error_of(R"({"type":"mqtt","name":"m","presets":[{"preset":"tasmota","devices":["a"]}],"colour":1})")
            .find("adapters[0].colour: unknown key") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m"})").find("at least one entry in \"presets\" or \"rules\"") !=
        std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","presets":[{"preset":"shelly"}]})")
            .find("adapters[0].presets[0].preset: expected one of") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","presets":[{"preset":"tasmota","devices":["a/b"]}]})")
            .find("adapters[0].presets[0].devices[0]: expected one topic level") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","presets":[{"preset":"zigbee2mqtt","devices":["a"]}]})")
            .find("adapters[0].presets[0].devices: unknown key") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","port":0,"presets":[{"preset":"homeassistant"}]})")
            .find("adapters[0].port") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","rules":[{"topic":"tele/+/STATE","values":[{"field":"a","capability":"a","type":"number"}]}]})")
            .find("adapters[0].rules[0].topic: expected named wildcards") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","rules":[{"topic":"tele/{name}/STATE","values":[{"field":"a","capability":"a","type":"number"}]}]})")
            .find("{device} exactly once") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","rules":[{"topic":"t/{device}","values":[{"field":"a","capability":"a b","type":"number"}]}]})")
            .find("adapters[0].rules[0].values[0].capability: expected an id") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","rules":[{"topic":"t/{device}","payload":"plain","values":[{"field":"a","capability":"a","type":"number"}]}]})")
            .find("a plain payload has no fields") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","rules":[{"topic":"t/{device}","values":[{"field":"a","capability":"a","type":"bool","min":1}]}]})")
            .find("only an int or number capability has a range") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","rules":[{"topic":"t/{device}","values":[{"field":"a","capability":"a","type":"number","command_topic":"t/{room}/set"}]}]})")
            .find("no wildcard other than {device}") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","rules":[{"topic":"t/{device}","presence":{"online":"x","offline":"x"}}]})")
            .find("a payload other than the one for online") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","rules":[{"topic":"t/{device}"}]})")
            .find("exactly one of \"values\" and \"presence\"") != std::string::npos);
  CHECK(error_of(R"({"type":"mqtt","name":"m","tls":{"cert_file":"/etc/hostname"},"presets":[{"preset":"homeassistant"}]})")
            .find("both \"cert_file\" and \"key_file\"") != std::string::npos);
}

TEST_CASE("the shipped mqtt example loads with its three presets and rules") {
  const auto loaded = load_gateway_config(std::string(FLATLINK_SOURCE_DIR) + "/config/examples/gateway-mqtt.example.json");
  const MqttAdapterConfig& m = mqtt_of(loaded);
  CHECK(m.presets.size() == 3);
  CHECK(m.rules.size() == 3);
  CHECK(m.client_id == "flatlink-gw-flat-b");
}

// Finding 9 of issue #18: mqtt.md says a rule value's field defaults to the capability's name,
// but the loader required it.
TEST_CASE("a rule value without field reads the field named like its capability") {
  const auto loaded = parse(
      R"({"type":"mqtt","name":"m","rules":[{"topic":"t/{device}","values":[{"capability":"temperature","type":"number"}]}]})");
  REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
  const MqttAdapterConfig& mqtt = mqtt_of(loaded);
  REQUIRE(mqtt.rules.size() == 1);
  CHECK(mqtt.rules[0].values.at(0).field == "temperature");
}

TEST_CASE("a rule value's type uses the one capability vocabulary, enumeration still read") {
  const auto loaded = parse(
      R"({"type":"mqtt","name":"m","rules":[{"topic":"t/{device}","values":[{"field":"m","capability":"mode","type":"enumeration","options":["a","b"]}]}]})");
  REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
  CHECK(mqtt_of(loaded).rules[0].values.at(0).capability.type == ValueType::enumeration);
}
