// Credentials: token hashes and password hashes.
#include <doctest/doctest.h>

#include "cloud-server/auth.h"

using namespace flatlink::cloud;

TEST_CASE("a token hashes to the hex SHA-256 the config stores") {
  CHECK(hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("a password hash verifies the right password only, and a malformed hash verifies nothing") {
  const std::string hash = hash_password("correct horse", 1000);
  CHECK(hash.rfind("pbkdf2-sha256$1000$", 0) == 0);
  CHECK(verify_password("correct horse", hash));
  CHECK_FALSE(verify_password("correct horsf", hash));
  CHECK_FALSE(verify_password("x", "pbkdf2-sha256$0$00$00"));
  CHECK_FALSE(verify_password("x", "sha1$1$00$00"));
  CHECK_FALSE(verify_password("x", "pbkdf2-sha256$1000$zz$00"));
  CHECK(hash_password("a", 1000) != hash_password("a", 1000));  // salted
}
