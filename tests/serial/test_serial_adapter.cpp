// The serial adapter against real pseudo-terminal pairs from socat: the adapter
// opens one end (<tmp>/dev), the test plays the device on the other (<tmp>/test).
// Unplugging is killing socat (the pty goes away); replugging is starting it again.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "device-adapters/serial/serial_adapter.h"
#include "socat_pair.h"

using namespace flatlink;
using namespace flatlink::adapters;
using flatlink::adapters::serial::SerialAdapter;

using flatlink::test::SocatPair;
using flatlink::test::TempDir;

namespace {

struct RecordingHost final : AdapterHost {
  std::map<std::string, DeviceInfo> devices;
  std::vector<std::pair<std::string, Json>> statuses;
  std::map<std::string, bool> online;
  int presence_changes = 0;

  void device_added(const DeviceInfo& device) override { devices[device.id] = device; }
  void device_removed(const std::string& id) override { devices.erase(id); }
  void status(const std::string& id, const Json& state, int64_t) override { statuses.emplace_back(id, state); }
  void presence(const std::string& id, bool on) override {
    online[id] = on;
    ++presence_changes;
  }
  bool all_online(bool on) const {
    if (online.empty()) return false;
    for (const auto& [id, value] : online) {
      if (value != on) return false;
    }
    return true;
  }
  size_t statuses_of(const std::string& id) const {
    size_t n = 0;
    for (const auto& [sid, state] : statuses) n += sid == id;
    return n;
  }
};

config::SerialDeviceConfig device(const std::string& id, std::vector<Capability> caps) {
  config::SerialDeviceConfig d;
  d.id = id;
  d.name = id;
  d.capabilities = std::move(caps);
  return d;
}

struct Fixture {
  TempDir dir;
  SocatPair socat{dir.path()};
  EventLoop loop{{}};
  RecordingHost host;
  config::SerialAdapterConfig config;
  std::unique_ptr<SerialAdapter> adapter;
  std::string written;  // what the adapter sent to the device
  std::vector<CommandResult> results;

  explicit Fixture(config::LineProtocol protocol = config::LineProtocol::json) {
    REQUIRE(loop.ok());
    config.name = "uart";
    config.port = socat.dev_path();
    config.protocol = protocol;
    config.baud = 115200;
    config.command_timeout_ms = 2000;
    config.reopen_min_ms = 20;
    config.reopen_max_ms = 100;
    Capability temp = Capability::number("temp", -40, 85, false);
    config.devices = {device("t1", {temp, Capability::integer("hum", 0, 100, false)}),
                      device("lamp", {Capability::boolean("on", true), Capability::integer("brightness", 0, 100, true)})};
  }
  ~Fixture() {
    if (adapter) adapter->stop();
  }

  void start(bool with_socat = true) {
    if (with_socat) REQUIRE(socat.start());
    adapter = std::make_unique<SerialAdapter>(config, loop, host);
    adapter->start();
  }

  // Runs the loop until cond() or a timeout (the loop's own timer, not a sleep).
  template <class F>
  bool run_until(F cond, uint32_t max_ms = 3000) {
    bool met = false;
    Timer guard(loop, [this] { loop.quit(); });
    Timer tick(loop, [&] {
      socat.drain(written);
      if (cond()) {
        met = true;
        loop.quit();
      } else {
        tick.start(2);
      }
    });
    tick.start(0);
    guard.start(max_ms);
    loop.run();
    return met;
  }

  void execute(const std::string& device_id, Json set, const std::string& id = "c1") {
    adapter->execute(Command{id, device_id, std::move(set), 0}, [this](CommandResult r) { results.push_back(r); });
  }
};

}  // namespace

TEST_CASE("JSON lines from the port become statuses of the devices they name") {
  Fixture f;
  f.start();
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  CHECK(f.host.devices.size() == 2);
  f.socat.send("{\"dev\":\"t1\",\"temp\":21.5,\"hum\":40}\r\n{\"dev\":\"lamp\",\"on\":false}\n");
  REQUIRE(f.run_until([&] { return f.host.statuses.size() == 2; }));
  CHECK(f.host.statuses[0] == std::pair<std::string, Json>{"t1", Json{{"temp", 21.5}, {"hum", 40}}});
  CHECK(f.host.statuses[1] == std::pair<std::string, Json>{"lamp", Json{{"on", false}}});
  CHECK(f.adapter->stats().lines == 2);
}

TEST_CASE("key=value lines become statuses, typed by the declared capabilities") {
  Fixture f(config::LineProtocol::keyvalue);
  f.start();
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  f.socat.send("t1 temp=21.5 hum=40\nlamp on=on brightness=7\n");
  REQUIRE(f.run_until([&] { return f.host.statuses.size() == 2; }));
  CHECK(f.host.statuses[0].second == Json{{"temp", 21.5}, {"hum", 40}});
  CHECK(f.host.statuses[1].second == Json{{"on", true}, {"brightness", 7}});
}

