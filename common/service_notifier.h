// Tells systemd (Type=notify) how the daemon is doing, from its event loop:
// READY=1 once the loop turns, STATUS= lines, WATCHDOG=1 pings and STOPPING=1.
//
// Loop thread only. Because the watchdog pings come from a loop timer, a loop
// that hangs stops pinging and systemd restarts the service (WatchdogSec=).
// Outside systemd (no $NOTIFY_SOCKET) it does nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/event_loop.h"

namespace flatlink {

class ServiceNotifier {
 public:
  // `status` is asked every status_interval_ms for a one-line status; it is sent
  // as STATUS= when it differs from the last one sent.
  ServiceNotifier(EventLoop& loop, std::function<std::string()> status, uint32_t status_interval_ms = 1000);
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  // Call after the config is loaded and just before loop.run(): READY=1 goes out
  // from the loop's first iteration, then the watchdog and status timers run.
  void start();
  // STOPPING=1 (a graceful stop has begun); the status and watchdog pings go on
  // until the loop ends, so that a slow but live shutdown is not killed early.
  void stopping();
  // RELOADING=1 and READY=1 around a configuration reload, with a status line.
  void reloading();
  void reloaded(const std::string& outcome);
  // Sends the status line now if it changed.
  void refresh_status();

  // Half of $WATCHDOG_USEC in ms, 0 without a watchdog.
  uint32_t watchdog_interval_ms() const { return watchdog_interval_ms_; }

 private:
  EventLoop& loop_;
  std::function<std::string()> status_;
  uint32_t status_interval_ms_;
  uint32_t watchdog_interval_ms_ = 0;
  std::string last_status_;
  Timer ready_timer_;
  Timer watchdog_timer_;
  Timer status_timer_;
};

// Test-only fault switches, active only when $FLATLINK_TEST_FAULTS is "1"
// (never set it in production): SIGUSR2 then makes the event loop hang for
// good, so that tests can watch the systemd watchdog notice.
void install_test_faults(EventLoop& loop);

}  // namespace flatlink
