// The transport under the serial adapter: an open, configured, non-blocking
// serial port. Two backends: libserialport for real UARTs and USB adapters
// (serial_port_libserialport.cpp), plain termios for terminals libserialport
// does not recognise, such as pseudo-terminals (serial_port_termios.cpp).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "config/gateway_config.h"

namespace flatlink::adapters::serial {

class SerialPort {
 public:
  virtual ~SerialPort() = default;
  // The descriptor to watch on the loop; owned by the port.
  virtual int fd() const = 0;
  // The device path that was opened (after usb:VID:PID lookup).
  virtual const std::string& path() const = 0;
  // What backend, for log lines: "libserialport" or "termios".
  virtual const char* backend() const = 0;
  // Bytes read (> 0); 0 when nothing is waiting; -1 when the port failed (why says how).
  virtual ptrdiff_t read_some(char* buf, size_t len, std::string& why) = 0;
  // Bytes written (>= 0, possibly fewer than len); -1 when the port failed.
  virtual ptrdiff_t write_some(const char* buf, size_t len, std::string& why) = 0;
};

struct OpenResult {
  std::unique_ptr<SerialPort> port;  // null on failure
  std::string error;                 // why not, for the operator
  bool absent = false;               // the port does not exist (unplugged), as opposed to refused
};

// Finds (for usb:VID:PID[:serial]) and opens the configured port and applies its
// line settings. Never blocks on the line (opened non-blocking, no carrier wait).
// Settings a port refuses are logged and skipped: the port stays usable.
OpenResult open_serial_port(const config::SerialAdapterConfig& config);

// The termios backend, for a path that is a terminal but not one libserialport knows.
OpenResult open_termios_port(const std::string& path, const config::SerialAdapterConfig& config);

// A read of 0 bytes after the loop said "readable" is either nothing (a raw tty
// with VMIN 0) or a hung-up line; a hung-up tty refuses every ioctl.
bool tty_hung_up(int fd);

}  // namespace flatlink::adapters::serial
