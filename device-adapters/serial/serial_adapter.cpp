// The serial adapter: not written yet.
#include "device-adapters/serial/serial_adapter.h"

namespace flatlink::adapters::serial {

std::unique_ptr<Adapter> make_serial_adapter(const config::SerialAdapterConfig&, EventLoop&, AdapterHost&, const Clock&) {
  return nullptr;
}

}  // namespace flatlink::adapters::serial
