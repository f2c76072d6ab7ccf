// Credentials: gateway tokens are kept only as SHA-256 hashes; browser
// passwords as salted PBKDF2-HMAC-SHA256. Comparisons take constant time.
#pragma once

#include <string>
#include <string_view>

namespace flatlink::cloud {

// Lower-case hex SHA-256 of a gateway token.
std::string hash_token(std::string_view token);
// "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>" with a random salt.
std::string hash_password(std::string_view password, unsigned iterations = 100'000);
// True if password matches a hash made by hash_password; false for a malformed hash.
bool verify_password(std::string_view password, std::string_view encoded);
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace flatlink::cloud
