// backup_command / restore_command (see the header).
#include "gateway/backup_command.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>

#include "common/cli.h"
#include "common/status_socket.h"

namespace flatlink::gateway {

namespace fs = std::filesystem;

namespace {

// SQLite's online backup from `from` into `to` (a new file): a consistent snapshot even
// while flatlinkd writes, the WAL included.
bool sqlite_copy(const std::string& from, const std::string& to, std::string& error) {
  sqlite3* src = nullptr;
  sqlite3* dst = nullptr;
  bool ok = false;
  if (sqlite3_open_v2(from.c_str(), &src, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    error = "cannot open " + from + ": " + sqlite3_errmsg(src);
  } else if (sqlite3_open_v2(to.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    error = "cannot create " + to + ": " + sqlite3_errmsg(dst);
  } else if (sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main")) {
    int rc;
    while ((rc = sqlite3_backup_step(b, 256)) == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      if (rc != SQLITE_OK) sqlite3_sleep(20);
    }
    sqlite3_backup_finish(b);
    ok = rc == SQLITE_DONE;
    if (!ok) error = std::string("backup of ") + from + " failed: " + sqlite3_errstr(rc);
  } else {
    error = std::string("backup of ") + from + " failed: " + sqlite3_errmsg(dst);
  }
  sqlite3_close(src);
  sqlite3_close(dst);
  return ok;
}

bool copy_private(const fs::path& from, const fs::path& to, std::string& error) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    error = "cannot copy " + from.string() + " to " + to.string() + ": " + ec.message();
    return false;
  }
  fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, ec);
  return true;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "flatlinkd: %s\n", what.c_str());
  return cli::kExitFailure;
}

}  // namespace

int backup_command(const config::GatewayConfig& cfg, const std::string& config_path, const std::string& dir) {
  struct stat target {};
  if (::stat(dir.c_str(), &target) != 0 || !S_ISDIR(target.st_mode)) {
    return fail("backup: " + dir + " is not a folder (give one on another disk, e.g. a USB stick)");
  }
  struct stat state {};
  if (::stat(cfg.state_dir.c_str(), &state) == 0 && state.st_dev == target.st_dev) {
    std::fprintf(stderr,
                 "flatlinkd: backup: warning: %s is on the same device as %s: a failing SD card takes the backup "
                 "with it; prefer a folder on another disk\n",
                 dir.c_str(), cfg.state_dir.c_str());
  }
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  const fs::path folder = fs::path(dir) / ("flatlinkd-" + cfg.gateway_id + "-" + stamp);
  if (::mkdir(folder.c_str(), 0700) != 0) return fail("backup: cannot create " + folder.string() + ": " + std::strerror(errno));
  std::string error;
  if (!copy_private(config_path, folder / "gateway.json", error)) return fail("backup: " + error);
  if (!cfg.cloud.token_file.empty() && !copy_private(cfg.cloud.token_file, folder / "gateway-token.txt", error)) {
    return fail("backup: " + error);
  }
  const std::string outbox = cfg.state_dir + "/outbox.db";
  if (fs::exists(outbox)) {
    if (!sqlite_copy(outbox, (folder / "outbox.db").string(), error)) return fail("backup: " + error);
    ::chmod((folder / "outbox.db").c_str(), 0600);
  }
  std::printf("%s\n", folder.c_str());
  return cli::kExitOk;
}

int restore_command(const config::GatewayConfig& cfg, const std::string& config_path, const std::string& folder,
                    const std::string& status_socket) {
  std::string ignored;
  if (!read_status_socket(status_socket, ignored).empty()) {
    return fail("restore: flatlinkd is running (it answers on " + status_socket +
                "); stop it first: systemctl stop flatlinkd");
  }
  const fs::path from(folder);
  if (!fs::exists(from / "gateway.json")) return fail("restore: " + folder + " holds no gateway.json: not a flatlinkd backup");
  struct stat state {};
  const bool have_owner = ::stat(cfg.state_dir.c_str(), &state) == 0;
  std::string error;
  const auto put = [&](const fs::path& src, const std::string& dst, bool owned) {
    if (!fs::exists(src)) return true;
    if (!copy_private(src, dst, error)) return false;
    // The service user must read what it owned before (state) or reads (config group).
    if (have_owner && ::getuid() == 0) {
      if (owned) {
        if (::chown(dst.c_str(), state.st_uid, state.st_gid) != 0) {}
      } else if (::chown(dst.c_str(), 0, state.st_gid) == 0) {
        ::chmod(dst.c_str(), 0640);
      }
    }
    return true;
  };
  const std::string outbox = cfg.state_dir + "/outbox.db";
  if (fs::exists(from / "outbox.db")) {
    std::error_code ec;
    fs::remove(outbox + "-wal", ec);
    fs::remove(outbox + "-shm", ec);
    if (!put(from / "outbox.db", outbox, true)) return fail("restore: " + error);
  }
  if (!put(from / "gateway.json", config_path, false)) return fail("restore: " + error);
  if (!cfg.cloud.token_file.empty() && !put(from / "gateway-token.txt", cfg.cloud.token_file, false)) {
    return fail("restore: " + error);
  }
  std::printf("restored %s: start flatlinkd again (systemctl start flatlinkd)\n", folder.c_str());
  return cli::kExitOk;
}

}  // namespace flatlink::gateway
