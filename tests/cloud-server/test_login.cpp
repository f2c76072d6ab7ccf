// Login and admission alone: the config's accounts, and password checks off the loop whose
// verdict comes back on it, and is dropped for a browser that left; old hashes rehashed at a
// good login.
#include <doctest/doctest.h>

#include <vector>

#include "cloud-server/auth.h"
#include "cloud-server/login.h"
#include "cloud-server/store/store_accounts.h"
#include "common/clock.h"
#include "tests/cloud-server/fake_peer.h"
#include "tests/run_until.h"

using namespace flatlink;
using namespace flatlink::cloud;
using flatlink::cloud::test_support::FakePeer;

namespace {

config::CloudConfig one_flat() {
  config::CloudConfig c;
  config::FlatConfig f;
  f.id = "flat-a";
  f.name = "A";
  f.gateway_token_sha256 = hash_token("token-a");
  f.users.push_back({"anna", hash_password("pw-anna", Argon2Params{1, 64, 1})});
  c.flats.push_back(f);
  return c;
}

struct Verdicts {
  std::vector<std::pair<Peer*, bool>> got;
  LoginGate::Verdict verdict() {
    return [this](Peer& peer, bool ok) { got.emplace_back(&peer, ok); };
  }
};

}  // namespace

TEST_CASE("config accounts: a gateway token names its flat, a user has the config's password hash; a reload reads them again") {
  config::CloudConfig config = one_flat();
  ConfigAccounts accounts(config.flats);
  CHECK(accounts.flat_for_token("token-a") == std::optional<std::string>("flat-a"));
  CHECK_FALSE(accounts.flat_for_token("token-b"));
  CHECK_FALSE(accounts.flat_for_token(""));
  REQUIRE(accounts.password_hash("flat-a", "anna"));
  CHECK(verify_password("pw-anna", *accounts.password_hash("flat-a", "anna")));
  CHECK_FALSE(accounts.password_hash("flat-a", "bob"));
  CHECK_FALSE(accounts.password_hash("flat-b", "anna"));

  config.flats[0].gateway_token_sha256 = hash_token("token-new");
  CHECK(accounts.flat_for_token("token-a"));  // until the reload
  accounts.reload();
  CHECK_FALSE(accounts.flat_for_token("token-a"));
  CHECK(accounts.flat_for_token("token-new") == std::optional<std::string>("flat-a"));
}

TEST_CASE("a login's verdict comes back on the loop: right password ok, wrong password, unknown user or flat refused") {
  config::CloudConfig config = one_flat();
  ConfigAccounts accounts(config.flats);
  EventLoop loop{{}};
  Verdicts v;
  {
    ManualClock clock;
    Metrics metrics;
    LoginGate gate(accounts, loop, config, clock, metrics);
    FakePeer good("good"), wrong("wrong"), nobody("nobody"), elsewhere("elsewhere");
    CHECK(gate.check(good, proto::Login{"flat-a", "anna", "pw-anna"}, v.verdict()));
    CHECK(gate.check(wrong, proto::Login{"flat-a", "anna", "pw-bob"}, v.verdict()));
    CHECK(gate.check(nobody, proto::Login{"flat-a", "bob", "pw-anna"}, v.verdict()));
    CHECK(gate.check(elsewhere, proto::Login{"flat-b", "anna", "pw-anna"}, v.verdict()));
    CHECK(v.got.empty());  // never on the caller's stack
    testing::run_until(loop, [&] { return v.got.size() == 4; });
    REQUIRE(v.got.size() == 4);
    for (const auto& [peer, ok] : v.got) CHECK(ok == (peer == &good));
  }
}

TEST_CASE("a browser that left before its check ended gets no verdict; one asking again gets only the last") {
  config::CloudConfig config = one_flat();
  ConfigAccounts accounts(config.flats);
  EventLoop loop{{}};
  Verdicts v;
  ManualClock clock;
    Metrics metrics;
    LoginGate gate(accounts, loop, config, clock, metrics);
  FakePeer gone("gone"), again("again");
  REQUIRE(gate.check(gone, proto::Login{"flat-a", "anna", "pw-anna"}, v.verdict()));
  gate.forget(gone);
  REQUIRE(gate.check(again, proto::Login{"flat-a", "anna", "wrong"}, v.verdict()));
  REQUIRE(gate.check(again, proto::Login{"flat-a", "anna", "pw-anna"}, v.verdict()));
  testing::run_until(loop, [&] { return gate.waiting() == 0 && !v.got.empty(); });
  bool drained = false;
  Timer drain(loop, [&] { drained = true; });
  drain.start(10);
  testing::run_until(loop, [&] { return drained; });  // what the checks posted has run
  REQUIRE(v.got.size() == 1);
  CHECK(v.got[0].first == &again);
  CHECK(v.got[0].second);
}

