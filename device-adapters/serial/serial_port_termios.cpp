// The termios backend: for terminals libserialport does not recognise (it only
// knows ports listed under /sys/class/tty with a driver), such as pseudo-terminals.
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "device-adapters/serial/serial_port.h"

namespace flatlink::adapters::serial {
namespace {

speed_t speed_of(uint32_t baud) {
  switch (baud) {
    case 1200: return B1200;
    case 2400: return B2400;
    case 4800: return B4800;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    default: return B9600;
  }
}

tcflag_t size_of(uint8_t bits) {
  switch (bits) {
    case 5: return CS5;
    case 6: return CS6;
    case 7: return CS7;
    default: return CS8;
  }
}

class TermiosPort final : public SerialPort {
 public:
  TermiosPort(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~TermiosPort() override { ::close(fd_); }

  int fd() const override { return fd_; }
  const std::string& path() const override { return path_; }
  const char* backend() const override { return "termios"; }

  ptrdiff_t read_some(char* buf, size_t len, std::string& why) override {
    const ssize_t n = ::read(fd_, buf, len);
    if (n > 0) return n;
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (n == 0 && !tty_hung_up(fd_)) return 0;
    why = n == 0 ? "the line hung up" : std::string("read failed: ") + std::strerror(errno);
    return -1;
  }

  ptrdiff_t write_some(const char* buf, size_t len, std::string& why) override {
    const ssize_t n = ::write(fd_, buf, len);
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EINTR) return 0;
    why = std::string("write failed: ") + std::strerror(errno);
    return -1;
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

bool tty_hung_up(int fd) {
  termios t{};
  return ::tcgetattr(fd, &t) != 0;
}

OpenResult open_termios_port(const std::string& path, const config::SerialAdapterConfig& config) {
  OpenResult result;
  // O_NONBLOCK: open() must not wait for a carrier, and reads must not block the loop.
  const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    result.absent = errno == ENOENT || errno == ENXIO || errno == ENODEV;
    result.error = "cannot open " + path + ": " + std::strerror(errno);
    if (errno == EACCES) result.error += " (is the user in the dialout group?)";
    return result;
  }
  termios t{};
  if (::tcgetattr(fd, &t) != 0) {
    result.error = path + " is not a terminal: " + std::strerror(errno);
    ::close(fd);
    return result;
  }
  ::cfmakeraw(&t);
  ::cfsetispeed(&t, speed_of(config.baud));
  ::cfsetospeed(&t, speed_of(config.baud));
  t.c_cflag = (t.c_cflag & ~(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS)) | size_of(config.data_bits) | CLOCAL | CREAD;
  if (config.parity != config::Parity::none) t.c_cflag |= PARENB;
  if (config.parity == config::Parity::odd) t.c_cflag |= PARODD;
  if (config.stop_bits == 2) t.c_cflag |= CSTOPB;
  if (config.flow_control == config::FlowControl::rtscts) t.c_cflag |= CRTSCTS;
  t.c_iflag &= ~(IXON | IXOFF | IXANY);
  if (config.flow_control == config::FlowControl::xonxoff) t.c_iflag |= IXON | IXOFF;
  // VMIN 1: a read of 0 bytes then means a hang-up, never "nothing yet".
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (::tcsetattr(fd, TCSANOW, &t) != 0) {
    LOG_WARN("serial") << "port=" << path << " refused its line settings (" << std::strerror(errno)
                       << "); using it as it is";
  }
  result.port = std::make_unique<TermiosPort>(fd, path);
  return result;
}

}  // namespace flatlink::adapters::serial
