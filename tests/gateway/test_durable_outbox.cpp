// The durable outbox: order, ack, restart, sequence numbers that never repeat,
// coalescing and dropping when full, spilling to disk, sync mode, disk failures.
#include <doctest/doctest.h>

#include "tests/run_until.h"
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gateway/durable_outbox.h"

using namespace flatlink;
using namespace flatlink::gateway;

namespace {

std::string temp_dir() {
  char dir[] = "/tmp/fl-outbox-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  return dir;
}

struct Fixture {
  std::string dir = temp_dir();
  std::string path = dir + "/outbox.db";
  EventLoop loop{{}};
  config::OutboxConfig config;
  int available = 0;

  Fixture() { config.commit_interval_ms = 5; }
  ~Fixture() { std::system(("rm -rf " + dir).c_str()); }

  std::unique_ptr<DurableOutbox> open() {
    auto outbox = std::make_unique<DurableOutbox>(loop, config, path);
    outbox->on_available([this] { ++available; });
    return outbox;
  }

  template <class F>
  void run_until(F cond, uint32_t max_ms = 3000) {
    testing::run_until(loop, cond, max_ms);
  }

  // Everything readable, following on_available as a link would.
  std::vector<OutboxItem> read_all(DurableOutbox& outbox, uint64_t after = 0) {
    std::vector<OutboxItem> all;
    for (int round = 0; round < 1000; ++round) {
      auto items = outbox.read_after(after, 1000);
      if (!items.empty()) {
        after = items.back().seq;
        all.insert(all.end(), items.begin(), items.end());
        continue;
      }
      const int before = available;
      run_until([&] { return available > before; }, 200);
      if (available == before) break;
    }
    return all;
  }
};

Json temp(int i) { return Json{{"temperature", i}}; }

}  // namespace

TEST_CASE("statuses keep their order and stay on disk until acknowledged, across a restart") {
  Fixture f;
  uint64_t next;
  {
    auto outbox = f.open();
    for (int i = 0; i < 5; ++i) outbox->append("t" + std::to_string(i), temp(i), 1000 + i);
    auto items = f.read_all(*outbox);
    REQUIRE(items.size() == 5);
    for (size_t i = 1; i < items.size(); ++i) CHECK(items[i].seq > items[i - 1].seq);
    outbox->ack(items[1].seq);
    outbox->flush();
    next = outbox->next_seq();
  }
  auto outbox = f.open();
  CHECK(outbox->health().empty());
  CHECK(outbox->size() == 3);
  auto items = f.read_all(*outbox);
  REQUIRE(items.size() == 3);
  CHECK(items[0].device == "t2");
  CHECK(items[0].state == temp(2));
  CHECK(items[2].ts == 1004);
  // After a restart the counter goes on beyond anything it may have handed out.
  CHECK(outbox->next_seq() >= next);
  const uint64_t seq = outbox->append("t9", temp(9), 2000);
  CHECK(seq > items[2].seq);
}

TEST_CASE("a sequence number handed out before a crash is never handed out again") {
  Fixture f;
  uint64_t last;
  {
    auto outbox = f.open();
    f.run_until([&] { return !outbox->read_after(0, 1).empty() || f.available > 0; }, 500);
    last = outbox->append("t", temp(1), 1);
    outbox->flush();
    // More statuses that may have gone upstream but never reached the disk:
    for (int i = 0; i < 100; ++i) last = outbox->append("t", temp(i), 2);
  }
  auto outbox = f.open();
  CHECK(outbox->next_seq() > last);
}

TEST_CASE("when full, a newer state of the same device replaces the older waiting one") {
  Fixture f;
  f.config.max_items = 10;
  auto outbox = f.open();
  for (int i = 0; i < 9; ++i) outbox->append("other-" + std::to_string(i), temp(i), i);
  outbox->append("lamp", Json{{"on", true}, {"brightness", 10}}, 100);
  CHECK(outbox->size() == 10);
  outbox->append("lamp", Json{{"brightness", 50}}, 101);
  CHECK(outbox->size() == 10);
  CHECK(outbox->dropped() == 0);
  auto items = f.read_all(*outbox);
  REQUIRE(items.size() == 10);
  CHECK(items.back().device == "lamp");
  CHECK(items.back().state == Json{{"on", true}, {"brightness", 50}});
  CHECK(items.back().ts == 101);
}

TEST_CASE("when full and nothing coalesces, the oldest goes and every drop is counted, also after a restart") {
  Fixture f;
  f.config.max_items = 10;
  {
    auto outbox = f.open();
    for (int i = 0; i < 13; ++i) outbox->append("dev-" + std::to_string(i), temp(i), i);
    CHECK(outbox->size() == 10);
    CHECK(outbox->dropped() == 3);
    auto items = f.read_all(*outbox);
    REQUIRE(items.size() == 10);
    CHECK(items.front().device == "dev-3");
    outbox->flush();
  }
  auto outbox = f.open();
  CHECK(outbox->dropped() == 3);
  CHECK(outbox->size() == 10);
  CHECK(f.read_all(*outbox).front().device == "dev-3");
}

