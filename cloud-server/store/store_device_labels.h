// The owners' names and rooms for their flat's devices, in the store (table device_labels,
// migration "device labels" in database.cpp): shown to the flat's browsers over the name and
// room the gateway reports (cloud-server/flats.h). An empty name or room means the gateway's.
// Set by an owner (the `device_label` message); every change moves the accounts' change
// counter, so that every instance reads the labels again at its next poll.
// Blocking calls on one Database: the admin command's, or the store worker's (worker.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cloud-server/store/store.h"

namespace flatlink::cloud::store {

struct DeviceLabelRow {
  std::string flat;
  std::string device;
  std::string name;  // "": the gateway's
  std::string room;  // "": the gateway's
  std::string by;    // the user who set it
  int64_t updated = 0;  // wall ms

  bool operator==(const DeviceLabelRow&) const = default;
};

// Adds or replaces the device's label; a row with neither name nor room removes it (the
// gateway's name and room again). False for an unknown flat (nothing changes).
bool set_device_label(Database& db, const DeviceLabelRow& row);
std::optional<DeviceLabelRow> device_label(Database& db, const std::string& flat, const std::string& device);
// Every flat's, ordered by flat and device.
std::vector<DeviceLabelRow> device_labels(Database& db);

}  // namespace flatlink::cloud::store
