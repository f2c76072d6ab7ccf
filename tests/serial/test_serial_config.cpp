// The serial adapter's entry in the gateway configuration: devices with their
// capabilities, and an exact message for each mistake.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "../adapter_contract/contract.h"
#include "config/config_loader.h"

using namespace flatlink;
using namespace flatlink::config;

namespace {

Json gateway_with(const Json& serial) {
  Json doc = Json::parse(R"({
    "gateway_id": "gw-1",
    "flat": "flat-a",
    "cloud": { "url": "ws://127.0.0.1:8080/", "token": "secret-token-1" },
    "adapters": [ { "type": "sim", "devices": [ { "id": "lamp-1", "kind": "lamp" } ] } ]
  })");
  doc["adapters"].push_back(serial);
  return doc;
}

Json good_serial() {
  return Json::parse(R"({
    "type": "serial", "name": "uart", "port": "/dev/ttyUSB0", "protocol": "keyvalue",
    "reopen_min_ms": 100, "reopen_max_ms": 5000,
    "devices": [
      { "id": "t1", "name": "Hall thermometer", "kind": "thermometer", "room": "Hall",
        "capabilities": [ { "name": "temp", "type": "number", "min": -40, "max": 85, "unit": "°C" },
                          { "name": "hum", "type": "int", "min": 0, "max": 100, "unit": "%" } ] },
      { "id": "lamp", "kind": "lamp",
        "capabilities": [ { "name": "on", "type": "bool", "writable": true },
                          { "name": "mode", "type": "enum", "options": ["eco", "comfort"], "writable": true },
                          { "name": "label", "type": "text", "max_length": 32, "writable": true, "confirm": true } ] }
    ]
  })");
}

std::string error_of(const Json& serial) {
  const Loaded<GatewayConfig> loaded = parse_gateway_config(gateway_with(serial).dump(), "gateway.json");
  const auto* error = std::get_if<ConfigError>(&loaded);
  REQUIRE_MESSAGE(error != nullptr, "the configuration was accepted");
  return error->message;
}

SerialAdapterConfig serial_ok(const Json& serial) {
  Loaded<GatewayConfig> loaded = parse_gateway_config(gateway_with(serial).dump(), "gateway.json");
  if (const auto* error = std::get_if<ConfigError>(&loaded)) FAIL(error->message);
  return std::get<SerialAdapterConfig>(std::get<GatewayConfig>(loaded).adapters.at(1));
}

}  // namespace

TEST_CASE("a serial port's devices are read with their capabilities") {
  const SerialAdapterConfig serial = serial_ok(good_serial());
  CHECK(serial.reopen_min_ms == 100);
  CHECK(serial.reopen_max_ms == 5000);
  REQUIRE(serial.devices.size() == 2);
  const SerialDeviceConfig& t1 = serial.devices[0];
  CHECK(t1.id == "t1");
  CHECK(t1.name == "Hall thermometer");
  CHECK(t1.kind == "thermometer");
  CHECK(t1.room == "Hall");
  REQUIRE(t1.capabilities.size() == 2);
  CHECK(t1.capabilities[0].type == ValueType::number);
  CHECK(t1.capabilities[0].min == -40);
  CHECK(t1.capabilities[0].max == 85);
  CHECK(t1.capabilities[0].unit == "°C");
  CHECK_FALSE(t1.capabilities[0].writable);
  const SerialDeviceConfig& lamp = serial.devices[1];
  CHECK(lamp.name == "lamp");
  CHECK(lamp.room.empty());
  REQUIRE(lamp.capabilities.size() == 3);
  CHECK(lamp.capabilities[0].writable);
  CHECK(lamp.capabilities[1].options == std::vector<std::string>{"eco", "comfort"});
  CHECK(lamp.capabilities[2].max_length == 32);
  CHECK(lamp.capabilities[2].confirm);
}

