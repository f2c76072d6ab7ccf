// Lines and hixie-75/76 frames on a byte stream.
#include "device-adapters/wifly/wifly_framing.h"

namespace flatlink::adapters::wifly {

void LineFramer::feed(std::string_view data, const OnLine& on_line, const OnOverlong& on_overlong) {
  while (!data.empty()) {
    const size_t nl = data.find('\n');
    const std::string_view chunk = data.substr(0, nl);
    if (!skipping_) {
      // +1 leaves room for the "\r" of a CRLF line; the exact check follows below.
      if (line_.size() + chunk.size() > max_bytes_ + 1) {
        // Over the limit before the newline: drop what we have and skip to it.
        skipping_ = true;
        if (on_overlong) on_overlong(line_.size() + chunk.size());
        line_.clear();
      } else {
        line_.append(chunk);
      }
    }
    if (nl == std::string_view::npos) return;
    data.remove_prefix(nl + 1);
    if (skipping_) {
      skipping_ = false;
      continue;
    }
    std::string line = std::move(line_);
    line_.clear();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > max_bytes_) {
      if (on_overlong) on_overlong(line.size());
      continue;
    }
    if (on_line) on_line(line);
  }
}

void LineFramer::reset() {
  line_.clear();
  skipping_ = false;
}

void HixieDecoder::feed(std::string_view data, const OnEvent& on_event) {
  for (size_t i = 0; i < data.size() && state_ != State::stopped; ++i) {
    const auto byte = static_cast<unsigned char>(data[i]);
    switch (state_) {
      case State::frame_type:
        if (byte == 0x00) {
          state_ = State::text;
          text_.clear();
        } else if (byte & 0x80) {
          binary_type_ = byte;
          binary_length_ = 0;
          length_bytes_ = 0;
          state_ = State::binary_length;
        } else {
          state_ = State::stopped;
          on_event(Event::error, "a frame must start with 0x00 or a byte with the high bit set");
        }
        break;
      case State::text:
        if (byte == 0xFF) {
          state_ = State::frame_type;
          on_event(Event::message, text_);
          text_.clear();
        } else if (text_.size() >= max_bytes_) {
          state_ = State::stopped;
          on_event(Event::error, "text frame longer than the limit");
        } else {
          text_.push_back(static_cast<char>(byte));
        }
        break;
      case State::binary_length:
        // The length is big-endian in 7-bit groups; the high bit says "more follows".
        binary_length_ = binary_length_ * 128 + (byte & 0x7F);
        ++length_bytes_;
        if (binary_length_ > max_bytes_ || length_bytes_ > 4) {
          state_ = State::stopped;
          on_event(Event::error, "binary frame longer than the limit");
        } else if (!(byte & 0x80)) {
          if (binary_type_ == 0xFF && binary_length_ == 0) {
            state_ = State::stopped;
            on_event(Event::close, "");
          } else if (binary_length_ == 0) {
            state_ = State::frame_type;
          } else {
            state_ = State::binary_skip;
          }
        }
        break;
      case State::binary_skip:
        // Binary frames carry nothing a device line needs: skipped.
        if (--binary_length_ == 0) state_ = State::frame_type;
        break;
      case State::stopped:
        break;
    }
  }
}

std::string hixie_frame(std::string_view text) {
  std::string frame;
  frame.reserve(text.size() + 2);
  frame.push_back('\x00');
  frame.append(text);
  frame.push_back('\xFF');
  return frame;
}

std::string_view hixie_close_frame() { return std::string_view("\xFF\x00", 2); }

}  // namespace flatlink::adapters::wifly
