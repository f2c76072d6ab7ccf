// One-time pairing codes and the /pair request: codes, parsing, throttling.
#include "cloud-server/pairing.h"

#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace flatlink::cloud {
namespace {

// 32 symbols, no 0/O or 1/I: read off a screen without doubt. 8 of them: 40 bits.
constexpr std::string_view kAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
static_assert(kAlphabet.size() == 32);
constexpr size_t kCodeLength = 8;

std::string random_bytes(size_t n) {
  std::string raw(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("no random bytes (OpenSSL RAND_bytes failed)");
  }
  return raw;
}

}  // namespace

std::string new_pairing_code() {
  std::string code;
  for (unsigned char b : random_bytes(kCodeLength)) code += kAlphabet[b & 31];  // 256 % 32 == 0: unbiased
  return code.substr(0, 4) + "-" + code.substr(4);
}

std::string normalize_pairing_code(std::string_view code) {
  std::string out;
  for (char c : code) {
    if (c == '-' || c == ' ') continue;
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (kAlphabet.find(c) == std::string_view::npos) return {};
    out += c;
    if (out.size() > kCodeLength) return {};
  }
  return out.size() == kCodeLength ? out : std::string();
}

std::string new_gateway_token() {
  static const char* digits = "0123456789abcdef";
  std::string token;
  for (unsigned char b : random_bytes(32)) {
    token += digits[b >> 4];
    token += digits[b & 15];
  }
  return token;
}

std::optional<PairRequest> parse_pair_request(std::string_view body, std::string& error) {
  if (body.size() > kPairRequestMaxBytes) {
    error = "the request is larger than " + std::to_string(kPairRequestMaxBytes) + " bytes";
    return std::nullopt;
  }
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    error = "the body must be a JSON object {\"code\": \"ABCD-EFGH\"}";
    return std::nullopt;
  }
  const auto code = json.find("code");
  if (code == json.end() || !code->is_string()) {
    error = "code: missing or not a string";
    return std::nullopt;
  }
  PairRequest request;
  request.code = normalize_pairing_code(code->get<std::string>());
  if (request.code.empty()) {
    error = "code: not a pairing code (8 letters and digits, e.g. ABCD-EFGH)";
    return std::nullopt;
  }
  if (const auto name = json.find("name"); name != json.end()) {
    if (!name->is_string() || name->get<std::string>().size() > 64) {
      error = "name: a string of at most 64 bytes";
      return std::nullopt;
    }
    for (char c : name->get<std::string>()) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u >= 0x7f) {
        error = "name: printable ASCII only";
        return std::nullopt;
      }
    }
    request.name = name->get<std::string>();
  }
  return request;
}

void PairThrottle::expire(Count& c, int64_t now_ms) const {
  if (c.failures && now_ms - c.since_ms >= window_ms_) c = {};
}

int64_t PairThrottle::refused_for(const std::string& source, int64_t now_ms) {
  expire(all_, now_ms);
  int64_t wait = all_.failures >= in_all_ ? all_.since_ms + window_ms_ - now_ms : 0;
  if (auto it = sources_.find(source); it != sources_.end()) {
    expire(it->second, now_ms);
    if (it->second.failures == 0) {
      sources_.erase(it);
    } else if (it->second.failures >= per_source_) {
      wait = std::max(wait, it->second.since_ms + window_ms_ - now_ms);
    }
  }
  return wait;
}

void PairThrottle::failed(const std::string& source, int64_t now_ms) {
  const auto count = [&](Count& c) {
    expire(c, now_ms);
    if (c.failures++ == 0) c.since_ms = now_ms;
  };
  count(all_);
  count(sources_[source]);
  if (sources_.size() > 10000) {  // bounded: old entries go first
    for (auto it = sources_.begin(); it != sources_.end();) {
      expire(it->second, now_ms);
      it = it->second.failures == 0 ? sources_.erase(it) : std::next(it);
    }
  }
}

}  // namespace flatlink::cloud
