// The WiFly marker filter (device-adapters/wifly/wifly_markers.h) on a byte stream
// split into reads of varying size. Checked: data plus markers account for every
// byte; the bytes that come out are the same whichever way the stream is split.
// First input byte: the split pattern.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "device-adapters/wifly/wifly_markers.h"

using namespace flatlink::adapters::wifly;

namespace {

struct Outcome {
  std::string data;
  std::vector<Marker> markers;
  size_t marker_bytes = 0;
};

Outcome run(std::string_view stream, unsigned seed) {
  const MarkerStrings strings;
  MarkerFilter filter(strings);
  Outcome out;
  auto on_marker = [&](Marker m) {
    out.markers.push_back(m);
    out.marker_bytes += m == Marker::open ? strings.open.size()
                        : m == Marker::close ? strings.close.size()
                                             : strings.hello.size();
  };
  size_t step = seed % 13 + 1;
  while (!stream.empty()) {
    const size_t n = step < stream.size() ? step : stream.size();
    filter.feed(stream.substr(0, n), out.data, on_marker);
    if (filter.pending() >= 8) std::abort();  // holds back less than the longest marker
    stream.remove_prefix(n);
    step = (step * 7 + seed) % 11 + 1;
  }
  filter.flush(out.data);
  if (filter.pending() != 0) std::abort();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const unsigned seed = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Outcome whole = run(stream, 1'000'000);  // step stays large: few reads
  const Outcome split = run(stream, seed);
  if (whole.data.size() + whole.marker_bytes != stream.size()) std::abort();
  if (split.data != whole.data || split.markers != whole.markers) std::abort();
  return 0;
}
