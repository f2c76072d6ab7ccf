// Reads and validates configuration files. Every field is checked, unknown keys
// are refused, and an error names the file, the JSON path and what was expected:
//   gateway.json: adapters[1].baud: expected one of 9600, 19200, ..., got "fast"
#pragma once

#include <string>
#include <variant>

#include "config/cloud_config.h"
#include "config/gateway_config.h"

namespace flatlink::config {

struct ConfigError {
  std::string message;  // complete, ready to print
};

template <class T>
using Loaded = std::variant<T, ConfigError>;

// From a file; token_file and other referenced files are resolved relative to the
// config file's folder.
Loaded<GatewayConfig> load_gateway_config(const std::string& path);
Loaded<CloudConfig> load_cloud_config(const std::string& path);

// From text; `name` stands for the file in messages and `base_dir` resolves relative paths.
Loaded<GatewayConfig> parse_gateway_config(const std::string& text, const std::string& name,
                                           const std::string& base_dir = ".");
Loaded<CloudConfig> parse_cloud_config(const std::string& text, const std::string& name,
                                       const std::string& base_dir = ".");

// A few lines for --check-config: what was understood.
std::string summarize(const GatewayConfig& config);
std::string summarize(const CloudConfig& config);

}  // namespace flatlink::config
