// The password-check pool: fair per source, bounded, owned threads (findings 1 and 10 of #19).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cloud-server/password_pool.h"

using namespace flatlink;
using namespace flatlink::cloud;

TEST_CASE("a source flooding checks waits behind itself: another source's check runs next") {
  EventLoop loop({});
  REQUIRE(loop.ok());
  std::vector<std::string> order;
  std::atomic<bool> release{false};
  {
    PasswordCheckPool pool(loop, 1, 100, 1000);
    // The one worker is held by the first check of "attacker", which queues 20 more behind it.
    const auto slow = [&] {
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return false;
    };
    const auto done = [&] {
      if (order.size() == 22) loop.quit();
    };
    for (int i = 0; i < 21; ++i) {
      CHECK(pool.submit("attacker", slow, [&](bool) {
        order.push_back("attacker");
        done();
      }));
    }
    CHECK(pool.submit("flat-b", [] { return true; }, [&](bool ok) {
      CHECK(ok);
      order.push_back("flat-b");
      done();
    }));
    release = true;
    Timer guard(loop, [&] { loop.quit(); });
    guard.start(5000);
    loop.run();
  }
  REQUIRE(order.size() == 22);
  // flat-b was answered no later than second: after the attacker's check already running.
  const auto pos = std::find(order.begin(), order.end(), "flat-b") - order.begin();
  CHECK(pos <= 1);
}

TEST_CASE("a source over its share, or the pool over its total, is refused at once") {
  EventLoop loop({});
  REQUIRE(loop.ok());
  std::atomic<bool> release{false};
  PasswordCheckPool pool(loop, 1, 2, 3);
  const auto slow = [&] {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return true;
  };
  CHECK(pool.submit("a", slow, [](bool) {}));
  CHECK(pool.submit("a", slow, [](bool) {}));
  CHECK_FALSE(pool.submit("a", slow, [](bool) {}));  // per source
  CHECK(pool.submit("b", slow, [](bool) {}));
  CHECK_FALSE(pool.submit("c", slow, [](bool) {}));  // in all
  CHECK(pool.pending("a") == 2);
  release = true;
}

TEST_CASE("destroying the pool joins its workers and drops answers not yet delivered") {
  EventLoop loop({});
  REQUIRE(loop.ok());
  bool answered = false;
  {
    PasswordCheckPool pool(loop, 2, 4, 8);
    pool.submit("a", [] { return true; }, [&](bool) { answered = true; });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the check ends; its answer is posted
  }  // the pool (and with it whatever the answer would reach) is gone
  loop.post([&] { loop.quit(); });
  loop.run();
  CHECK_FALSE(answered);
}

TEST_CASE("with two workers a flooding source holds one of them: another source's check starts at once") {
  EventLoop loop({});
  REQUIRE(loop.ok());
  std::atomic<bool> release{false};
  std::atomic<int> started{0};
  bool b_answered = false;
  {
    PasswordCheckPool pool(loop, 2, 100, 1000);
    const auto slow = [&] {
      ++started;
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return false;
    };
    for (int i = 0; i < 10; ++i) CHECK(pool.submit("attacker", slow, [](bool) {}));
    // flat B's check ends while every attacker check is still held: it ran on the free worker.
    CHECK(pool.submit("flat-b", [] { return true; }, [&](bool ok) {
      CHECK(ok);
      b_answered = true;
      CHECK(started.load() == 1);  // the attacker never had both workers
      release = true;
      loop.quit();
    }));
    Timer guard(loop, [&] {
      release = true;
      loop.quit();
    });
    guard.start(10000);
    loop.run();
    release = true;
  }
  CHECK(b_answered);
}
