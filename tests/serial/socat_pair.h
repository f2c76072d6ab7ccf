// Test helpers for the serial adapter: a temporary folder and a socat pseudo-terminal
// pair, <dir>/dev for the adapter and <dir>/test for the test playing the device.
// Unplugging is killing socat (the pty goes away); replugging is starting it again.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>

namespace flatlink::test {

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/flatlink-serial-test-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline bool exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

// A socat pseudo-terminal pair: <dir>/dev for the adapter, <dir>/test for the test.
class SocatPair {
 public:
  explicit SocatPair(const std::string& dir) : dev_(dir + "/dev"), test_(dir + "/test"), log_(dir + "/socat.log") {}
  ~SocatPair() { stop(); }

  const std::string& dev_path() const { return dev_; }

  // Starts socat and waits (up to 5 s) until both links exist; opens the test end.
  bool start() {
    const std::string a = "pty,raw,echo=0,link=" + dev_;
    const std::string b = "pty,raw,echo=0,link=" + test_;
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      const int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (log >= 0) ::dup2(log, STDERR_FILENO);
      ::execlp("socat", "socat", "-d", "-d", a.c_str(), b.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      if (exists(dev_) && exists(test_)) {
        fd_ = ::open(test_.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        return fd_ >= 0;
      }
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      ::usleep(10'000);  // waiting for socat to be ready, not a timing assertion
    }
    return false;
  }

  // Kills socat: both ptys go away, as when a USB adapter is pulled out.
  void stop() {
    pending_.clear();
    sent_ = 0;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }

  // Writes everything, as the device.
  void send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno == EAGAIN) {
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, 1000);
      } else {
        FAIL("write to the test pty failed");
      }
    }
  }

  // Queues bytes and writes what the pty takes now; pump() writes the rest (call it from
  // the loop while the adapter reads), so a test can send more than a pty buffer holds.
  void send_async(const std::string& bytes) {
    pending_ += bytes;
    pump();
  }
  void pump() {
    while (sent_ < pending_.size() && fd_ >= 0) {
      const ssize_t n = ::write(fd_, pending_.data() + sent_, std::min<size_t>(pending_.size() - sent_, 4096));
      if (n <= 0) return;
      sent_ += static_cast<size_t>(n);  // an offset, not erase(): megabytes go out in linear time
    }
    pending_.clear();
    sent_ = 0;
  }
  size_t unsent() const { return pending_.size() - sent_; }

  // What the adapter wrote to the device so far, without waiting.
  void drain(std::string& into) {
    if (fd_ < 0) return;
    char buf[1024];
    ssize_t n;
    while ((n = ::read(fd_, buf, sizeof buf)) > 0) into.append(buf, static_cast<size_t>(n));
  }

 private:
  std::string dev_, test_, log_;
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string pending_;
  size_t sent_ = 0;
};

}  // namespace flatlink::test
