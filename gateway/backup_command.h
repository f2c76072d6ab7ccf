// `flatlinkd backup DIR` and `flatlinkd restore FOLDER`: the gateway's config, its token file
// and the outbox (SQLite's online backup: consistent while the daemon runs) in one folder,
// and back. Command-line only: never runs inside the daemon.
#pragma once

#include <string>

#include "config/gateway_config.h"

namespace flatlink::gateway {

// Writes DIR/flatlinkd-<gateway_id>-<UTC time>/ (0700): gateway.json, the token file,
// outbox.db. Warns when DIR is on the device that holds the outbox (an SD card that fails
// takes both). Returns the exit code; says what it wrote or why not on stdout/stderr.
int backup_command(const config::GatewayConfig& cfg, const std::string& config_path, const std::string& dir);

// Puts a backup folder back: the outbox into state_dir (its -wal/-shm removed), the config
// and token file to their paths, owned like state_dir. Refuses while flatlinkd answers on
// its status socket (stop it first).
int restore_command(const config::GatewayConfig& cfg, const std::string& config_path, const std::string& folder,
                    const std::string& status_socket);

}  // namespace flatlink::gateway
