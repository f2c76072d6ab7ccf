// Simulated devices: a lamp (on, brightness), a thermometer that drifts, a lock.
#include "device-adapters/sim/sim_adapter.h"

#include <algorithm>
#include <cmath>

#include "common/log.h"

namespace flatlink::adapters::sim {

struct SimAdapter::Device {
  config::SimDeviceConfig config;
  DeviceInfo info;
  Json state = Json::object();
  bool online = true;
  std::unique_ptr<Timer> drift_timer;
};

// A command being carried out: the simulated device answers after latency_ms.
struct SimAdapter::Pending {
  Command command;
  CommandDone done;
  std::unique_ptr<Timer> timer;
};

SimAdapter::SimAdapter(config::SimAdapterConfig config, EventLoop& loop, AdapterHost& host, const Clock& clock)
    : AdapterBase(config.name, "sim", loop, host, clock, Limits{}),
      config_(std::move(config)),
      rng_(config_.seed ? config_.seed : std::random_device{}()) {
  for (const auto& dc : config_.devices) {
    auto device = std::make_unique<Device>();
    device->config = dc;
    device->info = describe(dc);
    if (dc.kind == "lamp") {
      device->state = {{"on", false}, {"brightness", 100}};
    } else if (dc.kind == "thermometer") {
      device->state = {{"temperature", dc.initial}};
    } else if (dc.kind == "lock") {
      device->state = {{"lock", "locked"}};
    }
    devices_.push_back(std::move(device));
  }
}

SimAdapter::~SimAdapter() { stop(); }

DeviceInfo SimAdapter::describe(const config::SimDeviceConfig& dc) {
  DeviceInfo info;
  info.id = dc.id;
  info.name = dc.name.empty() ? dc.id : dc.name;
  info.kind = dc.kind;
  info.room = dc.room;
  if (dc.kind == "lamp") {
    info.capabilities.push_back(Capability::boolean("on", true));
    Capability brightness = Capability::integer("brightness", 0, 100, true);
    brightness.unit = "%";
    info.capabilities.push_back(brightness);
  } else if (dc.kind == "thermometer") {
    Capability temperature = Capability::number("temperature", -50, 100, false);
    temperature.unit = "°C";
    info.capabilities.push_back(temperature);
  } else if (dc.kind == "lock") {
    Capability lock = Capability::enumeration("lock", {"locked", "unlocked"}, true);
    lock.confirm = true;
    info.capabilities.push_back(lock);
  }
  return info;
}

void SimAdapter::start() {
  running_ = true;
  for (auto& device : devices_) {
    host_.device_added(device->info);
    host_.status(device->info.id, device->state, clock_.wall_ms());
    host_.presence(device->info.id, device->online);
    if (device->config.kind == "thermometer") {
      Device* raw = device.get();
      device->drift_timer = std::make_unique<Timer>(loop_, [this, raw] { drift(*raw); });
      device->drift_timer->start(device->config.interval_ms);
    }
  }
  LOG_INFO("sim") << "adapter=" << config_.name << " started with " << devices_.size() << " devices";
}

void SimAdapter::stop() {
  if (!running_) return;
  running_ = false;
  for (auto& device : devices_) device->drift_timer.reset();
  drop_commands();  // the core ends the commands still pending
  pending_.clear();
}

SimAdapter::Device* SimAdapter::find(const std::string& id) {
  for (auto& device : devices_) {
    if (device->info.id == id) return device.get();
  }
  return nullptr;
}

const SimAdapter::Device* SimAdapter::find(const std::string& id) const {
  for (const auto& device : devices_) {
    if (device->info.id == id) return device.get();
  }
  return nullptr;
}

void SimAdapter::drift(Device& device) {
  if (!running_) return;
  if (device.online) {
    std::normal_distribution<double> step(0.0, 0.15);
    double t = device.state["temperature"].get<double>() + step(rng_);
    t = std::clamp(t, -50.0, 100.0);
    t = std::round(t * 100.0) / 100.0;
    device.state["temperature"] = t;
    host_.status(device.info.id, Json{{"temperature", t}}, clock_.wall_ms());
  }
  device.drift_timer->start(device.config.interval_ms);
}

bool SimAdapter::device_known(const std::string& device_id) const { return find(device_id) != nullptr; }

bool SimAdapter::device_online(const std::string& device_id) const {
  const Device* device = find(device_id);
  return running_ && device && device->online;
}

AdapterBase::Dispatch SimAdapter::dispatch(const Command& command) {
  auto pending = std::make_unique<Pending>();
  pending->command = command;
  Pending* raw = pending.get();
  pending->timer = std::make_unique<Timer>(loop_, [this, raw] { finish(raw); });
  pending->timer->start(config_.latency_ms);
  pending_.push_back(std::move(pending));
  return {};
}

// The simulated device carries the command out and reports its new values, which confirm it.
void SimAdapter::finish(Pending* pending) {
  auto it = std::find_if(pending_.begin(), pending_.end(), [&](const auto& p) { return p.get() == pending; });
  if (it == pending_.end()) return;
  std::unique_ptr<Pending> owned = std::move(*it);
  pending_.erase(it);
  Device* device = find(owned->command.device);
  if (!device || !device->online) return;  // unplugged meanwhile: the contract ended the command
  for (const auto& [key, value] : owned->command.set.items()) device->state[key] = value;
  host_.status(device->info.id, owned->command.set, clock_.wall_ms());
  confirm_values(device->info.id, owned->command.set);
}

void SimAdapter::set_online(const std::string& device_id, bool online) {
  Device* device = find(device_id);
  if (!device || device->online == online) return;
  device->online = online;
  if (!online) device_lost(device_id, "the simulated device was unplugged");
  if (running_) host_.presence(device_id, online);
}

const Json* SimAdapter::state_of(const std::string& device_id) const {
  for (const auto& device : devices_) {
    if (device->info.id == device_id) return &device->state;
  }
  return nullptr;
}

}  // namespace flatlink::adapters::sim
