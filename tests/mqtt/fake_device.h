// The device side of a test: a plain libmosquitto client (its own thread) that
// publishes what a Tasmota plug, Zigbee2MQTT or a discovery-speaking device
// would, and answers commands the way they do.
#pragma once

#include <mosquitto.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace flatlink::test {

class FakeDevice {
 public:
  using Handler = std::function<void(FakeDevice&, const std::string& topic, const std::string& payload)>;

  FakeDevice(const std::string& client_id, int port);
  ~FakeDevice();

  // QoS 1; waits until the broker has it (PUBACK), so a test's order holds.
  void publish(const std::string& topic, const std::string& payload, bool retain = false);
  // From inside a handler: publish without waiting (the wait would block this client's thread).
  void reply(const std::string& topic, const std::string& payload, bool retain = false);
  // Calls handler (on this client's thread) for every message on filter; waits for the SUBACK.
  void on(const std::string& filter, Handler handler);

 private:
  static void on_message(mosquitto*, void* self, const mosquitto_message* m);
  mosquitto* mosq_ = nullptr;
  std::mutex mu_;
  std::map<std::string, Handler> handlers_;
};

}  // namespace flatlink::test
