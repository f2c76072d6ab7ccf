// Prometheus text rendering of the cloud's counters.
#include "cloud-server/metrics.h"

#include <sstream>

#include "cloud-server/ws_frame_guard.h"

namespace flatlink::cloud {

std::string Metrics::render() const {
  std::ostringstream os;
  auto metric = [&](const char* name, const char* type, const char* help) {
    os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  metric("flatlink_links", "gauge", "Open WebSocket links by kind.");
  os << "flatlink_links{kind=\"gateway\"} " << gateway_links << '\n';
  os << "flatlink_links{kind=\"browser\"} " << browser_links << '\n';
  metric("flatlink_messages_in_total", "counter", "Messages received by kind of peer.");
  os << "flatlink_messages_in_total{kind=\"gateway\"} " << gateway_messages_in << '\n';
  os << "flatlink_messages_in_total{kind=\"browser\"} " << browser_messages_in << '\n';
  metric("flatlink_messages_out_total", "counter", "Messages sent by kind of peer.");
  os << "flatlink_messages_out_total{kind=\"gateway\"} " << gateway_messages_out << '\n';
  os << "flatlink_messages_out_total{kind=\"browser\"} " << browser_messages_out << '\n';
  metric("flatlink_statuses_total", "counter", "Statuses accepted from gateways.");
  os << "flatlink_statuses_total " << statuses << '\n';
  metric("flatlink_duplicate_statuses_total", "counter", "Statuses dropped because their seq was already seen.");
  os << "flatlink_duplicate_statuses_total " << duplicate_statuses << '\n';
  metric("flatlink_dropped_state_keys_total", "counter",
         "Status values dropped because their device already has max_state_keys values under other keys.");
  os << "flatlink_dropped_state_keys_total " << dropped_state_keys << '\n';
  metric("flatlink_acks_total", "counter", "Acks sent to gateways.");
  os << "flatlink_acks_total " << acks << '\n';
  metric("flatlink_refused_messages_total", "counter", "Messages refused as malformed or not allowed.");
  os << "flatlink_refused_messages_total " << refused_messages << '\n';
  metric("flatlink_auth_failures_total", "counter", "Refused gateway tokens and browser logins.");
  os << "flatlink_auth_failures_total " << auth_failures << '\n';
  metric("flatlink_rate_limited_total", "counter", "Connections closed for exceeding the message rate.");
  os << "flatlink_rate_limited_total " << rate_limited << '\n';
  metric("flatlink_replaced_gateways_total", "counter", "Gateway links replaced by a newer one for the same flat.");
  os << "flatlink_replaced_gateways_total " << replaced_gateways << '\n';
  metric("flatlink_browser_resyncs_total", "counter",
         "Browsers that fell too far behind: their queued state messages replaced by one snapshot.");
  os << "flatlink_browser_resyncs_total " << browser_resyncs << '\n';
  metric("flatlink_gateway_dropped_statuses", "gauge", "Statuses the gateways report their outboxes dropped (sum over flats, as last reported).");
  os << "flatlink_gateway_dropped_statuses " << gateway_dropped << '\n';
  metric("flatlink_gateway_coalesced_statuses", "gauge",
         "Statuses the gateways report their full outboxes folded into newer states (sum over flats, as last reported).");
  os << "flatlink_gateway_coalesced_statuses " << gateway_coalesced << '\n';
  metric("flatlink_gateway_lost_statuses", "gauge",
         "Statuses the gateways report may be lost because they found their store gone, damaged or emptied (sum over flats, as last reported).");
  os << "flatlink_gateway_lost_statuses " << gateway_lost << '\n';
  metric("flatlink_commands_total", "counter", "Commands by result.");
  for (size_t i = 0; i < commands.size(); ++i) {
    os << "flatlink_commands_total{result=\"" << to_string(static_cast<Outcome>(i)) << "\"} " << commands[i] << '\n';
  }
  metric("flatlink_refused_upgrades_total", "counter", "WebSocket upgrades refused, by reason.");
  os << "flatlink_refused_upgrades_total{reason=\"origin\"} " << refused_upgrades_origin << '\n';
  os << "flatlink_refused_upgrades_total{reason=\"invalid\"} " << refused_upgrades_invalid << '\n';
  os << "flatlink_refused_upgrades_total{reason=\"caps\"} " << refused_upgrades_caps << '\n';
  metric("flatlink_unmasked_frames_total", "counter",
         "Connections closed (or upgrades refused) for a client frame that was not masked (RFC 6455 5.1).");
  os << "flatlink_unmasked_frames_total " << ws_guard::refused_total() << '\n';
  metric("flatlink_refused_http_total", "counter", "HTTP requests answered 405, 414 or 431.");
  os << "flatlink_refused_http_total " << refused_http << '\n';
  metric("flatlink_slow_closed_total", "counter", "Links closed for not reading (output over its hard limit or the budget).");
  os << "flatlink_slow_closed_total " << slow_closed << '\n';
  metric("flatlink_gateway_paced_total", "counter", "Times a gateway's reads paused to hold it to its message rate.");
  os << "flatlink_gateway_paced_total " << gateway_paced << '\n';
  metric("flatlink_output_queued_bytes", "gauge", "Output queued for all links, against limits.output_budget_bytes.");
  os << "flatlink_output_queued_bytes " << output_queued_bytes << '\n';
  metric("flatlink_logins_refused_total", "counter", "Browser logins not checked, by reason.");
  os << "flatlink_logins_refused_total{reason=\"banned\"} " << logins_banned << '\n';
  os << "flatlink_logins_refused_total{reason=\"busy\"} " << logins_busy << '\n';
  metric("flatlink_logins_delayed_total", "counter", "Login checks held back after earlier failures.");
  os << "flatlink_logins_delayed_total " << logins_delayed << '\n';
  metric("flatlink_login_bans_total", "counter", "Bans imposed on a source address or an account.");
  os << "flatlink_login_bans_total " << bans << '\n';
  metric("flatlink_login_bans_active", "gauge", "Bans in force now.");
  os << "flatlink_login_bans_active " << active_bans << '\n';
  metric("flatlink_events_dropped_total", "counter", "Event log entries dropped: the database was away and the buffer full.");
  os << "flatlink_events_dropped_total " << events_dropped << '\n';
  metric("flatlink_webhook_sent_total", "counter", "Notifications delivered to a flat's webhook (a 2xx answer).");
  os << "flatlink_webhook_sent_total " << webhook_sent << '\n';
  metric("flatlink_webhook_failed_total", "counter", "Notifications given up after the last attempt.");
  os << "flatlink_webhook_failed_total " << webhook_failed << '\n';
  metric("flatlink_webhook_retried_total", "counter", "Webhook attempts that failed and were tried again.");
  os << "flatlink_webhook_retried_total " << webhook_retried << '\n';
  metric("flatlink_webhook_dropped_total", "counter",
         "Notifications dropped unsent: the flat's queue was full or its webhook removed.");
  os << "flatlink_webhook_dropped_total " << webhook_dropped << '\n';
  if (history_in_store) {
    metric("flatlink_history_written_total", "counter", "Status values written to the store's history.");
    os << "flatlink_history_written_total " << history_written << '\n';
    metric("flatlink_history_dropped_total", "counter",
           "Status values not stored: the buffer was full while the database was away or behind.");
    os << "flatlink_history_dropped_total " << history_dropped << '\n';
    metric("flatlink_history_waiting", "gauge", "Status values waiting to be written (store.history.buffer_max at most).");
    os << "flatlink_history_waiting " << history_waiting << '\n';
  }
  if (backplane_enabled) {
    metric("flatlink_backplane_connected", "gauge", "1 while connected to a backplane broker.");
    os << "flatlink_backplane_connected " << (backplane_connected ? 1 : 0) << '\n';
    metric("flatlink_backplane_messages_total", "counter", "Backplane messages by direction.");
    os << "flatlink_backplane_messages_total{direction=\"in\"} " << backplane_messages_in << '\n';
    os << "flatlink_backplane_messages_total{direction=\"out\"} " << backplane_messages_out << '\n';
    metric("flatlink_backplane_refused_total", "counter", "Backplane messages refused (not ours, malformed, crossing flats).");
    os << "flatlink_backplane_refused_total " << backplane_refused << '\n';
    metric("flatlink_backplane_rejected_total", "counter",
           "Backplane messages without a valid tag of the instances' shared key (backplane.shared_key_file), dropped unread.");
    os << "flatlink_backplane_rejected_total " << backplane_rejected << '\n';
    metric("flatlink_backplane_command_round_trips_total", "counter", "Commands answered by a gateway held by another instance.");
    os << "flatlink_backplane_command_round_trips_total " << backplane_round_trips << '\n';
    metric("flatlink_backplane_command_round_trip_seconds_sum", "counter", "Summed time of those round trips.");
    os << "flatlink_backplane_command_round_trip_seconds_sum " << static_cast<double>(backplane_round_trip_ms) / 1000.0 << '\n';
    metric("flatlink_backplane_takeovers_total", "counter", "Gateway links closed here because another instance took the flat.");
    os << "flatlink_backplane_takeovers_total " << backplane_takeovers << '\n';
    metric("flatlink_backplane_catch_up_gaps_total", "counter",
           "Statuses a moved gateway's last holder acknowledged that had not arrived here within catch_up_ms.");
    os << "flatlink_backplane_catch_up_gaps_total " << backplane_catch_up_gaps << '\n';
    metric("flatlink_backplane_gap_repaired_total", "counter",
           "Statuses that did not arrive here from their holder in order, then sent again by it on request.");
    os << "flatlink_backplane_gap_repaired_total " << backplane_gap_repaired << '\n';
    metric("flatlink_backplane_gap_lost_total", "counter",
           "Statuses that did not arrive here from their holder and that it could not send again (not shown here).");
    os << "flatlink_backplane_gap_lost_total " << backplane_gap_lost << '\n';
    metric("flatlink_backplane_resyncs_total", "counter",
           "Reconnects to a broker that had lost this instance's session: every watched flat asked its holder again.");
    os << "flatlink_backplane_resyncs_total " << backplane_resyncs << '\n';
    metric("flatlink_backplane_dropped_total", "counter",
           "Publishes refused because too many waited for the broker (each closes its gateway's link).");
    os << "flatlink_backplane_dropped_total " << backplane_dropped << '\n';
  }
  return os.str();
}

}  // namespace flatlink::cloud
