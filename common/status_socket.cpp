// StatusSocket: one snapshot per connection on a unix socket (see the header).
#include "common/status_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace flatlink {

namespace {

bool fill_address(const std::string& path, sockaddr_un& addr) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

}  // namespace

StatusSocket::StatusSocket(EventLoop& loop, std::string path, std::function<std::string()> snapshot)
    : path_(std::move(path)), snapshot_(std::move(snapshot)) {
  sockaddr_un addr{};
  if (!fill_address(path_, addr)) {
    LOG_WARN("status") << "status socket path too long or empty: " << path_ << "; `status` will not answer";
    return;
  }
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    LOG_WARN("status") << "cannot make the status socket: " << std::strerror(errno);
    return;
  }
  ::unlink(path_.c_str());  // a stale one from a killed run
  const mode_t old = ::umask(0117);
  const bool bound = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  const int bind_errno = errno;
  ::umask(old);
  if (!bound || ::listen(fd_, 8) != 0) {
    LOG_WARN("status") << "cannot listen on " << path_ << ": " << std::strerror(bound ? errno : bind_errno)
                       << "; `status` will not answer";
    ::close(fd_);
    fd_ = -1;
    return;
  }
  watch_ = std::make_unique<FdWatch>(loop, fd_, [this](int events) {
    if (events & FdWatch::readable) accept_all();
  });
}

StatusSocket::~StatusSocket() {
  watch_.reset();
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
}

void StatusSocket::accept_all() {
  for (;;) {
    const int client = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) return;  // EAGAIN: all taken; any other error: the next readable retries
    const std::string text = snapshot_();
    // One non-blocking write: a snapshot is a few kB, far below a socket's buffer.
    const ssize_t n = ::send(client, text.data(), text.size(), MSG_NOSIGNAL);
    if (n < static_cast<ssize_t>(text.size())) {
      LOG_WARN("status") << "status answer cut short (" << (n < 0 ? 0 : n) << " of " << text.size() << " bytes)";
    }
    ::close(client);
  }
}

std::string read_status_socket(const std::string& path, std::string& error) {
  sockaddr_un addr{};
  if (!fill_address(path, addr)) {
    error = "bad socket path " + path;
    return {};
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return {};
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = "cannot connect to " + path + ": " + std::strerror(errno);
    ::close(fd);
    return {};
  }
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = std::string("reading ") + path + ": " + std::strerror(errno);
    break;
  }
  ::close(fd);
  return error.empty() ? out : std::string();
}

}  // namespace flatlink
