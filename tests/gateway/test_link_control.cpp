// The link's control queue (presence, device lists, stream messages) against a fake cloud on
// the test's loop: a cloud that is slow to answer hello sees one device list, the newest,
// however many devices were added meanwhile; a full queue drops presences, never the list
// (issue #18, finding 8).
#include <doctest/doctest.h>

#include <libwebsockets.h>

#include <string>
#include <vector>

#include "cloud-link/link_client.h"
#include "cloud-link/protocol.h"
#include "common/event_loop.h"
#include "tests/run_until.h"

using namespace flatlink;

namespace {

// A cloud that takes one gateway link, keeps every text frame it gets and sends what the test
// gives it. It answers nothing by itself: the test says when hello is answered.
struct FakeCloud {
  lws* wsi = nullptr;
  std::vector<Json> received;
  std::string partial;
  std::vector<std::string> to_send;

  void send(std::string text) {
    to_send.push_back(std::move(text));
    if (wsi) lws_callback_on_writable(wsi);
  }
  size_t count(const std::string& type) const {
    size_t n = 0;
    for (const auto& m : received) n += m.value("type", "") == type;
    return n;
  }
  size_t index_of(const std::string& type) const {  // of the first one; received.size() if none
    size_t i = 0;
    while (i < received.size() && received[i].value("type", "") != type) ++i;
    return i;
  }
  const Json* last(const std::string& type) const {
    const Json* found = nullptr;
    for (const auto& m : received) {
      if (m.value("type", "") == type) found = &m;
    }
    return found;
  }

  static int callback(lws* wsi, lws_callback_reasons reason, void*, void* in, size_t len) {
    const lws_protocols* protocol = lws_get_protocol(wsi);
    auto* self = protocol ? static_cast<FakeCloud*>(protocol->user) : nullptr;
    if (!self) return 0;
    switch (reason) {
      case LWS_CALLBACK_ESTABLISHED: self->wsi = wsi; break;
      case LWS_CALLBACK_RECEIVE:  // a large message comes in pieces
        self->partial.append(static_cast<const char*>(in), len);
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
          self->received.push_back(Json::parse(self->partial, nullptr, false));
          self->partial.clear();
        }
        break;
      case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!self->to_send.empty()) {
          std::string text = self->to_send.front();
          self->to_send.erase(self->to_send.begin());
          std::vector<unsigned char> buf(LWS_PRE + text.size());
          std::copy(text.begin(), text.end(), buf.begin() + LWS_PRE);
          lws_write(wsi, buf.data() + LWS_PRE, text.size(), LWS_WRITE_TEXT);
          if (!self->to_send.empty()) lws_callback_on_writable(wsi);
        }
        break;
      case LWS_CALLBACK_CLOSED: self->wsi = nullptr; break;
      default: break;
    }
    return 0;
  }
};

// The gateway's side: the devices it has, and one status so that the test knows when the
// link has written every control message (statuses go after them).
struct Listener final : link::LinkListener {
  std::vector<proto::DeviceReport> devices;

  proto::Hello make_hello() override {
    proto::Hello hello;
    hello.gateway = "gw-test";
    hello.version = "0.0.0";
    hello.devices = devices;
    return hello;
  }
  proto::DeviceList device_list() override { return proto::DeviceList{devices}; }
  std::vector<proto::EncodedStatus> statuses_after(int64_t after, size_t) override {
    if (after >= 1) return {};
    return {proto::EncodedStatus{1, "lamp-0", R"({"on":true})", 1700000000000}};
  }
  int64_t dropped() override { return 0; }
  void on_ack(int64_t) override {}
  void on_command(const proto::CommandMsg&) override {}
  void on_link_state(bool) override {}

  void add_device(int i) {
    DeviceInfo info;
    info.id = "lamp-" + std::to_string(i);
    info.name = info.id;
    info.kind = "lamp";
    info.capabilities.push_back(Capability::boolean("on", true));
    devices.push_back(proto::DeviceReport{info, Json::object(), true, std::nullopt});
  }
};

struct Fixture {
  FakeCloud cloud;
  Listener listener;
  std::vector<lws_protocols> cloud_protocols;
  EventLoop loop{[] {
    EventLoop::Options options;
    options.protocols = {link::LinkClient::protocol()};
    return options;
  }()};
  lws_vhost* cloud_vhost = nullptr;
  config::CloudLinkConfig config;

