// Capability checks: what a command may set.
#include <doctest/doctest.h>

#include "common/device_model.h"

using namespace flatlink;

TEST_CASE("a value is checked against its capability's type and range") {
  Capability on = Capability::boolean("on", true);
  CHECK_FALSE(check_value(on, true));
  CHECK(*check_value(on, 1) == "on: expected true or false, got 1");

  Capability brightness = Capability::integer("brightness", 0, 100, true);
  CHECK_FALSE(check_value(brightness, 40));
  CHECK_FALSE(check_value(brightness, 40.0));
  CHECK(*check_value(brightness, 101) == "brightness: 101 is out of range, expected a value between 0 and 100");
  CHECK(*check_value(brightness, 4.5) == "brightness: expected a whole number between 0 and 100, got 4.5");
  CHECK(*check_value(brightness, "40") == "brightness: expected a whole number between 0 and 100, got \"40\"");

  Capability lock = Capability::enumeration("lock", {"locked", "unlocked"}, true);
  CHECK_FALSE(check_value(lock, "locked"));
  CHECK(*check_value(lock, "open") == "lock: expected one of locked, unlocked, got \"open\"");

  Capability temp = Capability::number("temperature", -40, 85, false);
  CHECK_FALSE(check_value(temp, 21.5));
  CHECK(check_value(temp, Json(nullptr)));
}

TEST_CASE("ids are short and made of safe characters") {
  CHECK(valid_id("lamp-1"));
  CHECK(valid_id("zigbee:0x00158d0001"));
  CHECK_FALSE(valid_id(""));
  CHECK_FALSE(valid_id("a b"));
  CHECK_FALSE(valid_id("a/b"));
  CHECK_FALSE(valid_id(std::string(65, 'a')));
}

TEST_CASE("outcomes have stable names both ways") {
  for (Outcome o : {Outcome::ok, Outcome::rejected, Outcome::expired, Outcome::timeout, Outcome::offline,
                    Outcome::device_error}) {
    CHECK(outcome_from(to_string(o)) == o);
  }
  CHECK_FALSE(outcome_from("fine"));
}
