// Reads and validates configuration files. Every field is checked, unknown keys
// are refused, and an error names the file, the JSON path and what was expected:
//   gateway.json: adapters[1].baud: expected one of 9600, 19200, ..., got "fast"
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <variant>

#include "common/cli.h"
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

// For a daemon's main: the configuration at path, or the exit code to return now —
// cli::kExitFailure after printing why it is invalid, or cli::kExitOk after printing the
// summary when only checking (--check-config).
template <class T, class Load>
std::variant<T, int> load_for_main(const char* program, const std::string& path, bool check_only, Load load) {
  Loaded<T> loaded = load(path);
  if (const auto* error = std::get_if<ConfigError>(&loaded)) {
    std::fprintf(stderr, "%s: %s\n", program, error->message.c_str());
    return cli::kExitFailure;
  }
  T& config = std::get<T>(loaded);
  if (check_only) {
    std::printf("%s: valid\n%s", path.c_str(), summarize(config).c_str());
    return cli::kExitOk;
  }
  return std::move(config);
}

}  // namespace flatlink::config
