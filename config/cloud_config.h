// Typed configuration of flatlink-cloud, the cloud server.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/log.h"

namespace flatlink::config {

struct UserConfig {
  std::string name;
  std::string password_hash;  // "pbkdf2-sha256$<iterations>$<salt-hex>$<hash-hex>"
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
  uint16_t keepalive_s = 10;              // also bounds how long a dead instance's flats look held
  uint32_t backoff_base_ms = 200;
  uint32_t backoff_max_ms = 5'000;
  uint32_t command_offline_ms = 2'000;    // a command no holder takes within this ends "offline"
  // A gateway that moved here is answered once the statuses its last holder acknowledged have
  // arrived over the backplane, or after this long (the rest then count as a gap).
  uint32_t catch_up_ms = 10'000;
  bool operator==(const BackplaneConfig&) const = default;  // a reload tells a change apart
};

struct CloudConfig {
  std::string source;
  std::string listen_address = "127.0.0.1";
  uint16_t port = 8080;
  TlsServerConfig tls;
  std::string dashboard_dir;  // static files of the dashboard; empty = the built-in path
  log::Level log_level = log::Level::info;
  LimitsConfig limits;
  BackplaneConfig backplane;
  // The repository's demo (scripts/demo.sh): only then may the published demo credentials
  // (docs/configuration.md) be used; flatlink-cloud refuses them otherwise.
  bool demo = false;
  std::vector<FlatConfig> flats;
};

}  // namespace flatlink::config
