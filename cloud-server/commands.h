// Command routing: a browser's command checked against its flat's devices and sent to the
// flat's gateway (here, or over the backplane to the instance holding it), the command under
// way until its result, timeout or "offline"; and the commands this instance runs for another
// one (once each, though the broker may deliver them twice). Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cloud-link/protocol.h"
#include "cloud-server/flats.h"
#include "cloud-server/metrics.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

class Backplane;
class Peer;

class Commands {
 public:
  Commands(const config::CloudConfig& config, EventLoop& loop, const Clock& clock, Metrics& metrics);
  ~Commands();

  void attach_backplane(Backplane* backplane) { backplane_ = backplane; }

  // A browser's command here ended (result, refusal, timeout, offline): for the event log.
  struct Ended {
    std::string flat;
    std::string user;
    std::string device;
    Json set;
    Outcome outcome = Outcome::ok;
    std::string message;
  };
  // `who`: the user of a browser; `ended`: called once per command of a browser here.
  void observe(std::function<std::string(Peer&)> who, std::function<void(const Ended&)> ended) {
    who_ = std::move(who);
    ended_ = std::move(ended);
  }

  // A logged-in browser's command for its flat. `local`: the flat's gateway said hello on a
  // link here; `remote`: another instance holds an online gateway of the flat. Neither: offline.
  void from_browser(LiveFlat& flat, Peer& browser, const proto::BrowserCommand& command, bool local, bool remote);
  // A browser's command sent while its flat is joining here (BackplaneSync::joining): kept
  // until release_held, then handled as from_browser with what is known then.
  void hold(LiveFlat& flat, Peer& browser, const proto::BrowserCommand& command);
  void release_held(LiveFlat& flat, bool local, bool remote);
  // A result from the flat's gateway here: for another instance's command or one of ours.
  void gateway_result(LiveFlat& flat, const proto::Result& result);
  // The browser left: its commands' results go nowhere.
  void browser_left(Peer& browser);

  // Over the backplane: another instance's command for a flat whose gateway link is here.
  void remote_command(LiveFlat& flat, const std::string& from, const proto::CommandMsg& command);
  // The holder's answer to one of our commands: `accepted` (the usual timeout starts) or its result.
  void remote_result(const std::string& flat, const std::string& from, const proto::Result& result, bool accepted);

  // Forgets the commands run for other instances (shutdown: their timers must not outlive the loop).
  void forget_remote();
  size_t pending() const { return pending_.size(); }

 private:
  struct Pending;
  struct Remote;

  void finish(const std::string& cloud_id, const proto::Result& result);
  // A command sent over the backplane that no holder took within command_offline_ms.
  void not_taken(const std::string& cloud_id);
  std::unique_ptr<Timer> timeout_timer(const std::string& cloud_id, uint32_t wait_ms);

  const config::CloudConfig& config_;
  EventLoop& loop_;
  const Clock& clock_;
  Metrics& metrics_;
  Backplane* backplane_ = nullptr;
  std::string id_prefix_;
  uint64_t next_ = 1;
  std::map<std::string, std::unique_ptr<Pending>> pending_;  // by cloud id
  std::map<std::string, std::unique_ptr<Remote>> remote_;    // run here for another instance
  struct Held {
    std::string flat;
    Peer* browser;
    proto::BrowserCommand command;
  };
  std::vector<Held> held_;                                    // hold(), in arrival order
  std::set<std::string> seen_;                                // at most once across redeliveries
  std::deque<std::string> seen_order_;
  std::function<std::string(Peer&)> who_;
  std::function<void(const Ended&)> ended_;
};

}  // namespace flatlink::cloud
