// The two line protocols: what a device's line means, what is garbage, and how
// commands are written.
#include <doctest/doctest.h>

#include <string>

#include "device-adapters/serial/line_protocol.h"

using namespace flatlink;
using namespace flatlink::adapters::serial;
using flatlink::config::LineProtocol;

namespace {

const DeviceInfo& lamp() {
  static const DeviceInfo info = [] {
    DeviceInfo d;
    d.id = "lamp";
    d.capabilities = {Capability::boolean("on", true), Capability::integer("brightness", 0, 100, true),
                      Capability::enumeration("mode", {"eco", "comfort"}, true)};
    Capability note;
    note.name = "note";
    note.type = ValueType::text;
    note.writable = true;
    d.capabilities.push_back(note);
    return d;
  }();
  return info;
}

const Capability* lookup(const std::string& device, const std::string& name) {
  return device == "lamp" ? lamp().capability(name) : nullptr;
}

std::optional<DeviceLine> parse(LineProtocol protocol, const std::string& line, const std::string& port_device = "") {
  std::string why;
  auto parsed = parse_line(protocol, line, port_device, lookup, why);
  if (!parsed) MESSAGE(line << " -> " << why);
  return parsed;
}

std::string why_not(LineProtocol protocol, const std::string& line, const std::string& port_device = "") {
  std::string why;
  auto parsed = parse_line(protocol, line, port_device, lookup, why);
  CHECK_MESSAGE(!parsed, line);
  return why;
}

}  // namespace

TEST_CASE("a JSON line names its device and carries values, an ok or an error") {
  auto line = parse(LineProtocol::json, R"({"dev":"t1","temp":21.5,"hum":40})");
  REQUIRE(line);
  CHECK(line->device == "t1");
  CHECK(line->values == Json{{"temp", 21.5}, {"hum", 40}});
  CHECK_FALSE(line->ok);
  CHECK_FALSE(line->error);

  line = parse(LineProtocol::json, R"({"dev":"lamp","ok":true})");
  REQUIRE(line);
  CHECK(line->ok);
  line = parse(LineProtocol::json, R"({"dev":"lamp","error":"jammed"})");
  REQUIRE(line);
  CHECK(line->error == "jammed");
}

TEST_CASE("a line without a device belongs to the port's device, and may not name another") {
  auto line = parse(LineProtocol::json, R"({"temp":60})", "boiler");
  REQUIRE(line);
  CHECK(line->device == "boiler");
  line = parse(LineProtocol::keyvalue, "boiler temp=60", "boiler");
  REQUIRE(line);
  CHECK(line->device == "boiler");
  line = parse(LineProtocol::keyvalue, "temp=60", "boiler");
  REQUIRE(line);
  CHECK(line->device == "boiler");
  CHECK(why_not(LineProtocol::json, R"({"dev":"t1","temp":60})", "boiler") ==
        "the line names device t1 but this port carries only boiler");
  CHECK(why_not(LineProtocol::keyvalue, "temp=60") ==
        "the line names no device, and the port has no \"device\" of its own");
}

TEST_CASE("JSON garbage is refused with a reason") {
  CHECK(why_not(LineProtocol::json, R"({"dev":"t1","temp":)") == "not valid JSON");
  CHECK(why_not(LineProtocol::json, "[1,2]") == "expected a JSON object");
  CHECK(why_not(LineProtocol::json, std::string("{\"dev\":\"t1\",\"x\":\"\x01\"}")) ==
        "binary data (control bytes) in a JSON line");
  CHECK(why_not(LineProtocol::json, "\xff\xfe{}") == "not valid JSON");
  CHECK(why_not(LineProtocol::json, R"({"dev":7,"temp":1})") == "\"dev\" must be a device id, got 7");
  CHECK(why_not(LineProtocol::json, R"({"dev":"t1","ok":false})") == "\"ok\" must be true, got false");
  CHECK(why_not(LineProtocol::json, R"({"dev":"t1"})") == "the line carries no values");
  CHECK(why_not(LineProtocol::json, R"({"dev":"t1","a b":1})") == "\"a b\" is not a capability name");
  CHECK(why_not(LineProtocol::json, std::string(40, '[') + std::string(40, ']')) ==
        "JSON nested deeper than 16 levels");
}

