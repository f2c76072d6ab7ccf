// Token hashes and password hashes (OpenSSL).
#include "cloud-server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <charconv>
#include <vector>

namespace flatlink::cloud {
namespace {

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

bool from_hex(std::string_view hex, std::vector<unsigned char>& out) {
  if (hex.size() % 2) return false;
  out.clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
    if (ec != std::errc() || p != hex.data() + i + 2) return false;
    out.push_back(static_cast<unsigned char>(v));
  }
  return true;
}

std::string pbkdf2(std::string_view password, const std::vector<unsigned char>& salt, unsigned iterations) {
  unsigned char out[32];
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

std::string hash_password(std::string_view password, unsigned iterations) {
  std::vector<unsigned char> salt(16);
  RAND_bytes(salt.data(), static_cast<int>(salt.size()));
  return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + to_hex(salt.data(), salt.size()) + "$" +
         pbkdf2(password, salt, iterations);
}

bool verify_password(std::string_view password, std::string_view encoded) {
  constexpr std::string_view prefix = "pbkdf2-sha256$";
  if (encoded.substr(0, prefix.size()) != prefix) return false;
  encoded.remove_prefix(prefix.size());
  const size_t a = encoded.find('$');
  if (a == std::string_view::npos) return false;
  const size_t b = encoded.find('$', a + 1);
  if (b == std::string_view::npos) return false;
  unsigned iterations = 0;
  auto [p, ec] = std::from_chars(encoded.data(), encoded.data() + a, iterations);
  if (ec != std::errc() || p != encoded.data() + a || iterations == 0 || iterations > 10'000'000) return false;
  std::vector<unsigned char> salt;
  if (!from_hex(encoded.substr(a + 1, b - a - 1), salt)) return false;
  return constant_time_equal(pbkdf2(password, salt, iterations), encoded.substr(b + 1));
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace flatlink::cloud
