// Adapter construction by configuration type.
#include "device-adapters/adapter_factory.h"

#include "common/log.h"
#include "device-adapters/audio/audio_adapter.h"
#include "device-adapters/mqtt/mqtt_adapter.h"
#include "device-adapters/serial/serial_adapter.h"
#include "device-adapters/sim/sim_adapter.h"
#include "device-adapters/wifly/wifly_adapter.h"

namespace flatlink::adapters {

std::unique_ptr<Adapter> make_adapter(const config::AdapterConfig& config, EventLoop& loop, AdapterHost& host,
                                      const Clock& clock) {
  std::unique_ptr<Adapter> adapter;
  const char* type = "?";
  std::string name;
  if (const auto* sim = std::get_if<config::SimAdapterConfig>(&config)) {
    return std::make_unique<sim::SimAdapter>(*sim, loop, host, clock);
  } else if (const auto* c = std::get_if<config::SerialAdapterConfig>(&config)) {
    type = "serial";
    name = c->name;
    adapter = serial::make_serial_adapter(*c, loop, host, clock);
  } else if (const auto* c = std::get_if<config::WiflyAdapterConfig>(&config)) {
    type = "wifly";
    name = c->name;
    adapter = wifly::make_wifly_adapter(*c, loop, host, clock);
  } else if (const auto* c = std::get_if<config::MqttAdapterConfig>(&config)) {
    type = "mqtt";
    name = c->name;
    adapter = mqtt::make_mqtt_adapter(*c, loop, host, clock);
  } else if (const auto* c = std::get_if<config::AudioAdapterConfig>(&config)) {
    type = "audio";
    name = c->name;
    adapter = audio::make_audio_adapter(*c, loop, host, clock);
  }
  if (!adapter) LOG_ERROR("gateway") << "adapter=" << name << " type " << type << " is not available in this build";
  return adapter;
}

}  // namespace flatlink::adapters
