// Typed configuration of the WiFly adapter (device-adapters/wifly).
#pragma once

#include <cstdint>
#include <string>

namespace flatlink::config {

struct WiflyAdapterConfig {
  std::string name;
};

}  // namespace flatlink::config
