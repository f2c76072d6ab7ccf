// The mqtt adapter: not written yet.
#include "device-adapters/mqtt/mqtt_adapter.h"

namespace flatlink::adapters::mqtt {

std::unique_ptr<Adapter> make_mqtt_adapter(const config::MqttAdapterConfig&, EventLoop&, AdapterHost&, const Clock&) {
  return nullptr;
}

}  // namespace flatlink::adapters::mqtt
