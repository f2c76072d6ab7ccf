// The schema of flatlinkd's configuration file: every key, its type, range and
// default, and the checks that span several keys (unique names, token rules).
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <map>

#include "common/log.h"
#include "config/config_files.h"
#include "config/adapter_schemas.h"
#include "config/schemas.h"

namespace flatlink::config::detail {
namespace {

constexpr size_t kMaxTokenFileBytes = 64 * 1024;

bool is_token_char(char c) { return c > 0x20 && c < 0x7f; }

// A token travels in the upgrade request's header: printable ASCII, no spaces.
bool valid_token(const std::string& token) {
  if (token.empty()) return false;
  for (char c : token) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

std::string trimmed(const std::string& text) {
  const char* space = " \t\r\n\f\v";
  const size_t first = text.find_first_not_of(space);
  if (first == std::string::npos) return {};
  const size_t last = text.find_last_not_of(space);
  return text.substr(first, last - first + 1);
}

bool is_loopback_host(const std::string& host) {
  std::string lower;
  for (char c : host) lower += static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
  if (lower == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_';
}

// ws[s]://host[:port][/path][?query]; host may be a bracketed IPv6 address.
// Sets `secure` and `host` (without brackets) when the URL is well formed.
bool parse_ws_url(const std::string& url, bool& secure, std::string& host) {
  for (char c : url) {
    if (!is_token_char(c)) return false;
  }
  size_t pos = 0;
  if (url.rfind("wss://", 0) == 0) {
    secure = true;
    pos = 6;
  } else if (url.rfind("ws://", 0) == 0) {
    secure = false;
    pos = 5;
  } else {
    return false;
  }
  const size_t end = url.find_first_of("/?#", pos);
  const std::string authority = url.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return false;
    host = authority.substr(1, close - 1);
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) return false;
    const std::string rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty()) return false;
    for (char c : host) {
      if (!is_host_char(c)) return false;
    }
  }
  if (!port.empty()) {
    if (port.size() > 5) return false;
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value < 1 || value > 65535) return false;
  }
  return true;
}

void read_token_file(ObjectReader& r, const std::string& name, const std::string& base_dir,
                     CloudLinkConfig& cloud) {
  std::string given;
  if (!r.non_empty_string("token_file", given)) return;
  const std::string path = resolve_path(base_dir, given);
  Errors& errors = r.errors();
  FileRead file;
  std::string why;
  if (!read_file(path, kMaxTokenFileBytes, file, why)) {
    errors.fail(r.path("token_file"), "cannot read " + json_quoted(path) + ": " + why);
    return;
  }
  const std::string token = trimmed(file.text);
  if (token.empty()) {
    errors.fail(r.path("token_file"), json_quoted(path) + " is empty");
    return;
  }
  if (!valid_token(token)) {
    errors.fail(r.path("token_file"),
                json_quoted(path) + " must hold only the token: one line of printable ASCII without spaces");
    return;
  }
  if (file.readable_by_others) {
    LOG_WARN("config") << name << ": " << r.path("token_file") << " " << log::q(path)
                       << " is readable by every local user; restrict it with: chmod 600 " << path;
  }
  cloud.token = token;
  cloud.token_file = path;
}

