// Time as an injectable dependency: wall time for expiry and observation stamps,
// monotonic time for timeouts. Tests move a ManualClock instead of waiting.
#pragma once

#include <cstdint>

namespace flatlink {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t wall_ms() const = 0;
  // Milliseconds on a clock that never goes back.
  virtual int64_t mono_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t wall_ms() const override;
  int64_t mono_ms() const override;
  static SystemClock& instance();
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t wall_ms = 1'700'000'000'000, int64_t mono_ms = 1'000) : wall_(wall_ms), mono_(mono_ms) {}
  int64_t wall_ms() const override { return wall_; }
  int64_t mono_ms() const override { return mono_; }
  void advance(int64_t ms) {
    wall_ += ms;
    mono_ += ms;
  }

 private:
  int64_t wall_;
  int64_t mono_;
};

}  // namespace flatlink
