// The flats' live state: per flat its current gateway link, the devices as last reported
// (with presence), the highest seq received per gateway and the logged-in browsers; and
// which link belongs to which flat. Applies statuses (dedupe by seq) and fans frames out to
// a flat's browsers. Loop thread only.
//
// Isolation: a browser is bound to one flat at login and a gateway link to the flat its
// token names; everything else is looked up in that flat only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cloud-link/protocol.h"
#include "cloud-server/metrics.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

class History;
class Peer;

std::map<std::string, proto::DeviceReport> devices_by_id(const std::vector<proto::DeviceReport>& list);

// Sends and counts (metrics' *_messages_out).
void send_to_gateway(Metrics& metrics, Peer& peer, const std::string& frame);
void send_to_browser(Metrics& metrics, Peer& peer, const std::string& frame);

// An owner's name and room for a device (the store's device_labels): shown to the flat's
// browsers over the gateway's; "" for either: the gateway's.
struct DeviceLabel {
  std::string name;
  std::string room;

  bool operator==(const DeviceLabel&) const = default;
};

struct LiveFlat {
  const config::FlatConfig* config = nullptr;  // the config's, or a retired copy (Flats::reload)
  Peer* gateway = nullptr;                     // the current gateway link
  bool hello = false;                          // the current link said hello
  std::string gateway_id;
  std::map<std::string, proto::DeviceReport> devices;
  std::map<std::string, int64_t> last_seq;  // per gateway id: highest seq of a status received here
  // With a backplane, per gateway id: the seq the devices' state from a holder's retained
  // state covers. Not a status received: statuses up to it may still be on their way (a broker
  // cluster need not keep the state topic behind the status topic), and they count as new.
  std::map<std::string, int64_t> state_seq;
  std::set<Peer*> browsers;
  std::map<std::string, DeviceLabel> labels;  // per device id; devices keep the gateway's own name and room
  int64_t dropped = 0;    // what the gateway's outbox reports dropped
  int64_t coalesced = 0;  // ... coalesced
  int64_t lost = 0;       // ... maybe lost with a store it found gone
  // Stream epochs (docs/protocol.md, delivery rule 1): last_seq[gateway] belongs to the epoch
  // epoch_of[gateway] names ("" until a hello says, e.g. when only the backplane fed it);
  // earlier_epochs keeps the last seq of a few earlier epochs ("gateway/epoch"), so that a
  // gateway that goes back to its store's stream (after running memory-only) resumes it.
  std::map<std::string, std::string> epoch_of;
  std::map<std::string, int64_t> earlier_epochs;

  const std::string& id() const { return config->id; }
  bool online_here() const { return gateway && hello; }

  // The gateway ids above are named by hellos (outside input): at most this many are kept.
  static constexpr size_t kMaxGatewayIds = 4;
  // Called before `gateway` is recorded: when the flat knows kMaxGatewayIds other gateway
  // ids already, forgets them all (last seq, epoch, state seq, earlier epochs), so that a
  // gateway naming a new id in every hello cannot grow the maps. Returns how many it forgot.
  size_t bound_gateway_ids(const std::string& gateway);
};

class Flats {
 public:
  // `flats`: the flats' settings (the config's, or the store's), kept by the caller.
  Flats(const std::vector<config::FlatConfig>& flats, Metrics& metrics, History& history);

  LiveFlat* find(const std::string& id);
  const LiveFlat* find(const std::string& id) const;
  LiveFlat& at(const std::string& id) { return *flats_.at(id); }
  const std::map<std::string, std::unique_ptr<LiveFlat>>& all() const { return flats_; }
  size_t size() const { return flats_.size(); }

  // ---- gateway links
  // A new link for the flat; the current one, if any, is replaced: its messages no longer
  // count and it is closed with 4001.
  void link_gateway(Peer& peer, LiveFlat& flat);
  // The flat's current link stops being current (taken over elsewhere) and is returned to be
  // closed; null when there was none.
  Peer* unlink_gateway(LiveFlat& flat);
  // The link closed. Returns false for a link never seen; `flat` is its flat when it was the
  // flat's current link (now offline), else null.
  bool gateway_closed(Peer& peer, LiveFlat*& flat);
  // The flat of a link that is its flat's current one; null for a replaced or unknown link.
  LiveFlat* current_flat_of(Peer& gateway);
  const LiveFlat* current_flat_of(Peer& gateway) const;

