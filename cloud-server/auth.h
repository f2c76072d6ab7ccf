// Credentials: gateway tokens are kept only as SHA-256 hashes; browser passwords
// as Argon2id (libargon2; OWASP's first choice). Older salted PBKDF2-HMAC-SHA256
// hashes still verify, and say that they want a rehash. Comparisons take
// constant time. Thread-safe: password checks run on the server's worker pool.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flatlink::cloud {

// Lower-case hex SHA-256 of a gateway token.
std::string hash_token(std::string_view token);

// Argon2id cost: ~60 ms and 19 MiB per check on this project's reference machine
// (OWASP's m=19 MiB, t=2, p=1 variant; docs/operations.md, "Security").
struct Argon2Params {
  uint32_t t_cost = 2;          // passes
  uint32_t m_cost_kib = 19'456;  // memory
  uint32_t parallelism = 1;
};
// "$argon2id$v=19$m=…,t=…,p=…$<salt b64>$<hash b64>" (PHC string) with a random 16-byte salt.
std::string hash_password(std::string_view password, const Argon2Params& params = {});
// The legacy format: "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>". Tests and migration only.
std::string hash_password_pbkdf2(std::string_view password, unsigned iterations = 600'000);

// True if password matches a hash of either kind; false for a malformed hash.
bool verify_password(std::string_view password, std::string_view encoded);
// The config loader refuses malformed and weak hashes: config::weak_password_hash.
// True for a well-formed hash that is not Argon2id with at least the default
// parameters: LoginGate rehashes it at the next good login (login.h).
bool needs_rehash(std::string_view encoded);
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace flatlink::cloud
