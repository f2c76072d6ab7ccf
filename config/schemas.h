// The two configuration schemas, read from a parsed JSON document. Private to config/;
// the public entry points are in config_loader.h.
#pragma once

#include <string>

#include "common/log.h"
#include "config/config_loader.h"
#include "config/json_reader.h"

namespace flatlink::config::detail {

// `name` stands for the file in messages; `base_dir` resolves relative paths.
Loaded<GatewayConfig> read_gateway_config(const Json& doc, const std::string& name, const std::string& base_dir);
Loaded<CloudConfig> read_cloud_config(const Json& doc, const std::string& name, const std::string& base_dir);

// "password_file": a one-line secret file, resolved against base_dir; warns when
// every local user may read it. Shared by the MQTT adapter and the cloud's backplane.
bool read_password_file(ObjectReader& r, const std::string& base_dir, std::string& password, std::string& path);

// "log_level", shared by both files.
inline void read_log_level(ObjectReader& r, log::Level& out) {
  r.choice("log_level", out,
           {{"debug", log::Level::debug}, {"info", log::Level::info}, {"warn", log::Level::warn},
            {"error", log::Level::error}});
}

}  // namespace flatlink::config::detail
