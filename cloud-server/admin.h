// `flatlink-cloud admin …` and `flatlink-cloud migrate`: provisioning against the store the
// cloud's config names (docs/operations.md). Runs outside the server, blocking, on its own
// connection; the running cloud picks each change up within store.poll_ms.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "config/cloud_config.h"

namespace flatlink::cloud {

// `args` starts after "admin"; secrets (passwords) are read from `in`, one line each.
// Returns the process exit code (0 done, 1 failure, 2 bad usage).
int run_admin(const config::CloudConfig& config, const std::vector<std::string>& args, std::istream& in,
              std::ostream& out, std::ostream& err);
// Applies the schema migrations; prints the version reached.
int run_migrate(const config::CloudConfig& config, std::ostream& out, std::ostream& err);

// `flatlink-cloud status`: the listener, /metrics (links), the store; 1 when not running.
int run_status(const config::CloudConfig& config, std::ostream& out, std::ostream& err);
// `backup DIR`: a new folder (0700) in DIR with cloud.json and, for SQLite, cloud.db made
// with VACUUM INTO while the cloud runs (PostgreSQL: pg_dump). Prints the folder.
int run_backup(const config::CloudConfig& config, const std::string& config_path, const std::string& dir,
               std::ostream& out, std::ostream& err);
// `restore FOLDER`: puts a backup's config and SQLite store back (owners kept); the cloud stopped.
int run_restore(const config::CloudConfig& config, const std::string& config_path, const std::string& folder,
                std::ostream& out, std::ostream& err);

extern const char* const kAdminUsage;

}  // namespace flatlink::cloud
