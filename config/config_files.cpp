// Files that a configuration refers to: path resolution and bounded, non-blocking reads.
#include "config/config_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace flatlink::config::detail {
namespace {

// Opens for reading without blocking on a FIFO or a device, and checks that it is
// a regular file. Returns the descriptor or -1 with `error` set.
int open_regular(const std::string& path, struct stat& st, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    error = std::strerror(errno);
    return -1;
  }
  if (::fstat(fd, &st) != 0) {
    error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    error = S_ISDIR(st.st_mode) ? "Is a directory" : "Not a regular file";
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::string resolve_path(const std::string& base_dir, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_relative()) p = std::filesystem::path(base_dir.empty() ? "." : base_dir) / p;
  return p.lexically_normal().string();
}

std::string folder_of(const std::string& path) {
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (folder.empty()) folder = ".";
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(folder, ec);
  if (ec) return folder.lexically_normal().string();
  return absolute.lexically_normal().string();
}

bool read_file(const std::string& path, size_t max_bytes, FileRead& out, std::string& error) {
  struct stat st {};
  const int fd = open_regular(path, st, error);
  if (fd < 0) return false;
  out.readable_by_others = (st.st_mode & S_IROTH) != 0;
  out.text.clear();
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    if (out.text.size() + static_cast<size_t>(n) > max_bytes) {
      error = "Larger than " + std::to_string(max_bytes) + " bytes";
      ::close(fd);
      return false;
    }
    out.text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

bool readable_file(const std::string& path, std::string& error) {
  struct stat st {};
  const int fd = open_regular(path, st, error);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace flatlink::config::detail