  // ---- browsers
  void browser_connected(Peer& browser) { browsers_[&browser] = nullptr; }
  bool browser_known(Peer& browser) const { return browsers_.count(&browser) != 0; }
  // The flat a browser logged in to; null before login.
  LiveFlat* flat_of_browser(Peer& browser);
  const LiveFlat* flat_of_browser(Peer& browser) const;
  // Login succeeded: binds the browser to the flat (`read_only`: a guest, who may not command).
  // False if the browser is gone.
  bool bind_browser(Peer& browser, LiveFlat& flat, bool read_only = false);
  bool browser_read_only(Peer& browser) const { return read_only_.count(&browser) != 0; }
  // The browser left. Returns false for a browser never seen; `flat` is the flat it was bound to.
  bool browser_closed(Peer& browser, LiveFlat*& flat);

  // Every link (shutdown).
  std::vector<Peer*> peers() const;

  // ---- state
  // A status from the flat's gateway, here or (over the backplane) at its holder: dropped
  // when its seq was seen, else received (raises `last`) and, for a known device, applied
  // (unless a newer device state `covered` it), kept in the history and sent to the browsers.
  // A device keeps at most the protocol's max_state_keys values: a value under a new key
  // beyond them is dropped (counted in dropped_state_keys), so that statuses naming a new key
  // each time cannot grow the state or the history.
  enum class StatusFate { duplicate, unknown_device, applied };
  // `from_link`: false for a status relayed over the backplane (the history is told).
  StatusFate apply_status(LiveFlat& flat, const proto::StatusItem& item, int64_t& last, int64_t covered = 0,
                          bool from_link = true);
  // The gateway's stream goes on in `epoch` (docs/protocol.md, delivery rule 1): the last seq
  // of the epoch it had is kept among the earlier ones (at most kEarlierEpochs), and last_seq
  // becomes the new epoch's: its own if seen before, else 0. The state_seq goes (it belonged to
  // the other epoch). Returns the new last seq. Used alike by the holder (hello) and by every
  // other instance (a relayed batch or state carrying the epoch), so that all count the same.
  static constexpr size_t kEarlierEpochs = 8;
  int64_t switch_epoch(LiveFlat& flat, const std::string& gateway, const std::string& epoch);
  // A device's presence; false for an unknown device (nothing sent).
  bool apply_presence(LiveFlat& flat, const proto::Presence& presence);
  void apply_device_list(LiveFlat& flat, const proto::DeviceList& list);
  // The flat's devices are these now (a hello, a device list, a holder's state): the history
  // forgets the devices and values they no longer have.
  void set_devices(LiveFlat& flat, std::map<std::string, proto::DeviceReport> devices);

  void to_browsers(LiveFlat& flat, const std::string& frame);
  // The flat's devices as its browsers see them: the owner's labels over the gateway's
  // name and room. Every snapshot and device list a browser gets is made of these.
  std::vector<proto::DeviceReport> shown_devices(const LiveFlat& flat) const;
  proto::Snapshot snapshot(const LiveFlat& flat, bool gateway_online) const;
  // The owners' labels of the flat are these now; true when they changed.
  bool set_labels(LiveFlat& flat, const std::map<std::string, DeviceLabel>& labels);
  // A `devices` message with the shown devices to the flat's browsers (after a label changed).
  void send_devices(LiveFlat& flat);
  void send_snapshot(Peer& browser, const LiveFlat& flat, bool gateway_online);

  // The flats' settings were replaced (`before` is the old list): new flats are added; a
  // removed flat keeps its state bound to a retired copy without token or users, and its links
  // are closed; a flat whose token changed has its gateway link closed; a flat whose users
  // changed has its browsers closed. Returns a summary for the log.
  std::string reload(const std::vector<config::FlatConfig>& before);

 private:
  const std::vector<config::FlatConfig>& configs_;
  Metrics& metrics_;
  History& history_;
  std::map<std::string, std::unique_ptr<LiveFlat>> flats_;
  std::unordered_map<Peer*, LiveFlat*> gateways_;  // connected gateway links (also replaced ones until closed)
  std::unordered_map<Peer*, LiveFlat*> browsers_;  // nullptr until logged in
  std::set<Peer*> read_only_;                      // logged-in guests
  std::deque<config::FlatConfig> retired_;         // removed flats: no token, no users; kept for their LiveFlat
};

}  // namespace flatlink::cloud
