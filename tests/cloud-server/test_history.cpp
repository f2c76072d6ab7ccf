// The in-memory value history: numbers only, bounded per value, kept per flat.
#include <doctest/doctest.h>

#include "cloud-server/history.h"

using namespace flatlink;
using namespace flatlink::cloud;

TEST_CASE("history keeps the last history_points numeric values per flat, device and capability") {
  config::CloudConfig config;
  config.limits.history_points = 3;
  History history(config);
  for (int i = 1; i <= 5; ++i) history.record("flat-a", "temp", Json{{"c", 20 + i}, {"label", "x"}}, 1000 + i);
  history.record("flat-b", "temp", Json{{"c", 99}}, 2000);

  const auto points = history.points("flat-a", "temp", "c");
  REQUIRE(points.size() == 3);
  CHECK(points[0].ts == 1003);
  CHECK(points[2].ts == 1005);
  CHECK(points[2].value == Json(25));
  CHECK(history.points("flat-a", "temp", "label").empty());  // not a number
  CHECK(history.points("flat-b", "temp", "c").size() == 1);  // another flat's own
  CHECK(history.points("flat-c", "temp", "c").empty());
}

TEST_CASE("history_points 0 keeps nothing") {
  config::CloudConfig config;
  config.limits.history_points = 0;
  History history(config);
  history.record("flat-a", "temp", Json{{"c", 1}}, 1);
  CHECK(history.points("flat-a", "temp", "c").empty());
}
