// Line framing with a length cap and resynchronisation at the next newline.
#include "device-adapters/serial/line_framer.h"

namespace flatlink::adapters::serial {

void LineFramer::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const size_t newline = bytes.find('\n');
    const std::string_view chunk = bytes.substr(0, newline);
    if (skipping_) {
      skipped_ += chunk.size();
    } else if (partial_.size() + chunk.size() > max_bytes_ + 1) {
      // +1: a trailing '\r' of a line of exactly max_bytes is not part of the line.
      skipping_ = true;
      skipped_ = partial_.size() + chunk.size();
      partial_.clear();
    } else {
      partial_.append(chunk);
    }
    if (newline == std::string_view::npos) return;
    bytes.remove_prefix(newline + 1);
    if (skipping_) {
      skipping_ = false;
      // The callbacks may reset() us; nothing of this line is kept anyway.
      on_overlong_(skipped_ + 1);
      skipped_ = 0;
      continue;
    }
    std::string line;
    line.swap(partial_);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > max_bytes_) {
      on_overlong_(line.size() + 1);
      continue;
    }
    if (!line.empty()) on_line_(line);
  }
}

void LineFramer::reset() {
  partial_.clear();
  skipping_ = false;
  skipped_ = 0;
}

}  // namespace flatlink::adapters::serial
