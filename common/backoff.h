// Reconnect policy: exponential backoff with a cap and random jitter, so that
// thousands of gateways do not reconnect in step after a cloud restart.
#pragma once

#include <cstdint>
#include <functional>
#include <random>

namespace flatlink {

struct BackoffPolicy {
  uint32_t base_ms = 500;     // first delay
  uint32_t max_ms = 30'000;   // cap on the exponential part
  uint32_t jitter_percent = 50;  // the delay is drawn from [d*(1-j), d], j = jitter_percent/100
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy, uint64_t seed = std::random_device{}());
  // The delay before the next attempt; each call doubles the base delay up to the cap.
  uint32_t next_delay_ms();
  // After a connection that worked: start again from the base delay.
  void reset() { attempt_ = 0; }
  uint32_t attempts() const { return attempt_; }

 private:
  BackoffPolicy policy_;
  uint32_t attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace flatlink
