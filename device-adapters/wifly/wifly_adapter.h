// The wifly adapter (device-adapters/wifly): see docs/adapters/wifly.md.
#pragma once

#include <memory>

#include "common/clock.h"
#include "common/event_loop.h"
#include "config/gateway_config.h"
#include "device-adapters/adapter.h"

namespace flatlink::adapters::wifly {

// Null when this build has no wifly adapter.
std::unique_ptr<Adapter> make_wifly_adapter(const config::WiflyAdapterConfig& config, EventLoop& loop, AdapterHost& host,
                                            const Clock& clock);

}  // namespace flatlink::adapters::wifly
