// Notification webhooks: the URL check (cloud-server/webhooks.h), the signature, a lock's
// unlocked state, the `webhook` message's decoding, and the store's rows (store_webhooks.h) on
// SQLite and PostgreSQL.
#include <doctest/doctest.h>

#include <unistd.h>

#include "cloud-link/protocol.h"
#include "cloud-server/store/store_webhooks.h"
#include "cloud-server/webhooks.h"
#include "tests/cloud-server/postgres_fixture.h"

using namespace flatlink;
using namespace flatlink::cloud;
using namespace flatlink::cloud::store;

TEST_CASE("a webhook URL is http or https with a host; anything else is refused naming why") {
  std::string why;
  auto url = parse_webhook_url("https://ntfy.example/flat-a?x=1", why);
  REQUIRE(url);
  CHECK(url->tls);
  CHECK(url->host == "ntfy.example");
  CHECK(url->port == 443);
  CHECK(url->path == "/flat-a?x=1");
  url = parse_webhook_url("HTTP://127.0.0.1:8123", why);
  REQUIRE(url);
  CHECK_FALSE(url->tls);
  CHECK(url->port == 8123);
  CHECK(url->path == "/");
  url = parse_webhook_url("http://[::1]:9000/api/webhook/x", why);
  REQUIRE(url);
  CHECK(url->host == "::1");
  CHECK(url->port == 9000);
  url = parse_webhook_url("http://hass.local?token=a", why);
  REQUIRE(url);
  CHECK(url->path == "/?token=a");
  const std::pair<const char*, const char*> refused[] = {
      {"ftp://example.org/x", "only http:// and https://"},
      {"file:///etc/passwd", "only http:// and https://"},
      {"javascript:alert(1)", "only http:// and https://"},
      {"example.org/hook", "only http:// and https://"},
      {"http://user:pw@example.org/", "user info"},
      {"http:///nohost", "no host"},
      {"http://example.org:0/", "port"},
      {"http://example.org:70000/", "port"},
      {"http://example.org:80x/", "port"},
      {"http://exa mple.org/", "space"},
      {"http://example.org/a#frag", "fragment"},
      {"http://ex%61mple.org/", "host has a character"},
      {"http://[::1/", "closing ]"},
  };
  for (const auto& entry : refused) {
    const char* text = entry.first;
    const char* expected = entry.second;
    CAPTURE(text);
    why.clear();
    CHECK_FALSE(parse_webhook_url(text, why));
    CHECK(why.find(expected) != std::string::npos);
  }
  CHECK_FALSE(parse_webhook_url("http://example.org/" + std::string(1020, 'a'), why));
}

TEST_CASE("the signature is the hex HMAC-SHA256 of the body; a new secret is 64 hex digits") {
  // RFC 4231, test case 2.
  CHECK(webhook_signature("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string a = new_webhook_secret();
  CHECK(a.size() == 64);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(a != new_webhook_secret());
}

TEST_CASE("a lock's state says unlocked by lock: \"unlocked\" or locked: false") {
  CHECK(lock_unlocked(Json{{"lock", "unlocked"}}) == true);
  CHECK(lock_unlocked(Json{{"lock", "locked"}}) == false);
  CHECK(lock_unlocked(Json{{"locked", false}}) == true);
  CHECK(lock_unlocked(Json{{"locked", true}}) == false);
  CHECK_FALSE(lock_unlocked(Json{{"on", true}}).has_value());
  CHECK_FALSE(lock_unlocked(Json{{"lock", "jammed"}}).has_value());
}

TEST_CASE("the webhook message: get, set with url and events, clear; strict about the rest") {
  auto ok = proto::decode_from_browser(R"({"type":"webhook","action":"set","url":"https://a.example/x","events":["door_unlocked"]})");
  REQUIRE(std::holds_alternative<proto::BrowserToCloud>(ok));
  const auto& set = std::get<proto::WebhookRequest>(std::get<proto::BrowserToCloud>(ok));
  CHECK(set.action == "set");
  CHECK(set.events == std::vector<std::string>{"door_unlocked"});
  CHECK(proto::encode(set) == R"({"action":"set","events":["door_unlocked"],"type":"webhook","url":"https://a.example/x"})");
  CHECK(std::holds_alternative<proto::BrowserToCloud>(proto::decode_from_browser(R"({"type":"webhook","action":"get"})")));
  const char* refused[] = {
      R"({"type":"webhook","action":"delete"})",
      R"({"type":"webhook","action":"get","url":"http://a/"})",
      R"({"type":"webhook","action":"set","events":[]})",
      R"({"type":"webhook","action":"set","url":"http://a/","events":["door_opened"]})",
      R"({"type":"webhook","action":"set","url":"http://a/","events":["door_unlocked","door_unlocked"]})",
      R"({"type":"webhook","action":"set","url":"http://a/","events":[],"secret":"short"})",
      R"({"type":"webhook","action":"set","url":"http://a/","events":[],"extra":1})",
  };
  for (const char* text : refused) {
    CAPTURE(text);
    CHECK_FALSE(std::holds_alternative<proto::BrowserToCloud>(proto::decode_from_browser(text)));
  }
}

namespace {

void webhook_rows(Database& db) {
  db.add_flat("flat-w", "Flat W");
  const int64_t version = db.accounts_version();
  CHECK_FALSE(set_webhook(db, {"no-such-flat", "http://a/", "s", {}, 1}));
  REQUIRE(set_webhook(db, {"flat-w", "http://a/", "secret-1", {"door_unlocked", "gateway_offline"}, 1}));
  CHECK(db.accounts_version() > version);  // every instance reads the list again
  auto row = webhook(db, "flat-w");
  REQUIRE(row);
  CHECK(row->events == std::vector<std::string>{"door_unlocked", "gateway_offline"});
  CHECK(row->secret == "secret-1");
  REQUIRE(set_webhook(db, {"flat-w", "https://b/", "secret-2", {}, 2}));
  CHECK(webhooks(db).size() == 1);
  CHECK(webhook(db, "flat-w")->url == "https://b/");
  CHECK(webhook(db, "flat-w")->events.empty());
  CHECK(remove_webhook(db, "flat-w"));
  CHECK_FALSE(remove_webhook(db, "flat-w"));
  REQUIRE(set_webhook(db, {"flat-w", "http://a/", "secret-3", {"device_offline"}, 3}));
  CHECK(db.remove_flat("flat-w"));
  CHECK(webhooks(db).empty());  // gone with its flat
}

}  // namespace

TEST_CASE("sqlite: a flat's webhook is set, replaced, removed, and goes with its flat") {
  char tmpl[] = "/tmp/flatlink-webhooks-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  Database db(open_sqlite(dir + "/store.db"));
  db.migrate();
  webhook_rows(db);
}

TEST_CASE("postgresql: a flat's webhook is set, replaced, removed, and goes with its flat") {
  auto& pg = test_support::Postgres::instance();
  if (!pg.available()) {
    MESSAGE(pg.why_not());
    return;
  }
  Database db(open_postgres(pg.fresh_database()));
  db.migrate();
  webhook_rows(db);
}
