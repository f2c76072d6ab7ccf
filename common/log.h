// One-line structured logging to stderr: "<time> <level> <component>: <message>".
#pragma once

#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>

namespace flatlink::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level level);
Level level();
bool enabled(Level level);
// Parses "debug", "info", "warn", "error"; returns false on anything else.
bool parse_level(std::string_view text, Level& out);
std::string_view level_name(Level level);

// Routes libwebsockets' own log lines through this logger (component "lws").
void route_lws_logs();

// A value from outside (a device, a broker, a peer) is shown at most this long in a log
// line, cut at a character boundary and followed by "…(N bytes)" with its whole size.
inline constexpr size_t kQuotedMaxBytes = 200;
// A whole line's message is cut the same way beyond this, whatever it holds.
inline constexpr size_t kLineMaxBytes = 4096;

// A value quoted for a log line: quotes, backslashes, control bytes and bytes that are
// not valid UTF-8 escaped (\xNN), cut to kQuotedMaxBytes.
struct Quoted {
  std::string_view text;
};
inline Quoted q(std::string_view text) { return Quoted{text}; }
std::ostream& operator<<(std::ostream& os, Quoted quoted);
// The same as a string, for messages built before they are logged.
std::string quote(std::string_view text);

// Collects one line and writes it with a single write(2) when destroyed. Any
// newline, control byte or byte that is not valid UTF-8 in the message is escaped
// (\xNN), and a message beyond kLineMaxBytes is cut, so a line stays one line of
// text whatever a device or peer sent.
class Line {
 public:
  Line(Level level, std::string_view component);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  template <class T>
  Line& operator<<(const T& value) {
    os_ << value;
    return *this;
  }

 private:
  Level level_;
  std::string component_;
  std::ostringstream os_;
};

}  // namespace flatlink::log

// A loop rather than an if, so that `if (x) LOG_INFO(...) << ...; else ...` stays unambiguous.
#define FL_LOG(lvl, component)                                                         \
  for (bool fl_log_once_ = ::flatlink::log::enabled(lvl); fl_log_once_; fl_log_once_ = false) \
  ::flatlink::log::Line(lvl, component)
#define LOG_DEBUG(component) FL_LOG(::flatlink::log::Level::debug, component)
#define LOG_INFO(component) FL_LOG(::flatlink::log::Level::info, component)
#define LOG_WARN(component) FL_LOG(::flatlink::log::Level::warn, component)
#define LOG_ERROR(component) FL_LOG(::flatlink::log::Level::error, component)
