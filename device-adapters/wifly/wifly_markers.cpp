// WiFly connection markers taken out of a byte stream.
#include "device-adapters/wifly/wifly_markers.h"

namespace flatlink::adapters::wifly {

std::string_view to_string(Marker marker) {
  switch (marker) {
    case Marker::hello: return "hello";
    case Marker::open: return "open";
    case Marker::close: return "close";
  }
  return "?";
}

MarkerFilter::MarkerFilter(Strings strings)
    : markers_{Entry{std::move(strings.hello), Marker::hello}, Entry{std::move(strings.open), Marker::open},
               Entry{std::move(strings.close), Marker::close}} {}

void MarkerFilter::feed(std::string_view in, std::string& out, const OnMarker& on_marker) {
  // Work on held-back bytes plus the new ones; markers are short (<= 32 bytes)
  // and rare, so a simple scan per position is cheap enough.
  std::string buffer;
  std::string_view data = in;
  if (!held_.empty()) {
    buffer = std::move(held_);
    held_.clear();
    buffer.append(in);
    data = buffer;
  }
  size_t i = 0;
  size_t copied = 0;
  while (i < data.size()) {
    bool matched = false;
    bool partial = false;
    for (const Entry& m : markers_) {
      if (m.text.empty() || data[i] != m.text[0]) continue;
      const std::string_view rest = data.substr(i);
      if (rest.size() >= m.text.size()) {
        if (rest.substr(0, m.text.size()) == m.text) {
          out.append(data.substr(copied, i - copied));
          if (on_marker) on_marker(m.marker);
          i += m.text.size();
          copied = i;
          matched = true;
          break;
        }
      } else if (std::string_view(m.text).substr(0, rest.size()) == rest) {
        partial = true;  // the stream ends inside what may be this marker
      }
    }
    if (matched) continue;
    if (partial) {
      out.append(data.substr(copied, i - copied));
      held_.assign(data.substr(i));
      return;
    }
    ++i;
  }
  out.append(data.substr(copied));
}

void MarkerFilter::flush(std::string& out) {
  out.append(held_);
  held_.clear();
}

}  // namespace flatlink::adapters::wifly
