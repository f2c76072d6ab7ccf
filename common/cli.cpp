// Parsing of the daemons' shared command line.
#include "common/cli.h"

#include <cstdio>
#include <string_view>

namespace flatlink::cli {

Parsed parse(int argc, char** argv, const std::string& default_config) {
  Parsed parsed;
  Options& o = parsed.options;
  o.config_path = default_config;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string_view flag) -> std::optional<std::string> {
      // --flag=value or --flag value
      if (arg.size() > flag.size() && arg.substr(0, flag.size()) == flag && arg[flag.size()] == '=') {
        return std::string(arg.substr(flag.size() + 1));
      }
      if (arg == flag) {
        if (i + 1 >= argc) return std::nullopt;
        return std::string(argv[++i]);
      }
      return std::nullopt;
    };
    auto takes = [&](std::string_view flag) {
      return arg == flag || (arg.size() > flag.size() && arg.substr(0, flag.size() + 1) == std::string(flag) + "=");
    };
    if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else if (arg == "--version") {
      o.version = true;
    } else if (arg == "--check-config") {
      o.check_config = true;
    } else if (takes("--config")) {
      auto v = value("--config");
      if (!v || v->empty()) {
        parsed.error = "--config needs a file path";
        return parsed;
      }
      o.config_path = *v;
    } else if (takes("--log-level")) {
      auto v = value("--log-level");
      log::Level level{};
      if (!v || !log::parse_level(*v, level)) {
        parsed.error = "--log-level expects one of debug, info, warn, error";
        return parsed;
      }
      o.log_level = level;
    } else if (!arg.empty() && arg[0] == '-') {
      parsed.error = "unknown option " + std::string(arg) + " (see --help)";
      return parsed;
    } else {
      o.positional.emplace_back(arg);
    }
  }
  return parsed;
}

std::optional<int> answer_basics(const Parsed& parsed, const char* program, const char* usage) {
  if (!parsed.error.empty()) {
    std::fprintf(stderr, "%s: %s\n", program, parsed.error.c_str());
    return kExitUsage;
  }
  if (parsed.options.help) {
    std::fputs(usage, stdout);
    return kExitOk;
  }
  if (parsed.options.version) {
    std::printf("%s %s\n", program, FLATLINK_VERSION);
    return kExitOk;
  }
  return std::nullopt;
}

}  // namespace flatlink::cli
