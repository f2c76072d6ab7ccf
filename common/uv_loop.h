// A libuv loop for EventLoop (the cloud's): lws runs on it through its libuv event library
// plugin (Debian: libwebsockets-evlib-uv), so that waiting for events is epoll's cost, not
// poll()'s over every link.
#pragma once

#include <memory>

#include "common/event_loop.h"

namespace flatlink {

std::unique_ptr<ForeignLoop> make_uv_loop();

}  // namespace flatlink
