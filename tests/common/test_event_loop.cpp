// The event loop: timers fire in order, posted work arrives from other threads,
// a stop request runs the owner's stop handler.
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "common/event_loop.h"

using namespace flatlink;

TEST_CASE("timers fire in the order of their delays and a cancelled timer never fires") {
  EventLoop loop({});
  REQUIRE(loop.ok());
  std::vector<int> fired;
  Timer late(loop, [&] { fired.push_back(30); loop.quit(); });
  Timer early(loop, [&] { fired.push_back(10); });
  Timer cancelled(loop, [&] { fired.push_back(20); });
  late.start(30);
  early.start(10);
  cancelled.start(20);
  cancelled.cancel();
  CHECK(loop.run() == 0);
  CHECK(fired == std::vector<int>{10, 30});
}

TEST_CASE("work posted from another thread runs on the loop thread") {
  EventLoop loop({});
  REQUIRE(loop.ok());
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id ran_on;
  int count = 0;
  std::thread other([&] {
    for (int i = 0; i < 100; ++i) {
      loop.post([&] {
        ran_on = std::this_thread::get_id();
        if (++count == 100) loop.quit();
      });
    }
  });
  Timer guard(loop, [&] { loop.quit(); });
  guard.start(5000);
  loop.run();
  other.join();
  CHECK(count == 100);
  CHECK(ran_on == loop_thread);
}

TEST_CASE("a stop request runs the stop handler, which decides when the loop ends") {
  EventLoop loop({});
  REQUIRE(loop.ok());
  bool handler_ran = false;
  Timer finish(loop, [&] { loop.quit(); });
  loop.on_stop([&] {
    handler_ran = true;
    finish.start(10);  // e.g. waiting for close frames to go out
  });
  std::thread other([&] { loop.request_stop(); });
  loop.run();
  other.join();
  CHECK(handler_ran);
  CHECK(loop.stopping());
}

TEST_CASE("a stop handler that never finishes is cut off after the grace period") {
  EventLoop loop({});
  REQUIRE(loop.ok());
  loop.on_stop([] {}, 50);
  loop.request_stop();
  CHECK(loop.run() == 0);
}
