// The two password hash formats the cloud accepts, read without checking a
// password: Argon2id PHC strings and the legacy PBKDF2-SHA256 form. Shared by the
// config loader (which refuses malformed and weak hashes) and cloud-server/auth.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flatlink::config {

struct Argon2HashInfo {
  uint32_t m_cost_kib = 0;
  uint32_t t_cost = 0;
  uint32_t parallelism = 0;
  size_t salt_bytes = 0;
};
struct Pbkdf2HashInfo {
  unsigned iterations = 0;
  std::vector<unsigned char> salt;
  std::string_view hash_hex;  // into the parsed text
};

// The weakest parameters accepted: OWASP's Argon2id m=19 MiB, t=2; PBKDF2 as the
// earlier hash-password made it (100,000 iterations, 16-byte salt), rehashed at the next login.
inline constexpr uint32_t kMinArgon2MemoryKib = 19'456;
inline constexpr uint32_t kMinArgon2Passes = 2;
inline constexpr unsigned kMinPbkdf2Iterations = 100'000;
inline constexpr size_t kMinSaltBytes = 16;

// "$argon2id$v=19$m=<kib>,t=<passes>,p=<lanes>$<salt b64>$<hash b64>"
std::optional<Argon2HashInfo> parse_argon2id_hash(std::string_view encoded);
// "pbkdf2-sha256$<iterations>$<salt hex>$<sha256 hex>"
std::optional<Pbkdf2HashInfo> parse_pbkdf2_hash(std::string_view encoded);
// Empty when well formed and strong enough; else why the hash is refused.
std::string weak_password_hash(std::string_view encoded);

}  // namespace flatlink::config
