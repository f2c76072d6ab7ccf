// Command safety: at most once, never stale, only valid values, one at a time
// per device, exactly one result.
#include <doctest/doctest.h>

#include "tests/run_until.h"

#include <map>
#include <vector>

#include "gateway/command_executor.h"

using namespace flatlink;
using namespace flatlink::gateway;

namespace {

// An adapter that answers when the test says so.
class ScriptedAdapter final : public adapters::Adapter {
 public:
  const std::string& name() const override { return name_; }
  void start() override {}
  void stop() override {}
  void execute(const Command& command, adapters::CommandDone done) override {
    executed.push_back(command.id);
    pending.push_back(std::move(done));
    if (answer_at_once) answer(CommandResult{Outcome::ok, ""});
  }
  void answer(CommandResult result) {
    auto done = std::move(pending.front());
    pending.erase(pending.begin());
    done(result);
  }

  std::vector<std::string> executed;
  std::vector<adapters::CommandDone> pending;
  bool answer_at_once = false;

 private:
  std::string name_ = "scripted";
};

struct Fixture {
  EventLoop loop{{}};
  ManualClock clock;
  DeviceRegistry registry;
  ScriptedAdapter adapter;
  std::vector<std::pair<std::string, CommandResult>> results;
  CommandExecutor executor{loop, registry, clock, 200,
                           [this](const std::string& id, const CommandResult& r) { results.emplace_back(id, r); }};

  Fixture() {
    DeviceInfo lamp;
    lamp.id = "lamp-1";
    lamp.capabilities = {Capability::boolean("on", true), Capability::integer("brightness", 0, 100, true)};
    DeviceInfo thermo;
    thermo.id = "thermo-1";
    thermo.capabilities = {Capability::number("temperature", -50, 100, false)};
    registry.upsert(lamp, &adapter);
    registry.upsert(thermo, &adapter);
    registry.set_online("lamp-1", true);
    registry.set_online("thermo-1", true);
  }

  Command command(const std::string& id, Json set, int64_t ttl = 10'000, const std::string& device = "lamp-1") {
    return Command{id, device, std::move(set), clock.wall_ms() + ttl};
  }

  // Runs the loop until cond() or a timeout (the loop's own timer, not a sleep).
  template <class F>
  void run_until(F cond, uint32_t max_ms = 3000) {
    testing::run_until(loop, cond, max_ms);
  }

  Outcome outcome_of(const std::string& id) const {
    for (const auto& [rid, r] : results) {
      if (rid == id) return r.outcome;
    }
    FAIL("no result for " << id);
    return Outcome::ok;
  }
};

}  // namespace

TEST_CASE("a command past its expiry is answered expired and never reaches the adapter") {
  Fixture f;
  f.executor.submit(f.command("c1", Json{{"on", true}}, -1));
  REQUIRE(f.results.size() == 1);
  CHECK(f.results[0].second.outcome == Outcome::expired);
  CHECK(f.adapter.executed.empty());
}

TEST_CASE("a command id seen before is not run again and gets no second result") {
  Fixture f;
  f.adapter.answer_at_once = true;
  f.executor.submit(f.command("c1", Json{{"on", true}}));
  f.executor.submit(f.command("c1", Json{{"on", true}}));
  CHECK(f.adapter.executed == std::vector<std::string>{"c1"});
  CHECK(f.results.size() == 1);
}

