// systemd's service notification protocol (sd_notify(3)) without libsystemd:
// one datagram per message to the unix socket named by $NOTIFY_SOCKET.
//
// Any thread may call these; they never block and never fail loudly: outside
// systemd (no $NOTIFY_SOCKET) every call is a no-op that returns false.
#pragma once

#include <cstdint>
#include <string_view>

namespace flatlink::sd {

// Sends `state` ("READY=1", "STATUS=...", "STOPPING=1", "WATCHDOG=1", several
// separated by newlines). True if a socket was named and took the datagram.
bool notify(std::string_view state);

// True when $NOTIFY_SOCKET names a socket.
bool notify_socket_set();

// The watchdog period systemd expects pings within, from $WATCHDOG_USEC (and
// $WATCHDOG_PID, which must be this process if set); 0 when there is none.
uint64_t watchdog_usec();

}  // namespace flatlink::sd
