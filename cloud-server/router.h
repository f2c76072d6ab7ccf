// The cloud's routing core as the server, the backplane and the stream hub see it: a thin
// facade over its parts, each the one owner of its state (docs/architecture.md):
//   login.h           Accounts (who may connect) and LoginGate (password checks off the loop)
//   flats.h           Flats: the flats' live state, links, dedupe, fan-out to browsers
//   commands.h        Commands: commands under way, their timers and results
//   history.h         History: the values' history the `history` request answers
//   backplane_sync.h  BackplaneSync: holder election and the other instances' state
// Knows messages, not sockets: the server hands it decoded messages and Peers to answer
// through. Loop thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cloud-link/protocol.h"
#include "cloud-server/backplane.h"
#include "cloud-server/backplane_sync.h"
#include "cloud-server/commands.h"
#include "cloud-server/flats.h"
#include "cloud-server/history.h"
#include "cloud-server/login.h"
#include "cloud-server/metrics.h"
#include "cloud-server/peer.h"
#include "cloud-server/store/store_accounts.h"
#include "cloud-server/store/store_events.h"
#include "cloud-server/store/store_sessions.h"
#include "cloud-server/store/store_device_labels.h"
#include "cloud-server/store/store_webhooks.h"
#include "cloud-server/store/worker.h"
#include "cloud-server/webhooks.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

