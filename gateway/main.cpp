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
#include "config/config_loader.h"
#include "gateway/gateway.h"

using namespace flatlink;

namespace {

constexpr const char* kUsage =
    "Usage: flatlinkd [options]\n"
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

}  // namespace

int main(int argc, char** argv) {
  const cli::Parsed parsed = cli::parse(argc, argv, "/etc/flatlink/gateway.json");
  if (auto done = cli::answer_basics(parsed, "flatlinkd", kUsage)) return *done;
  const cli::Options& options = parsed.options;
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
                  [&](lws_context_creation_info& info) { gateway::Gateway::tune_context(cfg, info); }});
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
  notifier.start();
  const int rc = loop.run();
  LOG_INFO("gateway") << "stopped";
  return rc == 0 ? cli::kExitOk : cli::kExitFailure;
}
