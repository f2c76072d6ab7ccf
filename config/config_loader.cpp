// Entry points of the configuration loader: reading the file, parsing without
// letting an exception out, handing over to the schema, and the --check-config summary.
#include "config/config_loader.h"

#include "config/adapter_schemas.h"

#include <exception>
#include <sstream>

#include "common/log.h"
#include "config/config_files.h"
#include "config/json_reader.h"
#include "config/schemas.h"

namespace flatlink::config {
namespace {

// Far above any real configuration; stops a mistaken path (a log, a disk image) early. A
// cloud's file lists every flat it serves without a store: 100,000 flats take ~10 MB.
constexpr size_t kMaxGatewayConfigBytes = 4 * 1024 * 1024;
constexpr size_t kMaxCloudConfigBytes = 64 * 1024 * 1024;

template <class Config, class Read>
Loaded<Config> parse_with(const std::string& text, const std::string& name, const std::string& base_dir, Read read) {
  try {
    detail::Json doc;
    std::string error;
    if (!detail::parse_json(text, name, doc, error)) return ConfigError{error};
    return read(doc, name, base_dir);
  } catch (const std::exception& e) {
    // The schema code does not throw by design; this keeps a surprise (bad_alloc)
    // from crossing the API.
    return ConfigError{name + ": " + e.what()};
  }
}

std::string plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}




std::string level_text(log::Level level) {
  std::string text(log::level_name(level));
  for (char& c : text) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return text;
}

void summarize_adapter(std::ostream& out, const SimAdapterConfig& sim) {
  out << "  sim '" << sim.name << "' (latency " << sim.latency_ms << " ms";
  if (sim.seed != 0) out << ", seed " << sim.seed;
  out << ") with " << plural(sim.devices.size(), "device", "devices") << ":";
  for (size_t i = 0; i < sim.devices.size(); ++i) {
    const SimDeviceConfig& device = sim.devices[i];
    out << (i == 0 ? " " : ", ") << device.id << " (" << device.kind;
    if (!device.room.empty()) out << ", " << device.room;
    out << ")";
  }
  out << "\n";
}

}  // namespace

Loaded<GatewayConfig> parse_gateway_config(const std::string& text, const std::string& name,
                                           const std::string& base_dir) {
  return parse_with<GatewayConfig>(text, name, base_dir, detail::read_gateway_config);
}

Loaded<CloudConfig> parse_cloud_config(const std::string& text, const std::string& name,
                                       const std::string& base_dir) {
  return parse_with<CloudConfig>(text, name, base_dir, detail::read_cloud_config);
}

Loaded<GatewayConfig> load_gateway_config(const std::string& path) {
  detail::FileRead file;
  std::string why;
  if (!detail::read_file(path, kMaxGatewayConfigBytes, file, why)) return ConfigError{path + ": cannot read: " + why};
  Loaded<GatewayConfig> loaded = parse_gateway_config(file.text, path, detail::folder_of(path));
  if (const auto* config = std::get_if<GatewayConfig>(&loaded)) {
    if (config->cloud.token_file.empty() && file.readable_by_others) {
      LOG_WARN("config") << path << ": holds the gateway token and is readable by every local user; "
                         << "restrict it with: chmod 600 " << path << " (or move the token to a token_file)";
    }
  }
  return loaded;
}

Loaded<CloudConfig> load_cloud_config(const std::string& path) {
  detail::FileRead file;
  std::string why;
  if (!detail::read_file(path, kMaxCloudConfigBytes, file, why)) return ConfigError{path + ": cannot read: " + why};
  return parse_cloud_config(file.text, path, detail::folder_of(path));
}

