// Message framing on a WiFly byte stream: newline-terminated lines for plain
// modules, and the pre-standard WebSocket frames (hixie-75/76: 0x00 text 0xFF)
// for the old mbed WebSocket client. Pure code: no I/O, no devices.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace flatlink::adapters::wifly {

// Splits a stream into lines ("\n", an optional "\r" before it is dropped).
// A line longer than max_bytes is dropped whole: on_overlong is called once
// and the framer resynchronises at the next newline.
class LineFramer {
 public:
  using OnLine = std::function<void(std::string_view line)>;
  using OnOverlong = std::function<void(size_t bytes_so_far)>;

  explicit LineFramer(size_t max_bytes) : max_bytes_(max_bytes) {}

  void feed(std::string_view data, const OnLine& on_line, const OnOverlong& on_overlong);
  // Forgets a partial line (the module's connection ended in the middle of it).
  void reset();
  size_t buffered() const { return line_.size(); }

 private:
  size_t max_bytes_;
  std::string line_;
  bool skipping_ = false;
};

// Decodes hixie-75/76 frames: 0x00 <UTF-8 text> 0xFF. A frame type with the high
// bit set is length-prefixed; 0xFF 0x00 is the hixie-76 closing handshake.
class HixieDecoder {
 public:
  enum class Event { message, close, error };
  // For `error`, text says what was wrong.
  using OnEvent = std::function<void(Event event, std::string_view text)>;

  explicit HixieDecoder(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Decodes as much as possible. Stops after a close or an error: the caller
  // closes the connection then, and must not feed more.
  void feed(std::string_view data, const OnEvent& on_event);
  bool stopped() const { return state_ == State::stopped; }

 private:
  enum class State { frame_type, text, binary_length, binary_skip, stopped };
  size_t max_bytes_;
  State state_ = State::frame_type;
  std::string text_;
  unsigned char binary_type_ = 0;
  size_t binary_length_ = 0;
  size_t length_bytes_ = 0;
};

// One hixie text frame around `text`.
std::string hixie_frame(std::string_view text);
// The hixie-76 closing handshake.
std::string_view hixie_close_frame();

}  // namespace flatlink::adapters::wifly