TEST_CASE("a port with only \"device\" declares that one device, which learns its capabilities") {
  Json serial = Json{{"type", "serial"}, {"name", "uart"}, {"port", "usb:0403:6001"}, {"device", "boiler"}};
  const SerialAdapterConfig config = serial_ok(serial);
  REQUIRE(config.devices.size() == 1);
  CHECK(config.devices[0].id == "boiler");
  CHECK(config.devices[0].kind == "sensor");
  CHECK(config.devices[0].capabilities.empty());
  CHECK(config.reopen_min_ms == 500);
  CHECK(config.reopen_max_ms == 30000);

  // "device" with "devices" declaring exactly it: lines need not name it, capabilities are declared.
  serial["devices"] = Json::array({Json{{"id", "boiler"}, {"capabilities", Json::array({Json{{"name", "flow"}, {"type", "number"}}})}}});
  CHECK(serial_ok(serial).devices.at(0).capabilities.size() == 1);
}

TEST_CASE("the summary lists a port's devices") {
  Loaded<GatewayConfig> loaded = parse_gateway_config(gateway_with(good_serial()).dump(), "gateway.json");
  REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
  const std::string summary = summarize(std::get<GatewayConfig>(loaded));
  CHECK(summary.find("keyvalue lines up to 1024 bytes, command timeout 5000 ms, 2 devices: t1 (thermometer, 2 "
                     "capabilities) lamp (lamp, 3 capabilities)\n") != std::string::npos);
}

TEST_CASE("each mistake in a serial port's devices gets its own message") {
  const std::string p = "gateway.json: adapters[1]";
  Json s = good_serial();
  s.erase("devices");
  CHECK(error_of(s) == p + ": expected \"devices\" (the devices on this port) or \"device\" (the one device that "
                           "sends every line), got neither");
  s["devices"] = Json::array();
  CHECK(error_of(s) == p + ".devices: expected a non-empty array, got []");
  s["devices"] = Json::array({"t1"});
  CHECK(error_of(s) == p + ".devices[0]: expected an object, got \"t1\"");
  s["devices"] = Json::array({Json{{"name", "x"}}});
  CHECK(error_of(s) == p + ".devices[0].id: required key is missing");
  s["devices"] = Json::array({Json{{"id", "t1"}, {"colour", "red"}}});
  CHECK(error_of(s) == p + ".devices[0].colour: unknown key (expected one of: id, name, kind, room, capabilities)");
  s["devices"] = Json::array({Json{{"id", "lamp-1"}}});
  CHECK(error_of(s) == p + ".devices[0].id: duplicate device id \"lamp-1\", first used at adapters[0].devices[0].id");

  const auto with_cap = [&](const Json& cap) {
    Json serial = good_serial();
    serial["devices"] = Json::array({Json{{"id", "t1"}, {"capabilities", Json::array({cap})}}});
    return error_of(serial);
  };
  const std::string c = p + ".devices[0].capabilities[0]";
  CHECK(with_cap(Json{{"type", "number"}}) == c + ".name: required key is missing");
  CHECK(with_cap(Json{{"name", "temp"}}) == c + ".type: required key is missing");
  CHECK(with_cap(Json{{"name", "temp"}, {"type", "float"}}) ==
        c + ".type: expected one of \"bool\", \"int\", \"number\", \"enum\", \"text\", got \"float\"");
  CHECK(with_cap(Json{{"name", "error"}, {"type", "text"}}) ==
        c + ".name: \"error\" is reserved by the line protocol (dev, set, ok, error); choose another name");
  CHECK(with_cap(Json{{"name", "on"}, {"type", "bool"}, {"min", 0}}) ==
        c + ".min: only int and number capabilities have a min, this one is bool");
  CHECK(with_cap(Json{{"name", "t"}, {"type", "number"}, {"min", 10}, {"max", 5}}) ==
        c + ".min: min 10 is larger than max 5");
  CHECK(with_cap(Json{{"name", "t"}, {"type", "number"}, {"min", "low"}}) ==
        c + ".min: expected a number from -1e+15 to 1e+15, got \"low\"");
  CHECK(with_cap(Json{{"name", "mode"}, {"type", "enum"}}) == c + ".options: required key is missing");
  CHECK(with_cap(Json{{"name", "mode"}, {"type", "enum"}, {"options", Json::array({"a", "a"})}}) ==
        c + ".options[1]: duplicate option \"a\"");
  CHECK(with_cap(Json{{"name", "mode"}, {"type", "enum"}, {"options", Json::array({"a", ""})}}) ==
        c + ".options[1]: expected a non-empty string, got \"\"");
  CHECK(with_cap(Json{{"name", "on"}, {"type", "bool"}, {"options", Json::array({"a"})}}) ==
        c + ".options: only enum capabilities have options, this one is bool");
  // The wire carries text values of at most kMaxTextLength (256) bytes: a longer max_length is refused.
  CHECK(with_cap(Json{{"name", "note"}, {"type", "text"}, {"max_length", 257}}) ==
        c + ".max_length: expected an integer from 1 to 256, got 257");
  CHECK(with_cap(Json{{"name", "n"}, {"type", "int"}, {"max_length", 5}}) ==
        c + ".max_length: only text capabilities have a max_length, this one is int");
  CHECK(with_cap(Json{{"name", "on"}, {"type", "bool"}, {"writable", "yes"}}) ==
        c + ".writable: expected true or false, got \"yes\"");

  Json dup = good_serial();
  dup["devices"][0]["capabilities"][1]["name"] = "temp";
  CHECK(error_of(dup) == p + ".devices[0].capabilities[1].name: duplicate capability \"temp\" in device \"t1\"");

  Json mismatch = good_serial();
  mismatch["device"] = "t1";
  CHECK(error_of(mismatch) == p + ".devices: with \"device\": \"t1\" every line belongs to t1, so \"devices\" must "
                                  "declare exactly that one device");

  Json backoff = good_serial();
  backoff["reopen_max_ms"] = 50;
  CHECK(error_of(backoff) == p + ".reopen_max_ms: expected an integer from 100 to 3600000, got 50");
}

