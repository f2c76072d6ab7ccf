// flatlink-cloud: the cloud server. A thin main over cloud::Server.
#include <malloc.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <variant>

#include "cloud-server/admin.h"
#include "cloud-server/auth.h"
#include "cloud-server/server.h"
#include "common/cli.h"
#include "common/event_loop.h"
#include "common/log.h"
#include "common/service_notifier.h"
#include "config/config_loader.h"

using namespace flatlink;

namespace {

constexpr const char* kUsage =
    "Usage: flatlink-cloud [options]\n"
    "       flatlink-cloud hash-token      < token      (prints the hash for gateway_token_sha256)\n"
    "       flatlink-cloud hash-password   < password   (prints an Argon2id hash for users[].password_hash)\n"
    "       flatlink-cloud admin COMMAND …  (flats, gateways, users, members in the store; admin help)\n"
    "       flatlink-cloud migrate          (applies the store's schema migrations)\n"
    "       flatlink-cloud status           (the running cloud: listener, links, store)\n"
    "       flatlink-cloud backup DIR       (config and SQLite store into a new folder in DIR)\n"
    "       flatlink-cloud restore FOLDER   (puts a backup back; the cloud stopped)\n"
    "\n"
    "The flatlink cloud server: accepts gateways and browsers, routes status up and\n"
    "commands down, one flat never reaching another.\n"
    "\n"
    "Options:\n"
    "  --config PATH       cloud configuration (default /etc/flatlink/cloud.json)\n"
    "  --check-config      validate the configuration, print a summary, exit\n"
    "  --log-level LEVEL   debug, info, warn or error (overrides the config)\n"
    "  --version           print the version and exit\n"
    "  --help              this text\n"
    "\n"
    "Exit codes: 0 stopped cleanly or config valid, 1 invalid config or failure,\n"
    "2 bad command line. SIGTERM or SIGINT stop it gracefully; SIGHUP reloads the\n"
    "configuration (flats, users, tokens, limits and log level at once, without\n"
    "dropping links). Under systemd (Type=notify) it reports READY, STATUS and WATCHDOG.\n";

// Reads one secret from stdin: the first line, without its newline.
bool read_secret(std::string& out) {
  if (!std::getline(std::cin, out)) return false;
  while (!out.empty() && (out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return !out.empty();
}

// Where the dashboard is served from when the config names no dashboard_dir, looked up
// from where the executable is, never from a path compiled in from the build machine
// (an installed binary must not serve a stale checkout that happens to sit there):
// 1. the build tree: <exe dir>/flatlink-cloud.dashboard-path, a file CMake writes next
//    to the built binary (never installed), naming the build's staged copy of the
//    dashboard (with its .gz files; cloud-server/CMakeLists.txt);
// 2. the install prefix: <exe dir>/../share/flatlink/dashboard;
// 3. the prefix the binary was configured for (FLATLINK_DASHBOARD_INSTALL_DIR).
std::string default_dashboard_dir() {
  const auto has_index = [](const std::string& dir) {
    struct stat st {};
    return !dir.empty() && ::stat((dir + "/index.html").c_str(), &st) == 0 && S_ISREG(st.st_mode);
  };
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    std::ifstream marker(dir + "/flatlink-cloud.dashboard-path");
    std::string source;
    if (marker && std::getline(marker, source) && has_index(source)) return source;
    const std::string beside = dir + "/../share/flatlink/dashboard";
    if (has_index(beside)) return beside;
  }
  return FLATLINK_DASHBOARD_INSTALL_DIR;
}

// The credentials published with the repository (docs/configuration.md, config/examples/):
// anybody can read them, so a cloud outside the demo refuses to start or reload with one.
struct PublishedCredential {
  const char* hash;
  const char* what;
};
constexpr PublishedCredential kPublishedTokenHashes[] = {
    {"af83df711009792271456e0bf45e479e36b906b85434aec54ddd07d50f04caa6",
     "the published demo gateway token \"demo-flat-a-token-change-me\""},
    {"5b81faab555d433c3be60f6f25b1b7ff8a4fb516f6c965812007a23aa2ff1de4",
     "the published example gateway token \"flat-b-token-change-me\""},
};
constexpr PublishedCredential kPublishedPasswordHashes[] = {
    {"pbkdf2-sha256$100000$6a1f3c9e2b7d4a50c8e1f2a3b4c5d6e7$"
     "e65bcfaa0531992854bcfa3a983bc0f702608c340959b1c3a6d5dd2a66b1094a",
     "the published demo password hash (user \"demo\", password \"demo\")"},
    {"pbkdf2-sha256$100000$0b9e7d5c3a1f2e4d6c8b0a9f8e7d6c5b$"
     "1295bfcc96f9496c450ebd95b98e99ab1f1a69245e7388579fa06dbc0f53571b",
     "the published example password hash of user \"tenant-b\""},
};

bool is_loopback(const std::string& address) {
  return address == "localhost" || address == "::1" || address.rfind("127.", 0) == 0;
}

// Empty when the config may run; otherwise why not, naming the credential and where it is.
std::string published_credential_refusal(const config::CloudConfig& cfg) {
  if (cfg.demo) {
    if (is_loopback(cfg.listen_address)) return {};
    return cfg.source + ": demo: true (the published demo credentials) is only allowed on a loopback listen_address, got \"" +
           cfg.listen_address + "\"";
  }
  const std::string fix = " is refused outside the demo: issue a token of your own (docs/operations.md, \"Add a flat\")";
  for (size_t f = 0; f < cfg.flats.size(); ++f) {
    const config::FlatConfig& flat = cfg.flats[f];
    const std::string at = cfg.source + ": flats[" + std::to_string(f) + "] (" + flat.id + ")";
    for (const PublishedCredential& known : kPublishedTokenHashes) {
      if (flat.gateway_token_sha256 == known.hash) return at + ".gateway_token_sha256 is " + known.what + fix;
    }
    for (size_t u = 0; u < flat.users.size(); ++u) {
      const config::UserConfig& user = flat.users[u];
      const std::string user_at = at + ".users[" + std::to_string(u) + "] (" + user.name + ").password_hash";
      for (const PublishedCredential& known : kPublishedPasswordHashes) {
        if (user.password_hash == known.hash) return user_at + " is " + known.what + fix;
      }
      // The demo password hashed again with another salt is the same published login:
      // refused on a cloud reachable from other hosts (tests on loopback use it freely).
      if (!is_loopback(cfg.listen_address) && user.name == "demo" && cloud::verify_password("demo", user.password_hash)) {
        return user_at + " is the published demo login \"demo\"/\"demo\"" + fix;
      }
    }
  }
  return {};
}

// load_cloud_config plus the refusal above: used at start, by --check-config and on SIGHUP.
config::Loaded<config::CloudConfig> load_checked(const std::string& path) {
  auto loaded = config::load_cloud_config(path);
  if (auto* cfg = std::get_if<config::CloudConfig>(&loaded)) {
    if (std::string refusal = published_credential_refusal(*cfg); !refusal.empty()) {
      return config::ConfigError{std::move(refusal)};
    }
  }
  return loaded;
}

// Every link is a file descriptor: lift the soft limit to the hard one (LimitNOFILE=
// in the unit sets the hard one) and say what the cap is.
void raise_open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  LOG_INFO("server") << "open files limit " << static_cast<unsigned long long>(limit.rlim_cur)
                     << " (caps the number of links)";
}

}  // namespace

