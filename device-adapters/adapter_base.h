// The contract every device adapter keeps, held once (after ESPHome's core/component.h):
// how a command to an unknown, offline or busy device ends, how a device confirms a
// command, bad input from outside (parsed only after a depth and size check, warned
// about at a bounded rate, quoted safely), caps on devices and capabilities, and file
// descriptor watches torn down outside their own callbacks. docs/adapters/contract.md
// describes it for users; serial, wifly, mqtt and sim derive from AdapterBase.
//
// Commands (execute() is final here):
// - unknown device: `rejected`; the adapter stopped or the device offline: `offline`,
//   "device <id> is offline", and nothing is sent.
// - one command per device at a time. A command for a busy device waits in that
//   device's queue (at most Limits::max_queued per device; beyond: `rejected`, busy),
//   and starts when the one before it ends; a waiting command whose expiry passes ends
//   `expired` and is never sent.
// - a running command ends `ok` when the device has reported every value it set, in
//   one report or several (confirm_values), or acknowledged it (acknowledge); `device_error`
//   when the device refuses it (refuse) or its connection is lost under it; `timeout`
//   after command_timeout_ms.
// Everything runs on the loop thread.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/event_loop.h"
#include "device-adapters/adapter.h"

namespace flatlink::adapters {

// JSON from a device, a broker or a LAN peer nests at most this deep; deeper text is
// refused before it is parsed (a million levels would otherwise exhaust the stack).
inline constexpr int kMaxDeviceJsonDepth = 16;
// ... and is at most this large (each adapter's own line or payload cap is smaller).
inline constexpr size_t kMaxDeviceJsonBytes = 16 * 1024 * 1024;

// Parses JSON from outside after the size and depth checks; false with `why` set when
// refused or not JSON. Never throws.
bool parse_device_json(std::string_view text, Json& out, std::string& why,
                       size_t max_bytes = kMaxDeviceJsonBytes);

// Whether text is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view text);

// Equal as device values: numbers by value (50 == 50.0), anything else exactly.
bool same_device_value(const Json& a, const Json& b);

// Warnings about bad input, at most `per_window` per key (a device, a peer, a topic)
// in each window, then one line counting what was not logged. Bounded in keys.
class WarningThrottle {
 public:
  WarningThrottle(const Clock& clock, uint32_t per_window = 5, int64_t window_ms = 10'000)
      : clock_(clock), per_window_(per_window), window_ms_(window_ms) {}
  // True when a warning for key may be logged now; `suppressed` is then the count of
  // warnings for that key that were not logged since the last one that was.
  bool admit(const std::string& key, uint64_t& suppressed);
  static constexpr size_t kMaxKeys = 256;

 private:
  struct Window {
    int64_t start_ms = 0;
    uint32_t logged = 0;
    uint64_t suppressed = 0;
  };
  const Clock& clock_;
  uint32_t per_window_;
  int64_t window_ms_;
  std::map<std::string, Window> windows_;
};

class AdapterBase : public Adapter {
 public:
  struct Limits {
    size_t max_devices = 512;           // per adapter instance
    size_t max_capabilities = 64;       // per device
    size_t max_queued = 8;              // commands waiting per busy device
    uint32_t command_timeout_ms = 5000; // a running command's time to be confirmed
  };

  AdapterBase(std::string name, const char* log_tag, EventLoop& loop, AdapterHost& host, const Clock& clock,
              Limits limits);
  ~AdapterBase() override;

  const std::string& name() const final { return name_; }
  void execute(const Command& command, CommandDone done) final;

  // Commands running or waiting, for tests and status output.
  size_t commands_in_flight() const;
  // Whether a command for the device runs now.
  bool command_running(const std::string& device_id) const;

 protected:
  // What dispatch() did with a command.
  struct Dispatch {
    std::optional<CommandResult> result;  // it ended at once (refused, not sendable, or needs no confirmation)
    Json expect;                          // values that confirm it; null: the values it sets
  };

  // ---- the adapter's side
  virtual bool device_known(const std::string& device_id) const = 0;
  virtual bool device_online(const std::string& device_id) const = 0;
  // Sends the command to its device (online, not busy, values validated by the core).
  virtual Dispatch dispatch(const Command& command) = 0;

  // ---- calls the adapter makes
  // The device reported values: they confirm the running command's values they match.
  void confirm_values(const std::string& device_id, const Json& values);
  // The device acknowledged the running command ({"ok":true} and the like).
  void acknowledge(const std::string& device_id);
  // The device refused the running command.
  void refuse(const std::string& device_id, const std::string& what_the_device_said);
  // The running command ends with `result`; waiting ones stay queued.
  void end_running(const std::string& device_id, CommandResult result);
  // The device is gone (offline, removed): its running command ends device_error with
  // `why`, the waiting ones end offline without being sent.
  void device_lost(const std::string& device_id, const std::string& why);
  // stop(): every command is dropped without an answer (the core ends them).
  void drop_commands();

  // A device may be announced: within the caps on devices (counting `known` already held,
  // without this one) and capabilities. Refusals are logged (throttled).
  bool admit_device(const DeviceInfo& info, size_t known);

  // Bad input from outside, logged as a WARN at a bounded rate per key; values in
  // `message` must be quoted with log::q (cut to 200 bytes, non-UTF-8 escaped).
  void warn_bad_input(const std::string& key, const std::string& message);

  // Destroys an object (an FdWatch, a session) later on the loop, never inside its own callback.
  template <class T>
  void destroy_later(std::unique_ptr<T> object) {
    if (!object) return;
    graveyard_.push_back(std::shared_ptr<void>(std::move(object)));
    if (!reaper_.active()) reaper_.start(0);
  }
  // Destroys what destroy_later() holds now (from stop(), outside any callback of those objects).
  void destroy_now() { graveyard_.clear(); }

  EventLoop& loop_;
  AdapterHost& host_;
  const Clock& clock_;
  const char* const tag_;
  Limits limits_;

 private:
  struct Running;
  struct Waiting;
  struct DeviceCommands {
    std::unique_ptr<Running> running;
    std::deque<std::unique_ptr<Waiting>> waiting;
  };
  void run(const std::string& device_id, Command command, CommandDone done);
  void start_next_soon();
  void start_next();
  void finish_waiting(const std::string& device_id, Waiting* waiting, CommandResult result);
  void forget_if_idle(const std::string& device_id);

  std::string name_;
  std::map<std::string, DeviceCommands> commands_;
  Timer next_timer_;
  Timer reaper_;
  std::vector<std::shared_ptr<void>> graveyard_;
  WarningThrottle throttle_;
};

}  // namespace flatlink::adapters
