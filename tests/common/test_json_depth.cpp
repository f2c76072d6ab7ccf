#include <doctest/doctest.h>

#include <string>

#include "common/json_depth.h"

using flatlink::nested_deeper_than;

TEST_CASE("the JSON nesting pre-scan counts objects and arrays, not brackets inside strings") {
  CHECK_FALSE(nested_deeper_than(R"({"a":1})", 1));
  CHECK(nested_deeper_than(R"({"a":[1]})", 1));
  CHECK_FALSE(nested_deeper_than(R"({"a":[1]})", 2));
  CHECK_FALSE(nested_deeper_than(R"({"reason":"camera [usb] {unplugged}"})", 1));
  CHECK_FALSE(nested_deeper_than(R"({"s":"a \" [[[ quote"})", 1));  // an escaped quote does not end the string
  CHECK(nested_deeper_than(R"([{"s":"x\\"}])", 1));  // a quote after an escaped backslash ends the string
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(nested_deeper_than(deep, 16));
  CHECK_FALSE(nested_deeper_than(deep, 100000));
  CHECK_FALSE(nested_deeper_than("", 0));
}
