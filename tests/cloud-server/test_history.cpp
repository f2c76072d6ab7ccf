// The value history as the `history` request sees it: in memory (numbers only, bounded per
// value, kept per flat), and how a request's range is checked and its level chosen.
#include <doctest/doctest.h>

#include "cloud-server/history.h"

using namespace flatlink;
using namespace flatlink::cloud;

namespace {
constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kDay = 24 * store::kHourMs;

proto::HistoryRequest request(std::string range = "", int64_t from = -1, int64_t to = -1, std::string resolution = "") {
  proto::HistoryRequest r;
  r.device = "thermo";
  r.capability = "t";
  r.range = std::move(range);
  r.from = from;
  r.to = to;
  r.resolution = std::move(resolution);
  return r;
}

HistoryPlan plan_of(const proto::HistoryRequest& r) {
  auto planned = plan_history(r, store::HistoryRetention{}, kNow, 5000);
  REQUIRE(std::holds_alternative<HistoryPlan>(planned));
  return std::get<HistoryPlan>(planned);
}

std::string error_of(const proto::HistoryRequest& r) {
  auto planned = plan_history(r, store::HistoryRetention{}, kNow, 5000);
  REQUIRE(std::holds_alternative<std::string>(planned));
  return std::get<std::string>(planned);
}

struct Memory {
  config::CloudConfig config;
  ManualClock clock{kNow};
  Metrics metrics;
  History history{config, clock, metrics};
  Json answer(const proto::HistoryRequest& r) {
    std::string frame;
    history.answer("flat-a", r, [&](std::string f) { frame = std::move(f); });
    return Json::parse(frame);
  }
};
}  // namespace

TEST_CASE("history keeps the last history_points numeric values per flat, device and capability") {
  config::CloudConfig config;
  config.limits.history_points = 3;
  ManualClock clock;
  Metrics metrics;
  History history(config, clock, metrics);
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
  ManualClock clock;
  Metrics metrics;
  History history(config, clock, metrics);
  history.record("flat-a", "temp", Json{{"c", 1}}, 1);
  CHECK(history.points("flat-a", "temp", "c").empty());
}

TEST_CASE("a request without range, from, to or resolution asks for the recent values") {
  const HistoryPlan plan = plan_of(request());
  CHECK(plan.recent);
  CHECK(plan.limit == 5000);
}

TEST_CASE("the preset ranges end now; custom takes from and to") {
  const std::pair<const char*, int64_t> presets[] = {{"1h", store::kHourMs}, {"24h", kDay}, {"7d", 7 * kDay}, {"30d", 30 * kDay}};
  for (const auto& [name, span] : presets) {
    const HistoryPlan plan = plan_of(request(name));
    CHECK(plan.to == kNow);
    CHECK(plan.from == kNow - span);
    CHECK_FALSE(plan.resolution);  // auto
  }
  const HistoryPlan custom = plan_of(request("custom", kNow - 5000, kNow - 1000));
  CHECK(custom.from == kNow - 5000);
  CHECK(custom.to == kNow - 1000);
  const HistoryPlan bare = plan_of(request("", kNow - 5000, -1, "raw"));  // from alone: to is now
  CHECK(bare.to == kNow);
  CHECK(bare.resolution == store::Resolution::raw);
}

TEST_CASE("a bad range is refused with a message that names what is wrong") {
  CHECK(error_of(request("2w")) == "range: expected 1h, 24h, 7d, 30d or custom, got \"2w\"");
  CHECK(error_of(request("1h", kNow - 10)).find("leave out from and to") != std::string::npos);
  CHECK(error_of(request("custom")) == "range custom: from is missing");
  CHECK(error_of(request("custom", kNow, kNow - 1)).find("is after to") != std::string::npos);
  CHECK(error_of(request("", -1, -1, "5m")) == "resolution: expected raw, 1m, 1h or auto, got \"5m\"");
  // raw values are kept 7 days: a 30-day range cannot be asked for raw
  CHECK(error_of(request("30d", -1, -1, "raw")).find("resolution raw is kept 7 days") != std::string::npos);
}

TEST_CASE("auto answers from raw values while they fit, else from the finest rollup that fits") {
  const store::HistoryRetention retention;
  // an hour with few values: raw; with more than the limit: per minute (60 buckets)
  CHECK(choose_resolution(plan_of(request("1h")), retention, kNow, 100) == store::Resolution::raw);
  CHECK(choose_resolution(plan_of(request("1h")), retention, kNow, 5001) == store::Resolution::minute);
  // a day of many values: 1441 minutes fit in 5000 points
  CHECK(choose_resolution(plan_of(request("24h")), retention, kNow, 5001) == store::Resolution::minute);
  // 7 days: 10081 minutes do not fit: hours
  CHECK(choose_resolution(plan_of(request("7d")), retention, kNow, 5001) == store::Resolution::hour);
  // 30 days reach beyond the raw retention: never raw, however few
  CHECK(choose_resolution(plan_of(request("30d")), retention, kNow, 3) == store::Resolution::hour);
  // an explicit resolution is kept
  CHECK(choose_resolution(plan_of(request("24h", -1, -1, "1h")), retention, kNow, 3) == store::Resolution::hour);
}

TEST_CASE("without a store a range is answered from the values in memory; rollups are refused") {
  Memory m;
  for (int i = 0; i < 10; ++i) m.history.record("flat-a", "thermo", Json{{"t", i}}, kNow - 10'000 + i * 1000);
  const Json recent = m.answer(request());
  CHECK(recent["points"].size() == 10);
  CHECK_FALSE(recent.contains("resolution"));  // the reply as before ranges existed

  auto r = request("custom", kNow - 6000, kNow - 3000);
  r.id = "h-1";
  r.limit = 2;
  const Json ranged = m.answer(r);
  CHECK(ranged["id"] == "h-1");
  CHECK(ranged["resolution"] == "raw");
  CHECK(ranged["points"] == Json::parse("[[1699999994000, 4], [1699999995000, 5]]"));
  CHECK(ranged["next_from"] == kNow - 4000);

  const Json refused = m.answer(request("1h", -1, -1, "1m"));
  CHECK(refused["type"] == "error");
  CHECK(refused["code"] == "invalid_range");
  const Json bad = m.answer(request("1y"));
  CHECK(bad["code"] == "invalid_range");
}

TEST_CASE("a rollup reply carries buckets [start, min, max, avg, last, count]; strings have no min, max, avg") {
  store::HistoryPage page;
  page.buckets.push_back({60'000, 1.0, 3.0, 2.0, Json(3), 3});
  page.buckets.push_back({120'000, std::nullopt, std::nullopt, std::nullopt, Json("eco"), 2});
  page.next_from = 180'000;
  HistoryPlan plan;
  plan.from = 60'000;
  plan.to = 200'000;
  const Json reply = Json::parse(encode_history_reply(request("custom", 60'000, 200'000), &plan, store::Resolution::minute, page));
  CHECK(reply["resolution"] == "1m");
  CHECK(reply["buckets"] == Json::parse("[[60000, 1.0, 3.0, 2.0, 3, 3], [120000, null, null, null, \"eco\", 2]]"));
  CHECK(reply["next_from"] == 180'000);
  CHECK_FALSE(reply.contains("points"));
}
