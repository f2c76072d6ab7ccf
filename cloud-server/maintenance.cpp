// `flatlink-cloud status`, `backup DIR` and `restore FOLDER` (docs/operations.md, "Backups").
// Command line only, blocking, outside the running server (so off its loop by nature).
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cloud-server/admin.h"
#include "cloud-server/store/store.h"

namespace flatlink::cloud {
namespace {

namespace fs = std::filesystem;

// A TCP connection to host:port (loopback listeners: 2 s bound), or -1.
int connect_to(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string h = host.empty() || host == "0.0.0.0" ? "127.0.0.1" : (host == "::" ? "::1" : host);
  if (getaddrinfo(h.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval timeout{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  return fd;
}

bool accepts(const std::string& host, uint16_t port) {
  const int fd = connect_to(host, port);
  if (fd >= 0) close(fd);
  return fd >= 0;
}

// GET path over plain HTTP (the metrics listener); the body, or "" without an answer.
std::string http_get(const std::string& host, uint16_t port, const std::string& path) {
  const int fd = connect_to(host, port);
  if (fd < 0) return {};
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  std::string raw;
  if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0 && raw.size() < (1u << 20);) raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const auto at = raw.find("\r\n\r\n");
  return raw.rfind("HTTP/1.1 200", 0) == 0 && at != std::string::npos ? raw.substr(at + 4) : std::string();
}

std::string metric(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + " ", 0) == 0) return line.substr(name.size() + 1);
  }
  return "?";
}

bool copy_file(const fs::path& from, const fs::path& to, std::ostream& err) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) err << "flatlink-cloud: cannot copy " << from << " to " << to << ": " << ec.message() << "\n";
  return !ec;
}

}  // namespace

int run_status(const config::CloudConfig& config, std::ostream& out, std::ostream& err) {
  const bool up = accepts(config.listen_address, config.port);
  out << "flatlink-cloud on " << config.listen_address << ":" << config.port << " ("
      << (config.tls.cert_file.empty() ? "plain" : "TLS") << "): " << (up ? "accepting connections" : "not running")
      << "\n";
  if (config.metrics.port) {
    const std::string text = http_get(config.metrics.listen_address, config.metrics.port, "/metrics");
    out << "metrics on " << config.metrics.listen_address << ":" << config.metrics.port << ": "
        << (text.empty() ? "no answer" : "answering") << "\n";
    if (!text.empty()) {
      out << "links: " << metric(text, "flatlink_links{kind=\"gateway\"}") << " gateways, "
          << metric(text, "flatlink_links{kind=\"browser\"}") << " browsers; statuses "
          << metric(text, "flatlink_statuses_total") << ", lost (gateways report) "
          << metric(text, "flatlink_gateway_lost_statuses") << "\n";
    }
  }
  if (config.store.enabled) {
    try {
      auto db = store::open_database(config.store);
      const auto flats = db->flats();
      size_t gateways = 0;
      for (const auto& f : flats) gateways += f.gateway_token_sha256.empty() ? 0 : 1;
      out << "store: " << db->engine() << " " << (config.store.engine == "sqlite" ? config.store.path : config.store.url)
          << ", schema version " << db->schema_version() << " of " << store::Database::latest_version() << ", "
          << flats.size() << " flats, " << gateways << " with a gateway token\n";
    } catch (const store::StoreError& e) {
      out << "store: unreachable: " << e.what() << "\n";
      return 1;
    }
  } else {
    out << "store: none (flats from the config: " << config.flats.size() << ")\n";
  }
  if (!up) err << "flatlink-cloud is not running: systemctl status flatlink-cloud\n";
  return up ? 0 : 1;
}

int run_backup(const config::CloudConfig& config, const std::string& config_path, const std::string& dir,
               std::ostream& out, std::ostream& err) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  const fs::path folder = fs::path(dir) / (std::string("flatlink-cloud-") + stamp);
  if (::mkdir(folder.c_str(), 0700) != 0) {
    err << "flatlink-cloud: backup: cannot make " << folder << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  if (!copy_file(config_path, folder / "cloud.json", err)) return 1;
  if (config.store.enabled && config.store.engine == "sqlite") {
    try {
      // VACUUM INTO: a consistent copy while the cloud runs and writes (WAL included).
      auto db = store::open_database(config.store);
      db->connection().query("VACUUM INTO ?", {(folder / "cloud.db").string()});
    } catch (const store::StoreError& e) {
      err << "flatlink-cloud: backup: the store: " << e.what() << "\n";
      return 1;
    }
  } else if (config.store.enabled) {
    err << "flatlink-cloud: backup: PostgreSQL is backed up with pg_dump -Fc (docs/operations.md, \"Backups\"); "
           "only the config was copied\n";
  }
  out << folder.string() << "\n";
  return 0;
}

int run_restore(const config::CloudConfig& config, const std::string& config_path, const std::string& folder,
                std::ostream& out, std::ostream& err) {
  if (accepts(config.listen_address, config.port)) {
    err << "flatlink-cloud: restore: the cloud is running on port " << config.port
        << ": stop it first (systemctl stop flatlink-cloud)\n";
    return 1;
  }
  const fs::path from(folder);
  if (!fs::exists(from / "cloud.json")) {
    err << "flatlink-cloud: restore: " << from << " holds no cloud.json: not a backup folder\n";
    return 1;
  }
  if (fs::exists(from / "cloud.db")) {
    if (!config.store.enabled || config.store.engine != "sqlite") {
      err << "flatlink-cloud: restore: the backup holds a SQLite store but the config names none\n";
      return 1;
    }
    const fs::path target(config.store.path);
    const fs::path tmp = target.string() + ".restore-new";
    struct stat before {};
    const bool existed = ::stat(target.c_str(), &before) == 0;
    if (!copy_file(from / "cloud.db", tmp, err)) return 1;
    if (existed && (::chown(tmp.c_str(), before.st_uid, before.st_gid) != 0 || ::chmod(tmp.c_str(), before.st_mode & 07777) != 0)) {
      err << "flatlink-cloud: restore: cannot keep the owner of " << target << "\n";
    }
    std::error_code ec;
    fs::remove(target.string() + "-wal", ec);
    fs::remove(target.string() + "-shm", ec);
    fs::rename(tmp, target, ec);
    if (ec) {
      err << "flatlink-cloud: restore: " << ec.message() << "\n";
      return 1;
    }
  }
  struct stat cfg {};
  const bool had = ::stat(config_path.c_str(), &cfg) == 0;
  if (!copy_file(from / "cloud.json", config_path, err)) return 1;
  if (had) {
    (void)::chown(config_path.c_str(), cfg.st_uid, cfg.st_gid);
    (void)::chmod(config_path.c_str(), cfg.st_mode & 07777);
  }
  out << "restored " << from.string() << ": start the cloud again (systemctl start flatlink-cloud)\n";
  return 0;
}

}  // namespace flatlink::cloud
