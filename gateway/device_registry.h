// The gateway's devices: which adapter owns each, its capabilities, last state
// and presence. Owned by the gateway core; loop thread only.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/device_model.h"
#include "device-adapters/adapter.h"

namespace flatlink::gateway {

struct DeviceEntry {
  DeviceInfo info;
  adapters::Adapter* adapter = nullptr;
  Json state = Json::object();
  bool online = false;
  std::optional<int64_t> last_ts;  // when the last status was observed
};

class DeviceRegistry {
 public:
  // Adds or replaces a device's description; its state and presence are kept.
  // Returns false (and changes nothing) if another adapter already owns that id.
  bool upsert(const DeviceInfo& info, adapters::Adapter* adapter);
  void remove(const std::string& id);
  // Merges a status into the device's state. Returns false for an unknown device.
  bool apply_status(const std::string& id, const Json& state, int64_t observed_ms);
  bool set_online(const std::string& id, bool online);

  const DeviceEntry* find(const std::string& id) const;
  const std::map<std::string, DeviceEntry>& all() const { return devices_; }
  size_t size() const { return devices_.size(); }

 private:
  std::map<std::string, DeviceEntry> devices_;
};

}  // namespace flatlink::gateway
