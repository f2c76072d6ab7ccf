// Non-blocking TCP socket helpers.
#include "device-adapters/wifly/tcp_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace flatlink::adapters::wifly::tcp {
namespace {

// Fills `addr` from an IP literal; false when it is not one.
bool make_address(const std::string& host, uint16_t port, sockaddr_storage& addr, socklen_t& len) {
  std::memset(&addr, 0, sizeof addr);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

std::string address_text(const sockaddr_storage& addr) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr, text, sizeof text);
  } else if (addr.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], text, sizeof text);  // ::ffff:a.b.c.d -> a.b.c.d
    } else {
      inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    }
  }
  return text;
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

int listen_on(const std::string& address, uint16_t port, std::string& error) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!make_address(address, port, addr, len)) {
    error = "not an IP address: " + address;
    return -1;
  }
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = errno_text("socket");
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    error = errno_text("bind");
    ::close(fd);
    return -1;
  }
  if (::listen(fd, 64) != 0) {
    error = errno_text("listen");
    ::close(fd);
    return -1;
  }
  return fd;
}

uint16_t local_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return 0;
}

int accept_one(int listen_fd, std::string& peer_address, bool& would_block, std::string& error) {
  would_block = false;
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
      would_block = true;
    } else {
      error = errno_text("accept");
    }
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  peer_address = address_text(addr);
  return fd;
}

int connect_to(const std::string& host, uint16_t port, bool& in_progress, std::string& error) {
  in_progress = false;
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!make_address(host, port, addr, len)) {
    error = "not an IP address: " + host;
    return -1;
  }
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = errno_text("socket");
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0) return fd;
  if (errno == EINPROGRESS) {
    in_progress = true;
    return fd;
  }
  error = errno_text("connect");
  ::close(fd);
  return -1;
}

int connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

IoStatus read_some(int fd, std::string& out, size_t max, std::string& error) {
  char buf[4096];
  const ssize_t n = ::recv(fd, buf, std::min(max, sizeof buf), 0);
  if (n > 0) {
    out.append(buf, static_cast<size_t>(n));
    return IoStatus::ok;
  }
  if (n == 0) return IoStatus::closed;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return IoStatus::would_block;
  error = errno_text("read");
  return IoStatus::failed;
}

IoStatus write_some(int fd, std::string& data, std::string& error) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return IoStatus::would_block;
    if (n < 0 && errno == EINTR) continue;
    error = errno_text("write");
    return IoStatus::failed;
  }
  return IoStatus::ok;
}

void close_fd(int fd) {
  if (fd >= 0) ::close(fd);
}

}  // namespace flatlink::adapters::wifly::tcp
