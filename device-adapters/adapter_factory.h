// Makes the adapter an entry of the gateway configuration describes.
#pragma once

#include <memory>

#include "common/clock.h"
#include "common/event_loop.h"
#include "config/gateway_config.h"
#include "device-adapters/adapter.h"

namespace flatlink::adapters {

// Null (and logged) when this build lacks that adapter type.
std::unique_ptr<Adapter> make_adapter(const config::AdapterConfig& config, EventLoop& loop, AdapterHost& host,
                                      const Clock& clock);

}  // namespace flatlink::adapters
