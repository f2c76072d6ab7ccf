// The one interface every device adapter implements (sim, serial, wifly, mqtt).
//
// Contract:
// - The gateway core constructs an adapter with its typed configuration, the
//   event loop and an AdapterHost, then calls start() once and stop() once.
// - Everything is called on the loop thread, and the adapter calls the host back
//   on the loop thread only. An adapter never sleeps or blocks: it uses the loop's
//   timers and file-descriptor watches, or a thread of its own that hands work
//   back with EventLoop::post().
// - execute() is only called for a configured, online device of this adapter with
//   values already validated against the device's capabilities. The adapter calls
//   `done` exactly once, possibly later; after stop() it must not call it any more
//   (the core ends pending commands itself).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/device_model.h"

namespace flatlink::adapters {

class AdapterHost {
 public:
  virtual ~AdapterHost() = default;
  // A device exists (again) or its description changed.
  virtual void device_added(const DeviceInfo& device) = 0;
  // A device no longer exists (e.g. gone from discovery).
  virtual void device_removed(const std::string& device_id) = 0;
  // New values of some of a device's capabilities, observed at observed_ms (wall clock).
  virtual void status(const std::string& device_id, const Json& state, int64_t observed_ms) = 0;
  // The device went offline or came back.
  virtual void presence(const std::string& device_id, bool online) = 0;
};

using CommandDone = std::function<void(CommandResult)>;

// A device declared in an adapter's configuration (id, name, kind, room, capabilities),
// as the core sees it; the name defaults to the id.
template <class DeclaredDevice>
DeviceInfo describe_declared(const DeclaredDevice& declared) {
  DeviceInfo info;
  info.id = declared.id;
  info.name = declared.name.empty() ? declared.id : declared.name;
  info.kind = declared.kind;
  info.room = declared.room;
  info.capabilities = declared.capabilities;
  return info;
}

class Adapter {
 public:
  virtual ~Adapter() = default;
  // The instance name from the configuration, e.g. "sim" or "hall-uart".
  virtual const std::string& name() const = 0;
  // Announce the configured devices and begin working. Failures to reach
  // hardware are not fatal: the adapter reports its devices offline and retries.
  virtual void start() = 0;
  // Stop timers and I/O; no host callback after this returns.
  virtual void stop() = 0;
  virtual void execute(const Command& command, CommandDone done) = 0;
};

}  // namespace flatlink::adapters
