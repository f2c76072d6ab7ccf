// Password hash formats: parsing and the strength rule (config/password_hash.h).
#include "config/password_hash.h"

#include <charconv>

namespace flatlink::config {
namespace {

constexpr std::string_view kPbkdf2Prefix = "pbkdf2-sha256$";
constexpr std::string_view kArgon2Prefix = "$argon2id$v=19$";

bool from_hex(std::string_view hex, std::vector<unsigned char>& out) {
  if (hex.empty() || hex.size() % 2) return false;
  out.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
    if (ec != std::errc() || p != hex.data() + i + 2) return false;
    out.push_back(static_cast<unsigned char>(v));
  }
  return true;
}

// Base64 without padding, as PHC strings write it: the decoded length.
std::optional<size_t> b64_len(std::string_view text) {
  if (text.empty() || text.size() % 4 == 1) return std::nullopt;
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) return std::nullopt;
  }
  return text.size() * 3 / 4;
}

}  // namespace

std::optional<Pbkdf2HashInfo> parse_pbkdf2_hash(std::string_view encoded) {
  if (encoded.substr(0, kPbkdf2Prefix.size()) != kPbkdf2Prefix) return std::nullopt;
  encoded.remove_prefix(kPbkdf2Prefix.size());
  const size_t a = encoded.find('$');
  if (a == std::string_view::npos) return std::nullopt;
  const size_t b = encoded.find('$', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  Pbkdf2HashInfo out;
  auto [p, ec] = std::from_chars(encoded.data(), encoded.data() + a, out.iterations);
  if (ec != std::errc() || p != encoded.data() + a || out.iterations == 0 || out.iterations > 10'000'000) {
    return std::nullopt;
  }
  if (!from_hex(encoded.substr(a + 1, b - a - 1), out.salt)) return std::nullopt;
  out.hash_hex = encoded.substr(b + 1);
  if (out.hash_hex.size() != 64) return std::nullopt;
  for (char c : out.hash_hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return out;
}

std::optional<Argon2HashInfo> parse_argon2id_hash(std::string_view encoded) {
  if (encoded.substr(0, kArgon2Prefix.size()) != kArgon2Prefix) return std::nullopt;
  encoded.remove_prefix(kArgon2Prefix.size());
  Argon2HashInfo out;
  const auto number = [&](std::string_view key, uint32_t& value, char end) {
    if (encoded.substr(0, key.size()) != key) return false;
    encoded.remove_prefix(key.size());
    auto [p, ec] = std::from_chars(encoded.data(), encoded.data() + encoded.size(), value);
    if (ec != std::errc() || p == encoded.data() + encoded.size() || *p != end) return false;
    encoded.remove_prefix(static_cast<size_t>(p - encoded.data()) + 1);
    return true;
  };
  if (!number("m=", out.m_cost_kib, ',') || !number("t=", out.t_cost, ',') || !number("p=", out.parallelism, '$')) {
    return std::nullopt;
  }
  // Also bounds what one check may cost: a config cannot ask for 4 TiB or a thousand passes.
  if (out.t_cost == 0 || out.t_cost > 100 || out.parallelism == 0 || out.parallelism > 16 ||
      out.m_cost_kib < 8 * out.parallelism || out.m_cost_kib > 1024 * 1024) {
    return std::nullopt;
  }
  const size_t dollar = encoded.find('$');
  if (dollar == std::string_view::npos) return std::nullopt;
  const auto salt = b64_len(encoded.substr(0, dollar));
  const auto hash = b64_len(encoded.substr(dollar + 1));
  if (!salt || !hash || *hash < 16 || *hash > 64) return std::nullopt;
  out.salt_bytes = *salt;
  return out;
}

std::string weak_password_hash(std::string_view encoded) {
  if (const auto a = parse_argon2id_hash(encoded)) {
    if (a->m_cost_kib < kMinArgon2MemoryKib || a->t_cost < kMinArgon2Passes) {
      return "Argon2id with m=" + std::to_string(a->m_cost_kib) + " KiB, t=" + std::to_string(a->t_cost) +
             " is too weak (at least m=" + std::to_string(kMinArgon2MemoryKib) + ", t=" +
             std::to_string(kMinArgon2Passes) + "; make a hash with `flatlink-cloud hash-password`)";
    }
    if (a->salt_bytes < kMinSaltBytes) return "the salt is shorter than 16 bytes (make a hash with `flatlink-cloud hash-password`)";
    return {};
  }
  if (const auto p = parse_pbkdf2_hash(encoded)) {
    if (p->iterations < kMinPbkdf2Iterations) {
      return "PBKDF2 with " + std::to_string(p->iterations) + " iterations is too weak (at least " +
             std::to_string(kMinPbkdf2Iterations) + "; better, Argon2id from `flatlink-cloud hash-password`)";
    }
    if (p->salt.size() < kMinSaltBytes) return "the salt is shorter than 16 bytes (make a hash with `flatlink-cloud hash-password`)";
    return {};
  }
  return "expected \"$argon2id$v=19$m=<kib>,t=<passes>,p=<lanes>$<salt>$<hash>\" (from `flatlink-cloud "
         "hash-password`) or a legacy \"pbkdf2-sha256$<iterations>$<salt-hex>$<sha256-hex>\"";
}

}  // namespace flatlink::config
