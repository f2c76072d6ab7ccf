// The configuration loader (config/config_loader.h) on the text of a gateway and of a
// cloud config file. Contract: a ConfigError or a config, never a throw or a crash.
// Files named in the text (token_file, TLS files) resolve against a folder that does
// not exist, so the outcome does not depend on the machine; an absolute path is read
// with the loader's own bounded, non-blocking read.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "config/config_loader.h"

using namespace flatlink::config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string base = "/nonexistent-flatlink-fuzz";
  const auto gateway = parse_gateway_config(text, "gateway.json", base);
  if (const auto* config = std::get_if<GatewayConfig>(&gateway)) (void)summarize(*config);
  const auto cloud = parse_cloud_config(text, "cloud.json", base);
  if (const auto* config = std::get_if<CloudConfig>(&cloud)) (void)summarize(*config);
  return 0;
}