TEST_CASE("the byte bound holds as well as the count") {
  Fixture f;
  f.config.max_bytes = 4096;
  auto outbox = f.open();
  const std::string big(500, 'x');
  for (int i = 0; i < 20; ++i) outbox->append("d" + std::to_string(i), Json{{"text", big}}, i);
  CHECK(outbox->bytes() <= 4096);
  CHECK(outbox->dropped() > 0);
}

TEST_CASE("statuses beyond the memory window are read back from disk, in order, none lost") {
  Fixture f;
  f.config.memory_items = 10;
  auto outbox = f.open();
  for (int i = 0; i < 250; ++i) outbox->append("t", temp(i), i);
  auto items = f.read_all(*outbox);
  REQUIRE(items.size() == 250);
  for (int i = 0; i < 250; ++i) CHECK(items[static_cast<size_t>(i)].state == temp(i));
  // Acks release the window and the rest still follows.
  outbox->ack(items[99].seq);
  CHECK(outbox->size() == 150);
  for (int i = 250; i < 260; ++i) outbox->append("t", temp(i), i);
  auto rest = f.read_all(*outbox, items.back().seq);
  REQUIRE(rest.size() == 10);
  CHECK(rest.back().state == temp(259));
}

TEST_CASE("in sync mode a status is sent only once it is committed") {
  Fixture f;
  f.config.durability = config::Durability::sync;
  auto outbox = f.open();
  const uint64_t seq = outbox->append("t", temp(1), 1);
  // Nothing before the writer has committed it.
  CHECK(outbox->read_after(0, 10).empty());
  f.run_until([&] { return !outbox->read_after(0, 10).empty(); });
  auto items = outbox->read_after(0, 10);
  REQUIRE(items.size() == 1);
  CHECK(items[0].seq == seq);
}

TEST_CASE("command ids are remembered across restarts") {
  Fixture f;
  {
    auto outbox = f.open();
    outbox->remember_command("c-1", 10);
    outbox->remember_command("c-2", 11);
    outbox->flush();
  }
  auto outbox = f.open();
  const auto& ids = outbox->recent_commands();
  CHECK(std::find(ids.begin(), ids.end(), "c-1") != ids.end());
  CHECK(std::find(ids.begin(), ids.end(), "c-2") != ids.end());
}

TEST_CASE("an unusable database path: a loud health message, and the outbox works in memory, bounded") {
  Fixture f;
  f.path = f.dir + "/no-such-dir/outbox.db";
  f.config.max_items = 20;
  auto outbox = f.open();
  CHECK(outbox->health().find("outbox not durable") == 0);
  for (int i = 0; i < 30; ++i) outbox->append("t" + std::to_string(i), temp(i), i);
  CHECK(outbox->size() == 20);
  CHECK(outbox->dropped() == 10);
  auto items = f.read_all(*outbox);
  REQUIRE(items.size() == 20);
  outbox->ack(items.back().seq);
  CHECK(outbox->size() == 0);
}

TEST_CASE("a corrupt database is left as it is and the gateway goes on in memory") {
  Fixture f;
  {
    std::ofstream garbage(f.path);
    garbage << std::string(8192, 'Z');
  }
  auto outbox = f.open();
  CHECK_FALSE(outbox->health().empty());
  outbox->append("t", temp(1), 1);
  CHECK(f.read_all(*outbox).size() == 1);
  outbox.reset();
  std::ifstream again(f.path);
  std::stringstream content;
  content << again.rdbuf();
  CHECK(content.str() == std::string(8192, 'Z'));
}

TEST_CASE("a full disk is reported, statuses go on flowing from memory, and the outbox recovers when space returns") {
  Fixture f;
  auto outbox = f.open();
  outbox->append("t", temp(0), 0);
  outbox->flush();
  REQUIRE(outbox->health().empty());
  // A file size limit makes every write past it fail as a full disk would (EFBIG, SQLITE_FULL).
  struct rlimit saved {};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tight = saved;
  tight.rlim_cur = 64 * 1024;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &tight) == 0);
  const std::string big(2000, 'x');
  for (int i = 1; i <= 60; ++i) outbox->append("t", Json{{"text", big}, {"i", i}}, i);
  f.run_until([&] { return !outbox->health().empty(); });
  ::setrlimit(RLIMIT_FSIZE, &saved);
  CHECK(outbox->health().find("outbox not durable") == 0);
  auto items = f.read_all(*outbox);
  CHECK(items.size() == 61);
  // Space is back: the writer's retry commits what waited, and health clears.
  outbox->append("t", temp(99), 99);
  f.run_until([&] { return outbox->health().empty(); }, 5000);
  CHECK(outbox->health().empty());
  outbox->flush();
  outbox.reset();
  auto reopened = f.open();
  CHECK(reopened->size() == 62);
}
