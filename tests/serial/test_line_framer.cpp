// Line framing: lines end at newlines, overlong lines are dropped and reading
// resynchronises at the next newline.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "device-adapters/serial/line_framer.h"

using flatlink::adapters::serial::LineFramer;

namespace {

struct Collected {
  std::vector<std::string> lines;
  std::vector<size_t> overlong;
  LineFramer framer;
  explicit Collected(size_t max)
      : framer(
            max, [this](std::string_view line) { lines.emplace_back(line); },
            [this](size_t dropped) { overlong.push_back(dropped); }) {}
};

}  // namespace

TEST_CASE("lines split at newlines whatever the chunks, without their CR, and empty lines are skipped") {
  Collected c(64);
  c.framer.feed("one\r\ntw");
  c.framer.feed("o\n\n\r\nthr");
  CHECK(c.lines == std::vector<std::string>{"one", "two"});
  c.framer.feed("ee\n");
  CHECK(c.lines == std::vector<std::string>{"one", "two", "three"});
  CHECK(c.overlong.empty());
}

TEST_CASE("a line of exactly the maximum is kept, one byte more is dropped and the next line still arrives") {
  Collected c(8);
  c.framer.feed("12345678\n123456789\nok\n");
  CHECK(c.lines == std::vector<std::string>{"12345678", "ok"});
  CHECK(c.overlong == std::vector<size_t>{10});
}

TEST_CASE("an overlong line spread over many chunks is dropped once, and reading resynchronises at its newline") {
  Collected c(16);
  for (int i = 0; i < 100; ++i) c.framer.feed(std::string(100, 'x'));
  CHECK(c.overlong.empty());  // told when the line ends, once
  c.framer.feed("yyy\nafter\n");
  CHECK(c.overlong == std::vector<size_t>{10'004});
  CHECK(c.lines == std::vector<std::string>{"after"});
}

TEST_CASE("a reset forgets a partial line") {
  Collected c(16);
  c.framer.feed("half a li");
  c.framer.reset();
  c.framer.feed("whole\n");
  CHECK(c.lines == std::vector<std::string>{"whole"});
}