std::string summarize(const GatewayConfig& config) {
  std::ostringstream out;
  out << "gateway " << config.gateway_id << " for flat " << config.flat << ", state in " << config.state_dir
      << ", log level " << level_text(config.log_level) << ", command timeout " << config.command_timeout_ms
      << " ms\n";
  const CloudLinkConfig& cloud = config.cloud;
  out << "cloud " << cloud.url;
  for (size_t i = 1; i < cloud.urls.size(); ++i) out << (i == 1 ? ", then " : ", ") << cloud.urls[i];
  out << " (token ";
  if (cloud.token_file.empty()) {
    out << "inline";
  } else {
    out << "from " << cloud.token_file;
  }
  out << ")";
  if (cloud.url.rfind("wss://", 0) == 0) {
    if (cloud.insecure) {
      out << ", certificate NOT verified (insecure)";
    } else if (!cloud.ca_file.empty()) {
      out << ", CA " << cloud.ca_file;
    } else {
      out << ", system CAs";
    }
  } else if (cloud.insecure) {
    out << ", unencrypted (insecure)";
  }
  out << ", ping after " << cloud.ping_interval_s << " s idle, dead after " << cloud.pong_timeout_s
      << " s without pong, reconnect backoff " << cloud.backoff_base_ms << ".." << cloud.backoff_max_ms
      << " ms, send queue " << cloud.send_queue_max << "\n";
  out << plural(config.adapters.size(), "adapter", "adapters") << ":\n";
  for (const AdapterConfig& adapter : config.adapters) {
    std::visit(
        [&out](const auto& a) {
          using namespace detail;
          summarize_adapter(out, a);
        },
        adapter);
  }
  return out.str();
}

std::string summarize(const CloudConfig& config) {
  std::ostringstream out;
  out << "cloud on " << config.listen_address << ":" << config.port;
  if (config.tls.cert_file.empty()) {
    out << ", no TLS (plain ws:// and http://)";
  } else {
    out << ", TLS cert " << config.tls.cert_file << ", key " << config.tls.key_file;
  }
  out << ", log level " << level_text(config.log_level) << "\n";
  out << "dashboard " << (config.dashboard_dir.empty() ? std::string("built in") : "from " + config.dashboard_dir)
      << "\n";
  const LimitsConfig& limits = config.limits;
  out << "limits: handshake " << limits.handshake_timeout_s << " s, messages up to " << limits.max_message_bytes
      << " bytes, " << limits.messages_per_s << "/s (burst " << limits.burst << "), " << limits.history_points
      << " history points, command timeout " << limits.command_timeout_ms << " ms\n";
  const BackplaneConfig& bp = config.backplane;
  if (bp.enabled) {
    out << "backplane: instance " << bp.instance_id << " over " << (bp.tls ? "mqtts" : "mqtt");
    for (size_t i = 0; i < bp.brokers.size(); ++i) {
      out << (i == 0 ? " " : ", ") << bp.brokers[i].host << ":" << bp.brokers[i].port;
    }
    out << (bp.username.empty() ? "" : ", user " + bp.username)
        << (bp.insecure ? ", INSECURE: messages not signed" : ", messages signed with the key in " + bp.shared_key_file)
        << ", command offline after "
        << bp.command_offline_ms << " ms, catch-up wait " << bp.catch_up_ms << " ms\n";
  } else {
    out << "backplane: off (a single instance)\n";
  }
  if (config.store.enabled) {
    out << "store: " << config.store.engine << " "
        << (config.store.engine == "sqlite" ? config.store.path : config.store.url)
        << (config.store.password.empty() ? "" : " (password from a file)") << ", accounts read every "
        << config.store.poll_ms << " ms" << (config.flats.empty() ? "" : "; the flats below seed an empty store")
        << "\n";
  }
  out << plural(config.flats.size(), "flat", "flats") << ":\n";
  for (const FlatConfig& flat : config.flats) {
    out << "  " << flat.id << " '" << flat.name << "', " << plural(flat.users.size(), "user", "users");
    for (size_t i = 0; i < flat.users.size(); ++i) out << (i == 0 ? ": " : ", ") << flat.users[i].name;
    out << "\n";
  }
  return out.str();
}

}  // namespace flatlink::config
