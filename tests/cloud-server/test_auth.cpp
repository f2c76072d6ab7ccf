// Credentials: token hashes and password hashes.
#include <doctest/doctest.h>

#include "cloud-server/auth.h"
#include "config/password_hash.h"

using namespace flatlink::cloud;

TEST_CASE("a token hashes to the hex SHA-256 the config stores") {
  CHECK(hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("hash-password makes Argon2id at the default cost, and it verifies the right password only") {
  const std::string hash = hash_password("correct horse");
  CHECK(hash.rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0) == 0);
  CHECK(flatlink::config::weak_password_hash(hash).empty());
  CHECK(verify_password("correct horse", hash));
  CHECK_FALSE(verify_password("correct horsf", hash));
  CHECK_FALSE(needs_rehash(hash));
  CHECK(hash_password("a", Argon2Params{1, 64, 1}) != hash_password("a", Argon2Params{1, 64, 1}));  // salted
}

TEST_CASE("a legacy PBKDF2 hash still verifies and asks for a rehash; a malformed hash verifies nothing") {
  const std::string hash = hash_password_pbkdf2("correct horse", 1000);
  CHECK(hash.rfind("pbkdf2-sha256$1000$", 0) == 0);
  CHECK(verify_password("correct horse", hash));
  CHECK_FALSE(verify_password("correct horsf", hash));
  CHECK(needs_rehash(hash));
  CHECK(needs_rehash(hash_password("x", Argon2Params{1, 64, 1})));  // cheaper than the default
  CHECK_FALSE(verify_password("x", "pbkdf2-sha256$0$00$00"));
  CHECK_FALSE(verify_password("x", "sha1$1$00$00"));
  CHECK_FALSE(verify_password("x", "pbkdf2-sha256$1000$zz$00"));
  CHECK_FALSE(verify_password("x", "$argon2id$v=19$m=19456,t=2,p=1$bad"));
  CHECK(hash_password_pbkdf2("a", 1000) != hash_password_pbkdf2("a", 1000));  // salted
}
