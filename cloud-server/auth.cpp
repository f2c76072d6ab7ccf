// Token hashes (OpenSSL SHA-256) and password hashes (libargon2's Argon2id; OpenSSL's
// PBKDF2 for hashes made before it).
#include "cloud-server/auth.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <vector>

#include "config/password_hash.h"

namespace flatlink::cloud {
namespace {

constexpr std::string_view kPbkdf2Prefix = "pbkdf2-sha256$";
constexpr size_t kHashBytes = 32;

std::string to_hex(const unsigned char* data, size_t len) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

std::string pbkdf2(std::string_view password, const std::vector<unsigned char>& salt, unsigned iterations) {
  unsigned char out[kHashBytes];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(), static_cast<int>(salt.size()),
                    static_cast<int>(iterations), EVP_sha256(), sizeof out, out);
  return to_hex(out, sizeof out);
}

}  // namespace

std::string hash_token(std::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return to_hex(digest, sizeof digest);
}

std::string hash_password(std::string_view password, const Argon2Params& params) {
  unsigned char salt[16];
  RAND_bytes(salt, sizeof salt);
  std::string encoded(argon2_encodedlen(params.t_cost, params.m_cost_kib, params.parallelism, sizeof salt, kHashBytes,
                                        Argon2_id),
                      '\0');
  const int rc = argon2id_hash_encoded(params.t_cost, params.m_cost_kib, params.parallelism, password.data(),
                                       password.size(), salt, sizeof salt, kHashBytes, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) return {};
  encoded.resize(encoded.find('\0'));
  return encoded;
}

std::string hash_password_pbkdf2(std::string_view password, unsigned iterations) {
  std::vector<unsigned char> salt(16);
  RAND_bytes(salt.data(), static_cast<int>(salt.size()));
  return std::string(kPbkdf2Prefix) + std::to_string(iterations) + "$" + to_hex(salt.data(), salt.size()) + "$" +
         pbkdf2(password, salt, iterations);
}

bool verify_password(std::string_view password, std::string_view encoded) {
  if (config::parse_argon2id_hash(encoded)) {
    const std::string copy(encoded);  // argon2id_verify wants a C string
    return argon2id_verify(copy.c_str(), password.data(), password.size()) == ARGON2_OK;
  }
  const auto parsed = config::parse_pbkdf2_hash(encoded);
  if (!parsed) return false;
  std::vector<unsigned char> salt = parsed->salt;
  return constant_time_equal(pbkdf2(password, salt, parsed->iterations), parsed->hash_hex);
}

bool needs_rehash(std::string_view encoded) {
  const Argon2Params wanted;
  if (const auto a = config::parse_argon2id_hash(encoded)) {
    return a->m_cost_kib < wanted.m_cost_kib || a->t_cost < wanted.t_cost;
  }
  return config::parse_pbkdf2_hash(encoded).has_value();
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace flatlink::cloud
