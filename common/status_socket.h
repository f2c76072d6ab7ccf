// A unix socket on the event loop that answers every connection with one snapshot of
// the daemon's state and closes it: what `flatlinkd status` reads from the running daemon.
//
// Loop thread only. The snapshot is made on the loop when a client connects (nothing is
// written anywhere while nobody asks: the hot path never pays for it); the accepted socket
// is non-blocking and gets one write, so a client that does not read never stalls the loop.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/event_loop.h"

namespace flatlink {

class StatusSocket {
 public:
  // Listens on `path` (a stale socket file there is replaced), mode 0660.
  StatusSocket(EventLoop& loop, std::string path, std::function<std::string()> snapshot);
  ~StatusSocket();
  StatusSocket(const StatusSocket&) = delete;
  StatusSocket& operator=(const StatusSocket&) = delete;

  // False (and the reason logged) when it could not listen; the daemon runs on without it.
  bool ok() const { return fd_ >= 0 && watch_ != nullptr && watch_->ok(); }
  const std::string& path() const { return path_; }

 private:
  void accept_all();

  std::string path_;
  std::function<std::string()> snapshot_;
  int fd_ = -1;
  std::unique_ptr<FdWatch> watch_;
};

// The client side: connects to `path`, reads the whole answer. Empty and `error` set on failure.
std::string read_status_socket(const std::string& path, std::string& error);

}  // namespace flatlink
