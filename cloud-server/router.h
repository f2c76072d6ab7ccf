// The cloud's routing core: per flat, the gateway link, the devices' last
// state, the last seq seen per gateway, the logged-in browsers and the commands
// under way. Knows messages, not sockets: the server hands it decoded messages
// and Peers to answer through. Loop thread only.
//
// Isolation: a browser is bound to one flat at login and everything it asks is
// looked up in that flat only; a gateway is bound to the flat its token names.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "cloud-link/protocol.h"
#include "cloud-server/backplane.h"
#include "cloud-server/metrics.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

// A connected gateway or browser, as the router sees it.
class Peer {
 public:
  virtual ~Peer() = default;
  virtual void send(std::string frame) = 0;
  // A frame of the flat's state (snapshot, update, presence, device list, gateway state),
  // which one later snapshot supersedes: a browser too far behind may get that snapshot
  // instead (Router::resync_browser).
  virtual void send_state(std::string frame) { send(std::move(frame)); }
  // Sends a close frame with this code and reason, then drops the connection.
  virtual void close(uint16_t code, const std::string& reason) = 0;
  virtual const std::string& describe() const = 0;  // for log lines, e.g. "peer=12 from 127.0.0.1"
  // A binary stream frame (cloud-server/streams.h): queued apart from text, bounded in time per
  // stream, dropped oldest first, and written only when no text waits.
  virtual void send_binary(std::string frame, uint16_t stream, uint32_t duration_us) {
    (void)frame, (void)stream, (void)duration_us;
  }
  // A stream ended: its queued frames are of no use any more.
  virtual void forget_stream(uint16_t stream) { (void)stream; }
};

class Router final : public BackplaneListener {
 public:
  Router(const config::CloudConfig& config, EventLoop& loop, const Clock& clock, Metrics& metrics);
  ~Router();

  // The flat whose gateway token this is, if any.
  std::optional<std::string> flat_for_token(std::string_view token) const;

  void gateway_connected(Peer& peer, const std::string& flat);
  void gateway_message(Peer& peer, const proto::GatewayToCloud& message);
  void gateway_disconnected(Peer& peer);
  bool gateway_said_hello(Peer& peer) const;

  void browser_connected(Peer& peer);
  void browser_message(Peer& peer, const proto::BrowserToCloud& message);
  void browser_disconnected(Peer& peer);
  // The browser fell too far behind and its queued state frames were dropped: one fresh
  // snapshot replaces them (the dashboard asks for its charts' history again on it).
  void resync_browser(Peer& peer);
  bool browser_logged_in(Peer& peer) const;

  // Closes every link with "going away" (shutdown).
  void close_all();
  // The config's flats were replaced (SIGHUP reload; `before` is the old list):
  // new flats and users are accepted from now on; a removed flat, or a flat whose
  // token changed, has its gateway link closed and its old token refused; a flat
  // whose users changed has its browsers closed (they log in again). Returns a
  // summary for the log.
  std::string flats_changed(const std::vector<config::FlatConfig>& before);
  size_t flats() const { return flats_.size(); }

  // Joins other instances (docs/scale-out.md); null: alone. Before any link.
  void attach_backplane(Backplane* backplane) { backplane_ = backplane; }

  // BackplaneListener (router_backplane.cpp).
  void backplane_up() override;
  bool backplane_knows_flat(const std::string& flat) const override;
  std::optional<RemoteState> backplane_state(const std::string& flat) override;
  void remote_gateway_message(const std::string& flat, const std::string& from, const std::string& gateway,
                              const proto::GatewayToCloud& message) override;
  void remote_state(const std::string& flat, const RemoteState& state) override;
  void remote_holder(const std::string& flat, const HolderClaim& claim) override;
  void remote_command(const std::string& flat, const std::string& from, const proto::CommandMsg& command) override;
  void remote_result(const std::string& flat, const std::string& from, const proto::Result& result,
                     bool accepted) override;
  void instance_down(const std::string& instance) override;
  // For the stream hub (cloud-server/streams.h), which keeps to what these name.
  // The flat of a logged-in browser; null otherwise.
  const std::string* browser_flat(Peer& peer) const;
  // The flat of a gateway link that is its flat's current one and said hello; null otherwise.
  const std::string* gateway_flat(Peer& peer) const;
  // The flat's current gateway link, once it said hello; null otherwise.
  Peer* flat_gateway(const std::string& flat) const;
  // The instance holding the flat's gateway link over the backplane, when not this one; "" otherwise.
  std::string flat_holder_elsewhere(const std::string& flat) const;
  // A device of that flat, if the flat has it.
  const proto::DeviceReport* flat_device(const std::string& flat, const std::string& device) const;

