// The static file handler's decisions (static_files.h).
#include "cloud-server/static_files.h"

#include <cctype>
#include <cstdio>
#include <optional>

namespace flatlink::cloud {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A qvalue (RFC 9110 12.4.2: "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ]): whether it is
// above 0; nullopt when it is not one.
std::optional<bool> q_above_zero(std::string_view q) {
  if (q.empty() || (q[0] != '0' && q[0] != '1')) return std::nullopt;
  if (q.size() > 1 && (q[1] != '.' || q.size() > 5)) return std::nullopt;
  bool nonzero = q[0] == '1';
  for (size_t i = 2; i < q.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(q[i]))) return std::nullopt;
    if (q[i] != '0') {
      if (q[0] == '1') return std::nullopt;  // above 1
      nonzero = true;
    }
  }
  return nonzero;
}

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) {
  std::optional<bool> gzip, any;
  while (!accept_encoding.empty()) {
    const size_t comma = accept_encoding.find(',');
    std::string_view entry = accept_encoding.substr(0, comma);
    accept_encoding = comma == std::string_view::npos ? std::string_view{} : accept_encoding.substr(comma + 1);
    const size_t semi = entry.find(';');
    const std::string_view coding = trim(entry.substr(0, semi));
    std::optional<bool> allowed = true;
    for (std::string_view params = semi == std::string_view::npos ? std::string_view{} : entry.substr(semi + 1);
         !params.empty();) {
      const size_t next = params.find(';');
      const std::string_view param = trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
      const size_t eq = param.find('=');
      if (eq == std::string_view::npos || !iequals(trim(param.substr(0, eq)), "q")) continue;
      allowed = q_above_zero(trim(param.substr(eq + 1)));
    }
    if (!allowed) continue;  // not a q-value: the entry says nothing
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
      gzip = gzip.value_or(false) || *allowed;
    } else if (coding == "*") {
      any = any.value_or(false) || *allowed;
    }
  }
  if (gzip) return *gzip;
  return any.value_or(false);
}

std::string file_etag(const struct stat& st) {
  char text[64];
  const auto mtime_ns = static_cast<unsigned long long>(st.st_mtim.tv_sec) * 1000000000ULL +
                        static_cast<unsigned long long>(st.st_mtim.tv_nsec);
  std::snprintf(text, sizeof text, "\"%llx-%llx\"", static_cast<unsigned long long>(st.st_size), mtime_ns);
  return text;
}

std::string gzip_etag(const struct stat& gz) {
  std::string etag = file_etag(gz);
  etag.insert(etag.size() - 1, "-gzip");
  return etag;
}

const char* extra_media_type(std::string_view path) {
  if (ends_with(path, ".webmanifest")) return "application/manifest+json";
  if (ends_with(path, ".mjs")) return "text/javascript";
  return nullptr;
}

}  // namespace flatlink::cloud
