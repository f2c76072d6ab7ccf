// The serial adapter's input path (device-adapters/serial): the line framer cutting
// the port's bytes into lines, then each line parsed in both line protocols, with
// and without a port device, against a device that declares capabilities of every type.
// A parsed line's values are written back with encode_command, as a command would be.
// First input byte: the framer's maximum line length (1..256) and the protocol order.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "device-adapters/serial/line_framer.h"
#include "device-adapters/serial/line_protocol.h"

using namespace flatlink;
using namespace flatlink::adapters::serial;
using flatlink::config::LineProtocol;

namespace {

const DeviceInfo& lamp() {
  static const DeviceInfo info = [] {
    DeviceInfo d;
    d.id = "lamp";
    d.capabilities = {Capability::boolean("on", true), Capability::integer("brightness", 0, 100, true),
                      Capability::number("temp", -40, 125, false),
                      Capability::enumeration("mode", {"eco", "comfort"}, true)};
    Capability note;
    note.name = "note";
    note.type = ValueType::text;
    note.writable = true;
    note.max_length = 16;
    d.capabilities.push_back(note);
    return d;
  }();
  return info;
}

const Capability* lookup(const std::string& device, const std::string& name) {
  return device == "lamp" ? lamp().capability(name) : nullptr;
}

void parse_all(std::string_view line) {
  for (const LineProtocol protocol : {LineProtocol::json, LineProtocol::keyvalue}) {
    for (const char* port_device : {"", "lamp"}) {
      std::string why;
      const auto parsed = parse_line(protocol, line, port_device, lookup, why);
      if (parsed) {
        std::string ignored;
        (void)encode_command(protocol, parsed->device, parsed->values, ignored);
      } else if (why.empty()) {
        std::abort();  // refused without saying why
      }
    }
  }
  (void)valid_utf8(line);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t max_bytes = 1 + data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  // Whole input as one line, as the adapter never sees it but the parser must survive.
  parse_all(rest);

  // Through the framer, fed in pieces of varying size.
  LineFramer framer(
      max_bytes,
      [&](std::string_view line) {
        if (line.size() > max_bytes || line.empty() || line.find('\n') != std::string_view::npos) std::abort();
        parse_all(line);
      },
      [](size_t) {});
  size_t step = 1;
  while (!rest.empty()) {
    const size_t n = step < rest.size() ? step : rest.size();
    framer.feed(rest.substr(0, n));
    rest.remove_prefix(n);
    step = step * 3 % 17 + 1;
  }
  framer.reset();
  return 0;
}
