// The wifly adapter's entry in the gateway configuration: defaults, and the
// first error with its path for what the schema refuses.
#include <doctest/doctest.h>

#include <string>

#include "config/config_loader.h"

using namespace flatlink;
using namespace flatlink::config;
using Json = nlohmann::json;

namespace {

Json gateway_with(Json adapter) {
  Json doc = Json::parse(R"({
    "gateway_id": "gw-1",
    "flat": "flat-a",
    "cloud": { "url": "ws://127.0.0.1:8080/", "token": "secret-token-1" }
  })");
  doc["adapters"] = Json::array({std::move(adapter)});
  return doc;
}

Json wifly_adapter() {
  return Json::parse(R"({
    "type": "wifly", "name": "wifly",
    "listen": {},
    "devices": [ { "id": "t1", "capabilities": [ { "name": "temp", "type": "number" } ] } ]
  })");
}

std::string error_of(const Json& adapter) {
  const auto loaded = parse_gateway_config(gateway_with(adapter).dump(), "gateway.json");
  const auto* error = std::get_if<ConfigError>(&loaded);
  REQUIRE_MESSAGE(error, "expected the configuration to be refused");
  return error->message;
}

WiflyAdapterConfig loaded(const Json& adapter) {
  const auto result = parse_gateway_config(gateway_with(adapter).dump(), "gateway.json");
  if (const auto* error = std::get_if<ConfigError>(&result)) FAIL(error->message);
  return std::get<WiflyAdapterConfig>(std::get<GatewayConfig>(result).adapters.at(0));
}

}  // namespace

TEST_CASE("a minimal wifly entry gets the documented defaults") {
  const WiflyAdapterConfig c = loaded(wifly_adapter());
  CHECK(c.listen.enabled);
  CHECK(c.listen.address == "127.0.0.1");
  CHECK(c.listen.port == 2000);
  CHECK(c.modules.empty());
  CHECK(c.marker_hello == "*HELLO*");
  CHECK(c.marker_open == "*OPEN*");
  CHECK(c.marker_close == "*CLOS*");
  CHECK(c.handshake_timeout_ms == 5000);
  CHECK(c.max_handshake_bytes == 4096);
  CHECK(c.command_timeout_ms == 5000);  // the gateway's command_timeout_ms
  REQUIRE(c.devices.size() == 1);
  CHECK(c.devices[0].name == "t1");
  CHECK(c.devices[0].capabilities.at(0).type == ValueType::number);
}

TEST_CASE("modules default to port 2000 and may name their device; markers follow the modules' settings") {
  Json a = wifly_adapter();
  a.erase("listen");
  a["modules"] = Json::parse(R"([ { "host": "192.168.1.50", "device": "t1" }, { "host": "fe80::1", "port": 3000 } ])");
  a["markers"] = Json{{"hello", ""}, {"open", "*UP*"}};
  const WiflyAdapterConfig c = loaded(a);
  CHECK_FALSE(c.listen.enabled);
  REQUIRE(c.modules.size() == 2);
  CHECK(c.modules[0].port == 2000);
  CHECK(c.modules[0].device == "t1");
  CHECK(c.modules[1].port == 3000);
  CHECK(c.marker_hello.empty());
  CHECK(c.marker_open == "*UP*");
}

TEST_CASE("the schema refuses what cannot work, naming the path") {
  Json a = wifly_adapter();
  a.erase("listen");
  CHECK(error_of(a) == "gateway.json: adapters[0]: needs \"listen\" or \"modules\" (or both): otherwise no module "
                       "can ever reach it");

  a = wifly_adapter();
  a["modules"] = Json::parse(R"([ { "host": "wifly.local" } ])");
  CHECK(error_of(a).find("adapters[0].modules[0].host: expected an IPv4 or IPv6 address") != std::string::npos);

  a = wifly_adapter();
  a["modules"] = Json::parse(R"([ { "host": "10.0.0.5", "device": "nope" } ])");
  CHECK(error_of(a) == "gateway.json: adapters[0].modules[0].device: no device \"nope\" in this adapter's devices");

  a = wifly_adapter();
  a["devices"][0]["capabilities"][0]["name"] = "set";
  CHECK(error_of(a).find("is reserved by the line protocol") != std::string::npos);

  a = wifly_adapter();
  a["devices"][0]["capabilities"] = Json::array();
  CHECK(error_of(a).find("adapters[0].devices[0].capabilities") != std::string::npos);

  a = wifly_adapter();
  a["devices"][0]["address"] = "lamp.local";
  CHECK(error_of(a).find("adapters[0].devices[0].address: expected an IPv4 or IPv6 address") != std::string::npos);

  a = wifly_adapter();
  a["listen"]["port"] = 0;
  CHECK(error_of(a).find("adapters[0].listen.port") != std::string::npos);

  a = wifly_adapter();
  a["devices"][0]["capabilities"][0] = Json{{"name", "mode"}, {"type", "enum"}};
  CHECK(error_of(a).find("adapters[0].devices[0].capabilities[0].options") != std::string::npos);

  a = wifly_adapter();
  a["handshake_timout_ms"] = 100;  // misspelt
  CHECK(error_of(a).find("unknown key") != std::string::npos);
}