TEST_CASE("the serial example file loads as it ships") {
  const Loaded<GatewayConfig> loaded =
      load_gateway_config(std::string(FLATLINK_SOURCE_DIR) + "/config/examples/gateway-serial.example.json");
  if (const auto* error = std::get_if<ConfigError>(&loaded)) FAIL(error->message);
  const GatewayConfig& config = std::get<GatewayConfig>(loaded);
  REQUIRE(config.adapters.size() == 3);
  const auto& hall = std::get<SerialAdapterConfig>(config.adapters[0]);
  CHECK(hall.devices.size() == 2);
  CHECK(hall.devices[1].capabilities.at(2).options == std::vector<std::string>{"warm", "cold"});
  const auto& boiler = std::get<SerialAdapterConfig>(config.adapters[1]);
  CHECK(boiler.device == "boiler");
  CHECK(boiler.devices.at(0).capabilities.size() == 4);
  const auto& meter = std::get<SerialAdapterConfig>(config.adapters[2]);
  CHECK(meter.devices.at(0).id == "power-meter");
  CHECK(meter.devices.at(0).capabilities.empty());
  CHECK(meter.reopen_max_ms == 60000);
}

// Finding 7 of issue #18: "enumeration" here, "enum" or "enumeration" in WiFly, "enum" in MQTT
// rules and on the wire. One vocabulary now; the old spelling still loads, with a warning.
TEST_CASE("a capability type is enum in every config; the old spelling enumeration loads with a deprecation warning") {
  Json s = good_serial();
  s["devices"][1]["capabilities"][1] = Json{{"name", "mode"}, {"type", "enumeration"}, {"options", {"eco", "comfort"}}};
  const std::string log = contract::capture_stderr([&] {
    const Loaded<GatewayConfig> loaded = parse_gateway_config(gateway_with(s).dump(), "gateway.json");
    REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
    const auto& serial = std::get<SerialAdapterConfig>(std::get<GatewayConfig>(loaded).adapters[1]);
    CHECK(serial.devices[1].capabilities[1].type == ValueType::enumeration);
    CHECK(to_string(serial.devices[1].capabilities[1].type) == "enum");
  });
  CHECK(log.find("WARN config: gateway.json: adapters[1].devices[1].capabilities[1].type: \"enumeration\" is the old "
                 "spelling of \"enum\"") != std::string::npos);
}

