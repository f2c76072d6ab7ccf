// The cloud's counters, rendered in the Prometheus text format for GET /metrics.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "common/device_model.h"

namespace flatlink::cloud {

struct Metrics {
  int64_t gateway_links = 0;
  int64_t browser_links = 0;
  uint64_t gateway_messages_in = 0;
  uint64_t gateway_messages_out = 0;
  uint64_t browser_messages_in = 0;
  uint64_t browser_messages_out = 0;
  uint64_t statuses = 0;              // accepted, new
  uint64_t duplicate_statuses = 0;    // seq already seen: dropped
  uint64_t acks = 0;
  uint64_t refused_messages = 0;      // failed to decode or not allowed
  uint64_t auth_failures = 0;
  uint64_t rate_limited = 0;          // connections closed for sending too fast
  uint64_t replaced_gateways = 0;
  int64_t gateway_dropped = 0;        // statuses the gateways' outboxes report as dropped
  std::array<uint64_t, 6> commands{};  // by Outcome

  void count_command(Outcome outcome) { ++commands[static_cast<size_t>(outcome)]; }
  std::string render() const;
};

}  // namespace flatlink::cloud
