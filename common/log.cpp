// One-line structured logging to stderr, shared by both binaries.
#include "common/log.h"

#include <libwebsockets.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "common/utf8.h"

namespace flatlink::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::info)};

void append_hex(std::string& out, unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02x", c);
  out += buf;
}

// Control bytes and bytes that are not valid UTF-8 become \xNN, so a log line is one
// line of text whatever a device or peer sent (grep never calls the journal binary).
void append_escaped(std::string& out, std::string_view text, bool quote_marks) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t n = utf8::sequence_length(text, i);
      if (n == 0) {
        append_hex(out, c);
        ++i;
      } else {
        out.append(text.substr(i, n));
        i += n;
      }
      continue;
    }
    ++i;
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      append_hex(out, c);
    } else if (quote_marks && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(c);
    }
  }
}

// Where to cut text so that at most max bytes remain and no UTF-8 sequence is split.
size_t cut_point(std::string_view text, size_t max) {
  if (text.size() <= max) return text.size();
  const auto continuation = [&](size_t i) { return (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80; };
  // A character is at most 4 bytes: look back at most 3. Further back there is no
  // character to keep whole, only stray bytes that are escaped anyway.
  size_t cut = max;
  for (int back = 0; back < 3 && cut > 0 && continuation(cut); ++back) --cut;
  return continuation(cut) ? max : cut;
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
  const size_t cut = cut_point(quoted.text, kQuotedMaxBytes);
  std::string out = "\"";
  append_escaped(out, quoted.text.substr(0, cut), true);
  out += '"';
  if (cut < quoted.text.size()) out += "\xe2\x80\xa6(" + std::to_string(quoted.text.size()) + " bytes)";
  return os << out;
}

std::string quote(std::string_view text) {
  std::ostringstream os;
  os << Quoted{text};
  return os.str();
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
  const std::string message = os_.str();
  const size_t cut = cut_point(message, kLineMaxBytes);
  append_escaped(line, std::string_view(message).substr(0, cut), false);
  if (cut < message.size()) line += "\xe2\x80\xa6(" + std::to_string(message.size()) + " bytes)";
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
