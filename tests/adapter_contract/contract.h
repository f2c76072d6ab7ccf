// The contract every device adapter keeps (device-adapters/adapter_base.h,
// docs/adapters/contract.md), written once as a table of cases. Each adapter's test
// binary runs it against a small harness of its own (serial over socat ptys, WiFly over
// each protocol on loopback, MQTT per preset on a real Mosquitto, sim): the same cases,
// the same expected answers.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/event_loop.h"
#include "common/log.h"
#include "device-adapters/adapter.h"

namespace flatlink::contract {

// One adapter with one device that has two writable capabilities, started, its device online.
class Harness {
 public:
  virtual ~Harness() = default;
  virtual std::string label() const = 0;
  virtual EventLoop& loop() = 0;
  virtual adapters::Adapter& adapter() = 0;
  virtual std::string device() const = 0;
  // Two commands' values, each setting one capability; together they set both.
  virtual Json first_set() const = 0;
  virtual Json second_set() const = 0;

  // The host's view.
  virtual bool host_online() const = 0;
  virtual size_t host_statuses() const = 0;

  // The device's side. Harnesses of simulated devices cannot do some of it.
  virtual bool plays_device() const { return true; }
  virtual void go_offline() = 0;  // unplug, close, LWT: returns once the host saw it (run the loop)
  virtual void go_online() = 0;   // back: returns once the host saw it
  // The commands' values the device received, in order.
  virtual std::vector<Json> received() = 0;
  // The device reports values of its capabilities (as its protocol does).
  virtual void report(const Json& values) = 0;
  // The device sends raw text on its input path (a line, a frame, a payload).
  virtual void send_raw(const std::string& text) = 0;
  // The largest text the input path takes as one message (the adapter's own cap).
  virtual size_t max_raw_bytes() const = 0;
  // Whether bytes that are not UTF-8 in a message leave the connection open (false where the
  // protocol closes it: RFC 6455 fails it with 1007, hixie's 0xFF ends a text frame).
  virtual bool survives_invalid_utf8() const { return true; }
  // Called on every tick of the loop while a case waits (e.g. to drain a pty).
  virtual void tick() {}

  template <class F>
  bool run_until(F cond, uint32_t max_ms = 8000) {
    if (cond()) return true;
    EventLoop& l = loop();
    Timer guard(l, [&] { l.quit(); });
    Timer t(l, [&] {
      tick();
      if (cond()) {
        l.quit();
      } else {
        t.start(1);
      }
    });
    t.start(1);
    guard.start(max_ms);
    l.run();
    return cond();
  }
  // Lets the loop run for ms: only to show that something does NOT happen.
  void run_for(uint32_t ms) {
    run_until([] { return false; }, ms);
  }

