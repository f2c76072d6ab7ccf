// A fake WiFly module on loopback TCP (see fake_module.h).
#include "fake_module.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace flatlink::testing {
namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

FakeConnection::FakeConnection(EventLoop& loop, int fd) : fd_(fd) {
  set_nonblocking(fd_);
  watch_ = std::make_unique<FdWatch>(loop, fd_, [this](int events) { on_events(events); });
}

FakeConnection::~FakeConnection() { close(); }

void FakeConnection::on_events(int events) {
  if (fd_ < 0) return;
  if (events & (FdWatch::readable | FdWatch::hangup)) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        received_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) peer_closed_ = true;
      break;
    }
  }
  if ((events & FdWatch::writable) && !peer_closed_) flush();
  if (peer_closed_ && watch_) {
    // Stop watching a socket that stays readable at EOF; the fd stays ours until close().
    watch_.reset();
  }
}

void FakeConnection::send(std::string_view bytes) {
  out_.append(bytes);
  flush();
}

// Writes what the socket takes now; the rest goes when it is writable again (from the
// loop), so a test can send megabytes to an adapter running on the same loop.
void FakeConnection::flush() {
  while (sent_ < out_.size() && fd_ >= 0) {
    const ssize_t n = ::send(fd_, out_.data() + sent_, out_.size() - sent_, MSG_NOSIGNAL);
    if (n > 0) {
      sent_ += static_cast<size_t>(n);  // an offset, not erase(): megabytes go out in linear time
      if (sent_ == out_.size()) {
        out_.clear();
        sent_ = 0;
      }
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (watch_) watch_->want_write();
      return;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      out_.clear();
      sent_ = 0;
      return;
    }
  }
}

void FakeConnection::close() {
  watch_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::vector<std::string> FakeConnection::lines() const {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = received_.find('\n', start)) != std::string::npos; start = nl + 1) {
    out.push_back(received_.substr(start, nl - start));
  }
  return out;
}

std::vector<std::string> FakeConnection::hixie_frames(size_t skip) const {
  std::vector<std::string> out;
  size_t i = skip;
  while (i < received_.size()) {
    if (received_[i] != '\0') break;
    const size_t end = received_.find('\xFF', i);
    if (end == std::string::npos) break;
    out.push_back(received_.substr(i + 1, end - i - 1));
    i = end + 1;
  }
  return out;
}

FakeModuleServer::FakeModuleServer(EventLoop& loop, uint16_t port) : loop_(loop) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = loopback(port);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0) {
    throw std::runtime_error("fake module cannot listen");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  watch_ = std::make_unique<FdWatch>(loop_, fd_, [this](int) {
    for (;;) {
      const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) break;
      connections.push_back(std::make_unique<FakeConnection>(loop_, fd));
      if (on_accept) on_accept(*connections.back());
    }
  });
}

FakeModuleServer::~FakeModuleServer() { stop_listening(); }

void FakeModuleServer::stop_listening() {
  watch_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::unique_ptr<FakeConnection> connect_to(EventLoop& loop, uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = loopback(port);
  // Blocking connect on loopback: the kernel completes it from the listen backlog.
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("fake module cannot connect");
  }
  return std::make_unique<FakeConnection>(loop, fd);
}

uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string hixie76_request(std::string_view key1, std::string_view key2, std::string_view key3,
                            std::string_view path) {
  std::string r = "GET " + std::string(path) +
                  " HTTP/1.1\r\n"
                  "Host: example.com\r\n"
                  "Connection: Upgrade\r\n"
                  "Sec-WebSocket-Key2: " +
                  std::string(key2) +
                  "\r\n"
                  "Sec-WebSocket-Protocol: sample\r\n"
                  "Upgrade: WebSocket\r\n"
                  "Sec-WebSocket-Key1: " +
                  std::string(key1) +
                  "\r\n"
                  "Origin: http://example.com\r\n"
                  "\r\n";
  r.append(key3);
  return r;
}

std::string hixie75_request(std::string_view path) {
  return "GET " + std::string(path) +
         " HTTP/1.1\r\n"
         "Upgrade: WebSocket\r\n"
         "Connection: Upgrade\r\n"
         "Host: example.com\r\n"
         "Origin: http://example.com\r\n"
         "\r\n";
}

std::string hixie_text_frame(std::string_view text) {
  std::string frame(1, '\0');
  frame.append(text);
  frame.push_back('\xFF');
  return frame;
}

}  // namespace flatlink::testing