// Finding 7 of issue #18, the rest of it: configs said boolean and integer where the wire
// says bool and int. The wire's words are the one vocabulary; each old spelling still loads
// as the same type, with a deprecation warning naming the word to write.
TEST_CASE("capability types are the wire's words bool, int, number, enum and text; boolean and integer load with a deprecation warning") {
  for (const auto& pair : std::vector<std::pair<std::string, ValueType>>{
           {"bool", ValueType::boolean}, {"int", ValueType::integer}, {"number", ValueType::number}, {"text", ValueType::text}}) {
    // Named copies, not structured bindings: clang before 16 cannot capture those in a lambda.
    const std::string& word = pair.first;
    const ValueType type = pair.second;
    Json s = good_serial();
    s["devices"][1]["capabilities"][1] = Json{{"name", "x"}, {"type", word}};
    const std::string log = contract::capture_stderr([&] {
      const Loaded<GatewayConfig> loaded = parse_gateway_config(gateway_with(s).dump(), "gateway.json");
      REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
      const auto& serial = std::get<SerialAdapterConfig>(std::get<GatewayConfig>(loaded).adapters[1]);
      CHECK(serial.devices[1].capabilities[1].type == type);
      CHECK(to_string(type) == word);  // what the config says is what the wire says
    });
    CHECK(log.find("old spelling") == std::string::npos);
  }
  for (const auto& spelling : std::vector<std::tuple<std::string, std::string, ValueType>>{
           {"boolean", "bool", ValueType::boolean}, {"integer", "int", ValueType::integer}}) {
    const auto& [old_word, now, binding] = spelling;
    const ValueType type = binding;  // a plain variable: clang before 16 cannot capture a binding
    Json s = good_serial();
    s["devices"][1]["capabilities"][1] = Json{{"name", "x"}, {"type", old_word}};
    const std::string log = contract::capture_stderr([&] {
      const Loaded<GatewayConfig> loaded = parse_gateway_config(gateway_with(s).dump(), "gateway.json");
      REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
      const auto& serial = std::get<SerialAdapterConfig>(std::get<GatewayConfig>(loaded).adapters[1]);
      CHECK(serial.devices[1].capabilities[1].type == type);
    });
    CHECK(log.find("WARN config: gateway.json: adapters[1].devices[1].capabilities[1].type: \"" + old_word +
                   "\" is the old spelling of \"" + now + "\"; it is still read, write \"" + now + "\"") !=
          std::string::npos);
  }
  // The errors name the types in the same words.
  Json s = good_serial();
  s["devices"][1]["capabilities"][1] = Json{{"name", "x"}, {"type", "bit"}};
  const Loaded<GatewayConfig> loaded = parse_gateway_config(gateway_with(s).dump(), "gateway.json");
  REQUIRE(std::holds_alternative<ConfigError>(loaded));
  const std::string error = std::get<ConfigError>(loaded).message;
  CHECK(error.find("\"bool\"") != std::string::npos);
  CHECK(error.find("\"int\"") != std::string::npos);
  CHECK(error.find("\"boolean\"") == std::string::npos);
}

// No example config, schema example or doc snippet uses an old spelling: every example loads
// without a deprecation warning.
TEST_CASE("the example configs load without a deprecation warning") {
  for (const char* name : {"gateway.example.json", "gateway-serial.example.json", "gateway-wifly.example.json",
                           "gateway-mqtt.example.json"}) {
    INFO(name);
    const std::string log = contract::capture_stderr([&] {
      const Loaded<GatewayConfig> loaded =
          load_gateway_config(std::string(FLATLINK_SOURCE_DIR) + "/config/examples/" + name);
      CHECK(std::holds_alternative<GatewayConfig>(loaded));
    });
    CHECK(log.find("old spelling") == std::string::npos);
  }
}
