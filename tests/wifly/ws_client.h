// An RFC 6455 client for the WiFly tests: libwebsockets' own client on the test's loop
// (register WsClient::protocol() in the loop's options).
#pragma once

#include <libwebsockets.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/event_loop.h"

namespace flatlink::testing {

struct WsClient {
  bool established = false;
  bool closed = false;
  bool error = false;
  int close_code = 0;  // from the server's close frame
  bool closing = false;

  // Closes the connection (normal closure) from the loop.
  void close() {
    closing = true;
    if (wsi) lws_callback_on_writable(wsi);
  }
  std::vector<std::string> received;
  std::vector<std::string> outbox;
  lws* wsi = nullptr;

  WsClient() = default;
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;
  // A client that goes out of scope before the loop (whose destruction closes its wsi and
  // calls back) must not be called back (found by ASan: stack-use-after-scope).
  ~WsClient() {
    if (wsi) lws_set_opaque_user_data(wsi, nullptr);
  }

  void send(std::string text) {
    outbox.push_back(std::move(text));
    if (wsi) lws_callback_on_writable(wsi);
  }

  static int callback(lws* wsi, lws_callback_reasons reason, void*, void* in, size_t len) {
    auto* self = static_cast<WsClient*>(lws_get_opaque_user_data(wsi));
    if (!self) return 0;
    switch (reason) {
      case LWS_CALLBACK_CLIENT_ESTABLISHED:
        self->established = true;
        if (!self->outbox.empty()) lws_callback_on_writable(wsi);
        break;
      case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
          const auto* code = static_cast<const unsigned char*>(in);
          self->close_code = code[0] << 8 | code[1];
        }
        break;
      case LWS_CALLBACK_CLIENT_RECEIVE: self->received.emplace_back(static_cast<const char*>(in), len); break;
      case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (self->closing) {
          lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, nullptr, 0);
          return -1;
        }
        if (!self->outbox.empty()) {
          std::string text = self->outbox.front();
          self->outbox.erase(self->outbox.begin());
          std::vector<unsigned char> buf(LWS_PRE + text.size());
          std::copy(text.begin(), text.end(), buf.begin() + LWS_PRE);
          lws_write(wsi, buf.data() + LWS_PRE, text.size(), LWS_WRITE_TEXT);
          if (!self->outbox.empty()) lws_callback_on_writable(wsi);
        }
        break;
      case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        self->error = true;
        self->wsi = nullptr;
        break;
      case LWS_CALLBACK_CLIENT_CLOSED:
        self->closed = true;
        self->wsi = nullptr;
        break;
      default: break;
    }
    return 0;
  }

  static lws_protocols protocol() {
    lws_protocols p{};
    p.name = "test-ws-client";
    p.callback = &WsClient::callback;
    p.rx_buffer_size = 4096;
    return p;
  }

  void connect(EventLoop& loop, uint16_t port) {
    lws_client_connect_info info{};
    info.context = loop.context();
    info.address = "127.0.0.1";
    info.port = port;
    info.path = "/";
    info.host = "127.0.0.1";
    info.origin = "127.0.0.1";
    info.protocol = nullptr;  // no subprotocol, like a small device library
    info.local_protocol_name = "test-ws-client";
    info.opaque_user_data = this;
    info.pwsi = &wsi;
    lws_client_connect_via_info(&info);
  }
};

}  // namespace flatlink::testing
