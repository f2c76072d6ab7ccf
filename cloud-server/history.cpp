#include "cloud-server/history.h"

namespace flatlink::cloud {

void History::record(const std::string& flat, const std::string& device, const Json& state, int64_t ts) {
  if (config_.limits.history_points == 0) return;
  for (const auto& [key, value] : state.items()) {
    if (!value.is_number()) continue;
    auto& points = values_[{flat, device + "/" + key}];
    points.push_back(proto::HistoryPoint{ts, value});
    while (points.size() > config_.limits.history_points) points.pop_front();
  }
}

std::vector<proto::HistoryPoint> History::points(const std::string& flat, const std::string& device,
                                                 const std::string& capability) const {
  auto it = values_.find({flat, device + "/" + capability});
  if (it == values_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

}  // namespace flatlink::cloud