TEST_CASE("key=value values are typed by the declared capability, or guessed for undeclared ones") {
  auto line = parse(LineProtocol::keyvalue, R"(lamp on=on brightness=40 mode=eco note="hello \"world\"")");
  REQUIRE(line);
  CHECK(line->values == Json{{"on", true}, {"brightness", 40}, {"mode", "eco"}, {"note", "hello \"world\""}});
  line = parse(LineProtocol::keyvalue, "lamp note=123");
  REQUIRE(line);
  CHECK(line->values["note"] == "123");  // text stays text
  line = parse(LineProtocol::keyvalue, "t1   temp=21.5\thum=40 open=false name=hall label=\"7\"");
  REQUIRE(line);
  CHECK(line->values == Json{{"temp", 21.5}, {"hum", 40}, {"open", false}, {"name", "hall"}, {"label", "7"}});
  line = parse(LineProtocol::keyvalue, "lamp ok=true");
  REQUIRE(line);
  CHECK(line->ok);
  line = parse(LineProtocol::keyvalue, R"(lamp error="motor jammed")");
  REQUIRE(line);
  CHECK(line->error == "motor jammed");
}

TEST_CASE("key=value garbage is refused with a reason") {
  CHECK(why_not(LineProtocol::keyvalue, "lamp brightness=bright") == "brightness: expected a whole number, got bright");
  CHECK(why_not(LineProtocol::keyvalue, "lamp on=maybe") == "on: expected true or false, got maybe");
  CHECK(why_not(LineProtocol::keyvalue, "t1 temp=") == "temp has no value");
  CHECK(why_not(LineProtocol::keyvalue, "t1 temp=1 stray") == "\"stray\" is not a key=value pair");
  CHECK(why_not(LineProtocol::keyvalue, "t1 =5") == "a value without a name (\"=\" at the start of a word)");
  CHECK(why_not(LineProtocol::keyvalue, "t1 note=\"open") == "unterminated quoted value of note");
  CHECK(why_not(LineProtocol::keyvalue, "t1 note=\"a\"b") == "text right after the closing quote of note");
  CHECK(why_not(LineProtocol::keyvalue, "t1 dev=t2") == "\"dev\" is not a capability name");
  CHECK(why_not(LineProtocol::keyvalue, std::string("t1 temp=\x01\x02")) ==
        "binary data (control bytes or broken UTF-8) in a key=value line");
  CHECK(why_not(LineProtocol::keyvalue, "t1 temp=\xc3") ==
        "binary data (control bytes or broken UTF-8) in a key=value line");
  CHECK(why_not(LineProtocol::keyvalue, "t1") == "the line carries no values");
  CHECK(why_not(LineProtocol::keyvalue, "t/1 temp=1") == "\"t/1\" is not a device id");
}

TEST_CASE("commands are written as one line in the port's protocol") {
  std::string why;
  CHECK(encode_command(LineProtocol::json, "lamp", Json{{"on", true}}, why) == "{\"dev\":\"lamp\",\"set\":{\"on\":true}}\n");
  CHECK(encode_command(LineProtocol::keyvalue, "lamp", Json{{"on", true}, {"brightness", 50}}, why) ==
        "lamp set brightness=50 on=true\n");
  CHECK(encode_command(LineProtocol::keyvalue, "lamp", Json{{"note", "two words"}, {"mode", "eco"}}, why) ==
        "lamp set mode=eco note=\"two words\"\n");
  CHECK(encode_command(LineProtocol::keyvalue, "lamp", Json{{"note", "a\"b\\c\nd"}}, why) ==
        "lamp set note=\"a\\\"b\\\\c\\nd\"\n");
  CHECK(encode_command(LineProtocol::keyvalue, "t", Json{{"level", 2.5}}, why) == "t set level=2.5\n");
  CHECK(encode_command(LineProtocol::keyvalue, "lamp", Json{{"note", std::string("\x01")}}, why).empty());
  CHECK(why == "note: control characters cannot be written in a key=value line");
}

TEST_CASE("what a command writes as key=value reads back as the same values") {
  const Json set{{"on", false}, {"brightness", 7}, {"mode", "comfort"}, {"note", "x = \"y\"\t z"}};
  std::string why;
  std::string line = encode_command(LineProtocol::keyvalue, "lamp", set, why);
  REQUIRE(line.size() > 10);
  line = "lamp" + line.substr(std::string("lamp set").size(), line.size() - 1 - std::string("lamp set").size());
  auto parsed = parse(LineProtocol::keyvalue, line);
  REQUIRE(parsed);
  CHECK(parsed->values == set);
}