  std::map<std::string, std::optional<CommandResult>> results;
  std::vector<std::string> finished;  // command ids in the order they ended
  void execute(const std::string& id, Json set, int64_t expires_ms = 0) {
    results[id] = std::nullopt;
    adapter().execute(Command{id, device(), std::move(set), expires_ms}, [this, id](CommandResult r) {
      REQUIRE_FALSE(results[id].has_value());  // exactly one answer
      results[id] = std::move(r);
      finished.push_back(id);
    });
  }
  bool ended(const std::string& id) const {
    const auto it = results.find(id);
    return it != results.end() && it->second.has_value();
  }
  Outcome outcome(const std::string& id) const { return results.at(id)->outcome; }
};

using MakeHarness = std::function<std::unique_ptr<Harness>()>;

// Captures what is written to stderr while fn runs (the loop may run inside).
template <class F>
std::string capture_stderr(F fn) {
  char path[] = "/tmp/fl-contract-log-XXXXXX";
  const int fd = ::mkstemp(path);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  fn();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::string out;
  ::lseek(fd, 0, SEEK_SET);
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  ::unlink(path);
  return out;
}

inline bool valid_utf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || i + n > text.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

inline Json merged(Json a, const Json& b) {
  for (const auto& [k, v] : b.items()) a[k] = v;
  return a;
}

// The table. Each case starts from a fresh harness.
inline void check_contract(const MakeHarness& make) {
  bool plays = true;
  // 1. Offline: `offline`, nothing sent (finding 4 of issue #18).
  {
    auto h = make();
    INFO(h->label(), ": a command to an offline device");
    plays = h->plays_device();
    h->go_offline();
    REQUIRE_FALSE(h->host_online());
    h->execute("off", h->first_set());
    REQUIRE(h->run_until([&] { return h->ended("off"); }));
    CHECK(h->outcome("off") == Outcome::offline);
    CHECK(h->results["off"]->message == "device " + h->device() + " is offline");
    if (h->plays_device()) CHECK(h->received().empty());
    h->go_online();
    h->execute("back", h->first_set());
    if (h->plays_device()) {
      REQUIRE(h->run_until([&] { return h->received().size() == 1; }));
      h->report(h->first_set());
    }
    REQUIRE(h->run_until([&] { return h->ended("back"); }));
    CHECK(h->outcome("back") == Outcome::ok);
  }
  // 2. An unknown device: `rejected`.
  {
    auto h = make();
    INFO(h->label(), ": a command to an unknown device");
    std::optional<CommandResult> result;
    h->adapter().execute(Command{"u1", "no-such-device", h->first_set(), 0}, [&](CommandResult r) { result = r; });
    REQUIRE(h->run_until([&] { return result.has_value(); }));
    CHECK(result->outcome == Outcome::rejected);
  }
  // 3. Busy: one command per device at a time, the next waits and runs after (finding 5).
  {
    auto h = make();
    INFO(h->label(), ": two commands for one device");
    h->execute("a", h->first_set());
    h->execute("b", h->second_set());
    if (h->plays_device()) {
      REQUIRE(h->run_until([&] { return h->received().size() == 1; }));
      h->run_for(30);
      CHECK(h->received().size() == 1);  // the second waits while the first runs
      CHECK_FALSE(h->ended("b"));
      h->report(h->first_set());
      REQUIRE(h->run_until([&] { return h->ended("a") && h->received().size() == 2; }));
      CHECK(h->received()[1] == h->second_set());
      h->report(h->second_set());
    }
    REQUIRE(h->run_until([&] { return h->ended("a") && h->ended("b"); }));
    CHECK(h->outcome("a") == Outcome::ok);
    CHECK(h->outcome("b") == Outcome::ok);
    CHECK(h->finished == std::vector<std::string>{"a", "b"});
  }
  // 4. A waiting command whose expiry passes ends `expired` and is never sent.
  {
    auto h = make();
    INFO(h->label(), ": a waiting command past its expiry");
    h->execute("long", h->first_set());
    h->execute("short", h->second_set(), SystemClock::instance().wall_ms() + 20);
    REQUIRE(h->run_until([&] { return h->ended("short"); }));
    CHECK(h->outcome("short") == Outcome::expired);
    if (h->plays_device()) {
      h->report(h->first_set());
      REQUIRE(h->run_until([&] { return h->ended("long"); }));
      h->run_for(20);
      CHECK(h->received().size() == 1);
    }
  }
  if (!plays) return;
  // 5. A device confirms in one report or several (one line-device contract).
  {
    auto h = make();
    INFO(h->label(), ": a confirmation in two reports");
    h->execute("both", merged(h->first_set(), h->second_set()));
    // One line, frame or payload; a Tasmota plug or a rule gets one publish per value.
    REQUIRE(h->run_until([&] { return !h->received().empty(); }));
    h->report(h->first_set());
    h->run_for(20);
    CHECK_FALSE(h->ended("both"));
    h->report(h->second_set());
    REQUIRE(h->run_until([&] { return h->ended("both"); }));
    CHECK(h->outcome("both") == Outcome::ok);
  }
  // 6. Going offline under a running command: it ends device_error, the waiting one offline.
  {
    auto h = make();
    INFO(h->label(), ": the device goes away under a command");
    h->execute("run", h->first_set());
    h->execute("wait", h->second_set());
    REQUIRE(h->run_until([&] { return h->received().size() == 1; }));
    h->go_offline();
    REQUIRE(h->run_until([&] { return h->ended("run") && h->ended("wait"); }));
    CHECK(h->outcome("run") == Outcome::device_error);
    CHECK(h->outcome("wait") == Outcome::offline);
  }
  // 7. A million levels of nesting on the input path (finding 1), then bad input of
  //    every kind, logged at a bounded rate, cut and escaped (finding 6).
  {
    auto h = make();
    INFO(h->label(), ": deep, huge and binary input");
    const size_t statuses = h->host_statuses();
    constexpr size_t kLevels = 1'000'000;
    const size_t fits = std::min<size_t>(kLevels, (h->max_raw_bytes() - 2) / 2);
    const std::string log = capture_stderr([&] {
      h->send_raw(std::string(fits, '[') + std::string(fits, ']'));
      if (fits < kLevels) h->send_raw(std::string(kLevels, '[') + std::string(kLevels, ']'));  // over the cap
      for (int i = 0; i < 100; ++i) h->send_raw("{\"not json" + std::to_string(i));
      if (h->survives_invalid_utf8()) h->send_raw(std::string("{\"x\":\"\xff\xfe\x80 bytes\"}"));
      h->send_raw("\"" + std::string(std::min<size_t>(h->max_raw_bytes() - 4, 60'000), 'z') + "\"");
      h->report(h->first_set());
      REQUIRE(h->run_until([&] { return h->host_statuses() > statuses; }, 30000));
    });
    CHECK(h->host_online());
    size_t warn_lines = 0, longest = 0, start = 0;
    for (size_t nl; (nl = log.find('\n', start)) != std::string::npos; start = nl + 1) {
      const std::string line = log.substr(start, nl - start);
      if (line.find(" WARN ") != std::string::npos) ++warn_lines;
      longest = std::max(longest, line.size());
    }
    CHECK(warn_lines <= 12);  // 100+ bad inputs, a bounded number of lines
    CHECK(longest < 2000);    // values cut to 200 bytes, never a whole payload
    CHECK(valid_utf8(log));   // bytes >= 0x80 from the device escaped
  }
}

}  // namespace flatlink::contract
