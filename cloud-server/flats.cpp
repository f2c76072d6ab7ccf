// The flats' live state.
#include "cloud-server/flats.h"

#include <set>

#include "cloud-server/history.h"
#include "cloud-server/peer.h"
#include "common/log.h"

namespace flatlink::cloud {

size_t LiveFlat::bound_gateway_ids(const std::string& gateway) {
  std::set<std::string> ids;
  for (const auto& [id, seq] : last_seq) ids.insert(id);
  for (const auto& [id, epoch] : epoch_of) ids.insert(id);
  for (const auto& [id, seq] : state_seq) ids.insert(id);
  ids.erase(gateway);
  if (ids.size() < kMaxGatewayIds) return 0;
  for (const auto& id : ids) {
    last_seq.erase(id);
    epoch_of.erase(id);
    state_seq.erase(id);
  }
  std::erase_if(earlier_epochs, [&](const auto& entry) {
    const std::string& key = entry.first;  // "gateway/epoch"
    return key.compare(0, gateway.size() + 1, gateway + "/") != 0;
  });
  return ids.size();
}

std::map<std::string, proto::DeviceReport> devices_by_id(const std::vector<proto::DeviceReport>& list) {
  std::map<std::string, proto::DeviceReport> devices;
  for (const auto& d : list) devices[d.info.id] = d;
  return devices;
}

void send_to_gateway(Metrics& metrics, Peer& peer, const std::string& frame) {
  ++metrics.gateway_messages_out;
  peer.send(frame);
}

void send_to_browser(Metrics& metrics, Peer& peer, const std::string& frame) {
  ++metrics.browser_messages_out;
  peer.send(frame);
}

Flats::Flats(const std::vector<config::FlatConfig>& flats, Metrics& metrics, History& history)
    : configs_(flats), metrics_(metrics), history_(history) {
  for (const auto& fc : configs_) {
    auto flat = std::make_unique<LiveFlat>();
    flat->config = &fc;
    flats_[fc.id] = std::move(flat);
  }
}

LiveFlat* Flats::find(const std::string& id) {
  auto it = flats_.find(id);
  return it == flats_.end() ? nullptr : it->second.get();
}

const LiveFlat* Flats::find(const std::string& id) const {
  auto it = flats_.find(id);
  return it == flats_.end() ? nullptr : it->second.get();
}

void Flats::link_gateway(Peer& peer, LiveFlat& flat) {
  ++metrics_.gateway_links;
  if (flat.gateway) {
    LOG_WARN("router") << "flat=" << flat.id() << " a new gateway link replaces the old one (" << flat.gateway->describe()
                       << ")";
    ++metrics_.replaced_gateways;
    Peer* old = flat.gateway;
    gateways_[old] = nullptr;  // its messages are ignored from now on
    old->close(proto::close_code::kReplaced, "replaced by a newer connection for this flat");
  }
  flat.gateway = &peer;
  flat.hello = false;
  gateways_[&peer] = &flat;
}

Peer* Flats::unlink_gateway(LiveFlat& flat) {
  Peer* old = flat.gateway;
  if (!old) return nullptr;
  gateways_[old] = nullptr;
  flat.gateway = nullptr;
  flat.hello = false;
  return old;
}

bool Flats::gateway_closed(Peer& peer, LiveFlat*& flat) {
  flat = nullptr;
  auto it = gateways_.find(&peer);
  if (it == gateways_.end()) return false;
  LiveFlat* bound = it->second;
  gateways_.erase(it);
  --metrics_.gateway_links;
  if (!bound || bound->gateway != &peer) return true;  // a replaced link
  bound->gateway = nullptr;
  bound->hello = false;
  flat = bound;
  return true;
}

LiveFlat* Flats::current_flat_of(Peer& gateway) {
  auto it = gateways_.find(&gateway);
  if (it == gateways_.end() || !it->second || it->second->gateway != &gateway) return nullptr;
  return it->second;
}

const LiveFlat* Flats::current_flat_of(Peer& gateway) const {
  auto it = gateways_.find(&gateway);
  if (it == gateways_.end() || !it->second || it->second->gateway != &gateway) return nullptr;
  return it->second;
}

LiveFlat* Flats::flat_of_browser(Peer& browser) {
  auto it = browsers_.find(&browser);
  return it == browsers_.end() ? nullptr : it->second;
}

const LiveFlat* Flats::flat_of_browser(Peer& browser) const {
  auto it = browsers_.find(&browser);
  return it == browsers_.end() ? nullptr : it->second;
}

bool Flats::bind_browser(Peer& browser, LiveFlat& flat, bool read_only) {
  auto it = browsers_.find(&browser);
  if (it == browsers_.end()) return false;
  it->second = &flat;
  if (read_only) read_only_.insert(&browser);
  flat.browsers.insert(&browser);
  return true;
}

bool Flats::browser_closed(Peer& browser, LiveFlat*& flat) {
  flat = nullptr;
  auto it = browsers_.find(&browser);
  if (it == browsers_.end()) return false;
  flat = it->second;
  if (flat) flat->browsers.erase(&browser);
  browsers_.erase(it);
  read_only_.erase(&browser);
  return true;
}

std::vector<Peer*> Flats::peers() const {
  std::vector<Peer*> peers;
  for (const auto& [peer, flat] : gateways_) peers.push_back(peer);
  for (const auto& [peer, flat] : browsers_) peers.push_back(peer);
  return peers;
}

Flats::StatusFate Flats::apply_status(LiveFlat& flat, const proto::StatusItem& item, int64_t& last, int64_t covered,
                                      bool from_link) {
  if (item.seq <= last) {
    ++metrics_.duplicate_statuses;
    return StatusFate::duplicate;
  }
  last = item.seq;
  auto dev = flat.devices.find(item.device);
  if (dev == flat.devices.end()) return StatusFate::unknown_device;
  ++metrics_.statuses;
  Json& state = dev->second.state;
  Json kept = Json::object();
  const size_t max_keys = proto::Limits{}.max_state_keys;
  size_t room = state.size() < max_keys ? max_keys - state.size() : 0;  // for keys the device has not had
  for (const auto& [key, value] : item.state.items()) {
    if (!state.contains(key)) {
      if (room == 0) {
        ++metrics_.dropped_state_keys;
        continue;
      }
      --room;
    }
    kept[key] = value;
  }
  if (kept.empty()) return StatusFate::applied;  // received, but nothing of it is kept
  if (item.seq > covered) {  // else the devices' state from the holder is newer already
    for (const auto& [key, value] : kept.items()) state[key] = value;
    dev->second.last_ts = item.ts;
  }
  history_.record(flat.id(), item.device, kept, item.ts, from_link);
  to_browsers(flat, proto::encode(proto::Update{item.device, std::move(kept), item.ts, item.seq}));
  return StatusFate::applied;
}

int64_t Flats::switch_epoch(LiveFlat& flat, const std::string& gateway, const std::string& epoch) {
  int64_t& last = flat.last_seq[gateway];
  std::string& current = flat.epoch_of[gateway];
  if (!current.empty() || last > 0) flat.earlier_epochs[gateway + "/" + current] = last;
  auto earlier = flat.earlier_epochs.find(gateway + "/" + epoch);
  const int64_t resumed = earlier == flat.earlier_epochs.end() ? 0 : earlier->second;
  if (earlier != flat.earlier_epochs.end()) flat.earlier_epochs.erase(earlier);
  while (flat.earlier_epochs.size() > kEarlierEpochs) flat.earlier_epochs.erase(flat.earlier_epochs.begin());
  last = resumed;
  current = epoch;
  flat.state_seq.erase(gateway);
  return resumed;
}

bool Flats::apply_presence(LiveFlat& flat, const proto::Presence& presence) {
  auto dev = flat.devices.find(presence.device);
  if (dev == flat.devices.end()) return false;
  dev->second.online = presence.online;
  to_browsers(flat, proto::encode(presence));
  return true;
}

void Flats::apply_device_list(LiveFlat& flat, const proto::DeviceList& list) {
  set_devices(flat, devices_by_id(list.devices));
  if (flat.labels.empty()) {
    to_browsers(flat, proto::encode(list));
  } else {
    send_devices(flat);
  }
}

void Flats::set_devices(LiveFlat& flat, std::map<std::string, proto::DeviceReport> devices) {
  flat.devices = std::move(devices);
  history_.keep_only(flat.id(), flat.devices);
}

void Flats::to_browsers(LiveFlat& flat, const std::string& frame) {
  for (Peer* browser : flat.browsers) {
    ++metrics_.browser_messages_out;
    browser->send_state(frame);
  }
}

std::vector<proto::DeviceReport> Flats::shown_devices(const LiveFlat& flat) const {
  std::vector<proto::DeviceReport> out;
  out.reserve(flat.devices.size());
  for (const auto& [id, device] : flat.devices) {
    out.push_back(device);
    auto label = flat.labels.find(id);
    if (label == flat.labels.end()) continue;
    if (!label->second.name.empty()) out.back().info.name = label->second.name;
    if (!label->second.room.empty()) out.back().info.room = label->second.room;
  }
  return out;
}

proto::Snapshot Flats::snapshot(const LiveFlat& flat, bool gateway_online) const {
  proto::Snapshot snap;
  snap.flat = flat.id();
  snap.name = flat.config->name;
  snap.gateway_online = gateway_online;
  snap.devices = shown_devices(flat);
  return snap;
}

bool Flats::set_labels(LiveFlat& flat, const std::map<std::string, DeviceLabel>& labels) {
  if (flat.labels == labels) return false;
  flat.labels = labels;
  return true;
}

void Flats::send_devices(LiveFlat& flat) {
  if (flat.browsers.empty()) return;
  to_browsers(flat, proto::encode(proto::DeviceList{shown_devices(flat)}));
}

void Flats::send_snapshot(Peer& browser, const LiveFlat& flat, bool gateway_online) {
  ++metrics_.browser_messages_out;
  browser.send_state(proto::encode(snapshot(flat, gateway_online)));
}

std::string Flats::reload(const std::vector<config::FlatConfig>& before) {
  std::map<std::string, const config::FlatConfig*> old;
  for (const auto& fc : before) old[fc.id] = &fc;
  const auto same_users = [](const config::FlatConfig& a, const config::FlatConfig& b) {
    if (a.users.size() != b.users.size()) return false;
    for (size_t i = 0; i < a.users.size(); ++i) {
      if (a.users[i].name != b.users[i].name || a.users[i].password_hash != b.users[i].password_hash) return false;
    }
    return true;
  };
  const auto close_browsers = [](LiveFlat& flat, const char* reason) {
    const std::set<Peer*> browsers = flat.browsers;
    for (Peer* browser : browsers) browser->close(proto::close_code::kUnauthorized, reason);
  };
  size_t added = 0, removed = 0, tokens = 0, users = 0;
  for (const auto& fc : configs_) {
    auto& flat = flats_[fc.id];
    auto was = old.find(fc.id);
    if (!flat) flat = std::make_unique<LiveFlat>();
    flat->config = &fc;
    if (was == old.end()) {
      ++added;
      continue;
    }
    if (was->second->gateway_token_sha256 != fc.gateway_token_sha256) {
      ++tokens;
      if (flat->gateway) {
        LOG_WARN("router") << "flat=" << fc.id << " gateway token changed: closing the link that used the old one";
        flat->gateway->close(proto::close_code::kUnauthorized, "gateway token revoked");
      }
    }
    if (!same_users(*was->second, fc)) {
      ++users;
      close_browsers(*flat, "users changed; log in again");
    }
    old.erase(was);
  }
  for (const auto& [id, fc] : old) {
    ++removed;
    // The LiveFlat stays (peers may still point at it) bound to a copy that admits nobody.
    config::FlatConfig gone{*fc};
    gone.gateway_token_sha256.clear();
    gone.users.clear();
    retired_.push_back(std::move(gone));
    LiveFlat& flat = *flats_.at(id);
    flat.config = &retired_.back();
    LOG_WARN("router") << "flat=" << id << " removed: closing its links";
    if (flat.gateway) flat.gateway->close(proto::close_code::kUnauthorized, "flat removed");
    close_browsers(flat, "flat removed");
  }
  return std::to_string(configs_.size()) + " flats (" + std::to_string(added) + " added, " +
         std::to_string(removed) + " removed, " + std::to_string(tokens) + " with a new gateway token, " +
         std::to_string(users) + " with changed users)";
}

}  // namespace flatlink::cloud