  Fixture() {
    lws_protocols p{};
    p.name = proto::kGatewaySubprotocol.data();
    p.callback = &FakeCloud::callback;
    p.user = &cloud;
    cloud_protocols = {p, lws_protocols{}};
    lws_context_creation_info info{};
    info.port = 0;  // the kernel picks a free one
    info.iface = "127.0.0.1";
    info.protocols = cloud_protocols.data();
    info.vhost_name = "fake-cloud";
    cloud_vhost = lws_create_vhost(loop.context(), &info);
    REQUIRE(cloud_vhost);
    config.url = "ws://127.0.0.1:" + std::to_string(lws_get_vhost_listen_port(cloud_vhost)) + "/gateway";
    config.token = "test-token";
  }

  // Hello is on the wire; the cloud has not answered it: the link is up, nothing else is written.
  void connected(link::LinkClient& link) {
    link.start();
    testing::run_until(loop, [&] { return cloud.count("hello") == 1; }, 5000);
    REQUIRE(cloud.count("hello") == 1);
    REQUIRE(link.up());
  }
  // The cloud answers hello; returns once the status after the control messages has come.
  void answer_hello() {
    cloud.send(R"({"type":"ack","seq":0})");
    testing::run_until(loop, [&] { return cloud.count("status") == 1; }, 30000);
    REQUIRE(cloud.count("status") == 1);
  }
};

}  // namespace

TEST_CASE("devices added while the cloud is slow to answer hello: one device list is sent, the newest") {
  Fixture f;
  link::LinkClient link(f.loop, f.config, f.listener);
  f.connected(link);

  constexpr int kAdded = 300;
  for (int i = 0; i < kAdded; ++i) {
    f.listener.add_device(i);
    link.devices_changed();
  }
  CHECK(link.control_waiting() == 1);

  f.answer_hello();
  INFO("device lists the cloud got: " << f.cloud.count("devices"));
  CHECK(f.cloud.count("devices") == 1);
  const Json* list = f.cloud.last("devices");
  REQUIRE(list);
  CHECK((*list)["devices"].size() == kAdded);
  CHECK((*list)["devices"].back()["id"] == "lamp-" + std::to_string(kAdded - 1));
}

TEST_CASE("a full control queue drops the oldest presence, never the device list, and counts it") {
  Fixture f;
  f.config.send_queue_max = 8;
  link::LinkClient link(f.loop, f.config, f.listener);
  f.connected(link);

  f.listener.add_device(0);
  link.devices_changed();  // first in the queue: the oldest message
  constexpr int kPresences = 20;
  for (int i = 0; i < kPresences; ++i) link.send_presence(proto::Presence{"lamp-0", i % 2 == 0, 1700000000000 + i});
  f.listener.add_device(1);
  link.devices_changed();  // replaces the waiting list, does not add one
  CHECK(link.control_waiting() == 8);
  CHECK(link.stats().control_dropped == kPresences + 1 - 8);

  f.answer_hello();
  CHECK(f.cloud.count("devices") == 1);
  const Json* list = f.cloud.last("devices");
  REQUIRE(list);
  CHECK((*list)["devices"].size() == 2);
  // The list kept its place, ahead of the presences queued after it.
  CHECK(f.cloud.index_of("devices") < f.cloud.index_of("presence"));
  CHECK(f.cloud.count("presence") == 7);
  // The newest presences are the ones kept, in order.
  const Json* presence = f.cloud.last("presence");
  REQUIRE(presence);
  CHECK((*presence)["ts"] == 1700000000000 + kPresences - 1);
}

TEST_CASE("a dropped presence queues the device list, which carries every device's online state") {
  Fixture f;
  f.config.send_queue_max = 4;
  link::LinkClient link(f.loop, f.config, f.listener);
  f.connected(link);

  f.listener.add_device(0);
  constexpr int kPresences = 10;
  for (int i = 0; i < kPresences; ++i) {
    f.listener.devices[0].online = i % 2 == 1;  // the device's state as the gateway knows it
    link.send_presence(proto::Presence{"lamp-0", i % 2 == 1, 1700000000000 + i});
  }
  // Four fit; each one more drops the oldest presence, and the first drop queues the list.
  CHECK(link.control_waiting() == 4);
  CHECK(link.stats().control_dropped == 7);

  f.answer_hello();
  CHECK(f.cloud.count("devices") == 1);
  CHECK(f.cloud.count("presence") == 3);
  const Json* list = f.cloud.last("devices");
  REQUIRE(list);
  REQUIRE((*list)["devices"].size() == 1);
  CHECK((*list)["devices"][0]["online"] == f.listener.devices[0].online);
  const Json* presence = f.cloud.last("presence");
  REQUIRE(presence);
  CHECK((*presence)["online"] == f.listener.devices[0].online);  // what the cloud ends with
}
