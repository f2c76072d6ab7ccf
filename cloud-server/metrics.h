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
  uint64_t dropped_state_keys = 0;    // a status's values under a new key of a device that has max_state_keys
  uint64_t acks = 0;
  uint64_t refused_messages = 0;      // failed to decode or not allowed
  uint64_t auth_failures = 0;
  uint64_t rate_limited = 0;          // connections closed for sending too fast
  uint64_t replaced_gateways = 0;
  uint64_t browser_resyncs = 0;       // browsers too far behind whose queued state a snapshot replaced
  int64_t gateway_dropped = 0;        // statuses the gateways' outboxes report as dropped
  int64_t gateway_coalesced = 0;      // ... as folded into newer states of their device
  int64_t gateway_lost = 0;           // ... as maybe lost with a store found gone (docs/reliability.md, 4a)
  std::array<uint64_t, 6> commands{};  // by Outcome
  // The front door (docs/operations.md, "Security").
  uint64_t refused_upgrades_origin = 0;    // 403: a page of a foreign origin
  uint64_t refused_upgrades_invalid = 0;   // 400/426: not a valid RFC 6455 upgrade
  uint64_t refused_upgrades_caps = 0;      // 429: over a connection cap
  uint64_t refused_http = 0;               // 405/414/431
  uint64_t slow_closed = 0;                // peers closed for not reading (output over its hard limit or the budget)
  uint64_t gateway_paced = 0;              // times a gateway's reads paused for its rate
  int64_t output_queued_bytes = 0;         // all queued output now
  uint64_t logins_delayed = 0;             // checks held back after earlier failures
  uint64_t logins_banned = 0;              // logins refused: the source or the account is banned
  uint64_t logins_busy = 0;                // logins refused: the check queue (of the source, or all) is full
  uint64_t bans = 0;                       // bans imposed
  int64_t active_bans = 0;
  int64_t events_dropped = 0;  // the event log's buffer overflowed while the database was away
  // Notifications to the flats' webhooks (cloud-server/webhooks.h).
  uint64_t webhook_sent = 0;     // delivered (a 2xx answer)
  uint64_t webhook_failed = 0;   // given up after the last attempt
  uint64_t webhook_retried = 0;  // attempts that failed and were tried again
  uint64_t webhook_dropped = 0;  // dropped unsent: a flat's queue was full, or its webhook removed
  // The history's writer into the store (cloud-server/history.h); absent from /metrics without it.
  bool history_in_store = false;
  uint64_t history_written = 0;  // status values written
  uint64_t history_dropped = 0;  // ... dropped: the buffer was full (the database away or behind)
  int64_t history_waiting = 0;   // ... waiting in the buffer now
  // The backplane (docs/scale-out.md); absent from /metrics when it is off.
  bool backplane_enabled = false;
  bool backplane_connected = false;
  uint64_t backplane_messages_in = 0;
  uint64_t backplane_messages_out = 0;
  uint64_t backplane_refused = 0;       // failed the checks: not ours, malformed, crossing flats
  uint64_t backplane_rejected = 0;      // without a valid tag of the shared key (backplane.shared_key_file): dropped unread
  uint64_t backplane_round_trips = 0;   // commands answered by a gateway on another instance
  uint64_t backplane_round_trip_ms = 0; // their summed time, browser command to result
  uint64_t backplane_takeovers = 0;     // local links closed because another instance took the flat
  uint64_t backplane_catch_up_gaps = 0; // statuses a moved gateway's last holder acked that never arrived in time
  uint64_t backplane_gap_repaired = 0;  // statuses missed here, then sent again by their holder on request
  uint64_t backplane_gap_lost = 0;      // statuses missed here that the holder could not send again (counted lost)
  uint64_t backplane_resyncs = 0;       // reconnects to a broker that had lost this instance's session
  uint64_t backplane_dropped = 0;       // publishes refused: too many waited for the broker

  void count_command(Outcome outcome) { ++commands[static_cast<size_t>(outcome)]; }
  std::string render() const;
};

}  // namespace flatlink::cloud
