// One throwaway PostgreSQL server per test binary (tests/postgres.sh), started on first use
// on a free loopback port and stopped when the binary exits; a fresh database per test.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "cloud-server/store/sql.h"

namespace flatlink::cloud::test_support {

inline uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class Postgres {
 public:
  static Postgres& instance() {
    static Postgres pg;
    return pg;
  }
  bool available() const { return started_; }
  const std::string& why_not() const { return why_; }
  // A connection string to a new, empty database.
  std::string fresh_database() {
    const std::string name = "t" + std::to_string(++databases_);
    auto admin = store::open_postgres(conninfo("postgres"));
    admin->query("CREATE DATABASE " + name);
    return conninfo(name);
  }
  std::string conninfo(const std::string& db) const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=flatlink dbname=" + db + " connect_timeout=5";
  }
  const std::string& dir() const { return dir_; }
  uint16_t port() const { return port_; }

  ~Postgres() {
    if (started_) std::system((script() + " stop " + dir_ + " >/dev/null 2>&1").c_str());
  }

 private:
  Postgres() {
    if (std::system((script() + " available").c_str()) != 0) {
      why_ = "PostgreSQL's server binaries are not installed (apt-get install postgresql): its tests are skipped";
      return;
    }
    char tmpl[] = "/tmp/flatlink-pg-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      why_ = "cannot make a temporary folder";
      return;
    }
    dir_ = tmpl;
    port_ = free_loopback_port();
    const std::string cmd = script() + " start " + dir_ + " " + std::to_string(port_);
    started_ = std::system(cmd.c_str()) == 0;
    if (!started_) why_ = "tests/postgres.sh start failed (see its output above)";
  }
  static std::string script() { return std::string(FLATLINK_SOURCE_DIR) + "/tests/postgres.sh"; }

  bool started_ = false;
  std::string why_;
  std::string dir_;
  uint16_t port_ = 0;
  int databases_ = 0;
};

}  // namespace flatlink::cloud::test_support
