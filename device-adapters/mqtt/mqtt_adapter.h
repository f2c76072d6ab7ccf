// The mqtt adapter (device-adapters/mqtt): devices behind the home's MQTT
// broker (Tasmota, Zigbee2MQTT, Home Assistant discovery, generic rules).
// See docs/adapters/mqtt.md.
#pragma once

#include <memory>

#include "common/clock.h"
#include "common/event_loop.h"
#include "config/gateway_config.h"
#include "device-adapters/adapter.h"

namespace flatlink::adapters::mqtt {

// Null when this build has no mqtt adapter.
std::unique_ptr<Adapter> make_mqtt_adapter(const config::MqttAdapterConfig& config, EventLoop& loop, AdapterHost& host,
                                            const Clock& clock);

}  // namespace flatlink::adapters::mqtt
