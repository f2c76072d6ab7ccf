// Files that a configuration refers to (token, CA bundle, TLS keys): resolving
// their paths against the config file's folder and reading them safely.
#pragma once

#include <cstddef>
#include <string>

namespace flatlink::config::detail {

// `path` itself when absolute, otherwise `base_dir`/`path`; lexically normalized.
std::string resolve_path(const std::string& base_dir, const std::string& path);

// The folder holding the file at `path`, as an absolute path ("." based when relative).
std::string folder_of(const std::string& path);

struct FileRead {
  std::string text;
  bool readable_by_others = false;  // mode & 0004: any local user may read it
};

// Reads a regular file of at most max_bytes. On failure returns false and sets
// `error` to the reason ("No such file or directory", "not a regular file", ...).
// Never blocks on a FIFO and never throws.
bool read_file(const std::string& path, size_t max_bytes, FileRead& out, std::string& error);

// Whether `path` is a regular file this process can open for reading; `error` as above.
bool readable_file(const std::string& path, std::string& error);

}  // namespace flatlink::config::detail
