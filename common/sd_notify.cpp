// sd_notify(3) by hand: a datagram to $NOTIFY_SOCKET, '@' meaning the abstract namespace.
#include "common/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace flatlink::sd {
namespace {

// Fills addr from $NOTIFY_SOCKET; returns the address length, 0 if unset or unusable.
socklen_t notify_address(sockaddr_un& addr) {
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (!name || !*name) return 0;
  const size_t len = std::strlen(name);
  if ((name[0] != '/' && name[0] != '@') || len >= sizeof addr.sun_path) return 0;
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, name, len);
  // An abstract socket's name starts with a NUL byte and is not NUL-terminated.
  if (name[0] == '@') addr.sun_path[0] = '\0';
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (name[0] == '/' ? 1 : 0));
}

}  // namespace

bool notify_socket_set() {
  sockaddr_un addr{};
  return notify_address(addr) != 0;
}

bool notify(std::string_view state) {
  sockaddr_un addr{};
  const socklen_t addr_len = notify_address(addr);
  if (addr_len == 0) return false;
  // A socket per message keeps this stateless and usable from any thread; it is rare traffic.
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  ssize_t sent;
  do {
    sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), addr_len);
  } while (sent < 0 && errno == EINTR);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

uint64_t watchdog_usec() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (!usec || !*usec) return 0;
  if (const char* pid = std::getenv("WATCHDOG_PID"); pid && *pid) {
    if (std::strtoll(pid, nullptr, 10) != static_cast<long long>(::getpid())) return 0;
  }
  char* end = nullptr;
  const unsigned long long value = std::strtoull(usec, &end, 10);
  return (end && *end == '\0') ? value : 0;
}

}  // namespace flatlink::sd
