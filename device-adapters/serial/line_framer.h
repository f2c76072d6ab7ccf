// Cuts a byte stream from a serial port into lines of a bounded length.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace flatlink::adapters::serial {

// Lines end at '\n'; a '\r' before it is dropped, and empty lines are skipped.
// A line longer than max_bytes is never kept whole: once it passes the limit its
// bytes are discarded up to the next '\n', where reading resynchronises, and
// on_overlong is told once with the number of bytes dropped.
class LineFramer {
 public:
  using LineFn = std::function<void(std::string_view line)>;
  using OverlongFn = std::function<void(size_t dropped_bytes)>;

  LineFramer(size_t max_bytes, LineFn on_line, OverlongFn on_overlong)
      : max_bytes_(max_bytes), on_line_(std::move(on_line)), on_overlong_(std::move(on_overlong)) {}

  void feed(std::string_view bytes);
  // Forgets a partial line (the port was closed: what follows is a new stream).
  void reset();

 private:
  size_t max_bytes_;
  LineFn on_line_;
  OverlongFn on_overlong_;
  std::string partial_;
  bool skipping_ = false;  // inside an overlong line, waiting for its end
  size_t skipped_ = 0;
};

}  // namespace flatlink::adapters::serial
