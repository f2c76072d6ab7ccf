// The libserialport backend: real UARTs and USB serial adapters, found by path or
// by USB identity. Terminals it does not recognise go to the termios backend.
#include <fcntl.h>
#include <libserialport.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "device-adapters/serial/serial_port.h"

namespace flatlink::adapters::serial {
namespace {

struct UsbIdentity {
  int vid = 0;
  int pid = 0;
  std::string serial;  // empty: any
};

// "usb:0403:6001[:A50285BI]"; the loader has checked the form.
bool parse_usb(const std::string& port, UsbIdentity& out) {
  if (port.rfind("usb:", 0) != 0 || port.size() < 13) return false;
  out.vid = static_cast<int>(std::strtol(port.substr(4, 4).c_str(), nullptr, 16));
  out.pid = static_cast<int>(std::strtol(port.substr(9, 4).c_str(), nullptr, 16));
  if (port.size() > 14) out.serial = port.substr(14);
  return true;
}

// The device path of the USB serial port with this identity, or "" when none is plugged in.
std::string find_usb_port(const std::string& spec, const UsbIdentity& want) {
  sp_port** list = nullptr;
  if (sp_list_ports(&list) != SP_OK) {
    LOG_WARN("serial") << "port=" << spec << " cannot list serial ports: " << sp_last_error_message();
    return {};
  }
  std::vector<std::string> matches;
  for (size_t i = 0; list[i] != nullptr; ++i) {
    sp_port* port = list[i];
    if (sp_get_port_transport(port) != SP_TRANSPORT_USB) continue;
    int vid = 0;
    int pid = 0;
    if (sp_get_port_usb_vid_pid(port, &vid, &pid) != SP_OK || vid != want.vid || pid != want.pid) continue;
    const char* serial = sp_get_port_usb_serial(port);
    if (!want.serial.empty() && (serial == nullptr || want.serial != serial)) continue;
    matches.emplace_back(sp_get_port_name(port));
  }
  sp_free_port_list(list);
  if (matches.size() > 1) {
    LOG_WARN("serial") << "port=" << spec << " matches " << matches.size() << " ports; using " << matches[0]
                       << " (add the adapter's serial number to tell them apart: usb:VID:PID:SERIAL)";
  }
  return matches.empty() ? std::string() : matches[0];
}

std::string last_error() {
  char* message = sp_last_error_message();
  std::string text = message ? message : "unknown error";
  sp_free_error_message(message);
  return text;
}

class LibserialportPort final : public SerialPort {
 public:
  LibserialportPort(sp_port* port, int fd, std::string path) : port_(port), fd_(fd), path_(std::move(path)) {}
  ~LibserialportPort() override {
    sp_close(port_);
    sp_free_port(port_);
  }

  int fd() const override { return fd_; }
  const std::string& path() const override { return path_; }
  const char* backend() const override { return "libserialport"; }

  ptrdiff_t read_some(char* buf, size_t len, std::string& why) override {
    const int n = sp_nonblocking_read(port_, buf, len);
    if (n > 0) return n;
    if (n == 0 && !tty_hung_up(fd_)) return 0;
    why = n == 0 ? "the line hung up" : "read failed: " + last_error();
    return -1;
  }

  ptrdiff_t write_some(const char* buf, size_t len, std::string& why) override {
    const int n = sp_nonblocking_write(port_, buf, len);
    if (n >= 0) return n;
    why = "write failed: " + last_error();
    return -1;
  }

 private:
  sp_port* port_;
  int fd_;
  std::string path_;
};

// Applies one line setting; a refusal is logged and the port stays in use.
void apply(const std::string& path, const char* what, sp_return rc) {
  if (rc != SP_OK) LOG_WARN("serial") << "port=" << path << " refused " << what << ": " << last_error() << "; continuing";
}

}  // namespace

OpenResult open_serial_port(const config::SerialAdapterConfig& config) {
  OpenResult result;
  std::string path = config.port;
  UsbIdentity usb;
  if (parse_usb(config.port, usb)) {
    path = find_usb_port(config.port, usb);
    if (path.empty()) {
      result.absent = true;
      result.error = "no USB serial port " + config.port + " is plugged in";
      return result;
    }
  }
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    result.absent = errno == ENOENT || errno == ENOTDIR;
    result.error = "cannot open " + path + ": " + std::strerror(errno);
    return result;
  }
  sp_port* port = nullptr;
  if (sp_get_port_by_name(path.c_str(), &port) != SP_OK) {
    // Not a port libserialport knows (e.g. a pseudo-terminal): plain termios.
    return open_termios_port(path, config);
  }
  if (sp_open(port, SP_MODE_READ_WRITE) != SP_OK) {
    const int code = sp_last_error_code();
    result.absent = code == ENOENT || code == ENXIO || code == ENODEV;
    result.error = "cannot open " + path + ": " + last_error();
    if (code == EACCES) result.error += " (is the user in the dialout group?)";
    sp_free_port(port);
    return result;
  }
  int fd = -1;
  if (sp_get_port_handle(port, &fd) != SP_OK || fd < 0) {
    result.error = "cannot get the descriptor of " + path + ": " + last_error();
    sp_close(port);
    sp_free_port(port);
    return result;
  }
  // sp_open opens non-blocking; make sure of it, the loop must never wait on a read.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);

  apply(path, "its baud rate", sp_set_baudrate(port, static_cast<int>(config.baud)));
  apply(path, "its data bits", sp_set_bits(port, config.data_bits));
  const sp_parity parity = config.parity == config::Parity::odd    ? SP_PARITY_ODD
                           : config.parity == config::Parity::even ? SP_PARITY_EVEN
                                                                   : SP_PARITY_NONE;
  apply(path, "its parity", sp_set_parity(port, parity));
  apply(path, "its stop bits", sp_set_stopbits(port, config.stop_bits));
  const sp_flowcontrol flow = config.flow_control == config::FlowControl::rtscts    ? SP_FLOWCONTROL_RTSCTS
                              : config.flow_control == config::FlowControl::xonxoff ? SP_FLOWCONTROL_XONXOFF
                                                                                    : SP_FLOWCONTROL_NONE;
  apply(path, "its flow control", sp_set_flowcontrol(port, flow));
  result.port = std::make_unique<LibserialportPort>(port, fd, path);
  return result;
}

}  // namespace flatlink::adapters::serial