TEST_CASE("values that do not fit the capability are rejected before the adapter sees them") {
  Fixture f;
  f.executor.submit(f.command("c1", Json{{"brightness", 101}}));
  f.executor.submit(f.command("c2", Json{{"colour", "red"}}));
  f.executor.submit(f.command("c3", Json{{"temperature", 20}}, 10'000, "thermo-1"));
  f.executor.submit(f.command("c4", Json{{"on", true}}, 10'000, "no-such-device"));
  f.executor.submit(f.command("c5", Json::object()));
  REQUIRE(f.results.size() == 5);
  for (const auto& [id, r] : f.results) CHECK(r.outcome == Outcome::rejected);
  CHECK(f.results[0].second.message == "brightness: 101 is out of range, expected a value between 0 and 100");
  CHECK(f.results[1].second.message == "lamp-1 has no capability colour");
  CHECK(f.results[2].second.message == "temperature of thermo-1 is read-only");
  CHECK(f.results[3].second.message == "unknown device no-such-device");
  CHECK(f.adapter.executed.empty());
}

TEST_CASE("commands to one device run one at a time and in order") {
  Fixture f;
  f.executor.submit(f.command("c1", Json{{"on", true}}));
  f.executor.submit(f.command("c2", Json{{"brightness", 10}}));
  f.executor.submit(f.command("c3", Json{{"on", false}}));
  CHECK(f.adapter.executed == std::vector<std::string>{"c1"});
  f.adapter.answer({Outcome::ok, ""});
  f.run_until([&] { return f.adapter.executed.size() == 2; });
  CHECK(f.adapter.executed == std::vector<std::string>{"c1", "c2"});
  f.adapter.answer({Outcome::device_error, "jammed"});
  f.run_until([&] { return f.adapter.executed.size() == 3; });
  f.adapter.answer({Outcome::ok, ""});
  REQUIRE(f.results.size() == 3);
  CHECK(f.results[0].first == "c1");
  CHECK(f.results[1].first == "c2");
  CHECK(f.results[1].second.outcome == Outcome::device_error);
  CHECK(f.results[2].first == "c3");
}

TEST_CASE("a command that waited behind a slow one past its expiry is answered expired") {
  Fixture f;
  f.executor.submit(f.command("c1", Json{{"on", true}}));
  f.executor.submit(f.command("c2", Json{{"on", false}}, 50));
  f.clock.advance(100);
  f.adapter.answer({Outcome::ok, ""});
  f.run_until([&] { return f.results.size() == 2; });
  CHECK(f.outcome_of("c2") == Outcome::expired);
  CHECK(f.adapter.executed == std::vector<std::string>{"c1"});
}

TEST_CASE("a device that never answers ends in timeout, and its late answer is ignored") {
  Fixture f;
  f.executor.submit(f.command("c1", Json{{"on", true}}));
  f.run_until([&] { return !f.results.empty(); });
  REQUIRE(f.results.size() == 1);
  CHECK(f.results[0].second.outcome == Outcome::timeout);
  f.adapter.answer({Outcome::ok, ""});  // too late
  CHECK(f.results.size() == 1);
}

TEST_CASE("commands of a device that goes away all end, each exactly once") {
  Fixture f;
  f.executor.submit(f.command("c1", Json{{"on", true}}));
  f.executor.submit(f.command("c2", Json{{"on", false}}));
  CHECK(f.executor.pending() == 2);
  f.executor.abandon_device("lamp-1", Outcome::device_error, "went offline");
  CHECK(f.executor.pending() == 0);
  REQUIRE(f.results.size() == 2);
  f.adapter.answer({Outcome::ok, ""});  // the adapter's answer after the fact changes nothing
  CHECK(f.results.size() == 2);
}

TEST_CASE("an offline device's command ends in device_error without reaching the adapter") {
  Fixture f;
  f.registry.set_online("lamp-1", false);
  f.executor.submit(f.command("c1", Json{{"on", true}}));
  REQUIRE(f.results.size() == 1);
  CHECK(f.results[0].second.outcome == Outcome::device_error);
  CHECK(f.adapter.executed.empty());
}

TEST_CASE("a command id is remembered for the longest TTL however many commands come meanwhile") {
  Fixture f;
  f.adapter.answer_at_once = true;
  // A few thousand commands a second (protocol.md promises at least 10 minutes of memory;
  // a memory of the last 4096 ids forgot the first after a second and a half).
  for (int i = 0; i < 6000; ++i) {
    f.executor.submit(f.command("c" + std::to_string(i), Json{{"on", i % 2 == 0}}));
    if (i % 1000 == 999) f.clock.advance(1000);
  }
  REQUIRE(f.adapter.executed.size() == 6000);
  f.clock.advance(1000);  // 7 s after the first
  f.executor.submit(f.command("c0", Json{{"on", true}}));
  CHECK(f.adapter.executed.size() == 6000);
  // Past the longest TTL (and its margin) an id may go, and memory is given back.
  f.clock.advance(CommandExecutor::kRememberMs + CommandExecutor::kRememberMarginMs);
  f.executor.submit(f.command("c-new", Json{{"on", true}}));
  CHECK(f.executor.remembered() == 1);
}

TEST_CASE("command-id memory is bounded by bytes: when full, a new command is rejected, never an id forgotten early") {
  EventLoop loop{{}};
  ManualClock clock;
  DeviceRegistry registry;
  ScriptedAdapter adapter;
  adapter.answer_at_once = true;
  DeviceInfo lamp;
  lamp.id = "lamp-1";
  lamp.capabilities = {Capability::boolean("on", true)};
  registry.upsert(lamp, &adapter);
  registry.set_online("lamp-1", true);
  std::vector<std::pair<std::string, CommandResult>> results;
  CommandExecutor executor{loop, registry, clock, 200,
                           [&](const std::string& id, const CommandResult& r) { results.emplace_back(id, r); },
                           10 * 1024};
  for (int i = 0; i < 200; ++i) {
    executor.submit(Command{"c" + std::to_string(i), "lamp-1", Json{{"on", true}}, clock.wall_ms() + 10'000});
  }
  CHECK(executor.remembered_bytes() <= 10 * 1024);
  CHECK(executor.remembered() < 200);
  CHECK(results.back().second.outcome == Outcome::rejected);
  CHECK(results.back().second.message.find("too many commands") != std::string::npos);
  // The first id is still remembered: it does not run again.
  const size_t ran = adapter.executed.size();
  executor.submit(Command{"c0", "lamp-1", Json{{"on", true}}, clock.wall_ms() + 10'000});
  CHECK(adapter.executed.size() == ran);
}