class StreamHub;

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
  // The gateway link went silent past the server's bound (a frozen gateway), or spoke again.
  void gateway_responding(Peer& peer, bool responding);

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
  // Browser logins: bans and delays (the operator's /bans endpoints reach them here).
  LoginGate& login_gate() { return login_; }

  // POST /session (docs/protocol.md "Sessions"): the login is checked as a WebSocket one; a
  // good one makes a session in the store; `done` gets the HTTP answer (with the cookie). On
  // the loop; `done` may run before this returns. `client` is kept for `admin session list`.
  void http_login(const std::string& source, const std::string& client, const proto::Login& login, bool secure,
                  std::function<void(HttpAnswer)> done);
  store::EventLog* events() { return events_.get(); }

  // Joins other instances (docs/scale-out.md); null: alone. Before any link.
  void attach_backplane(Backplane* backplane);

  // BackplaneListener: handed to BackplaneSync, commands to Commands.
  void backplane_up() override;
  bool backplane_knows_flat(const std::string& flat) const override;
  std::optional<RemoteState> backplane_state(const std::string& flat) override;
  void remote_gateway_message(const std::string& flat, const std::string& from, const std::string& gateway,
                              const proto::GatewayToCloud& message, const std::string& epoch = {}) override;
  void remote_state(const std::string& flat, const RemoteState& state) override;
  void remote_holder(const std::string& flat, const HolderClaim& claim) override;
  void remote_command(const std::string& flat, const std::string& from, const proto::CommandMsg& command) override;
  void remote_result(const std::string& flat, const std::string& from, const proto::Result& result,
                     bool accepted) override;
  void instance_down(const std::string& instance) override;
  void backplane_down() override;
  void remote_status(const backplane::GatewayMessage& m) override;
  void remote_resend(const backplane::ResendRequest& request) override;
  void remote_repaired(const backplane::RepairDone& done) override;
  void backplane_session_lost() override;
  void remote_stream_control(const backplane::StreamControl& message) override;
  void remote_stream_frame(backplane::StreamData& data) override;
  // The stream hub that hears the streams across instances and the instances that go.
  void attach_streams(StreamHub* streams) { streams_ = streams; }
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
  // The store's worker (null without a store): POST /pair redeems its codes through it.
  store::Worker* store_worker() { return store_.get(); }
  // Reads the store's accounts now instead of at the next poll (a gateway was just paired).
  void accounts_changed() {
    if (store_poll_) poll_accounts();
  }

 private:
  void on_hello(LiveFlat& flat, Peer& peer, const proto::Hello& hello);
  void accept_hello(LiveFlat& flat, Peer& peer, const proto::Hello& hello);  // answers it
  void on_status(LiveFlat& flat, Peer& peer, const proto::StatusBatch& batch);
  void on_login(Peer& peer, const proto::Login& login);
  void logged_in(Peer& peer, const std::string& flat, const std::string& user, bool ok);
  const Accounts& accounts() const;
  // With a store: its accounts replace the flats' settings (links closed as a reload would).
  void load_accounts();
  void apply_accounts(const store::AccountsSnapshot& snapshot);
  void poll_accounts();
  void store_rehash(const std::string& flat, const std::string& user, const std::string& old_hash,
                    const std::string& fresh);
  // Sessions and the event log (router_sessions.cpp).
  void start_sessions(EventLoop& loop);
  void on_resume(Peer& peer);
  void on_logout(Peer& peer, const LiveFlat& flat, const proto::Logout& logout);
  void on_events(Peer& peer, const LiveFlat& flat, const proto::EventsRequest& request);
  // An owner's `webhook` message (router_webhooks.cpp).
  void on_webhook(Peer& peer, const LiveFlat& flat, const proto::WebhookRequest& request);
  // An owner's `device_label` message, and the store's labels applied to the flats'
  // browsers (router_device_labels.cpp).
  void on_device_label(Peer& peer, const LiveFlat& flat, const proto::DeviceLabelRequest& request);
  void apply_labels(const std::vector<store::DeviceLabelRow>& rows);
  // A status of a lock that turns it unlocked: the flat's webhook is told.
  void notify_unlocked(const LiveFlat& flat, const proto::StatusItem& item, bool was_unlocked);
  void bind_logged_in(Peer& peer, LiveFlat& flat, const std::string& user, const std::string& via,
                      const std::string& session_hash, int64_t session_expires);
  void sessions_ended(const std::vector<std::string>& token_hashes, const char* why);
  void check_session_expiry();
  void record(store::EventRow row);
  void browser_gone(Peer& peer);
  void tell_not_responding(Peer& browser, const LiveFlat& flat);
  void publish_accounts();

  const config::CloudConfig& config_;
  const Clock& clock_;
  Metrics& metrics_;
  // The flats' settings the parts read: the config's, or (with a store) the store's.
  std::vector<config::FlatConfig> flat_configs_;
  ConfigAccounts accounts_;
  std::unique_ptr<store::StoreAccounts> store_accounts_;  // with a store
  History history_;
  Flats flats_;
  Commands commands_;
  BackplaneSync sync_;
  Backplane* backplane_ = nullptr;        // null: alone
  StreamHub* streams_ = nullptr;
  std::unique_ptr<store::Worker> store_;  // with a store
  std::unique_ptr<Timer> store_poll_;     // reads the accounts' change counter every store.poll_ms
  bool polling_ = false;
  std::unordered_set<std::string> not_responding_;  // flats whose gateway link went silent
  bool store_reachable_ = true;           // the last read of the store worked: new logins are checked
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // store results posted after destruction are dropped
  // Sessions: the links of each session here, and who each logged-in browser is.
  struct BrowserWho {
    std::string user;
    std::string session;  // token hash; "" for a password login over the WebSocket
    int64_t expires = 0;  // the session's absolute expiry
  };
  EventLoop& loop_;
  std::unordered_map<Peer*, BrowserWho> who_;
  std::unordered_multimap<std::string, Peer*> session_links_;
  std::unordered_map<Peer*, uint64_t> resuming_;  // the resume a browser waits for
  uint64_t resumes_ = 0;
  std::unordered_map<HttpLoginPeer*, std::unique_ptr<HttpLoginPeer>> http_logins_;
  uint64_t http_login_ids_ = 0;
  int64_t session_ends_seen_ = 0;  // the last session_ends id read
  std::unique_ptr<store::EventLog> events_;  // with a store
  std::unique_ptr<Webhooks> webhooks_;       // with a store: the flats' notification webhooks
  LoginGate login_;  // last: destroyed first, joining its password-check workers
};

}  // namespace flatlink::cloud
