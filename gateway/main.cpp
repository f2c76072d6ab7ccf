// flatlinkd: the gateway daemon. A thin main over gateway::Gateway.
#include <cstdio>
#include <variant>

#include "common/cli.h"
#include "common/event_loop.h"
#include "common/log.h"
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
    "2 bad command line. SIGTERM or SIGINT stop it gracefully.\n";

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

  auto loaded = config::load_gateway_config(options.config_path);
  if (auto* error = std::get_if<config::ConfigError>(&loaded)) {
    std::fprintf(stderr, "flatlinkd: %s\n", error->message.c_str());
    return cli::kExitFailure;
  }
  auto& cfg = std::get<config::GatewayConfig>(loaded);
  if (options.check_config) {
    std::printf("%s: valid\n%s", options.config_path.c_str(), config::summarize(cfg).c_str());
    return cli::kExitOk;
  }
  log::set_level(options.log_level.value_or(cfg.log_level));

  EventLoop loop({gateway::Gateway::protocols(),
                  [&](lws_context_creation_info& info) { gateway::Gateway::tune_context(cfg, info); }});
  if (!loop.ok()) return cli::kExitFailure;
  gateway::Gateway gw(loop, cfg);
  loop.on_stop([&] { gw.stop([&] { loop.quit(); }); });
  loop.install_signal_handlers();
  gw.start();
  const int rc = loop.run();
  LOG_INFO("gateway") << "stopped";
  return rc == 0 ? cli::kExitOk : cli::kExitFailure;
}
