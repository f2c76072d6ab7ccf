// Typed configuration of flatlink-cloud, the cloud server.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/log.h"

namespace flatlink::config {

struct UserConfig {
  std::string name;
  std::string password_hash;  // Argon2id PHC string, or a legacy "pbkdf2-sha256$<iterations>$<salt-hex>$<hash-hex>"
};

struct FlatConfig {
  std::string id;
  std::string name;
  std::string gateway_token_sha256;  // hex SHA-256 of the flat's gateway token
  std::vector<UserConfig> users;     // who may open this flat in a browser
};

struct TlsServerConfig {
  std::string cert_file;  // PEM; empty = plain ws:// (loopback or behind a TLS proxy)
  std::string key_file;
};

struct LimitsConfig {
  uint32_t handshake_timeout_s = 10;     // upgrade + hello/login must complete within this
  uint32_t max_message_bytes = 65'536;   // a larger frame closes the connection
  uint32_t messages_per_s = 200;         // per connection, token bucket rate
  uint32_t burst = 400;                  // per connection, token bucket size; loader default 2 x messages_per_s
  uint32_t history_points = 720;         // per numeric capability, for the dashboard chart
  uint32_t command_timeout_ms = 15'000;  // a command without a result by then ends "timeout"
  uint32_t max_streams_per_flat = 2;     // device streams open at once per flat (docs/protocol.md, "Streams")
  uint32_t max_stream_kbps_per_flat = 600;  // their summed payload bitrate; one pcm16 16 kHz stream is 256
  uint32_t stream_buffer_ms = 200;       // audio queued per stream and connection; the oldest beyond is dropped
  // Connections (docs/operations.md, "Security"): defaults sized for a building.
  // Gateways prove their token in the upgrade and are not counted per address (a building
  // may share one); browsers are.
  uint32_t max_browsers_per_ip = 64;           // browser links from one address
  uint32_t max_unauthenticated_per_ip = 16;    // browser links from one address not logged in yet
  uint32_t max_connections_per_user = 16;      // browsers logged in as one user of one flat
  // Output waiting for a peer's socket, in bytes (Redis' client-output-buffer-limit): over
  // the soft limit a browser's queued state is replaced by one snapshot and its reads pause;
  // over the hard limit (or the soft one again at once) it is closed 1008 "too slow".
  uint32_t browser_queue_soft_bytes = 256 * 1024;
  uint32_t browser_queue_hard_bytes = 1024 * 1024;
  uint32_t gateway_queue_hard_bytes = 8 * 1024 * 1024;  // commands to one gateway
  uint32_t output_budget_bytes = 48 * 1024 * 1024;      // all queued output of the instance together
};

// Failed browser logins (docs/operations.md, "Security"), per source address and per
// account (flat + user): after each failure the next check waits delay_base_ms, doubled per
// failure up to delay_max_ms; after ban_after failures the source (or the account, for
// requests from anywhere) is banned for ban_s. A good login clears its source's and its
// account's count. Password checks run on `workers` threads, taken in turn per source.
struct LoginConfig {
  uint32_t ban_after = 10;
  uint32_t ban_s = 600;
  uint32_t delay_base_ms = 250;
  uint32_t delay_max_ms = 8'000;
  uint32_t workers = 2;
  uint32_t queue_per_source = 4;  // checks waiting per source; more are answered "busy" and closed
  uint32_t queue_total = 256;     // checks waiting in all
};

// /metrics: its own listener, loopback by default (Prometheus scrapes it there or
// through a proxy); port 0 turns it off.
struct MetricsListenerConfig {
  std::string listen_address = "127.0.0.1";
  uint16_t port = 9464;
  bool operator==(const MetricsListenerConfig&) const = default;
};

// The flats' notification webhooks (docs/configuration.md "Notifications").
struct WebhooksConfig {
  // More CA certificates (PEM) that https webhook receivers may be signed by, besides the
  // system's; empty: the system's only.
  std::string ca_file;
  bool operator==(const WebhooksConfig&) const = default;
};

// Joining other flatlink-cloud instances over an MQTT broker (docs/scale-out.md).
// Off unless the config has a "backplane" section.
struct BackplaneBroker {
  std::string host;
  uint16_t port = 1883;
  bool operator==(const BackplaneBroker&) const = default;
};

struct BackplaneConfig {
  bool enabled = false;
  std::string instance_id;                // unique per instance; names its topics and its MQTT client id
  std::vector<BackplaneBroker> brokers;   // tried in turn
  bool tls = false;                       // mqtts:// brokers: TLS with the broker's certificate verified
  std::string ca_file;                    // empty: the system's CA folder
  std::string cert_file;                  // client certificate, with key_file
  std::string key_file;
  std::string username;
  std::string password;                   // from password_file; never logged
  std::string password_file;
  // The key every instance shares: each backplane message carries an HMAC-SHA256 of its topic
  // and payload under it, and one without a valid tag is dropped (docs/scale-out.md, "Security").
  std::string shared_key;                 // from shared_key_file; never logged
  std::string shared_key_file;
  bool insecure = false;                  // no key: messages are neither signed nor checked
  uint16_t keepalive_s = 10;              // also bounds how long a dead instance's flats look held
  uint32_t backoff_base_ms = 200;
  uint32_t backoff_max_ms = 5'000;
  uint32_t command_offline_ms = 2'000;    // a command no holder takes within this ends "offline"
  // A gateway that moved here is answered once the statuses its last holder acknowledged have
  // arrived over the backplane, or after this long (the rest then count as a gap).
  uint32_t catch_up_ms = 10'000;
  bool operator==(const BackplaneConfig&) const = default;  // a reload tells a change apart
};

// The cloud's store (cloud-server/store/, docs/configuration.md#store). Without a `store`
// section the cloud keeps nothing: accounts come from `flats`, history stays in memory.
struct StoreConfig {
  bool enabled = false;
  std::string engine = "sqlite";  // "sqlite" (one file, the embedded default) or "postgresql"
  std::string path;               // sqlite: the database file (relative to the config's folder)
  std::string url;                // postgresql: a libpq connection string, without a password
  std::string password_file;      // postgresql: the password, from this file; never logged
  std::string password;
  uint32_t poll_ms = 500;         // how often the accounts' change counter is read
  uint32_t queue_max = 100'000;   // store calls waiting for the worker; beyond, writes are dropped and counted
  // History (store.history, docs/configuration.md#store): every status value, raw and rolled
  // up per minute and hour, each level kept this long.
  bool history = true;
  uint32_t history_raw_days = 7;
  uint32_t history_minute_days = 90;
  uint32_t history_hour_days = 1825;
  uint32_t history_buffer_max = 200'000;  // values waiting to be written; beyond, dropped and counted
  // Sessions (POST /session): idle timeout (each use moves it on) and absolute expiry.
  uint32_t session_idle_s = 7 * 86'400;
  uint32_t session_max_s = 30 * 86'400;
  // The event log: rows older than this are deleted (hourly); events waiting while the
  // database is away are bounded by events_buffer_max, beyond it the oldest are dropped and counted.
  uint32_t events_retention_days = 365;
  uint32_t events_buffer_max = 10'000;
};

struct CloudConfig {
  std::string source;
  std::string listen_address = "127.0.0.1";
  uint16_t port = 8080;
  TlsServerConfig tls;
  std::string dashboard_dir;  // static files of the dashboard; empty = the built-in path
  StoreConfig store;
  log::Level log_level = log::Level::info;
  // What the server's loop waits on: "poll" (lws' own loop) or "libuv" (epoll: the cost of an
  // event does not grow with the number of links). poll by default: Debian's lws 4.1.6, built
  // with _DEBUG, drops the close frame of a server-side close on libuv (upstream issue 3569),
  // so a refused login would see 1006 instead of its close code. docs/configuration.md.
  enum class EventLoopKind { libuv, poll };
  EventLoopKind event_loop = EventLoopKind::poll;
  LimitsConfig limits;
  LoginConfig login;
  MetricsListenerConfig metrics;
  WebhooksConfig webhooks;
  // Pages allowed to open a browser WebSocket, as "scheme://host[:port]". A request with an
  // Origin header must match one, or the Host it was sent to (the dashboard's own origin,
  // always allowed); others get 403. Programs that send no Origin are not browsers.
  std::vector<std::string> allowed_origins;
  BackplaneConfig backplane;
  // The repository's demo (scripts/demo.sh): only then may the published demo credentials
  // (docs/configuration.md) be used; flatlink-cloud refuses them otherwise.
  bool demo = false;
  std::vector<FlatConfig> flats;
};

}  // namespace flatlink::config
