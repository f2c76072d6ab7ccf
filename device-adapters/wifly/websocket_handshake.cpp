// WebSocket upgrade parsing and the hixie-75/76 answers.
#include "device-adapters/wifly/websocket_handshake.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <vector>

namespace flatlink::adapters::wifly {
namespace {

constexpr std::string_view kGet = "GET ";
constexpr size_t kHixie76KeyBytes = 8;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u != 0x7f;
  });
}

struct Header {
  std::string_view name;
  std::string_view value;
};

UpgradeParse fail(std::string why) {
  UpgradeParse result;
  result.status = UpgradeParse::Status::error;
  result.error = std::move(why);
  return result;
}

}  // namespace

Opening sniff_opening(std::string_view first) {
  const size_t n = std::min(first.size(), kGet.size());
  if (first.substr(0, n) != kGet.substr(0, n)) return Opening::plain;
  return n == kGet.size() ? Opening::http : Opening::need_more;
}

std::string_view to_string(WsVersion version) {
  switch (version) {
    case WsVersion::hixie75: return "hixie-75";
    case WsVersion::hixie76: return "hixie-76";
    case WsVersion::rfc6455: return "RFC 6455";
  }
  return "?";
}

UpgradeParse parse_upgrade(std::string_view data, size_t max_bytes) {
  const size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (data.size() >= max_bytes) return fail("request headers longer than " + std::to_string(max_bytes) + " bytes");
    return UpgradeParse{};
  }
  const size_t head_bytes = end + 4;
  if (head_bytes > max_bytes) return fail("request headers longer than " + std::to_string(max_bytes) + " bytes");

  std::string_view head = data.substr(0, end);
  const size_t first_eol = head.find("\r\n");
  const std::string_view request_line = head.substr(0, first_eol);
  head = first_eol == std::string_view::npos ? std::string_view{} : head.substr(first_eol + 2);

  // GET <path> HTTP/1.1
  if (request_line.substr(0, kGet.size()) != kGet) return fail("not a GET request");
  const std::string_view rest = request_line.substr(kGet.size());
  const size_t sp = rest.find(' ');
  if (sp == std::string_view::npos || rest.substr(sp + 1) != "HTTP/1.1") {
    return fail("request line is not \"GET <path> HTTP/1.1\"");
  }
  const std::string_view path = rest.substr(0, sp);
  if (path.empty() || path[0] != '/' || !printable(path) || path.find(' ') != std::string_view::npos) {
    return fail("bad request path");
  }

  std::vector<Header> headers;
  while (!head.empty()) {
    const size_t eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line[0] == ' ' || line[0] == '\t') {
      return fail("malformed header line");
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    // Keys keep their spaces (hixie-76 counts them): only the one after the colon is syntax.
    std::string_view raw_value = line.substr(colon + 1);
    if (!raw_value.empty() && raw_value.front() == ' ') raw_value.remove_prefix(1);
    if (!printable(line)) return fail("control characters in a header");
    for (const Header& h : headers) {
      if (iequals(h.name, name)) return fail("header " + std::string(name) + " appears twice");
    }
    const bool is_key = iequals(name, "Sec-WebSocket-Key1") || iequals(name, "Sec-WebSocket-Key2");
    headers.push_back(Header{name, is_key ? raw_value : value});
  }
  auto get = [&](std::string_view name) -> std::optional<std::string_view> {
    for (const Header& h : headers) {
      if (iequals(h.name, name)) return h.value;
    }
    return std::nullopt;
  };

  UpgradeParse result;
  UpgradeRequest& req = result.request;
  req.path = std::string(path);
  const auto upgrade = get("Upgrade");
  const auto connection = get("Connection");
  if (!upgrade || !iequals(*upgrade, "websocket")) return fail("not a WebSocket upgrade (Upgrade: websocket missing)");
  if (!connection || !has_token(*connection, "upgrade")) return fail("Connection: Upgrade missing");
  const auto host = get("Host");
  if (!host || host->empty()) return fail("Host header missing");
  req.host = std::string(*host);
  if (const auto origin = get("Origin")) req.origin = std::string(*origin);

  const auto key = get("Sec-WebSocket-Key");
  const auto key1 = get("Sec-WebSocket-Key1");
  const auto key2 = get("Sec-WebSocket-Key2");
  if (key) {
    if (key1 || key2) return fail("both RFC 6455 and hixie-76 keys");
    req.version = WsVersion::rfc6455;
    req.consumed = head_bytes;
  } else if (key1 || key2) {
    if (!key1 || !key2) return fail("hixie-76 request without both Sec-WebSocket-Key1 and Key2");
    req.version = WsVersion::hixie76;
    req.key1 = std::string(*key1);
    req.key2 = std::string(*key2);
    if (const auto protocol = get("Sec-WebSocket-Protocol")) req.protocol = std::string(*protocol);
    if (head_bytes + kHixie76KeyBytes > max_bytes) {
      return fail("request longer than " + std::to_string(max_bytes) + " bytes");
    }
    if (data.size() < head_bytes + kHixie76KeyBytes) return UpgradeParse{};  // the 8-byte key is on its way
    req.key3 = std::string(data.substr(head_bytes, kHixie76KeyBytes));
    req.consumed = head_bytes + kHixie76KeyBytes;
    if (!hixie76_key_number(req.key1)) return fail("Sec-WebSocket-Key1 is invalid (its number is not divisible by its spaces)");
    if (!hixie76_key_number(req.key2)) return fail("Sec-WebSocket-Key2 is invalid (its number is not divisible by its spaces)");
  } else {
    req.version = WsVersion::hixie75;
    if (const auto protocol = get("WebSocket-Protocol")) req.protocol = std::string(*protocol);
    req.consumed = head_bytes;
  }
  result.status = UpgradeParse::Status::ok;
  return result;
}

