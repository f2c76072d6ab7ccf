// A device-side MQTT client for the tests.
#include "fake_device.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <stdexcept>
#include <thread>

namespace flatlink::test {
namespace {

struct Acks {
  std::mutex mu;
  std::condition_variable cv;
  int published = 0;
  int subscribed = 0;
};

std::mutex registry_mu;
std::map<mosquitto*, Acks*> registry;

Acks& acks_of(mosquitto* mosq) {
  std::lock_guard lock(registry_mu);
  return *registry.at(mosq);
}

}  // namespace

FakeDevice::FakeDevice(const std::string& client_id, int port) {
  mosquitto_lib_init();
  mosq_ = mosquitto_new(client_id.c_str(), true, this);
  {
    std::lock_guard lock(registry_mu);
    registry[mosq_] = new Acks;
  }
  mosquitto_message_callback_set(mosq_, &FakeDevice::on_message);
  mosquitto_publish_callback_set(mosq_, [](mosquitto* m, void*, int) {
    Acks& a = acks_of(m);
    std::lock_guard lock(a.mu);
    ++a.published;
    a.cv.notify_all();
  });
  mosquitto_subscribe_callback_set(mosq_, [](mosquitto* m, void*, int, int, const int*) {
    Acks& a = acks_of(m);
    std::lock_guard lock(a.mu);
    ++a.subscribed;
    a.cv.notify_all();
  });
  if (mosquitto_connect(mosq_, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) throw std::runtime_error("fake device: no broker");
  mosquitto_loop_start(mosq_);
}

FakeDevice::~FakeDevice() {
  mosquitto_disconnect(mosq_);
  mosquitto_loop_stop(mosq_, false);
  Acks* acks = nullptr;
  {
    std::lock_guard lock(registry_mu);
    acks = registry[mosq_];
    registry.erase(mosq_);
  }
  delete acks;
  mosquitto_destroy(mosq_);
}

void FakeDevice::publish(const std::string& topic, const std::string& payload, bool retain) {
  Acks& a = acks_of(mosq_);
  int before = 0;
  {
    std::lock_guard lock(a.mu);
    before = a.published;
  }
  mosquitto_publish(mosq_, nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(), 1, retain);
  std::unique_lock lock(a.mu);
  a.cv.wait_for(lock, std::chrono::seconds(5), [&] { return a.published > before; });
}

void FakeDevice::reply(const std::string& topic, const std::string& payload, bool retain) {
  mosquitto_publish(mosq_, nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(), 1, retain);
}

void FakeDevice::on(const std::string& filter, Handler handler) {
  {
    std::lock_guard lock(mu_);
    handlers_[filter] = std::move(handler);
  }
  Acks& a = acks_of(mosq_);
  int before = 0;
  {
    std::lock_guard lock(a.mu);
    before = a.subscribed;
  }
  mosquitto_subscribe(mosq_, nullptr, filter.c_str(), 1);
  std::unique_lock lock(a.mu);
  a.cv.wait_for(lock, std::chrono::seconds(5), [&] { return a.subscribed > before; });
}

void FakeDevice::on_message(mosquitto*, void* self, const mosquitto_message* m) {
  auto* device = static_cast<FakeDevice*>(self);
  std::string payload(static_cast<const char*>(m->payload), static_cast<size_t>(m->payloadlen));
  std::map<std::string, Handler> handlers;
  {
    std::lock_guard lock(device->mu_);
    handlers = device->handlers_;
  }
  for (const auto& [filter, handler] : handlers) {
    bool match = false;
    mosquitto_topic_matches_sub(filter.c_str(), m->topic, &match);
    if (match) handler(*device, m->topic, payload);
  }
}

}  // namespace flatlink::test
