// Topic patterns, payload checks and value conversions of the mqtt adapter.
#include <doctest/doctest.h>

#include "device-adapters/mqtt/payload.h"
#include "device-adapters/mqtt/topic_pattern.h"

using namespace flatlink;
using namespace flatlink::adapters::mqtt;

TEST_CASE("a pattern with named wildcards subscribes with + and captures each level by name") {
  const TopicPattern p("home/{room}/{device}/state");
  CHECK(p.filter() == "home/+/+/state");
  Captures c;
  REQUIRE(p.match("home/kitchen/lamp-1/state", c));
  CHECK(c["room"] == "kitchen");
  CHECK(c["device"] == "lamp-1");
  CHECK_FALSE(p.match("home/kitchen/lamp-1/state/x", c));
  CHECK_FALSE(p.match("home//lamp-1/state", c));
  CHECK(TopicPattern("cmnd/{device}/POWER").expand({{"device", "plug 1"}}) == "cmnd/plug 1/POWER");
}

TEST_CASE("names from topics that are not valid ids are sanitised") {
  CHECK(sanitize_id("living room/lamp") == "living_room_lamp");
  CHECK(sanitize_id("0x00158d0001a2b3c4") == "0x00158d0001a2b3c4");
  CHECK(sanitize_id("Küche") == "K__che");
  CHECK(sanitize_id(std::string(100, 'a')).size() == 64);
  CHECK(valid_id(sanitize_id("#+/\\\"")));
}

TEST_CASE("binary and invalid UTF-8 payloads are told apart from text") {
  CHECK(check_text("{\"a\":1}").empty());
  CHECK(check_text("21.5 °C").empty());
  CHECK_FALSE(check_text(std::string("\xff\xfe", 2)).empty());
  CHECK_FALSE(check_text(std::string("a\0b", 3)).empty());
  CHECK_FALSE(check_text("\xc3").empty());         // truncated
  CHECK_FALSE(check_text("\xc0\xaf").empty());     // overlong
  CHECK_FALSE(check_text("\xed\xa0\x80").empty()); // a surrogate
}

TEST_CASE("plain values are read by the capability's type and range") {
  const Capability on = Capability::boolean("on", true);
  CHECK(value_from_text(on, "ON") == Json(true));
  CHECK(value_from_text(on, "off") == Json(false));
  CHECK(value_from_text(on, "Online", BoolTexts{"Online", "Offline"}) == Json(true));
  CHECK_FALSE(value_from_text(on, "ON", BoolTexts{"Online", "Offline"}));
  const Capability dimmer = Capability::integer("brightness", 0, 100, true);
  CHECK(value_from_text(dimmer, "42") == Json(42));
  CHECK_FALSE(value_from_text(dimmer, "101"));
  CHECK_FALSE(value_from_text(dimmer, "4.5"));
  CHECK_FALSE(value_from_text(dimmer, "4x"));
  CHECK(value_from_json(dimmer, Json(42.0)) == Json(42));
  CHECK_FALSE(value_from_json(dimmer, Json("42")));
  CHECK_FALSE(value_from_json(dimmer, Json(true)));
  CHECK(value_to_text(Json(true), BoolTexts{"ON", "OFF"}) == "ON");
  CHECK(value_to_text(Json(200)) == "200");
  CHECK(same_value(Json(50), Json(50.0)));
}
