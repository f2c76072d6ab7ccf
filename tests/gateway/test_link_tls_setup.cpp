// The link's libwebsockets context options: TLS is set up only for a wss:// cloud.
#include <doctest/doctest.h>

#include <libwebsockets.h>

#include "cloud-link/link_client.h"

using namespace flatlink;

namespace {
lws_context_creation_info tuned(const config::CloudLinkConfig& cloud) {
  lws_context_creation_info info{};
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;  // what EventLoop sets before tune
  link::LinkClient::tune_context(cloud, info);
  return info;
}
}  // namespace

TEST_CASE("a ws:// cloud gets no global TLS set-up (OpenSSL stays unmapped: the gateway's idle RSS)") {
  config::CloudLinkConfig cloud;
  cloud.url = "ws://127.0.0.1:8080/";
  cloud.urls = {cloud.url, "ws://[::1]:8080/"};
  const auto info = tuned(cloud);
  CHECK((info.options & LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT) == 0);
}

TEST_CASE("a wss:// cloud, even second in the list, keeps the TLS set-up and verification") {
  config::CloudLinkConfig cloud;
  cloud.url = "ws://127.0.0.1:8080/";
  cloud.urls = {cloud.url, "wss://cloud.example:443/"};
  auto info = tuned(cloud);
  CHECK((info.options & LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT) != 0);
  CHECK((info.options & LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS) != 0);

  cloud.url = "wss://cloud.example:443/";
  cloud.urls = {cloud.url};
  info = tuned(cloud);
  CHECK((info.options & LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT) != 0);
}
