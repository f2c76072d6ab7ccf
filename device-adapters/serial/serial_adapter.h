// The serial adapter (device-adapters/serial): see docs/adapters/serial.md.
#pragma once

#include <memory>

#include "common/clock.h"
#include "common/event_loop.h"
#include "config/gateway_config.h"
#include "device-adapters/adapter.h"

namespace flatlink::adapters::serial {

// Null when this build has no serial adapter.
std::unique_ptr<Adapter> make_serial_adapter(const config::SerialAdapterConfig& config, EventLoop& loop, AdapterHost& host,
                                            const Clock& clock);

}  // namespace flatlink::adapters::serial
