// Finds a WiFly module's connection markers (*HELLO*, *OPEN*, *CLOS*) in a
// byte stream and takes them out, so that they never reach a line or a frame.
//
// The module writes its markers at any point of the stream (RN131/RN171 user
// guide: `set comm remote` is sent to the TCP peer when the connection opens,
// `set comm open` / `set comm close` when the TCP port opens or closes), and
// TCP may split one over two reads. The filter holds back a tail that could
// still become a marker until the next bytes decide. Pure code: no I/O.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <string_view>

namespace flatlink::adapters::wifly {

enum class Marker { hello, open, close };

std::string_view to_string(Marker marker);

// The marker strings a module is configured with (`set comm open/close/remote`).
struct MarkerStrings {
  std::string open = "*OPEN*";
  std::string close = "*CLOS*";
  std::string hello = "*HELLO*";
};

class MarkerFilter {
 public:
  using Strings = MarkerStrings;
  // Called for each marker at the point of the stream where it stood: data
  // before it has been appended to `out` already.
  using OnMarker = std::function<void(Marker)>;

  explicit MarkerFilter(Strings strings = {});

  // Appends the bytes of `in` that are data to `out`; markers call on_marker.
  void feed(std::string_view in, std::string& out, const OnMarker& on_marker);
  // The held-back tail as data (e.g. when the stream ends).
  void flush(std::string& out);
  // Bytes held back because they could still become a marker.
  size_t pending() const { return held_.size(); }

 private:
  struct Entry {
    std::string text;
    Marker marker;
  };
  std::array<Entry, 3> markers_;
  std::string held_;
};

}  // namespace flatlink::adapters::wifly
