// Log lines stay single lines whatever the message holds.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/log.h"

using namespace flatlink;

namespace {
// Captures what is written to stderr while fn runs.
template <class F>
std::string capture_stderr(F fn) {
  char path[] = "/tmp/fl-log-XXXXXX";
  int fd = mkstemp(path);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  lseek(fd, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  unlink(path);
  return out;
}
}  // namespace

TEST_CASE("a log line has the level, the component and the ids, and newlines inside are escaped") {
  log::set_level(log::Level::info);
  const std::string out = capture_stderr([] { LOG_WARN("serial") << "device=t1 bad line " << log::q("a\nb\"c"); });
  CHECK(out.find(" WARN serial: device=t1 bad line \"a\\nb\\\"c\"\n") != std::string::npos);
  CHECK(out.find('\n') == out.size() - 1);
}

TEST_CASE("lines below the level are not written") {
  log::set_level(log::Level::warn);
  const std::string out = capture_stderr([] { LOG_INFO("x") << "hidden"; });
  CHECK(out.empty());
  log::set_level(log::Level::info);
}

TEST_CASE("log levels parse from their names only") {
  log::Level l{};
  CHECK(log::parse_level("debug", l));
  CHECK(l == log::Level::debug);
  CHECK_FALSE(log::parse_level("verbose", l));
}

// Finding 6 of issue #18: whole bad values (1 MiB) and raw bytes >= 0x80 went into the log.
TEST_CASE("a quoted value is cut to 200 bytes with its size, and bytes that are not UTF-8 are escaped") {
  log::set_level(log::Level::info);
  const std::string huge(1024 * 1024, '[');
  std::string out = capture_stderr([&] { LOG_WARN("mqtt") << "bad value " << log::q(huge); });
  CHECK(out.size() < 400);
  CHECK(out.find("\"" + std::string(200, '[') + "\"\xe2\x80\xa6(1048576 bytes)\n") != std::string::npos);

  out = capture_stderr([] { LOG_WARN("wifly") << "line " << log::q(std::string("ok \xff\xfe K\xc3\xbc" "che \xc3\x28 \xed\xa0\x80")); });
  CHECK(out.find("\"ok \\xff\\xfe K\xc3\xbc" "che \\xc3( \\xed\\xa0\\x80\"") != std::string::npos);

  // A cut never splits a character: 199 ASCII bytes and a 2-byte character keep 199 bytes.
  out = capture_stderr([] { LOG_WARN("x") << log::q(std::string(199, 'a') + "\xc3\xbc" + std::string(10, 'b')); });
  CHECK(out.find("\"" + std::string(199, 'a') + "\"\xe2\x80\xa6(211 bytes)") != std::string::npos);
}

TEST_CASE("a whole line is one line of valid UTF-8 of bounded size, whatever is streamed into it") {
  log::set_level(log::Level::info);
  const std::string raw = std::string(100'000, '\x80') + "\n";
  const std::string out = capture_stderr([&] { LOG_WARN("serial") << "unquoted " << raw; });
  CHECK(out.find('\n') == out.size() - 1);
  CHECK(out.size() < log::kLineMaxBytes * 4 + 200);
  CHECK(out.find("\x80\x80") == std::string::npos);                    // no raw byte from the message...
  CHECK(out.find("unquoted \\x80\\x80") != std::string::npos);        // ... each one escaped
  CHECK(out.find("\xe2\x80\xa6(100010 bytes)") != std::string::npos);  // the one 0x80 is the ellipsis
}
