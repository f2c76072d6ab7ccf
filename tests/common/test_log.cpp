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
