// The hixie-75/76 frame reader and the WiFly line framer (device-adapters/wifly/
// wifly_framing.h) on a byte stream split into reads of varying size. Checked: no
// crash; no message or line beyond the limit; nothing is decoded after a stop;
// a text frame built by hixie_frame decodes back to its text.
// First input byte: the limit (1..256) and the split pattern.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "device-adapters/wifly/wifly_framing.h"

using namespace flatlink::adapters::wifly;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t max_bytes = 1 + data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  // Frames.
  HixieDecoder decoder(max_bytes);
  bool stopped = false;
  std::string_view rest = stream;
  size_t step = data[0] % 7 + 1;
  while (!rest.empty() && !decoder.stopped()) {
    const size_t n = step < rest.size() ? step : rest.size();
    decoder.feed(rest.substr(0, n), [&](HixieDecoder::Event event, std::string_view text) {
      if (stopped) std::abort();  // an event after a close or an error
      if (event == HixieDecoder::Event::message && text.size() > max_bytes) std::abort();
      if (event != HixieDecoder::Event::message) stopped = true;
    });
    rest.remove_prefix(n);
    step = step * 5 % 9 + 1;
  }
  if (stopped != decoder.stopped()) std::abort();

  // Round trip of a frame whose text is the input up to its first 0xFF.
  const std::string_view text = stream.substr(0, stream.find('\xff'));
  if (text.size() <= 4096) {
    HixieDecoder round(4096);
    std::vector<std::string> messages;
    bool error = false;
    round.feed(hixie_frame(text), [&](HixieDecoder::Event event, std::string_view t) {
      if (event == HixieDecoder::Event::message) messages.emplace_back(t);
      else error = true;
    });
    // The decoder may refuse text that is not UTF-8; what it accepts must be the text.
    if (!error && (messages.size() != 1 || messages[0] != text)) std::abort();
  }
  (void)hixie_close_frame();

  // Lines.
  LineFramer lines(max_bytes);
  rest = stream;
  step = 1;
  while (!rest.empty()) {
    const size_t n = step < rest.size() ? step : rest.size();
    lines.feed(
        rest.substr(0, n),
        [&](std::string_view line) {
          if (line.size() > max_bytes || line.find('\n') != std::string_view::npos) std::abort();
        },
        [](size_t) {});
    rest.remove_prefix(n);
    step = step * 3 % 17 + 1;
  }
  lines.reset();
  return 0;
}
