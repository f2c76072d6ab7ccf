// The command line both daemons share: --config, --check-config, --version,
// --help, --log-level. Exit codes: 0 success, 1 failure (bad config, runtime
// error), 2 bad command line.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/log.h"

namespace flatlink::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct Options {
  std::string config_path;
  bool check_config = false;
  bool help = false;
  bool version = false;
  std::optional<log::Level> log_level;
  std::vector<std::string> positional;  // sub-commands and their arguments
};

struct Parsed {
  Options options;
  std::string error;  // non-empty: a usage error, already phrased for the user
};

Parsed parse(int argc, char** argv, const std::string& default_config);

// What every program does first: report a usage error (exit 2), or print the
// usage or the version (exit 0). Empty when the program should go on.
std::optional<int> answer_basics(const Parsed& parsed, const char* program, const char* usage);

}  // namespace flatlink::cli
