// Typed configuration of the MQTT adapter (device-adapters/mqtt).
#pragma once

#include <cstdint>
#include <string>

namespace flatlink::config {

struct MqttAdapterConfig {
  std::string name;
  std::string host = "127.0.0.1";
  uint16_t port = 1883;
};

}  // namespace flatlink::config