TEST_CASE("a good login with an old hash hands the Argon2id hash of its password to the rehash; a wrong password or a current hash does not") {
  config::CloudConfig config = one_flat();
  const std::string legacy = hash_password_pbkdf2("pw-anna", 1000);
  const std::string current = hash_password("pw-ben");
  config.flats[0].users = {{"anna", legacy}, {"ben", current}};
  ConfigAccounts accounts(config.flats);
  EventLoop loop{{}};
  Verdicts v;
  ManualClock clock;
  Metrics metrics;
  LoginGate gate(accounts, loop, config, clock, metrics);
  struct Rehashed {
    std::string flat, user, old_hash, fresh;
  };
  std::vector<Rehashed> rehashed;
  gate.on_rehash([&](const std::string& flat, const std::string& user, const std::string& old_hash,
                     const std::string& fresh) { rehashed.push_back({flat, user, old_hash, fresh}); });
  FakePeer wrong("wrong"), good("good"), ben("ben");
  REQUIRE(gate.check(wrong, proto::Login{"flat-a", "anna", "pw-bob"}, v.verdict()));
  testing::run_until(loop, [&] { return v.got.size() == 1; });
  CHECK(rehashed.empty());
  REQUIRE(gate.check(ben, proto::Login{"flat-a", "ben", "pw-ben"}, v.verdict()));
  REQUIRE(gate.check(good, proto::Login{"flat-a", "anna", "pw-anna"}, v.verdict()));
  testing::run_until(loop, [&] { return v.got.size() == 3; });
  REQUIRE(v.got.size() == 3);
  CHECK(v.got[1].second);
  CHECK(v.got[2].second);
  REQUIRE(rehashed.size() == 1);  // before the verdict, on the loop
  CHECK(rehashed[0].flat == "flat-a");
  CHECK(rehashed[0].user == "anna");
  CHECK(rehashed[0].old_hash == legacy);
  CHECK(rehashed[0].fresh.rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0) == 0);
  CHECK(verify_password("pw-anna", rehashed[0].fresh));
  CHECK_FALSE(needs_rehash(rehashed[0].fresh));
}

TEST_CASE("the store's accounts take a rehashed password at once: the snapshot that brings it changes no flat's users") {
  std::vector<config::FlatConfig> flats;
  store::StoreAccounts accounts(flats);
  store::AccountsSnapshot snap;
  snap.version = 1;
  snap.flats = {{"flat-a", "A", hash_token("ta")}, {"flat-b", "B", hash_token("tb")}};
  snap.users = {{"anna", "old-hash"}, {"ben", "hash-b"}};
  snap.members = {{"flat-a", "anna", store::Role::owner}, {"flat-b", "anna", store::Role::member},
                  {"flat-b", "ben", store::Role::owner}};
  accounts.replace(snap, 0);

  accounts.password_rehashed("anna", "another-hash", "x");  // changed meanwhile: nothing
  CHECK(accounts.password_hash("flat-a", "anna") == std::optional<std::string>("old-hash"));
  accounts.password_rehashed("anna", "old-hash", "new-hash");
  CHECK(accounts.password_hash("flat-a", "anna") == std::optional<std::string>("new-hash"));
  CHECK(accounts.password_hash("flat-b", "anna") == std::optional<std::string>("new-hash"));
  CHECK(accounts.password_hash("flat-b", "ben") == std::optional<std::string>("hash-b"));

  snap.version = 2;
  snap.users[0].password_hash = "new-hash";
  const std::vector<config::FlatConfig> before = accounts.replace(snap, 0);
  REQUIRE(before.size() == flats.size());
  for (size_t i = 0; i < flats.size(); ++i) {
    REQUIRE(before[i].users.size() == flats[i].users.size());
    for (size_t j = 0; j < flats[i].users.size(); ++j) {
      CHECK(before[i].users[j].name == flats[i].users[j].name);
      CHECK(before[i].users[j].password_hash == flats[i].users[j].password_hash);
    }
  }
}