TEST_CASE("on a one-device port lines name no device, and the device learns read-only capabilities") {
  Fixture f;
  f.config.device = "boiler";
  f.config.devices = {device("boiler", {})};
  f.start();
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  CHECK(f.host.devices.at("boiler").capabilities.empty());
  f.socat.send("{\"flow\":60.5,\"burner\":true}\n{\"dev\":\"other\",\"flow\":1}\n{\"flow\":61}\n");
  REQUIRE(f.run_until([&] { return f.host.statuses.size() == 2; }));
  CHECK(f.host.statuses[0].second == Json{{"burner", true}, {"flow", 60.5}});
  CHECK(f.host.statuses[1].second == Json{{"flow", 61}});
  const DeviceInfo& boiler = f.host.devices.at("boiler");
  REQUIRE(boiler.capabilities.size() == 2);
  REQUIRE(boiler.capability("flow") != nullptr);
  CHECK(boiler.capability("flow")->type == ValueType::number);
  CHECK_FALSE(boiler.capability("flow")->writable);
  CHECK(f.adapter->stats().garbage == 1);
}

TEST_CASE("a command goes out as a JSON line and the device's state echo confirms it") {
  Fixture f;
  f.start();
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  f.execute("lamp", Json{{"on", true}, {"brightness", 40}});
  REQUIRE(f.run_until([&] { return f.written.find('\n') != std::string::npos; }));
  CHECK(f.written == "{\"dev\":\"lamp\",\"set\":{\"brightness\":40,\"on\":true}}\n");
  // A partial echo does not confirm yet; the full one does.
  f.socat.send("{\"dev\":\"lamp\",\"on\":true}\n");
  REQUIRE(f.run_until([&] { return f.host.statuses.size() == 1; }));
  CHECK(f.results.empty());
  f.socat.send("{\"dev\":\"lamp\",\"on\":true,\"brightness\":40.0}\n");
  REQUIRE(f.run_until([&] { return !f.results.empty(); }));
  CHECK(f.results[0].outcome == Outcome::ok);
  CHECK(f.host.statuses.size() == 2);
}

TEST_CASE("a command goes out as a key=value line and the device's ok confirms it") {
  Fixture f(config::LineProtocol::keyvalue);
  f.start();
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  f.execute("lamp", Json{{"on", true}});
  REQUIRE(f.run_until([&] { return f.written.find('\n') != std::string::npos; }));
  CHECK(f.written == "lamp set on=true\n");
  f.socat.send("lamp ok=true\n");
  REQUIRE(f.run_until([&] { return !f.results.empty(); }));
  CHECK(f.results[0].outcome == Outcome::ok);
  CHECK(f.host.statuses.empty());
}

TEST_CASE("a device's error reply ends a command as device_error, and silence ends it as timeout") {
  Fixture f;
  f.config.command_timeout_ms = 150;
  f.start();
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  f.execute("lamp", Json{{"on", true}}, "c1");
  REQUIRE(f.run_until([&] { return f.written.find('\n') != std::string::npos; }));
  f.socat.send("{\"dev\":\"lamp\",\"error\":\"jammed\"}\n");
  REQUIRE(f.run_until([&] { return f.results.size() == 1; }));
  CHECK(f.results[0].outcome == Outcome::device_error);
  CHECK(f.results[0].message == "device says: jammed");

  f.execute("lamp", Json{{"on", false}}, "c2");
  REQUIRE(f.run_until([&] { return f.results.size() == 2; }));
  CHECK(f.results[1].outcome == Outcome::timeout);
  CHECK(f.results[1].message == "device lamp did not confirm within 150 ms");
  // A late echo changes nothing but the state.
  f.socat.send("{\"dev\":\"lamp\",\"on\":false}\n");
  REQUIRE(f.run_until([&] { return f.host.statuses.size() == 1; }));
  CHECK(f.results.size() == 2);
}

// Finding 5 of issue #18: serial superseded the running command, WiFly refused the new one,
// MQTT ran many at once. Now one rule (adapter_base.h): the second waits for the first.
TEST_CASE("a second command for a busy device waits for the first and is written after it ends") {
  Fixture f;
  f.start();
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  f.execute("lamp", Json{{"brightness", 10}}, "c1");
  f.execute("lamp", Json{{"brightness", 20}}, "c2");
  REQUIRE(f.run_until([&] { return f.written.find('\n') != std::string::npos; }));
  CHECK(f.results.empty());
  CHECK(f.written == "{\"dev\":\"lamp\",\"set\":{\"brightness\":10}}\n");
  f.socat.send("{\"dev\":\"lamp\",\"brightness\":10}\n");
  REQUIRE(f.run_until([&] { return f.results.size() == 1 && f.written.size() > 40; }));
  CHECK(f.results[0].outcome == Outcome::ok);
  CHECK(f.written.substr(f.written.find('\n') + 1) == "{\"dev\":\"lamp\",\"set\":{\"brightness\":20}}\n");
  f.socat.send("{\"dev\":\"lamp\",\"brightness\":20}\n");
  REQUIRE(f.run_until([&] { return f.results.size() == 2; }));
  CHECK(f.results[1].outcome == Outcome::ok);
}

