// The Router's per-flat state and its pending commands. Private to the router's
// own files (router.cpp, router_backplane.cpp): nothing else includes it.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cloud-server/router.h"

namespace flatlink::cloud {

inline std::map<std::string, proto::DeviceReport> devices_by_id(const std::vector<proto::DeviceReport>& list) {
  std::map<std::string, proto::DeviceReport> devices;
  for (const auto& d : list) devices[d.info.id] = d;
  return devices;
}

struct Router::History {
  std::deque<proto::HistoryPoint> points;
};

struct Router::Flat {
  const config::FlatConfig* config = nullptr;
  Peer* gateway = nullptr;  // the current gateway link
  bool hello = false;       // the current link said hello
  std::string gateway_id;
  std::map<std::string, proto::DeviceReport> devices;
  std::map<std::string, int64_t> last_seq;  // per gateway id: highest seq of a status received here
  // With a backplane, per gateway id: the seq the devices' state from a holder's retained
  // state covers. Not a status received: statuses up to it may still be on their way (a broker
  // cluster need not keep the state topic behind the status topic), and they count as new.
  std::map<std::string, int64_t> state_seq;
  std::set<Peer*> browsers;
  std::map<std::string, History> history;  // "device/capability"
  int64_t dropped = 0;                      // what the gateway's outbox reports dropped
  // With a backplane (router_backplane.cpp):
  int64_t link_since = 0;     // wall ms the local link opened: its claim on the flat
  uint64_t link_epoch = 0;    // bumps with every local link; stale broker acks are ignored
  std::deque<std::pair<int64_t, bool>> unconfirmed;  // seq to ack, and whether the broker holds it
  std::string holder;         // another instance holding the gateway link ("" none known)
  int64_t holder_since = 0;
  bool remote_online = false; // the holder's gateway said hello
  std::string released;       // the last release seen: its states are stale
  int64_t released_since = 0;
  bool stream_reset = false;  // the local link's hello restarted the gateway's stream
  std::string state_from;     // the link whose state was applied last (instance, since)
  int64_t state_since = 0;
  bool fed = false;           // the backplane was bringing the flat's messages when the local link opened
  // The local gateway's hello, held until the backplane has delivered the statuses its last
  // holder acknowledged (up to held_hello->acked), at most backplane.catch_up_ms.
  std::optional<proto::Hello> held_hello;
  std::unique_ptr<Timer> catch_up;  // made once, reused: never destroyed from its own callback
};

struct Router::PendingCommand {
  std::string flat;
  Peer* browser = nullptr;  // null once the browser left
  std::string browser_id;
  std::unique_ptr<Timer> timeout;
  bool remote = false;      // sent over the backplane to the instance holding the gateway
  int64_t sent_ms = 0;
  uint32_t wait_ms = 0;     // how long the gateway gets for a result
};

struct Router::RemoteCommand {
  std::string flat;
  std::string from;  // the instance waiting for the result
  std::unique_ptr<Timer> forget;
};

}  // namespace flatlink::cloud
