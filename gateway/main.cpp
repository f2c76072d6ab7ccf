// flatlinkd: the gateway daemon. A thin main over gateway::Gateway.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/cli.h"
#include "common/event_loop.h"
#include "common/log.h"
#include "common/service_notifier.h"
#include "common/status_socket.h"
#include "config/config_loader.h"
#include "gateway/backup_command.h"
#include "gateway/gateway.h"
#include "gateway/pair_command.h"

using namespace flatlink;

namespace {

constexpr const char* kUsage =
    "Usage: flatlinkd [options]\n"
    "       flatlinkd status [--config PATH]   (asks the running daemon: link, outbox, devices)\n"
    "       flatlinkd backup DIR [--config PATH]   (config, token, outbox into a new folder in DIR)\n"
    "       flatlinkd restore FOLDER [--config PATH]   (puts a backup back; flatlinkd stopped)\n"
    "       flatlinkd pair [--config PATH] [--ca FILE] URL CODE   (pairs with a flat: flatlinkd pair --help)\n"
    "\n"
    "The flatlink gateway daemon: bridges the flat's devices to the cloud over one\n"
    "persistent WebSocket.\n"
    "\n"
    "Options:\n"
    "  --config PATH       gateway configuration (default /etc/flatlink/gateway.json)\n"
    "  --check-config      validate the configuration, print a summary, exit\n"
    "  --log-level LEVEL   debug, info, warn or error (overrides the config)\n"
    "  --version           print the version and exit\n"
    "  --help              this text\n"
    "\n"
    "Exit codes: 0 stopped cleanly or config valid, 1 invalid config or failure,\n"
    "2 bad command line. SIGTERM or SIGINT stop it gracefully; SIGHUP reloads the\n"
    "configuration (the log level applies at once, the rest at the next restart).\n"
    "Under systemd (Type=notify) it reports READY, STATUS and WATCHDOG itself.\n";

// The config file as JSON without log_level, to tell whether a reload changed
// anything that only a restart applies. Empty if it cannot be read.
std::string restart_relevant(const std::string& path, const config::GatewayConfig& cfg) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  auto json = nlohmann::json::parse(text.str(), nullptr, false);
  if (json.is_discarded() || !json.is_object()) return {};
  json.erase("log_level");
  return json.dump() + "\n" + cfg.cloud.token;  // a changed token file counts too
}

// The running daemon's answer to `flatlinkd status`: <state_dir>/flatlinkd.sock (the one
// place the unit lets it write; the folder is 0750 flatlink, so ask as root or flatlink).
std::string status_socket_path(const config::GatewayConfig& cfg) { return cfg.state_dir + "/flatlinkd.sock"; }

nlohmann::json status_snapshot(const config::GatewayConfig& cfg, gateway::Gateway& gw) {
  nlohmann::json adapters = nlohmann::json::array();
  for (const config::AdapterConfig& adapter : cfg.adapters) {
    std::visit([&](const auto& a) { adapters.push_back({{"name", a.name}, {"devices", nlohmann::json::array()}}); },
               adapter);
  }
  for (const auto& [id, entry] : gw.registry().all()) {
    const std::string owner = entry.adapter ? entry.adapter->name() : std::string();
    nlohmann::json device = {{"id", id}, {"online", entry.online}};
    if (entry.last_ts) device["last_status_ms"] = *entry.last_ts;
    for (auto& a : adapters) {
      if (a["name"] == owner) a["devices"].push_back(device);
    }
  }
  return {{"gateway_id", cfg.gateway_id},
          {"flat", cfg.flat},
          {"link", gw.link_up() ? "up" : "down"},
          {"outbox_waiting", gw.waiting()},
          {"lost_counted", gw.dropped()},
          {"control_dropped", gw.control_dropped()},
          {"health", gw.health()},
          {"adapters", adapters}};
}