TEST_CASE("an overlong line is dropped with an error and the next line still works") {
  Fixture f;
  f.config.max_line_bytes = 64;
  f.start();
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  f.socat.send("{\"dev\":\"t1\",\"temp\":" + std::string(500, '1'));
  f.socat.send(std::string(500, '2') + "}\n{\"dev\":\"t1\",\"temp\":20}\n");
  REQUIRE(f.run_until([&] { return f.host.statuses.size() == 1; }));
  CHECK(f.host.statuses[0].second == Json{{"temp", 20}});
  CHECK(f.adapter->stats().overlong == 1);
  CHECK(f.adapter->stats().garbage == 0);
}

TEST_CASE("garbage lines are ignored, crash nothing and never affect the other devices") {
  Fixture f;
  f.start();
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  f.socat.send("{\"dev\":\"t1\",\"temp\":\n");                // invalid JSON
  f.socat.send("{\"dev\":\"ghost\",\"temp\":1}\n");          // unknown device
  f.socat.send("{\"dev\":\"t1\",\"temp\":\"hot\"}\n");       // wrong type
  f.socat.send("{\"dev\":\"t1\",\"temp\":1000}\n");          // out of range
  f.socat.send("{\"dev\":\"t1\",\"colour\":1}\n");           // no such capability
  f.socat.send(std::string("\x00\xff\x13\x01\x7f binary\n", 13));  // binary noise
  f.socat.send("{\"dev\":\"t1\",\"temp\":1,\"hum\":\"x\"}\n");  // one bad value spoils the line
  f.socat.send("{\"dev\":\"lamp\",\"on\":true}\n{\"dev\":\"t1\",\"temp\":19.5}\n");
  REQUIRE(f.run_until([&] { return f.host.statuses.size() == 2; }));
  CHECK(f.host.statuses[0] == std::pair<std::string, Json>{"lamp", Json{{"on", true}}});
  CHECK(f.host.statuses[1] == std::pair<std::string, Json>{"t1", Json{{"temp", 19.5}}});
  CHECK(f.adapter->stats().garbage == 7);
  CHECK(f.host.all_online(true));
}

TEST_CASE("an unplugged port takes its devices offline, and when it comes back they are online again") {
  Fixture f;
  f.start();
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  f.execute("lamp", Json{{"on", true}});
  REQUIRE(f.run_until([&] { return f.written.find('\n') != std::string::npos; }));

  f.socat.stop();  // unplugged
  REQUIRE(f.run_until([&] { return f.host.all_online(false); }));
  CHECK_FALSE(f.adapter->port_open());
  REQUIRE(f.results.size() == 1);
  CHECK(f.results[0].outcome == Outcome::device_error);
  CHECK(f.results[0].message.find("went away") != std::string::npos);
  // Finding 4 of issue #18: a command to an offline device ends offline (it was device_error).
  f.execute("lamp", Json{{"on", true}}, "c2");
  REQUIRE(f.results.size() == 2);
  CHECK(f.results[1].outcome == Outcome::offline);
  CHECK(f.results[1].message == "device lamp is offline");

  REQUIRE(f.socat.start());  // plugged in again: same link names, new ptys
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  f.socat.send("{\"dev\":\"t1\",\"temp\":22}\n");
  REQUIRE(f.run_until([&] { return f.host.statuses.size() == 1; }));
  CHECK(f.host.statuses[0].second == Json{{"temp", 22}});
  CHECK(f.adapter->stats().opens == 2);
  CHECK(f.adapter->stats().losses == 1);

  f.written.clear();
  f.execute("lamp", Json{{"on", false}}, "c3");
  REQUIRE(f.run_until([&] { return f.written.find('\n') != std::string::npos; }));
  f.socat.send("{\"dev\":\"lamp\",\"on\":false}\n");
  REQUIRE(f.run_until([&] { return f.results.size() == 3; }));
  CHECK(f.results[2].outcome == Outcome::ok);
}

TEST_CASE("a port that is missing at start is opened as soon as it appears") {
  Fixture f;
  f.start(/*with_socat=*/false);
  REQUIRE(f.run_until([&] { return f.host.all_online(false); }));
  CHECK_FALSE(f.adapter->port_open());
  REQUIRE(f.socat.start());
  REQUIRE(f.run_until([&] { return f.host.all_online(true); }));
  f.socat.send("{\"dev\":\"t1\",\"hum\":55}\n");
  REQUIRE(f.run_until([&] { return f.host.statuses.size() == 1; }));
}

TEST_CASE("a port path that is not a terminal is refused and retried without blocking") {
  Fixture f;
  {
    std::FILE* file = std::fopen(f.socat.dev_path().c_str(), "w");
    REQUIRE(file != nullptr);
    std::fclose(file);
  }
  f.start(/*with_socat=*/false);
  REQUIRE(f.run_until([&] { return f.host.all_online(false); }));
  CHECK_FALSE(f.adapter->port_open());
}
