// Exponential backoff with a cap and "equal jitter".
#include "common/backoff.h"

#include <algorithm>

namespace flatlink {

Backoff::Backoff(BackoffPolicy policy, uint64_t seed) : policy_(policy), rng_(seed) {
  policy_.base_ms = std::max<uint32_t>(policy_.base_ms, 1);
  policy_.max_ms = std::max(policy_.max_ms, policy_.base_ms);
  policy_.jitter_percent = std::min<uint32_t>(policy_.jitter_percent, 100);
}

uint32_t Backoff::next_delay_ms() {
  uint64_t delay = policy_.base_ms;
  for (uint32_t i = 0; i < attempt_ && delay < policy_.max_ms; ++i) delay *= 2;
  delay = std::min<uint64_t>(delay, policy_.max_ms);
  if (attempt_ < 64) ++attempt_;
  const uint64_t spread = delay * policy_.jitter_percent / 100;
  if (spread == 0) return static_cast<uint32_t>(delay);
  std::uniform_int_distribution<uint64_t> dist(0, spread);
  return static_cast<uint32_t>(delay - dist(rng_));
}

}  // namespace flatlink
