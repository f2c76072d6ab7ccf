// The gateway's table of devices.
#include "gateway/device_registry.h"

namespace flatlink::gateway {

bool DeviceRegistry::upsert(const DeviceInfo& info, adapters::Adapter* adapter) {
  auto it = devices_.find(info.id);
  if (it != devices_.end()) {
    if (it->second.adapter != adapter) return false;
    it->second.info = info;
    return true;
  }
  DeviceEntry entry;
  entry.info = info;
  entry.adapter = adapter;
  devices_.emplace(info.id, std::move(entry));
  return true;
}

void DeviceRegistry::remove(const std::string& id) { devices_.erase(id); }

bool DeviceRegistry::apply_status(const std::string& id, const Json& state, int64_t observed_ms) {
  auto it = devices_.find(id);
  if (it == devices_.end()) return false;
  for (const auto& [key, value] : state.items()) it->second.state[key] = value;
  it->second.last_ts = observed_ms;
  return true;
}

bool DeviceRegistry::set_online(const std::string& id, bool online) {
  auto it = devices_.find(id);
  if (it == devices_.end()) return false;
  it->second.online = online;
  return true;
}

const DeviceEntry* DeviceRegistry::find(const std::string& id) const {
  auto it = devices_.find(id);
  return it == devices_.end() ? nullptr : &it->second;
}

}  // namespace flatlink::gateway