// `flatlinkd status`: what the running daemon says, for a person. 0 when it answered,
// 1 when it is not running (or the config cannot be read).
int status_command(const std::string& config_path) {
  auto loaded = config::load_gateway_config(config_path);
  if (auto* error = std::get_if<config::ConfigError>(&loaded)) {
    std::fprintf(stderr, "flatlinkd: %s\n", error->message.c_str());
    return cli::kExitFailure;
  }
  const auto& cfg = std::get<config::GatewayConfig>(loaded);
  std::string error;
  const std::string text = read_status_socket(status_socket_path(cfg), error);
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (!error.empty() || json.is_discarded() || !json.is_object()) {
    std::fprintf(stderr, "flatlinkd: no answer from a running flatlinkd (%s); is it running? systemctl status flatlinkd\n",
                 error.empty() ? "not a status answer" : error.c_str());
    return cli::kExitFailure;
  }
  std::printf("gateway %s (flat %s): link %s\n", json.value("gateway_id", "").c_str(), json.value("flat", "").c_str(),
              json.value("link", "").c_str());
  const std::string health = json.value("health", "");
  std::printf("outbox: %llu statuses waiting, %lld lost (counted)%s\n",
              static_cast<unsigned long long>(json.value("outbox_waiting", 0ULL)),
              static_cast<long long>(json.value("lost_counted", 0LL)), health.empty() ? "" : ("; " + health).c_str());
  std::printf("link control queue: %llu presence or stream messages dropped (statuses and results never are)\n",
              static_cast<unsigned long long>(json.value("control_dropped", 0ULL)));
  const auto& adapters = json["adapters"];
  std::printf("adapters: %zu\n", adapters.size());
  for (const auto& a : adapters) {
    std::printf("  %s: %zu devices\n", a.value("name", "").c_str(), a["devices"].size());
    for (const auto& d : a["devices"]) {
      std::printf("    %s %s\n", d.value("id", "").c_str(), d.value("online", false) ? "online" : "offline");
    }
  }
  return cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // `pair` has options of its own (--ca, --no-start): it parses its command line itself.
  if (argc >= 2 && std::string(argv[1]) == "pair") return gateway::pair_command(argc - 2, argv + 2);
  const cli::Parsed parsed = cli::parse(argc, argv, "/etc/flatlink/gateway.json");
  if (auto done = cli::answer_basics(parsed, "flatlinkd", kUsage)) return *done;
  const cli::Options& options = parsed.options;
  if (options.positional.size() == 1 && options.positional.front() == "status") return status_command(options.config_path);
  if (options.positional.size() == 2 && (options.positional[0] == "backup" || options.positional[0] == "restore")) {
    auto loaded = config::load_gateway_config(options.config_path);
    if (auto* error = std::get_if<config::ConfigError>(&loaded)) {
      std::fprintf(stderr, "flatlinkd: %s\n", error->message.c_str());
      return cli::kExitFailure;
    }
    const auto& cfg = std::get<config::GatewayConfig>(loaded);
    if (options.positional[0] == "backup") return gateway::backup_command(cfg, options.config_path, options.positional[1]);
    return gateway::restore_command(cfg, options.config_path, options.positional[1], status_socket_path(cfg));
  }
  if (!options.positional.empty()) {
    std::fprintf(stderr, "flatlinkd: unexpected argument %s (see --help)\n", options.positional.front().c_str());
    return cli::kExitUsage;
  }
  log::set_level(options.log_level.value_or(log::Level::info));

  auto loaded = config::load_for_main<config::GatewayConfig>("flatlinkd", options.config_path, options.check_config,
                                                       config::load_gateway_config);
  if (const int* exit_code = std::get_if<int>(&loaded)) return *exit_code;
  auto& cfg = std::get<config::GatewayConfig>(loaded);
  log::set_level(options.log_level.value_or(cfg.log_level));

  EventLoop loop({gateway::Gateway::protocols(),
                  [&](lws_context_creation_info& info) { gateway::Gateway::tune_context(cfg, info); },
                  nullptr});  // lws' own poll() loop: the gateway has few sockets
  if (!loop.ok()) return cli::kExitFailure;
  gateway::Gateway gw(loop, cfg);
  ServiceNotifier notifier(loop, [&] {
    // The outbox's health (e.g. "outbox not durable: disk full") shows in `systemctl status`.
    const std::string health = gw.health();
    return std::string("link ") + (gw.link_up() ? "up" : "down") + "; " + std::to_string(gw.waiting()) +
           " statuses waiting" + (health.empty() ? "" : "; " + health);
  });
  loop.on_stop([&] {
    notifier.stopping();
    gw.stop([&] { loop.quit(); });
  });
  loop.install_signal_handlers();

  // SIGHUP: re-read the config. Only the log level can change under a running gateway
  // (adapters, devices, the cloud link and the outbox are built at start); a bad file
  // is refused and the running config stays.
  const std::string started_with = restart_relevant(options.config_path, cfg);
  loop.on_signal(SIGHUP, [&] {
    notifier.reloading();
    LOG_INFO("gateway") << "SIGHUP: reloading " << options.config_path;
    auto next = config::load_gateway_config(options.config_path);
    if (auto* error = std::get_if<config::ConfigError>(&next)) {
      LOG_ERROR("gateway") << "reload refused, still running the previous config: " << error->message;
      notifier.reloaded("reload refused (see the log); running the previous config");
      return;
    }
    auto& fresh = std::get<config::GatewayConfig>(next);
    const log::Level level = options.log_level.value_or(fresh.log_level);
    const bool needs_restart = restart_relevant(options.config_path, fresh) != started_with;
    // Said at the old level, then the new one applies: "warn" must not hide its own reload.
    LOG_INFO("gateway") << "reload applied: log_level " << log::level_name(level)
                        << (needs_restart ? "; other changes (adapters, devices, cloud, state_dir, token) wait for a "
                                            "restart: systemctl restart flatlinkd"
                                          : "; nothing else changed");
    log::set_level(level);
    notifier.reloaded(needs_restart ? "config reloaded; some changes wait for a restart" : "config reloaded");
  });
  install_test_faults(loop);

  gw.start();
  // Answers `flatlinkd status`; made only when asked, off the gateway's paths.
  StatusSocket status_socket(loop, status_socket_path(cfg), [&] { return status_snapshot(cfg, gw).dump() + "\n"; });
  notifier.start();
  const int rc = loop.run();
  LOG_INFO("gateway") << "stopped";
  return rc == 0 ? cli::kExitOk : cli::kExitFailure;
}
