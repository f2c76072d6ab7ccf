// A real Mosquitto broker for the tests: its own folder, a free port on
// 127.0.0.1, persistence on, started with fork/exec and killed at the end.
#pragma once

#include <sys/types.h>

#include <string>

namespace flatlink::test {

class Broker {
 public:
  Broker();   // starts it; FAILs the test run when it cannot
  ~Broker();  // kills it and removes its folder
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  // SIGTERM (the broker saves its persistence file) and wait until it is gone.
  void stop();
  // Start again on the same port with the same persistence folder.
  void start();
  bool running() const { return pid_ > 0; }

  // One broker for the whole test binary; tests use their own topics and client ids.
  static Broker& shared();

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace flatlink::test