void read_cloud_link(ObjectReader& r, const std::string& name, const std::string& base_dir,
                     CloudLinkConfig& cloud) {
  Errors& errors = r.errors();
  r.only_keys({"url", "token", "token_file", "ca_file", "insecure", "backoff_base_ms", "backoff_max_ms",
               "ping_interval_s", "pong_timeout_s", "send_queue_max"});

  // Plain ws:// to another machine sends the token in clear: only with "insecure".
  // "url" is one URL, or a list of them (several cloud instances, tried in turn).
  bool plain_to_remote = false;
  std::string plain_url;
  const auto check_url = [&](const std::string& path, const std::string& url) {
    std::string host;
    bool secure = false;
    if (url.rfind("ws://", 0) != 0 && url.rfind("wss://", 0) != 0) {
      errors.expected(path, "a URL starting with ws:// or wss://", url);
    } else if (!parse_ws_url(url, secure, host)) {
      errors.expected(path, "ws://host[:port][/path] or wss://host[:port][/path]", url);
    } else if (!secure && !is_loopback_host(host) && !plain_to_remote) {
      plain_to_remote = true;
      plain_url = url;
    }
    cloud.urls.push_back(url);
  };
  if (const Json* url = r.find("url"); url != nullptr && url->is_array()) {
    if (url->empty() || url->size() > 16) {
      errors.expected(r.path("url"), "a list of 1 to 16 URLs", *url);
    }
    for (size_t i = 0; i < url->size() && errors.ok(); ++i) {
      const Json& item = (*url)[i];
      if (!item.is_string()) {
        errors.expected(index_path(r.path("url"), i), "a URL string", item);
        break;
      }
      check_url(index_path(r.path("url"), i), item.get<std::string>());
    }
    if (errors.ok()) cloud.url = cloud.urls.front();
  } else if (r.string("url", cloud.url, Need::required)) {
    check_url(r.path("url"), cloud.url);
  }

  if (const Json* token = r.find("token"); token != nullptr && errors.ok()) {
    if (!token->is_string() || !valid_token(token->get_ref<const std::string&>())) {
      errors.fail(r.path("token"), "expected a non-empty string of printable ASCII without spaces, got " +
                                       describe_kind(*token));
    } else {
      cloud.token = token->get<std::string>();
    }
  }
  if (errors.ok() && r.has("token") == r.has("token_file")) {
    errors.fail(r.path(), std::string("expected exactly one of \"token\" and \"token_file\", got ") +
                              (r.has("token") ? "both" : "neither"));
  }
  read_token_file(r, name, base_dir, cloud);

  if (r.non_empty_string("ca_file", cloud.ca_file)) {
    cloud.ca_file = resolve_path(base_dir, cloud.ca_file);
    std::string why;
    if (!readable_file(cloud.ca_file, why)) {
      errors.fail(r.path("ca_file"), "cannot read " + json_quoted(cloud.ca_file) + ": " + why);
    }
  }
  r.boolean("insecure", cloud.insecure);
  if (errors.ok() && plain_to_remote && !cloud.insecure) {
    errors.expected(r.path("url"),
                    "wss:// (ws:// would send the token unencrypted; it is only allowed to a loopback host "
                    "unless \"insecure\" is true)",
                    plain_url);
  }

  r.integer("backoff_base_ms", cloud.backoff_base_ms, 10, 600'000);
  // Without its own value the cap follows a larger base, so that setting only the base works.
  if (!r.integer("backoff_max_ms", cloud.backoff_max_ms, cloud.backoff_base_ms, 3'600'000)) {
    cloud.backoff_max_ms = std::max(cloud.backoff_max_ms, cloud.backoff_base_ms);
  }
  r.integer("ping_interval_s", cloud.ping_interval_s, 1, 3600);
  r.integer("pong_timeout_s", cloud.pong_timeout_s, 1, 3600);
  r.integer("send_queue_max", cloud.send_queue_max, 1, 1'000'000);
}

// Records a device id, refusing one used anywhere before in this gateway.
void read_outbox(ObjectReader& r, OutboxConfig& outbox) {
  r.only_keys({"durability", "commit_interval_ms", "commit_max_items", "max_items", "max_bytes", "memory_items"});
  r.choice("durability", outbox.durability, {{"group", Durability::group}, {"sync", Durability::sync}});
  r.integer("commit_interval_ms", outbox.commit_interval_ms, 0, 10'000);
  r.integer("commit_max_items", outbox.commit_max_items, 1, 100'000);
  r.integer("max_items", outbox.max_items, 10, 10'000'000);
  r.integer("max_bytes", outbox.max_bytes, 4096, uint64_t{1} << 40);
  r.integer("memory_items", outbox.memory_items, 10, 1'000'000);
}

template <class T, class F>
T read_adapter(ObjectReader& r, AdapterContext& ctx, F read) {
  T adapter;
  read(r, ctx, adapter);
  return adapter;
}

void read_sim_device(ObjectReader& r, FirstSeen& device_ids, SimDeviceConfig& device) {
  r.only_keys({"id", "kind", "name", "room", "interval_ms", "initial"});
  if (r.id("id", device.id, Need::required)) claim_device_id(r.errors(), device_ids, device.id, r.path("id"));
  size_t kind = 0;
  static constexpr std::string_view kinds[] = {"lamp", "thermometer", "lock"};
  if (r.string_choice("kind", kind, {kinds[0], kinds[1], kinds[2]}, Need::required)) device.kind = kinds[kind];
  if (!r.non_empty_string("name", device.name)) device.name = device.id;
  r.string("room", device.room);
  r.integer("interval_ms", device.interval_ms, 100, 3'600'000);
  r.number("initial", device.initial, -50, 100);
}

void read_sim_adapter(ObjectReader& r, AdapterContext& ctx, SimAdapterConfig& sim) {
  FirstSeen& names = ctx.names;
  FirstSeen& device_ids = ctx.device_ids;
  r.only_keys({"name", "latency_ms", "seed", "devices", "type"});
  r.id("name", sim.name);
  claim_adapter_name(r, names, sim.name);
  r.integer("latency_ms", sim.latency_ms, 0, 60'000);
  r.integer("seed", sim.seed, 0, std::numeric_limits<uint64_t>::max());
  r.objects("devices", 1, Need::required, [&](ObjectReader& device_reader) {
    SimDeviceConfig device;
    read_sim_device(device_reader, device_ids, device);
    sim.devices.push_back(std::move(device));
  });
}

void read_adapters(const Json& adapters, const std::string& path, const std::string& base_dir, Errors& errors,
                   GatewayConfig& config) {
  AdapterContext ctx;
  ctx.default_timeout_ms = config.command_timeout_ms;
  ctx.base_dir = base_dir;
  for (size_t i = 0; i < adapters.size() && errors.ok(); ++i) {
    const std::string item_path = index_path(path, i);
    const Json& item = adapters[i];
    if (!item.is_object()) {
      errors.expected(item_path, "an object", item);
      return;
    }
    ObjectReader r(item, item_path, errors);
    size_t type = 0;
    if (!r.string_choice("type", type, {"sim", "serial", "wifly", "mqtt", "audio"}, Need::required)) return;
    switch (type) {
      case 0: config.adapters.emplace_back(read_adapter<SimAdapterConfig>(r, ctx, read_sim_adapter)); break;
      case 1: config.adapters.emplace_back(read_adapter<SerialAdapterConfig>(r, ctx, read_serial_adapter)); break;
      case 2: config.adapters.emplace_back(read_adapter<WiflyAdapterConfig>(r, ctx, read_wifly_adapter)); break;
      case 3: config.adapters.emplace_back(read_adapter<MqttAdapterConfig>(r, ctx, read_mqtt_adapter)); break;
      default: config.adapters.emplace_back(read_adapter<AudioAdapterConfig>(r, ctx, read_audio_adapter)); break;
    }
  }
}

}  // namespace

void claim_device_id(Errors& errors, FirstSeen& device_ids, const std::string& id, const std::string& path) {
  if (!errors.ok()) return;
  const auto [it, fresh] = device_ids.emplace(id, path);
  if (!fresh) errors.fail(path, "duplicate device id " + json_quoted(id) + ", first used at " + it->second);
}

void claim_adapter_name(ObjectReader& r, FirstSeen& names, const std::string& name) {
  Errors& errors = r.errors();
  if (!errors.ok()) return;
  const auto [it, fresh] = names.emplace(name, r.path());
  if (fresh) return;
  if (r.has("name")) {
    errors.fail(r.path("name"), "duplicate adapter name " + json_quoted(name) + ", first used by " + it->second);
  } else {
    errors.fail(r.path(), "duplicate adapter name " + json_quoted(name) +
                              " (the default for type \"sim\"), first used by " + it->second +
                              "; give each adapter its own \"name\"");
  }
}

Loaded<GatewayConfig> read_gateway_config(const Json& doc, const std::string& name, const std::string& base_dir) {
  Errors errors(name);
  GatewayConfig config;
  config.source = name;
  config.state_dir = "/var/lib/flatlink";
  if (!doc.is_object()) {
    errors.expected("", "an object at the top level", doc);
    return ConfigError{errors.message()};
  }
  ObjectReader r(doc, "", errors);
  r.only_keys({"gateway_id", "flat", "state_dir", "log_level", "command_timeout_ms", "outbox", "cloud", "adapters"});
  r.id("gateway_id", config.gateway_id, Need::required);
  r.id("flat", config.flat, Need::required);
  if (r.non_empty_string("state_dir", config.state_dir)) config.state_dir = resolve_path(base_dir, config.state_dir);
  read_log_level(r, config.log_level);
  r.integer("command_timeout_ms", config.command_timeout_ms, 100, 600'000);
  if (const Json* outbox = r.object("outbox")) {
    ObjectReader outbox_reader(*outbox, r.path("outbox"), errors);
    read_outbox(outbox_reader, config.outbox);
  }
  if (const Json* cloud = r.object("cloud", Need::required)) {
    ObjectReader cloud_reader(*cloud, r.path("cloud"), errors);
    read_cloud_link(cloud_reader, name, base_dir, config.cloud);
  }
  // Empty is allowed: the packaged gateway.json starts with no adapter (no device that is not there).
  if (const Json* adapters = r.array("adapters", 0, Need::required)) {
    read_adapters(*adapters, r.path("adapters"), base_dir, errors, config);
  }
  if (!errors.ok()) return ConfigError{errors.message()};
  config.cloud.flat = config.flat;
  return config;
}

}  // namespace flatlink::config::detail
