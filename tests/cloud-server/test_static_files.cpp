// The static file handler's decisions (cloud-server/static_files.h): which Accept-Encoding
// allows the gzip variant, the two variants' validators, the types lws does not know. The
// files as served (through the real binary): tests/browser/static.test.mjs.
#include <doctest/doctest.h>

#include "cloud-server/static_files.h"

using flatlink::cloud::accepts_gzip;

TEST_CASE("Accept-Encoding allows gzip when it names gzip with a q-value above 0, or a wildcard without naming it") {
  CHECK(accepts_gzip("gzip"));
  CHECK(accepts_gzip("gzip, deflate, br"));
  CHECK(accepts_gzip("GZIP"));
  CHECK(accepts_gzip("x-gzip"));
  CHECK(accepts_gzip("deflate, gzip;q=0.5"));
  CHECK(accepts_gzip("gzip ; q = 0.001"));
  CHECK(accepts_gzip("gzip;Q=1.000"));
  CHECK(accepts_gzip("*"));
  CHECK(accepts_gzip("br;q=1, *;q=0.1"));
  CHECK(accepts_gzip("gzip;level=9"));  // another parameter says nothing of the q-value
}

TEST_CASE("gzip;q=0 in any spelling refuses it, even beside a wildcard that would allow it") {
  CHECK_FALSE(accepts_gzip("gzip;q=0"));
  CHECK_FALSE(accepts_gzip("gzip;q=0."));
  CHECK_FALSE(accepts_gzip("gzip;q=0.0"));
  CHECK_FALSE(accepts_gzip("gzip; q=0.000"));
  CHECK_FALSE(accepts_gzip("gzip;q=0, *;q=1"));
  CHECK_FALSE(accepts_gzip("*;q=0"));
  CHECK_FALSE(accepts_gzip("*;q=0, br"));
}

TEST_CASE("no gzip without asking for it: identity, other codings, a name that only starts with gzip, nothing") {
  CHECK_FALSE(accepts_gzip(""));
  CHECK_FALSE(accepts_gzip("identity"));
  CHECK_FALSE(accepts_gzip("br, deflate"));
  CHECK_FALSE(accepts_gzip("gzipper"));
  CHECK_FALSE(accepts_gzip(" , ,"));
}

TEST_CASE("an entry whose q-value is not one (above 1, four decimals, a word) is ignored, not taken as allowing") {
  CHECK_FALSE(accepts_gzip("gzip;q=2"));
  CHECK_FALSE(accepts_gzip("gzip;q=1.5"));
  CHECK_FALSE(accepts_gzip("gzip;q=0.0001"));
  CHECK_FALSE(accepts_gzip("gzip;q=high"));
  CHECK_FALSE(accepts_gzip("gzip;q="));
  CHECK(accepts_gzip("gzip;q=high, *"));  // the wildcard still speaks
}

TEST_CASE("the gzip variant's ETag is the .gz file's own with -gzip: never the identity file's") {
  struct stat plain {};
  plain.st_size = 0x1234;
  plain.st_mtim.tv_sec = 1;
  plain.st_mtim.tv_nsec = 5;
  CHECK(flatlink::cloud::file_etag(plain) == "\"1234-3b9aca05\"");
  CHECK(flatlink::cloud::gzip_etag(plain) == "\"1234-3b9aca05-gzip\"");
}

TEST_CASE("the types lws does not know: a web app manifest and a JavaScript module") {
  CHECK(std::string(flatlink::cloud::extra_media_type("/x/app.webmanifest")) == "application/manifest+json");
  CHECK(std::string(flatlink::cloud::extra_media_type("/x/a.mjs")) == "text/javascript");
  CHECK(flatlink::cloud::extra_media_type("/x/manifest.json") == nullptr);
}
