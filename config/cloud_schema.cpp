// The schema of flatlink-cloud's configuration file: listener, TLS, limits, and
// the flats with their gateway token hashes and users.
#include <algorithm>
#include <map>
#include <vector>

#include "config/config_files.h"
#include "config/password_hash.h"
#include "config/schemas.h"

namespace flatlink::config::detail {
namespace {

using FirstSeen = std::map<std::string, std::string>;

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool valid_sha256_hex(const std::string& text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!is_lower_hex(c)) return false;
  }
  return true;
}

// A referenced file: resolved against the config's folder and opened once to be sure.
bool read_existing_file(ObjectReader& r, std::string_view key, const std::string& base_dir, std::string& out) {
  if (!r.non_empty_string(key, out)) return false;
  out = resolve_path(base_dir, out);
  std::string why;
  if (readable_file(out, why)) return true;
  r.errors().fail(r.path(key), "cannot read " + json_quoted(out) + ": " + why);
  return false;
}

void read_tls(ObjectReader& r, const std::string& base_dir, TlsServerConfig& tls) {
  r.only_keys({"cert_file", "key_file"});
  read_existing_file(r, "cert_file", base_dir, tls.cert_file);
  read_existing_file(r, "key_file", base_dir, tls.key_file);
  if (r.errors().ok() && r.has("cert_file") != r.has("key_file")) {
    r.errors().fail(r.path(r.has("cert_file") ? "key_file" : "cert_file"),
                    "required key is missing (cert_file and key_file go together)");
  }
}

