// Pairing codes (cloud-server/pairing.h) and their store (store/store_pairing.h), on SQLite
// and PostgreSQL: single use, expiry, the flat's token replaced, the throttle's windows.
#include <doctest/doctest.h>

#include <unistd.h>

#include "cloud-server/auth.h"
#include "cloud-server/pairing.h"
#include "cloud-server/store/store_pairing.h"
#include "tests/cloud-server/postgres_fixture.h"

using namespace flatlink::cloud;
using namespace flatlink::cloud::store;

namespace {

void redeem_once(Database& db) {
  db.add_flat("flat-p", "Flat P");
  CHECK_FALSE(add_pairing_code(db, "no-such-flat", hash_token("X"), 2000));
  const std::string code = normalize_pairing_code(new_pairing_code());
  REQUIRE(add_pairing_code(db, "flat-p", hash_token(code), 2000));
  const int64_t version = db.accounts_version();
  CHECK(redeem_pairing_code(db, hash_token("ZZZZZZZZ"), hash_token("t0"), 1000).outcome == PairOutcome::unknown);
  const auto paired = redeem_pairing_code(db, hash_token(code), hash_token("t1"), 1000);
  CHECK(paired.outcome == PairOutcome::paired);
  CHECK(paired.flat == "flat-p");
  CHECK(db.flats()[0].gateway_token_sha256 == hash_token("t1"));
  CHECK(db.accounts_version() > version);
  const auto again = redeem_pairing_code(db, hash_token(code), hash_token("t2"), 1001);
  CHECK(again.outcome == PairOutcome::used);
  CHECK(again.flat.empty());
  CHECK(db.flats()[0].gateway_token_sha256 == hash_token("t1"));  // unchanged by the refusal

  const std::string late = normalize_pairing_code(new_pairing_code());
  REQUIRE(add_pairing_code(db, "flat-p", hash_token(late), 2000));
  CHECK(redeem_pairing_code(db, hash_token(late), hash_token("t3"), 2000).outcome == PairOutcome::expired);
  CHECK(db.flats()[0].gateway_token_sha256 == hash_token("t1"));
}

}  // namespace

TEST_CASE("sqlite: a pairing code pairs once, before its expiry, and replaces the flat's token") {
  char tmpl[] = "/tmp/flatlink-pairing-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  Database db(open_sqlite(dir + "/store.db"));
  db.migrate();
  redeem_once(db);
}

TEST_CASE("postgresql: a pairing code pairs once, before its expiry, and replaces the flat's token") {
  auto& pg = test_support::Postgres::instance();
  if (!pg.available()) {
    MESSAGE(pg.why_not());
    return;
  }
  Database db(open_postgres(pg.fresh_database()));
  db.migrate();
  redeem_once(db);
}

TEST_CASE("pairing codes: 8 symbols without look-alikes; case and dashes do not matter") {
  const std::string code = new_pairing_code();
  REQUIRE(code.size() == 9);
  CHECK(code[4] == '-');
  CHECK(normalize_pairing_code(code).size() == 8);
  CHECK(normalize_pairing_code("abcd-efgh") == "ABCDEFGH");
  CHECK(normalize_pairing_code("ABCD EFGH") == "ABCDEFGH");
  CHECK(normalize_pairing_code("ABCD-EFG0").empty());   // 0 is no symbol
  CHECK(normalize_pairing_code("ABCD-EFGHJ").empty());  // too long
  CHECK(normalize_pairing_code("").empty());
  std::string error;
  CHECK_FALSE(parse_pair_request("{\"code\": 7}", error));
  CHECK(error.find("code") != std::string::npos);
  CHECK_FALSE(parse_pair_request("{\"code\": \"ABCD-EFGH\", \"name\": \"a\\nb\"}", error));
  CHECK_FALSE(parse_pair_request(std::string(2000, ' '), error));
  const auto ok = parse_pair_request("{\"code\": \"abcd-efgh\", \"name\": \"gw-1\"}", error);
  REQUIRE(ok);
  CHECK(ok->code == "ABCDEFGH");
  CHECK(ok->name == "gw-1");
}

TEST_CASE("the pairing throttle refuses a source after its failures until the window ends, and all after many") {
  PairThrottle throttle(3, 5, 1000);
  for (int i = 0; i < 3; ++i) {
    CHECK(throttle.refused_for("a", 0) == 0);
    throttle.failed("a", 0);
  }
  CHECK(throttle.refused_for("a", 100) == 900);
  CHECK(throttle.refused_for("b", 100) == 0);  // another source is not held
  CHECK(throttle.refused_for("a", 1000) == 0);  // the window ended
  throttle.failed("b", 1000);
  throttle.failed("c", 1000);
  throttle.failed("d", 1000);
  throttle.failed("e", 1000);
  throttle.failed("f", 1000);
  CHECK(throttle.refused_for("g", 1500) == 500);  // 5 in all within the window: everyone waits
  CHECK(throttle.refused_for("g", 2000) == 0);
}
