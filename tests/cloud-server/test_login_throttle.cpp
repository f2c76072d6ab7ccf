// Failed logins: delays that double, a ban after the threshold, lifting it (finding 1 of #19).
#include <doctest/doctest.h>

#include "cloud-server/login_throttle.h"

using namespace flatlink;
using namespace flatlink::cloud;

namespace {
config::LoginConfig login_config() {
  config::LoginConfig c;
  c.ban_after = 4;
  c.ban_s = 60;
  c.delay_base_ms = 100;
  c.delay_max_ms = 1000;
  return c;
}
}  // namespace

TEST_CASE("each failure doubles the wait before the next check of that source, up to the cap") {
  ManualClock clock;
  const auto cfg = login_config();
  LoginThrottle throttle(cfg, clock);
  CHECK(throttle.admit("10.0.0.1", "flat-a/alice").delay_ms == 0);
  throttle.failed("10.0.0.1", "flat-a/alice");
  CHECK(throttle.admit("10.0.0.1", "flat-a/alice").delay_ms == 100);
  throttle.failed("10.0.0.1", "flat-a/alice");
  CHECK(throttle.admit("10.0.0.1", "flat-a/alice").delay_ms == 200);
  clock.advance(150);
  CHECK(throttle.admit("10.0.0.1", "flat-a/alice").delay_ms == 50);
  // another source and another account are not slowed
  CHECK(throttle.admit("10.0.0.2", "flat-b/bob").delay_ms == 0);
  // the account is slowed from any source (a guesser with many addresses), but never banned
  CHECK(throttle.admit("10.0.0.9", "flat-a/alice").delay_ms == 50);
}

TEST_CASE("a source is banned after ban_after failures, the right password then refused too, until the ban ends or is lifted") {
  ManualClock clock;
  const auto cfg = login_config();
  LoginThrottle throttle(cfg, clock);
  CHECK_FALSE(throttle.failed("10.0.0.1", "flat-a/alice"));
  CHECK_FALSE(throttle.failed("10.0.0.1", "flat-a/x"));
  CHECK_FALSE(throttle.failed("10.0.0.1", "flat-b/y"));
  CHECK(throttle.failed("10.0.0.1", "flat-c/z"));
  auto admission = throttle.admit("10.0.0.1", "flat-a/alice");
  CHECK(admission.banned);
  CHECK(admission.banned_ms == 60'000);
  REQUIRE(throttle.bans().size() == 1);
  CHECK(throttle.bans()[0].source == "10.0.0.1");
  // the account itself is not banned: alice logs in from home
  CHECK_FALSE(throttle.admit("10.0.0.2", "flat-a/alice").banned);
  clock.advance(60'001);
  CHECK_FALSE(throttle.admit("10.0.0.1", "flat-a/alice").banned);
  CHECK(throttle.bans().empty());

  for (int i = 0; i < 4; ++i) throttle.failed("10.0.0.3", "flat-a/alice");
  CHECK(throttle.admit("10.0.0.3", "flat-a/alice").banned);
  CHECK(throttle.lift("10.0.0.3") == 1);
  CHECK_FALSE(throttle.admit("10.0.0.3", "flat-a/alice").banned);
  CHECK(throttle.admit("10.0.0.3", "flat-b/bob").delay_ms == 0);  // its failures are forgotten too
}

TEST_CASE("a good login clears its counts, and old entries are pruned so the maps stay bounded") {
  ManualClock clock;
  const auto cfg = login_config();
  LoginThrottle throttle(cfg, clock);
  throttle.failed("10.0.0.1", "flat-a/alice");
  throttle.succeeded("10.0.0.1", "flat-a/alice");
  CHECK(throttle.admit("10.0.0.1", "flat-a/alice").delay_ms == 0);
  for (int i = 0; i < 1000; ++i) throttle.failed("10.1." + std::to_string(i), "flat-a/u" + std::to_string(i));
  CHECK(throttle.tracked() == 2000);
  clock.advance(60'001);
  throttle.prune();
  CHECK(throttle.tracked() == 0);
}