void read_limits(ObjectReader& r, LimitsConfig& limits) {
  r.only_keys({"handshake_timeout_s", "max_message_bytes", "messages_per_s", "burst", "history_points",
               "command_timeout_ms", "max_streams_per_flat", "max_stream_kbps_per_flat", "stream_buffer_ms",
               "max_browsers_per_ip", "max_unauthenticated_per_ip", "max_connections_per_user",
               "browser_queue_soft_bytes", "browser_queue_hard_bytes", "gateway_queue_hard_bytes",
               "output_budget_bytes"});
  r.integer("handshake_timeout_s", limits.handshake_timeout_s, 1, 300);
  r.integer("max_message_bytes", limits.max_message_bytes, 1024, 16'777'216);
  r.integer("messages_per_s", limits.messages_per_s, 1, 100'000);
  // Without its own value the bucket holds two seconds' worth, as the defaults do.
  if (!r.integer("burst", limits.burst, limits.messages_per_s, 1'000'000)) {
    limits.burst = std::min<uint32_t>(2 * limits.messages_per_s, 1'000'000);
  }
  r.integer("history_points", limits.history_points, 0, 100'000);
  r.integer("command_timeout_ms", limits.command_timeout_ms, 100, 600'000);
  r.integer("max_streams_per_flat", limits.max_streams_per_flat, 0, 64);
  r.integer("max_stream_kbps_per_flat", limits.max_stream_kbps_per_flat, 0, 100'000);
  r.integer("stream_buffer_ms", limits.stream_buffer_ms, 20, 5'000);
  r.integer("max_browsers_per_ip", limits.max_browsers_per_ip, 1, 1'000'000);
  r.integer("max_unauthenticated_per_ip", limits.max_unauthenticated_per_ip, 1, 1'000'000);
  r.integer("max_connections_per_user", limits.max_connections_per_user, 1, 100'000);
  r.integer("browser_queue_soft_bytes", limits.browser_queue_soft_bytes, 16 * 1024, 1u << 30);
  // The hard limit holds at least one largest message beyond the soft one.
  r.integer("browser_queue_hard_bytes", limits.browser_queue_hard_bytes,
            limits.browser_queue_soft_bytes + limits.max_message_bytes, 1u << 31);
  if (limits.browser_queue_hard_bytes < limits.browser_queue_soft_bytes + limits.max_message_bytes) {
    limits.browser_queue_hard_bytes = limits.browser_queue_soft_bytes + limits.max_message_bytes;
  }
  r.integer("gateway_queue_hard_bytes", limits.gateway_queue_hard_bytes, 64 * 1024, 1u << 31);
  r.integer("output_budget_bytes", limits.output_budget_bytes, 1024 * 1024, 1u << 31);
}

void read_login(ObjectReader& r, LoginConfig& login) {
  r.only_keys({"ban_after", "ban_s", "delay_base_ms", "delay_max_ms", "workers", "queue_per_source", "queue_total"});
  r.integer("ban_after", login.ban_after, 1, 1'000'000);
  r.integer("ban_s", login.ban_s, 1, 7 * 24 * 3600);
  r.integer("delay_base_ms", login.delay_base_ms, 0, 60'000);
  if (!r.integer("delay_max_ms", login.delay_max_ms, login.delay_base_ms, 600'000)) {
    login.delay_max_ms = std::max(login.delay_max_ms, login.delay_base_ms);
  }
  r.integer("workers", login.workers, 1, 64);
  r.integer("queue_per_source", login.queue_per_source, 1, 1'000);
  r.integer("queue_total", login.queue_total, 1, 100'000);
}

void read_metrics(ObjectReader& r, MetricsListenerConfig& metrics) {
  r.only_keys({"listen_address", "port"});
  r.non_empty_string("listen_address", metrics.listen_address);
  r.integer("port", metrics.port, 0, 65535);
}

// "scheme://host[:port]" as browsers send it in Origin: lower-case, no path.
bool valid_origin(const std::string& origin) {
  const size_t sep = origin.find("://");
  if (sep == std::string::npos) return false;
  const std::string scheme = origin.substr(0, sep);
  if (scheme != "http" && scheme != "https") return false;
  const std::string rest = origin.substr(sep + 3);
  if (rest.empty() || rest.size() > 261) return false;
  for (char c : rest) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == ':' ||
                    c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

// "mqtt://host[:port]" or "mqtts://host[:port]"; false when malformed.
bool parse_broker_url(const std::string& url, bool& tls, BackplaneBroker& broker) {
  size_t pos = 0;
  if (url.rfind("mqtts://", 0) == 0) {
    tls = true;
    pos = 8;
    broker.port = 8883;
  } else if (url.rfind("mqtt://", 0) == 0) {
    tls = false;
    pos = 7;
    broker.port = 1883;
  } else {
    return false;
  }
  std::string rest = url.substr(pos);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  broker.host = rest.substr(0, colon);
  if (broker.host.empty() || broker.host.size() > 253) return false;
  for (char c : broker.host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;
  }
  if (colon != std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value < 1 || value > 65535) return false;
    broker.port = static_cast<uint16_t>(value);
  }
  return true;
}

// The backplane's shared key: a file only the service may read (anyone who reads it can command
// every flat through the broker), of at least kMinBackplaneKeyBytes. A trailing newline is not
// part of the key.
constexpr size_t kMinBackplaneKeyBytes = 32;
constexpr size_t kMaxBackplaneKeyBytes = 4096;

void read_backplane_key(ObjectReader& r, const std::string& base_dir, BackplaneConfig& bp) {
  std::string given;
  if (!r.non_empty_string("shared_key_file", given)) return;
  const std::string path = resolve_path(base_dir, given);
  FileRead file;
  std::string why;
  if (!read_file(path, kMaxBackplaneKeyBytes, file, why)) {
    r.errors().fail(r.path("shared_key_file"), "cannot read " + json_quoted(path) + ": " + why);
    return;
  }
  if (file.readable_by_others) {
    r.errors().fail(r.path("shared_key_file"), json_quoted(path) +
                                            " is readable by every local user, who could then command every flat "
                                            "through the broker; restrict it with: chmod 600 " + path);
    return;
  }
  std::string key = std::move(file.text);
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.size() < kMinBackplaneKeyBytes) {
    r.errors().fail(r.path("shared_key_file"), json_quoted(path) + " holds " + std::to_string(key.size()) +
                                            " bytes; expected at least " + std::to_string(kMinBackplaneKeyBytes) +
                                            " (make one with: openssl rand -hex 32 > " + path + ")");
    return;
  }
  bp.shared_key = std::move(key);
  bp.shared_key_file = path;
}

void read_backplane(ObjectReader& r, const std::string& base_dir, BackplaneConfig& bp) {
  Errors& errors = r.errors();
  r.only_keys({"enabled", "instance_id", "brokers", "tls", "username", "password_file", "shared_key_file", "insecure",
               "keepalive_s", "backoff_base_ms", "backoff_max_ms", "command_offline_ms", "catch_up_ms"});
  bp.enabled = true;
  r.boolean("enabled", bp.enabled);
  if (r.id("instance_id", bp.instance_id, Need::required) && bp.instance_id.size() > 48) {
    errors.fail(r.path("instance_id"), "at most 48 characters (it is part of topics and the MQTT client id)");
  }
  if (const Json* brokers = r.array("brokers", 1, Need::required)) {
    for (size_t i = 0; i < brokers->size() && errors.ok(); ++i) {
      const std::string path = index_path(r.path("brokers"), i);
      const Json& item = (*brokers)[i];
      BackplaneBroker broker;
      bool tls = false;
      if (!item.is_string() || !parse_broker_url(item.get<std::string>(), tls, broker)) {
        errors.expected(path, "\"mqtt://host[:port]\" or \"mqtts://host[:port]\"", item);
        break;
      }
      if (i > 0 && tls != bp.tls) {
        errors.fail(path, "mixes mqtt:// and mqtts://; every broker of the backplane uses the same scheme");
        break;
      }
      bp.tls = tls;
      bp.brokers.push_back(broker);
    }
  }
  if (const Json* tls = r.object("tls"); tls && errors.ok()) {
    ObjectReader t(*tls, r.path("tls"), errors);
    t.only_keys({"ca_file", "cert_file", "key_file"});
    if (t.has("ca_file")) read_existing_file(t, "ca_file", base_dir, bp.ca_file);
    if (t.has("cert_file")) read_existing_file(t, "cert_file", base_dir, bp.cert_file);
    if (t.has("key_file")) read_existing_file(t, "key_file", base_dir, bp.key_file);
    if (errors.ok() && bp.cert_file.empty() != bp.key_file.empty()) {
      errors.fail(t.path(), "expected both \"cert_file\" and \"key_file\" (a client certificate), or neither");
    }
    if (errors.ok() && !bp.tls) {
      errors.fail(t.path(), "TLS settings for mqtt:// brokers; use mqtts:// URLs (the broker's certificate is verified)");
    }
  }
  r.non_empty_string("username", bp.username);
  read_password_file(r, base_dir, bp.password, bp.password_file);
  if (errors.ok() && !bp.password.empty() && bp.username.empty()) {
    errors.fail(r.path("password_file"), "expected \"username\" with it (MQTT sends a password only with a user name)");
  }
  read_backplane_key(r, base_dir, bp);
  r.boolean("insecure", bp.insecure);
  if (errors.ok() && bp.insecure && !bp.shared_key.empty()) {
    errors.fail(r.path("insecure"), "true with a \"shared_key_file\"; give one or the other");
  }
  if (errors.ok() && bp.enabled && !bp.insecure && bp.shared_key.empty() && !r.has("shared_key_file")) {
    errors.fail(r.path("shared_key_file"),
                "required key is missing: the key every instance shares, which signs the backplane's messages "
                "(without it any client of the broker can command every flat); make one with: openssl rand -hex 32 > "
                "backplane.key; chmod 600 backplane.key. Or \"insecure\": true to run without");
  }
  r.integer("keepalive_s", bp.keepalive_s, 5, 3600);  // libmosquitto refuses less than 5
  r.integer("backoff_base_ms", bp.backoff_base_ms, 10, 60'000);
  if (!r.integer("backoff_max_ms", bp.backoff_max_ms, bp.backoff_base_ms, 600'000)) {
    bp.backoff_max_ms = std::max(bp.backoff_max_ms, bp.backoff_base_ms);
  }
  r.integer("command_offline_ms", bp.command_offline_ms, 50, 60'000);
  r.integer("catch_up_ms", bp.catch_up_ms, 0, 120'000);
}

void read_user(ObjectReader& r, FirstSeen& names, UserConfig& user) {
  Errors& errors = r.errors();
  r.only_keys({"name", "password_hash"});
  if (r.id("name", user.name, Need::required) && errors.ok()) {
    const auto [it, fresh] = names.emplace(user.name, r.path("name"));
    if (!fresh) {
      errors.fail(r.path("name"), "duplicate user name " + json_quoted(user.name) + ", first used at " + it->second);
    }
  }
  // Never shown: a hash (or a password pasted by mistake) does not belong in a log.
  if (const Json* hash = r.find("password_hash"); r.require("password_hash")) {
    // Checked here so that a mangled or weak hash fails at start rather than as "wrong
    // password" at every login, or not at all (PBKDF2 with 1 iteration).
    const std::string why = hash->is_string() ? weak_password_hash(hash->get_ref<const std::string&>())
                                              : "expected a string, got " + describe_kind(*hash);
    if (why.empty()) {
      user.password_hash = hash->get<std::string>();
    } else {
      errors.fail(r.path("password_hash"), why);
    }
  }
}

void read_flat(ObjectReader& r, FirstSeen& flat_ids, FirstSeen& token_hashes, FlatConfig& flat) {
  Errors& errors = r.errors();
  r.only_keys({"id", "name", "gateway_token_sha256", "users"});
  if (r.id("id", flat.id, Need::required) && errors.ok()) {
    const auto [it, fresh] = flat_ids.emplace(flat.id, r.path("id"));
    if (!fresh) {
      errors.fail(r.path("id"), "duplicate flat id " + json_quoted(flat.id) + ", first used at " + it->second);
    }
  }
  if (!r.non_empty_string("name", flat.name)) flat.name = flat.id;
  if (const Json* hash = r.find("gateway_token_sha256"); r.require("gateway_token_sha256")) {
    if (hash->is_string() && valid_sha256_hex(hash->get_ref<const std::string&>())) {
      flat.gateway_token_sha256 = hash->get<std::string>();
      const auto [it, fresh] = token_hashes.emplace(flat.gateway_token_sha256, r.path("gateway_token_sha256"));
      if (!fresh) {
        errors.fail(r.path("gateway_token_sha256"),
                    "the same as " + it->second + "; every flat needs its own gateway token");
      }
    } else {
      errors.fail(r.path("gateway_token_sha256"),
                  "expected 64 lowercase hex digits (the SHA-256 of the flat's gateway token), got " +
                      describe_kind(*hash));
    }
  }
  FirstSeen names;
  r.objects("users", 0, Need::optional, [&](ObjectReader& user_reader) {
    UserConfig user;
    read_user(user_reader, names, user);
    flat.users.push_back(std::move(user));
  });
}

void read_store(ObjectReader& r, const std::string& base_dir, StoreConfig& store) {
  Errors& errors = r.errors();
  r.only_keys({"enabled", "engine", "path", "url", "password_file", "poll_ms", "queue_max", "history",
               "session_idle_s", "session_max_s", "events_retention_days", "events_buffer_max"});
  store.enabled = true;
  r.boolean("enabled", store.enabled);
  size_t engine = 0;
  if (r.string_choice("engine", engine, {"sqlite", "postgresql"})) store.engine = engine == 0 ? "sqlite" : "postgresql";
  if (store.engine == "sqlite") {
    store.path = "flatlink-cloud.db";
    r.non_empty_string("path", store.path);
    store.path = resolve_path(base_dir, store.path);
    if (errors.ok() && r.has("url")) errors.fail(r.path("url"), "a PostgreSQL setting; the engine is sqlite");
  } else {
    r.non_empty_string("url", store.url, Need::required);
    if (errors.ok() && store.url.find("password") != std::string::npos) {
      errors.fail(r.path("url"), "holds a password; put it in password_file instead (the url may be logged)");
    }
    if (errors.ok() && r.has("path")) errors.fail(r.path("path"), "an SQLite setting; the engine is postgresql");
    read_password_file(r, base_dir, store.password, store.password_file);
  }
  r.integer("poll_ms", store.poll_ms, 50, 10'000);
  r.integer("queue_max", store.queue_max, 100, 10'000'000);
  if (const Json* history = r.object("history")) {
    ObjectReader h(*history, r.path("history"), errors);
    h.only_keys({"enabled", "raw_days", "minute_days", "hour_days", "buffer_max"});
    h.boolean("enabled", store.history);
    h.integer("raw_days", store.history_raw_days, 1, 3650);
    h.integer("minute_days", store.history_minute_days, 1, 36500);
    h.integer("hour_days", store.history_hour_days, 1, 36500);
    h.integer("buffer_max", store.history_buffer_max, 1000, 10'000'000);
    if (errors.ok() && !(store.history_raw_days <= store.history_minute_days &&
                         store.history_minute_days <= store.history_hour_days)) {
      errors.fail(r.path("history"), "expected raw_days <= minute_days <= hour_days (each level is rolled up from the finer one)");
    }
  }
  // Sessions and the event log (store_sessions.h, store_events.h).
  r.integer("session_idle_s", store.session_idle_s, 60, 31'536'000);
  r.integer("session_max_s", store.session_max_s, 60, 31'536'000);
  if (errors.ok() && store.session_idle_s > store.session_max_s) {
    errors.fail(r.path("session_idle_s"), "longer than session_max_s (the absolute expiry)");
  }
  r.integer("events_retention_days", store.events_retention_days, 1, 36'500);
  r.integer("events_buffer_max", store.events_buffer_max, 10, 10'000'000);
}

}  // namespace

Loaded<CloudConfig> read_cloud_config(const Json& doc, const std::string& name, const std::string& base_dir) {
  Errors errors(name);
  CloudConfig config;
  config.source = name;
  if (!doc.is_object()) {
    errors.expected("", "an object at the top level", doc);
    return ConfigError{errors.message()};
  }
  ObjectReader r(doc, "", errors);
  r.only_keys({"listen_address", "port", "tls", "dashboard_dir", "log_level", "event_loop", "limits", "login", "metrics",
               "allowed_origins", "backplane", "store", "demo", "flats", "webhooks"});
  r.non_empty_string("listen_address", config.listen_address);
  r.integer("port", config.port, 1, 65535);
  if (const Json* tls = r.object("tls")) {
    ObjectReader tls_reader(*tls, r.path("tls"), errors);
    read_tls(tls_reader, base_dir, config.tls);
  }
  if (r.string("dashboard_dir", config.dashboard_dir) && !config.dashboard_dir.empty()) {
    config.dashboard_dir = resolve_path(base_dir, config.dashboard_dir);
  }
  read_log_level(r, config.log_level);
  r.choice("event_loop", config.event_loop,
           {{"libuv", CloudConfig::EventLoopKind::libuv}, {"poll", CloudConfig::EventLoopKind::poll}});
  if (const Json* limits = r.object("limits")) {
    ObjectReader limits_reader(*limits, r.path("limits"), errors);
    read_limits(limits_reader, config.limits);
  }
  if (const Json* login = r.object("login")) {
    ObjectReader login_reader(*login, r.path("login"), errors);
    read_login(login_reader, config.login);
  }
  if (const Json* webhooks = r.object("webhooks")) {
    ObjectReader webhooks_reader(*webhooks, r.path("webhooks"), errors);
    webhooks_reader.only_keys({"ca_file"});
    if (webhooks_reader.non_empty_string("ca_file", config.webhooks.ca_file)) {
      config.webhooks.ca_file = resolve_path(base_dir, config.webhooks.ca_file);
    }
  }
  if (const Json* metrics = r.object("metrics")) {
    ObjectReader metrics_reader(*metrics, r.path("metrics"), errors);
    read_metrics(metrics_reader, config.metrics);
  }
  if (const Json* origins = r.array("allowed_origins", 0, Need::optional)) {
    for (size_t i = 0; i < origins->size() && errors.ok(); ++i) {
      const Json& item = (*origins)[i];
      if (!item.is_string() || !valid_origin(item.get<std::string>())) {
        errors.expected(index_path(r.path("allowed_origins"), i),
                        "an origin such as \"https://flats.example.org\" (scheme://host[:port], lower-case)", item);
        break;
      }
      config.allowed_origins.push_back(item.get<std::string>());
    }
  }
  if (const Json* backplane = r.object("backplane")) {
    ObjectReader backplane_reader(*backplane, r.path("backplane"), errors);
    read_backplane(backplane_reader, base_dir, config.backplane);
  }
  r.boolean("demo", config.demo);
  if (const Json* store = r.object("store")) {
    ObjectReader store_reader(*store, r.path("store"), errors);
    read_store(store_reader, base_dir, config.store);
  }
  // Empty is allowed: the packaged config starts with no flat (no credential ships in it).
  // With a store the flats live there (`flats`, if given, seeds an empty store).
  FirstSeen flat_ids, token_hashes;
  r.objects("flats", 0, config.store.enabled ? Need::optional : Need::required, [&](ObjectReader& flat_reader) {
    FlatConfig flat;
    read_flat(flat_reader, flat_ids, token_hashes, flat);
    config.flats.push_back(std::move(flat));
  });
  if (!errors.ok()) return ConfigError{errors.message()};
  return config;
}

}  // namespace flatlink::config::detail