int main(int argc, char** argv) {
  const cli::Parsed parsed = cli::parse(argc, argv, "/etc/flatlink/cloud.json");
  if (auto done = cli::answer_basics(parsed, "flatlink-cloud", kUsage)) return *done;
  const cli::Options& options = parsed.options;
  const auto& words = options.positional;
  const bool maintenance = (words.size() == 1 && words[0] == "status") ||
                           (words.size() == 2 && (words[0] == "backup" || words[0] == "restore"));
  if (maintenance || (!words.empty() && (words.front() == "admin" || words.front() == "migrate"))) {
    // Provisioning against the store the config names (cloud-server/admin.h).
    auto loaded = config::load_cloud_config(options.config_path);
    if (const auto* error = std::get_if<config::ConfigError>(&loaded)) {
      std::fprintf(stderr, "flatlink-cloud: %s\n", error->message.c_str());
      return cli::kExitFailure;
    }
    const auto& cfg = std::get<config::CloudConfig>(loaded);
    if (words[0] == "status") return cloud::run_status(cfg, std::cout, std::cerr);
    if (maintenance && words[0] == "backup") return cloud::run_backup(cfg, options.config_path, words[1], std::cout, std::cerr);
    if (maintenance) return cloud::run_restore(cfg, options.config_path, words[1], std::cout, std::cerr);
    if (options.positional.front() == "migrate") {
      if (options.positional.size() != 1) return std::fprintf(stderr, "%s", cloud::kAdminUsage), cli::kExitUsage;
      return cloud::run_migrate(cfg, std::cout, std::cerr);
    }
    const std::vector<std::string> args(options.positional.begin() + 1, options.positional.end());
    return cloud::run_admin(cfg, args, std::cin, std::cout, std::cerr);
  }
  if (!options.positional.empty()) {
    const std::string& command = options.positional.front();
    if (options.positional.size() > 1 || (command != "hash-token" && command != "hash-password")) {
      std::fprintf(stderr, "flatlink-cloud: unknown command %s (see --help)\n", command.c_str());
      return cli::kExitUsage;
    }
    if (isatty(STDIN_FILENO)) std::fprintf(stderr, "%s: type it and press Enter\n", command.c_str());
    std::string secret;
    if (!read_secret(secret)) {
      std::fprintf(stderr, "flatlink-cloud: %s: nothing on standard input\n", command.c_str());
      return cli::kExitFailure;
    }
    std::printf("%s\n", (command == "hash-token" ? cloud::hash_token(secret) : cloud::hash_password(secret)).c_str());
    return cli::kExitOk;
  }
  log::set_level(options.log_level.value_or(log::Level::info));
  // A password check (Argon2id) takes 19 MiB and frees it. glibc serves such a block with
  // mmap and then raises its mmap threshold to that size, so that the next checks come from
  // a worker's heap arena and stay resident after free (+19 MiB of RSS per worker, for good).
  // A fixed threshold keeps large blocks on mmap: freed, they go back to the system.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);

  auto loaded = config::load_for_main<config::CloudConfig>("flatlink-cloud", options.config_path, options.check_config,
                                                       load_checked);
  if (const int* exit_code = std::get_if<int>(&loaded)) return *exit_code;
  auto& cfg = std::get<config::CloudConfig>(loaded);
  log::set_level(options.log_level.value_or(cfg.log_level));
  if (cfg.dashboard_dir.empty()) cfg.dashboard_dir = default_dashboard_dir();
  LOG_INFO("server") << "dashboard from " << cfg.dashboard_dir;
  raise_open_files_limit();

  // The server gives the loop its protocols, so it is made first; but it must be destroyed
  // while the loop object still exists: run() → loop.shutdown() (links closed, reaching a
  // live server) → server.reset() (its timers see no context) → the loop (finding 12 of #19).
  auto owned_server = std::make_unique<cloud::Server>(cfg);
  cloud::Server& server = *owned_server;
  EventLoop loop(server.loop_options());
  if (!loop.ok()) {
    LOG_ERROR("server") << "could not listen on " << cfg.listen_address << ":" << cfg.port
                        << " (in use, or bad TLS files?)";
    return cli::kExitFailure;
  }
  ServiceNotifier notifier(loop, [&] {
    return std::to_string(server.metrics().gateway_links) + " gateways, " +
           std::to_string(server.metrics().browser_links) + " browsers";
  });
  loop.on_stop([&] {
    notifier.stopping();
    server.stop([&] { loop.quit(); });
  });
  // Before start() says "listening on": a SIGTERM right after that line must stop us gracefully.
  loop.install_signal_handlers();
  // SIGHUP: re-read the config; a bad file is refused and the running config stays.
  // Registered before start() says "listening on" too: a SIGHUP right after that line reloads
  // instead of ending the process (the signal's default action).
  loop.on_signal(SIGHUP, [&] {
    notifier.reloading();
    LOG_INFO("server") << "SIGHUP: reloading " << options.config_path;
    auto next = load_checked(options.config_path);
    if (auto* error = std::get_if<config::ConfigError>(&next)) {
      LOG_ERROR("server") << "reload refused, still running the previous config: " << error->message;
      notifier.reloaded("reload refused (see the log); running the previous config");
      return;
    }
    auto& fresh = std::get<config::CloudConfig>(next);
    // Said at the old level, then the new one applies: "warn" must not hide its own reload.
    const log::Level level = options.log_level.value_or(fresh.log_level);
    LOG_INFO("server") << "reload applied: log_level " << log::level_name(level) << "; "
                       << server.reload(std::move(fresh));
    log::set_level(level);
    notifier.reloaded("config reloaded");
  });
  server.start(loop);
  install_test_faults(loop);
  notifier.start();
  const int rc = loop.run();
  loop.shutdown();
  const std::string failure = server.failure();
  owned_server.reset();
  if (!failure.empty()) {
    LOG_ERROR("server") << "stopped: " << failure;
    return cli::kExitFailure;
  }
  LOG_INFO("server") << "stopped";
  return rc == 0 ? cli::kExitOk : cli::kExitFailure;
}