 private:
  struct Flat;
  struct PendingCommand;
  struct History;

  Flat* flat_of_gateway(Peer& peer);
  void to_browsers(Flat& flat, const std::string& frame);
  void send_gateway(Peer& peer, const std::string& frame);
  void send_browser(Peer& peer, const std::string& frame);
  void send_snapshot(Peer& browser, const Flat& flat);
  void on_hello(Flat& flat, Peer& peer, const proto::Hello& hello);
  void accept_hello(Flat& flat, Peer& peer, const proto::Hello& hello);  // answers it
  void on_status(Flat& flat, Peer& peer, const proto::StatusBatch& batch);
  void on_result(Flat& flat, const proto::Result& result);
  void on_browser_command(Flat& flat, Peer& browser, const proto::BrowserCommand& command);
  void finish_command(const std::string& cloud_id, const proto::Result& result);
  // A status from the flat's gateway, here or (over the backplane) at its holder: dropped
  // when its seq was seen, else received (raises `last`) and, for a known device, applied
  // (unless a newer device state `covered` it), kept in the history and sent to the browsers.
  enum class StatusFate { duplicate, unknown_device, applied };
  StatusFate apply_status(Flat& flat, const proto::StatusItem& item, int64_t& last, int64_t covered = 0);
  void record_history(Flat& flat, const std::string& device, const Json& state, int64_t ts);
  proto::Snapshot snapshot(const Flat& flat) const;
  // Backplane hooks (router_backplane.cpp); each does nothing without a backplane.
  void watch_update(Flat& flat);
  void bp_link_opened(Flat& flat);
  void bp_link_closed(Flat& flat);
  void bp_gateway_message(Flat& flat, const proto::GatewayToCloud& message);
  // Sends the ack for `seq` now (alone) or once the broker holds the batch.
  void bp_ack_after(Flat& flat, Peer& peer, int64_t seq, const std::optional<std::string>& published);
  bool bp_remote_online(const Flat& flat) const;
  bool bp_hold_hello(Flat& flat, const proto::Hello& hello);
  void bp_catch_up_timeout(const std::string& flat_id);
  void bp_release_hello(Flat& flat);
  void bp_drop_held_hello(Flat& flat);
  bool bp_on_result(Flat& flat, const proto::Result& result);
  void bp_send_command(Flat& flat, const std::string& cloud_id, const proto::CommandMsg& command);

  const config::CloudConfig& config_;
  EventLoop& loop_;
  const Clock& clock_;
  Metrics& metrics_;
  std::map<std::string, std::unique_ptr<Flat>> flats_;
  std::unordered_map<std::string, std::string> flat_by_token_hash_;
  std::unordered_map<Peer*, Flat*> gateways_;  // connected gateway links (also replaced ones until closed)
  std::unordered_map<Peer*, Flat*> browsers_;  // nullptr until logged in
  std::map<std::string, std::unique_ptr<PendingCommand>> pending_;
  std::unordered_map<Peer*, uint64_t> login_attempt_;  // the login check a browser waits for
  uint64_t login_attempts_ = 0;
  std::string id_prefix_;
  uint64_t next_command_ = 1;
  std::deque<config::FlatConfig> retired_;  // removed flats: no token, no users; kept for their Flat

  // The backplane side.
  struct RemoteCommand;
  Backplane* backplane_ = nullptr;
  std::map<std::string, std::unique_ptr<RemoteCommand>> remote_commands_;  // run here for another instance
  std::set<std::string> seen_commands_;                                     // at most once across redeliveries
  std::deque<std::string> seen_order_;
};

}  // namespace flatlink::cloud