std::optional<uint32_t> hixie76_key_number(std::string_view key) {
  uint64_t number = 0;
  uint64_t spaces = 0;
  bool any_digit = false;
  for (char c : key) {
    if (c >= '0' && c <= '9') {
      any_digit = true;
      number = number * 10 + static_cast<uint64_t>(c - '0');
      // Ten digits already exceed what 32 bits times the spaces could give.
      if (number > std::numeric_limits<uint32_t>::max() * uint64_t{12}) return std::nullopt;
    } else if (c == ' ') {
      ++spaces;
    }
  }
  if (!any_digit || spaces == 0 || number % spaces != 0) return std::nullopt;
  const uint64_t quotient = number / spaces;
  if (quotient > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  return static_cast<uint32_t>(quotient);
}

std::optional<std::array<unsigned char, 16>> hixie76_answer(std::string_view key1, std::string_view key2,
                                                            std::string_view key3) {
  const auto n1 = hixie76_key_number(key1);
  const auto n2 = hixie76_key_number(key2);
  if (!n1 || !n2 || key3.size() != kHixie76KeyBytes) return std::nullopt;
  unsigned char challenge[16];
  for (int i = 0; i < 4; ++i) {
    challenge[i] = static_cast<unsigned char>(*n1 >> (24 - 8 * i));
    challenge[4 + i] = static_cast<unsigned char>(*n2 >> (24 - 8 * i));
  }
  std::copy(key3.begin(), key3.end(), challenge + 8);
  std::array<unsigned char, 16> digest{};
  unsigned int length = 0;
  if (EVP_Digest(challenge, sizeof challenge, digest.data(), &length, EVP_md5(), nullptr) != 1 || length != 16) {
    return std::nullopt;
  }
  return digest;
}

std::string hixie75_response(const UpgradeRequest& request) {
  std::string out =
      "HTTP/1.1 101 Web Socket Protocol Handshake\r\n"
      "Upgrade: WebSocket\r\n"
      "Connection: Upgrade\r\n";
  if (!request.origin.empty()) out += "WebSocket-Origin: " + request.origin + "\r\n";
  out += "WebSocket-Location: ws://" + request.host + request.path + "\r\n";
  if (!request.protocol.empty()) out += "WebSocket-Protocol: " + request.protocol + "\r\n";
  out += "\r\n";
  return out;
}

std::string hixie76_response(const UpgradeRequest& request, const std::array<unsigned char, 16>& answer) {
  std::string out =
      "HTTP/1.1 101 WebSocket Protocol Handshake\r\n"
      "Upgrade: WebSocket\r\n"
      "Connection: Upgrade\r\n";
  out += "Sec-WebSocket-Origin: " + (request.origin.empty() ? std::string("null") : request.origin) + "\r\n";
  out += "Sec-WebSocket-Location: ws://" + request.host + request.path + "\r\n";
  if (!request.protocol.empty()) out += "Sec-WebSocket-Protocol: " + request.protocol + "\r\n";
  out += "\r\n";
  out.append(reinterpret_cast<const char*>(answer.data()), answer.size());
  return out;
}

std::string http_error_response(int status, std::string_view reason) {
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
         "\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
}

}  // namespace flatlink::adapters::wifly
