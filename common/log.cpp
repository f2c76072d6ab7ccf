// One-line structured logging to stderr, shared by both binaries.
#include "common/log.h"

#include <libwebsockets.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace flatlink::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::info)};

void append_escaped(std::string& out, std::string_view text, bool quote_marks) {
  for (unsigned char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else if (quote_marks && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(c);
    }
  }
}

void lws_emit(int lws_level, const char* line) {
  Level level = Level::debug;
  if (lws_level & LLL_ERR) {
    level = Level::error;
  } else if (lws_level & LLL_WARN) {
    level = Level::warn;
  } else if (lws_level & (LLL_NOTICE | LLL_USER)) {
    level = Level::info;
  }
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  FL_LOG(level, "lws") << text;
}

}  // namespace

void set_level(Level level) {
  g_level.store(static_cast<int>(level));
  route_lws_logs();
}
Level level() { return static_cast<Level>(g_level.load()); }
bool enabled(Level lvl) { return static_cast<int>(lvl) >= g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view text, Level& out) {
  if (text == "debug") {
    out = Level::debug;
  } else if (text == "info") {
    out = Level::info;
  } else if (text == "warn") {
    out = Level::warn;
  } else if (text == "error") {
    out = Level::error;
  } else {
    return false;
  }
  return true;
}

std::string_view level_name(Level lvl) {
  switch (lvl) {
    case Level::debug: return "DEBUG";
    case Level::info: return "INFO";
    case Level::warn: return "WARN";
    case Level::error: return "ERROR";
  }
  return "?";
}

void route_lws_logs() {
  // lws is chatty at NOTICE; its errors and warnings always matter, the rest only when debugging.
  int mask = LLL_ERR | LLL_WARN;
  if (level() == Level::debug) mask |= LLL_NOTICE | LLL_USER;
  lws_set_log_level(mask, lws_emit);
}

std::ostream& operator<<(std::ostream& os, Quoted quoted) {
  std::string out = "\"";
  append_escaped(out, quoted.text, true);
  out += '"';
  return os << out;
}

Line::Line(Level lvl, std::string_view component) : level_(lvl), component_(component) {}

Line::~Line() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[96];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  std::string line;
  line.reserve(96);
  line += stamp;
  line += ' ';
  line += level_name(level_);
  line += ' ';
  line += component_;
  line += ": ";
  append_escaped(line, os_.str(), false);
  line += '\n';
  // One write per line so that lines from several threads never interleave.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace flatlink::log
