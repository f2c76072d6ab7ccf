// The adapter contract's table (tests/adapter_contract/contract.h) against the wifly
// adapter, once per protocol a device may speak on its listener: plain lines,
// hixie-75, hixie-76 and RFC 6455.
#include <doctest/doctest.h>

#include "../adapter_contract/contract.h"
#include "device-adapters/wifly/wifly_adapter.h"
#include "fake_module.h"
#include "ws_client.h"

using namespace flatlink;
using flatlink::testing::FakeConnection;
using flatlink::testing::WsClient;

namespace {

enum class Protocol { lines, hixie75, hixie76, rfc6455 };

EventLoop::Options loop_options() {
  EventLoop::Options options;
  options.protocols = {WsClient::protocol()};
  return options;
}

class WiflyHarness final : public contract::Harness, public adapters::AdapterHost {
 public:
  explicit WiflyHarness(Protocol protocol) : protocol_(protocol) {
    config::WiflyAdapterConfig c;
    c.name = "wifly";
    c.listen.enabled = true;
    c.listen.address = "127.0.0.1";
    c.listen.port = 0;
    c.max_line_bytes = 4 * 1024 * 1024;  // over what the schema allows: a million levels fit in one message
    c.handshake_timeout_ms = 2000;
    c.command_timeout_ms = 5000;
    config::WiflyDeviceConfig lamp;
    lamp.id = "lamp1";
    lamp.kind = "lamp";
    lamp.capabilities = {Capability::boolean("on", true), Capability::integer("brightness", 0, 100, true)};
    c.devices = {lamp};
    adapter_ = std::make_unique<adapters::wifly::WiflyAdapter>(c, loop_, *this);
    adapter_->start();
    go_online();
  }
  ~WiflyHarness() override {
    adapter_->stop();
    conn_.reset();
    ws_.reset();
  }

  std::string label() const override {
    switch (protocol_) {
      case Protocol::lines: return "wifly (lines)";
      case Protocol::hixie75: return "wifly (hixie-75)";
      case Protocol::hixie76: return "wifly (hixie-76)";
      case Protocol::rfc6455: return "wifly (RFC 6455)";
    }
    return "wifly";
  }
  EventLoop& loop() override { return loop_; }
  adapters::Adapter& adapter() override { return *adapter_; }
  std::string device() const override { return "lamp1"; }
  Json first_set() const override { return {{"on", true}}; }
  Json second_set() const override { return {{"brightness", 40}}; }
  bool host_online() const override { return online_; }
  size_t host_statuses() const override { return statuses_; }

  void go_offline() override {
    if (ws_) ws_->close();
    if (conn_) conn_->close();
    REQUIRE(run_until([&] { return !online_; }));
    conn_.reset();
    if (ws_) REQUIRE(run_until([&] { return ws_->closed || ws_->error; }));
    ws_.reset();
  }
  void go_online() override {
    const std::string hello = R"({"dev":"lamp1"})";
    if (protocol_ == Protocol::rfc6455) {
      ws_ = std::make_unique<WsClient>();
      ws_->send(hello);
      ws_->connect(loop_, adapter_->listen_port());
    } else {
      conn_ = flatlink::testing::connect_to(loop_, adapter_->listen_port());
      if (protocol_ == Protocol::lines) {
        conn_->send("*HELLO*" + hello + "\n");
      } else {
        conn_->send(protocol_ == Protocol::hixie75
                        ? flatlink::testing::hixie75_request("/wifly")
                        : flatlink::testing::hixie76_request("4 @1  46546xW%0l 1 5", "12998 5 Y3 1  .P00", "^n:ds[4U"));
        REQUIRE(run_until([&] {
          const std::string& r = conn_->received();
          return protocol_ == Protocol::hixie75 ? r.find("\r\n\r\n") != std::string::npos
                                                : r.find("8jKS'y:G*Co,Wxa-") != std::string::npos;
        }));
        handshake_end_ = conn_->received().size();
        conn_->send(flatlink::testing::hixie_text_frame(hello));
      }
    }
    REQUIRE(run_until([&] { return online_; }));
  }
  std::vector<Json> received() override {
    std::vector<std::string> texts;
    if (ws_) {
      texts = ws_->received;
    } else if (conn_ && protocol_ == Protocol::lines) {
      texts = conn_->lines();
    } else if (conn_) {
      texts = conn_->hixie_frames(handshake_end_);
    }
    std::vector<Json> out;
    for (const auto& t : texts) out.push_back(Json::parse(t)["set"]);
    return out;
  }
  void report(const Json& values) override { send_raw(values.dump()); }
  void send_raw(const std::string& text) override {
    if (ws_) {
      ws_->send(text);
    } else if (conn_ && protocol_ == Protocol::lines) {
      conn_->send(text + "\n");
    } else if (conn_) {
      conn_->send(flatlink::testing::hixie_text_frame(text));
    }
  }
  size_t max_raw_bytes() const override { return 4 * 1024 * 1024; }
  bool survives_invalid_utf8() const override { return protocol_ == Protocol::lines; }

 private:
  void device_added(const DeviceInfo&) override {}
  void device_removed(const std::string&) override {}
  void status(const std::string&, const Json&, int64_t) override { ++statuses_; }
  void presence(const std::string&, bool online) override { online_ = online; }

  Protocol protocol_;
  EventLoop loop_{loop_options()};
  std::unique_ptr<adapters::wifly::WiflyAdapter> adapter_;
  std::unique_ptr<FakeConnection> conn_;
  std::unique_ptr<WsClient> ws_;
  size_t handshake_end_ = 0;
  bool online_ = false;
  size_t statuses_ = 0;
};

}  // namespace

TEST_CASE("the adapter contract holds for the wifly adapter with plain lines") {
  contract::check_contract([] { return std::make_unique<WiflyHarness>(Protocol::lines); });
}

TEST_CASE("the adapter contract holds for the wifly adapter with hixie-75") {
  contract::check_contract([] { return std::make_unique<WiflyHarness>(Protocol::hixie75); });
}

TEST_CASE("the adapter contract holds for the wifly adapter with hixie-76") {
  contract::check_contract([] { return std::make_unique<WiflyHarness>(Protocol::hixie76); });
}

TEST_CASE("the adapter contract holds for the wifly adapter with RFC 6455") {
  contract::check_contract([] { return std::make_unique<WiflyHarness>(Protocol::rfc6455); });
}
