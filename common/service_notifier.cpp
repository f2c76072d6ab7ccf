// READY/STATUS/WATCHDOG/STOPPING from the event loop, and the test-only loop hang.
#include "common/service_notifier.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "common/log.h"
#include "common/sd_notify.h"

namespace flatlink {

ServiceNotifier::ServiceNotifier(EventLoop& loop, std::function<std::string()> status, uint32_t status_interval_ms)
    : loop_(loop),
      status_(std::move(status)),
      status_interval_ms_(status_interval_ms),
      ready_timer_(loop, [this] {
        // Runs inside the loop's first iteration: the loop is turning, the config was loaded before.
        refresh_status();
        sd::notify("READY=1");
        LOG_DEBUG("systemd") << "READY=1 sent";
      }),
      watchdog_timer_(loop, [this] {
        sd::notify("WATCHDOG=1");
        watchdog_timer_.start(watchdog_interval_ms_);
      }),
      status_timer_(loop, [this] {
        refresh_status();
        status_timer_.start(status_interval_ms_);
      }) {
  const uint64_t usec = sd::watchdog_usec();
  // systemd recommends pinging at half the period; never more often than every millisecond.
  if (usec > 0) watchdog_interval_ms_ = static_cast<uint32_t>(std::max<uint64_t>(1, usec / 2000));
}

void ServiceNotifier::start() {
  if (!sd::notify_socket_set()) return;
  LOG_INFO("systemd") << "notifying systemd"
                      << (watchdog_interval_ms_ ? "; watchdog ping every " + std::to_string(watchdog_interval_ms_) + " ms"
                                                : std::string("; no watchdog"));
  ready_timer_.start(0);
  if (watchdog_interval_ms_) watchdog_timer_.start(watchdog_interval_ms_);
  if (status_interval_ms_) status_timer_.start(status_interval_ms_);
}

void ServiceNotifier::stopping() {
  if (!sd::notify_socket_set()) return;
  ready_timer_.cancel();
  sd::notify("STOPPING=1\nSTATUS=stopping");
  last_status_ = "stopping";
  status_timer_.cancel();
}

void ServiceNotifier::reloading() {
  if (!sd::notify_socket_set()) return;
  sd::notify("RELOADING=1\nSTATUS=reloading the configuration");
}

void ServiceNotifier::reloaded(const std::string& outcome) {
  if (!sd::notify_socket_set()) return;
  last_status_.clear();  // the next refresh shows the live status again
  sd::notify("READY=1\nSTATUS=" + outcome);
}

void ServiceNotifier::refresh_status() {
  if (!status_ || loop_.stopping()) return;
  std::string line = status_();
  if (line == last_status_) return;
  if (sd::notify("STATUS=" + line)) last_status_ = std::move(line);
}

void install_test_faults(EventLoop& loop) {
  const char* on = std::getenv("FLATLINK_TEST_FAULTS");
  if (!on || std::strcmp(on, "1") != 0) return;
  LOG_WARN("test") << "FLATLINK_TEST_FAULTS=1: test fault switches are on (SIGUSR2 hangs the event loop); "
                      "never set this in production";
  loop.on_signal(SIGUSR2, [] {
    LOG_WARN("test") << "SIGUSR2 with test faults on: hanging the event loop now";
    for (;;) ::pause();
  });
}

}  // namespace flatlink
