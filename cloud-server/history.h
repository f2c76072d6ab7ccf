// The flats' value history as the `history` request answers it: per flat, device and
// numeric capability, the last limits.history_points values in memory. Loop thread only.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cloud-link/protocol.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

class History {
 public:
  explicit History(const config::CloudConfig& config) : config_(config) {}

  // Keeps the numeric values of a status's state; others are not charted.
  void record(const std::string& flat, const std::string& device, const Json& state, int64_t ts);
  // The points kept for one value of one flat, oldest first; none for an unknown one.
  std::vector<proto::HistoryPoint> points(const std::string& flat, const std::string& device,
                                          const std::string& capability) const;

 private:
  const config::CloudConfig& config_;
  // (flat, "device/capability")
  std::map<std::pair<std::string, std::string>, std::deque<proto::HistoryPoint>> values_;
};

}  // namespace flatlink::cloud
