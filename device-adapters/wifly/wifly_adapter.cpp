// The wifly adapter: not written yet.
#include "device-adapters/wifly/wifly_adapter.h"

namespace flatlink::adapters::wifly {

std::unique_ptr<Adapter> make_wifly_adapter(const config::WiflyAdapterConfig&, EventLoop&, AdapterHost&, const Clock&) {
  return nullptr;
}

}  // namespace flatlink::adapters::wifly
