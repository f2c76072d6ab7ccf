// The event loop: timers fire in order, posted work arrives from other threads,
// a stop request runs the owner's stop handler. Every case runs on both loops the daemons
// use: lws' own poll() loop (flatlinkd) and lws on libuv (flatlink-cloud).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/event_loop.h"
#include "common/uv_loop.h"

using namespace flatlink;

namespace {

// One subcase per backend: doctest runs the calling case once for each.
EventLoop::Options on_each_backend() {
  EventLoop::Options options;
  SUBCASE("poll") {}
  SUBCASE("libuv") { options.foreign = make_uv_loop(); }
  return options;
}

}  // namespace

TEST_CASE("on libuv the loop says so, and with lws' plugin present it runs there") {
  {
    EventLoop::Options options;
    options.foreign = make_uv_loop();
    EventLoop loop(std::move(options));
    REQUIRE(loop.ok());
    CHECK(std::string(loop.backend()) == "libuv");
  }
  // One after the other, as a daemon has them: with a poll context alive beside it, the
  // libuv context's TLS state stays allocated after both are destroyed (LeakSanitizer, lws
  // 4.1.6); no daemon has two contexts.
  EventLoop plain({});
  CHECK(std::string(plain.backend()) == "poll");
}

TEST_CASE("timers fire in the order of their delays and a cancelled timer never fires") {
  EventLoop loop(on_each_backend());
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
  EventLoop loop(on_each_backend());
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
  EventLoop loop(on_each_backend());
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
  EventLoop loop(on_each_backend());
  REQUIRE(loop.ok());
  loop.on_stop([] {}, 50);
  loop.request_stop();
  CHECK(loop.run() == 0);
}

TEST_CASE("a watched descriptor calls back when readable and on hang-up, and its duplicate is closed with the watch") {
  EventLoop loop(on_each_backend());
  REQUIRE(loop.ok());
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::string got;
  int hangups = 0;
  auto watch = std::make_unique<FdWatch>(loop, fds[0], [&](int events) {
    if (events & FdWatch::readable) {
      char buf[64];
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
      if (got == "hello") loop.quit();
    }
    if (events & FdWatch::hangup) ++hangups;
  });
  REQUIRE(watch->ok());
  REQUIRE(::write(fds[1], "hello", 5) == 5);
  Timer guard(loop, [&] { loop.quit(); });
  guard.start(2000);
  loop.run();
  CHECK(got == "hello");

  // The watch duplicated fds[0]; count open descriptors before and after it goes.
  auto open_fds = [] {
    int n = 0;
    for (int fd = 0; fd < 1024; ++fd) n += ::fcntl(fd, F_GETFD) != -1;
    return n;
  };
  const int before = open_fds();
  watch.reset();
  // On libuv the handle (and the duplicate with it) is closed by the loop's next turn.
  loop.post([&] { loop.quit(); });
  loop.run();
  CHECK(open_fds() == before - 1);
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK(hangups == 0);
}

// Redis' ae.c rule: the loop owns a timer's lifetime while its callback runs, so the
// callback may destroy the timer (a pending command erased by its own timeout) and still
// use what it captured. Under ASan the old Timer::fire read freed captures here.
TEST_CASE("a timer may be destroyed inside its own callback, and the callback's captures stay valid to its end") {
  EventLoop loop(on_each_backend());
  REQUIRE(loop.ok());
  std::unique_ptr<Timer> timer;
  std::string seen;
  const std::string name(64, 'x');  // long: lives on the heap inside the closure
  timer = std::make_unique<Timer>(loop, [&timer, &seen, &loop, name] {
    timer.reset();  // the owner erases the timer from inside its callback
    seen = name;    // a capture used after that
    loop.quit();
  });
  timer->start(1);
  CHECK(loop.run() == 0);
  CHECK(timer == nullptr);
  CHECK(seen == name);
}

TEST_CASE("a timer restarted inside its own callback fires again") {
  EventLoop loop(on_each_backend());
  REQUIRE(loop.ok());
  int fired = 0;
  std::unique_ptr<Timer> timer;
  timer = std::make_unique<Timer>(loop, [&] {
    if (++fired < 3) timer->start(1);
    else loop.quit();
  });
  timer->start(1);
  loop.run();
  CHECK(fired == 3);
}

TEST_CASE("posted work carrying a liveness token never reaches an object destroyed before it runs") {
  EventLoop loop(on_each_backend());
  REQUIRE(loop.ok());
  struct Target {
    std::shared_ptr<int> alive = std::make_shared<int>(0);
    int calls = 0;
  };
  auto gone = std::make_unique<Target>();
  auto kept = std::make_unique<Target>();
  std::thread other([&, g = gone.get(), k = kept.get(), gt = std::weak_ptr<int>(gone->alive),
                     kt = std::weak_ptr<int>(kept->alive)] {
    loop.post(gt, [g] { ++g->calls; });  // would write into freed memory
    loop.post(kt, [k] { ++k->calls; });
  });
  other.join();
  gone.reset();  // destroyed on the loop thread before the posted work runs
  loop.post([&] { loop.quit(); });
  loop.run();
  CHECK(kept->calls == 1);
}

TEST_CASE("timers outlived by their loop's context cancel nothing and do not touch it") {
  auto loop = std::make_unique<EventLoop>(on_each_backend());
  REQUIRE(loop->ok());
  int fired = 0;
  Timer timer(*loop, [&] { ++fired; });
  timer.start(60'000);
  loop->shutdown();  // the lws context is gone; the timer is still armed
  CHECK_FALSE(loop->ok());
  timer.cancel();    // used to run lws_sul_cancel on the freed context's list
  timer.start(10);   // no context: does nothing
  CHECK(fired == 0);
}
