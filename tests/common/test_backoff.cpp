// Reconnect backoff: grows, caps, jitters, resets.
#include <doctest/doctest.h>

#include "common/backoff.h"

using flatlink::Backoff;
using flatlink::BackoffPolicy;

TEST_CASE("backoff doubles from the base delay up to the cap when there is no jitter") {
  Backoff b(BackoffPolicy{100, 1000, 0}, 1);
  CHECK(b.next_delay_ms() == 100);
  CHECK(b.next_delay_ms() == 200);
  CHECK(b.next_delay_ms() == 400);
  CHECK(b.next_delay_ms() == 800);
  CHECK(b.next_delay_ms() == 1000);
  CHECK(b.next_delay_ms() == 1000);
  b.reset();
  CHECK(b.next_delay_ms() == 100);
}

TEST_CASE("backoff jitter spreads delays within the allowed band") {
  Backoff b(BackoffPolicy{1000, 1000, 50}, 42);
  uint32_t lo = UINT32_MAX, hi = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint32_t d = b.next_delay_ms();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    REQUIRE(d >= 500);
    REQUIRE(d <= 1000);
  }
  // Spread, not one value: gateways restarted together must not retry in step.
  CHECK(hi - lo > 300);
}

TEST_CASE("backoff keeps retrying forever without overflowing") {
  Backoff b(BackoffPolicy{500, 30000, 20}, 7);
  uint32_t last = 0;
  for (int i = 0; i < 10000; ++i) last = b.next_delay_ms();
  CHECK(last <= 30000);
  CHECK(last >= 24000);
}
