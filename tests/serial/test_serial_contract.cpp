// The adapter contract's table (tests/adapter_contract/contract.h) against the serial
// adapter over a socat pty pair, with JSON lines and with key=value lines.
#include <doctest/doctest.h>

#include "../adapter_contract/contract.h"
#include "device-adapters/serial/serial_adapter.h"
#include "socat_pair.h"

using namespace flatlink;

namespace {

class SerialHarness final : public contract::Harness, public adapters::AdapterHost {
 public:
  explicit SerialHarness(config::LineProtocol protocol) : protocol_(protocol) {
    REQUIRE(socat_.start());
    config::SerialAdapterConfig c;
    c.name = "uart";
    c.port = socat_.dev_path();
    c.protocol = protocol;
    c.baud = 115200;
    c.max_line_bytes = 65'536;  // the most the schema allows
    c.command_timeout_ms = 5000;
    c.reopen_min_ms = 20;
    c.reopen_max_ms = 100;
    config::SerialDeviceConfig lamp;
    lamp.id = "lamp";
    lamp.name = "lamp";
    lamp.capabilities = {Capability::boolean("on", true), Capability::integer("brightness", 0, 100, true)};
    c.devices = {lamp};
    adapter_ = std::make_unique<adapters::serial::SerialAdapter>(c, loop_, *this);
    adapter_->start();
    REQUIRE(run_until([&] { return online_; }));
  }
  ~SerialHarness() override { adapter_->stop(); }

  std::string label() const override {
    return protocol_ == config::LineProtocol::json ? "serial (JSON lines)" : "serial (key=value lines)";
  }
  EventLoop& loop() override { return loop_; }
  adapters::Adapter& adapter() override { return *adapter_; }
  std::string device() const override { return "lamp"; }
  Json first_set() const override { return {{"on", true}}; }
  Json second_set() const override { return {{"brightness", 40}}; }
  bool host_online() const override { return online_; }
  size_t host_statuses() const override { return statuses_; }

  void go_offline() override {
    socat_.stop();
    REQUIRE(run_until([&] { return !online_; }));
  }
  void go_online() override {
    REQUIRE(socat_.start());
    REQUIRE(run_until([&] { return online_; }));
  }
  std::vector<Json> received() override {
    socat_.drain(written_);
    std::vector<Json> out;
    size_t start = 0;
    for (size_t nl; (nl = written_.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string line = written_.substr(start, nl - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (protocol_ == config::LineProtocol::json) {
        out.push_back(Json::parse(line)["set"]);
      } else {
        // "lamp set on=true brightness=40" and the like: the pairs after the device id.
        Json set = Json::object();
        size_t at = line.find(' ');
        while (at != std::string::npos) {
          const size_t next = line.find(' ', at + 1);
          const std::string pair = line.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
          const size_t eq = pair.find('=');
          if (eq != std::string::npos) {
            const std::string key = pair.substr(0, eq), value = pair.substr(eq + 1);
            if (value == "true" || value == "on") {
              set[key] = true;
            } else if (value == "false" || value == "off") {
              set[key] = false;
            } else {
              set[key] = Json::parse(value, nullptr, false);
            }
          }
          at = next;
        }
        out.push_back(set);
      }
    }
    return out;
  }
  void report(const Json& values) override {
    if (protocol_ == config::LineProtocol::json) {
      Json line = values;
      line["dev"] = "lamp";
      socat_.send_async(line.dump() + "\n");
    } else {
      std::string line = "lamp";
      for (const auto& [k, v] : values.items()) line += " " + k + "=" + (v.is_boolean() ? (v.get<bool>() ? "on" : "off") : v.dump());
      socat_.send_async(line + "\n");
    }
  }
  void send_raw(const std::string& text) override { socat_.send_async(text + "\n"); }
  size_t max_raw_bytes() const override { return 65'536; }
  void tick() override {
    socat_.pump();
    socat_.drain(written_);
  }

 private:
  void device_added(const DeviceInfo&) override {}
  void device_removed(const std::string&) override {}
  void status(const std::string&, const Json&, int64_t) override { ++statuses_; }
  void presence(const std::string&, bool online) override { online_ = online; }

  config::LineProtocol protocol_;
  flatlink::test::TempDir dir_;
  flatlink::test::SocatPair socat_{dir_.path()};
  EventLoop loop_{{}};
  std::unique_ptr<adapters::serial::SerialAdapter> adapter_;
  std::string written_;
  bool online_ = false;
  size_t statuses_ = 0;
};

}  // namespace

TEST_CASE("the adapter contract holds for the serial adapter with JSON lines") {
  contract::check_contract([] { return std::make_unique<SerialHarness>(config::LineProtocol::json); });
}

TEST_CASE("the adapter contract holds for the serial adapter with key=value lines") {
  contract::check_contract([] { return std::make_unique<SerialHarness>(config::LineProtocol::keyvalue); });
}
