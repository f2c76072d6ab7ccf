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

#include "cloud-link/protocol.h"
#include "common/clock.h"
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
  CHECK(Json::parse(items[0].state_text) == temp(2));
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
  CHECK(Json::parse(items.back().state_text) == Json{{"on", true}, {"brightness", 50}});
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
  for (int i = 0; i < 250; ++i) CHECK(Json::parse(items[static_cast<size_t>(i)].state_text) == temp(i));
  // Acks release the window and the rest still follows.
  outbox->ack(items[99].seq);
  CHECK(outbox->size() == 150);
  for (int i = 250; i < 260; ++i) outbox->append("t", temp(i), i);
  auto rest = f.read_all(*outbox, items.back().seq);
  REQUIRE(rest.size() == 10);
  CHECK(Json::parse(rest.back().state_text) == temp(259));
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

TEST_CASE("command ids are remembered across restarts, until their time is up") {
  Fixture f;
  const int64_t now = SystemClock::instance().wall_ms();
  {
    auto outbox = f.open();
    outbox->remember_command("c-1", now + 600'000);
    outbox->remember_command("c-2", now + 660'000);
    outbox->remember_command("c-old", now - 1000);
    outbox->flush();
  }
  auto outbox = f.open();
  std::vector<std::string> ids;
  for (const auto& [id, until] : outbox->recent_commands()) ids.push_back(id);
  CHECK(ids == std::vector<std::string>{"c-1", "c-2"});
  CHECK(outbox->recent_commands()[0].second == now + 600'000);
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

TEST_CASE("a damaged database is moved aside, never deleted, and a new stream epoch starts with what it held counted as lost") {
  Fixture f;
  std::string first_epoch;
  {
    auto outbox = f.open();
    first_epoch = outbox->epoch();
    for (int i = 0; i < 7; ++i) outbox->append("t", temp(i), i);
    outbox->flush();
  }
  // Junk over the header: no longer a database.
  {
    std::fstream file(f.path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(0);
    file << std::string(100, 'Z');
  }
  auto outbox = f.open();
  CHECK(outbox->health().empty());
  CHECK_FALSE(outbox->memory_only());
  CHECK(outbox->epoch() != first_epoch);
  CHECK(outbox->lost() == 7);
  CHECK(outbox->size() == 0);
  outbox->append("t", temp(1), 1);
  CHECK(f.read_all(*outbox).size() == 1);
  // The damaged file is still there for a person to look at.
  CHECK(std::system(("ls " + f.path + ".damaged-* >/dev/null 2>&1").c_str()) == 0);
}

TEST_CASE("a 0-byte outbox.db is the store gone, not a first start: an error, a new epoch, the loss counted and kept") {
  Fixture f;
  std::string first_epoch;
  {
    auto outbox = f.open();
    first_epoch = outbox->epoch();
    CHECK(proto::valid_epoch(first_epoch));
    for (int i = 0; i < 5; ++i) outbox->append("t", temp(i), i);
    outbox->flush();
  }
  REQUIRE(::truncate(f.path.c_str(), 0) == 0);
  std::string second_epoch;
  {
    auto outbox = f.open();
    second_epoch = outbox->epoch();
    CHECK(second_epoch != first_epoch);
    CHECK(outbox->lost() == 5);
    CHECK(outbox->size() == 0);
    outbox->append("t", temp(9), 9);
    outbox->flush();
  }
  // The count survives a restart, and the new store goes on in its own epoch.
  auto outbox = f.open();
  CHECK(outbox->epoch() == second_epoch);
  CHECK(outbox->lost() == 5);
  CHECK(outbox->size() == 1);
}

TEST_CASE("an outbox.db replaced by an older copy of itself is a new epoch: its seqs may have been handed out") {
  Fixture f;
  std::string first_epoch;
  {
    auto outbox = f.open();
    first_epoch = outbox->epoch();
    outbox->append("t", temp(0), 0);
    outbox->flush();
  }
  REQUIRE(std::system(("cp " + f.path + " " + f.dir + "/copy.db").c_str()) == 0);
  {
    auto outbox = f.open();  // a second start reserves the next block
    CHECK(outbox->epoch() == first_epoch);
    outbox->flush();
  }
  REQUIRE(std::system(("cp " + f.dir + "/copy.db " + f.path).c_str()) == 0);
  auto outbox = f.open();
  CHECK(outbox->epoch() != first_epoch);
}

TEST_CASE("an outbox that cannot reserve seqs at start runs memory-only in an epoch of its own, each start a new one") {
  Fixture f;
  std::string durable_epoch;
  uint64_t durable_next = 0;
  {
    auto outbox = f.open();
    durable_epoch = outbox->epoch();
    outbox->append("t", temp(0), 0);
    outbox->flush();
    durable_next = outbox->next_seq();
  }
  // A full disk: every write fails (a file size limit, as EFBIG / SQLITE_FULL).
  struct rlimit saved {};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tight = saved;
  tight.rlim_cur = 0;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &tight) == 0);
  std::string first_memory_epoch;
  {
    auto outbox = f.open();
    CHECK(outbox->memory_only());
    CHECK(outbox->health().find("outbox not durable") == 0);
    first_memory_epoch = outbox->epoch();
    CHECK(first_memory_epoch != durable_epoch);
    for (int i = 0; i < 20; ++i) outbox->append("t", temp(i), i);
    CHECK(f.read_all(*outbox).size() == 20);  // they flow, in a stream nobody can resume
  }
  {
    // A crash and a start with the disk still full: the same seqs again, but never in the
    // same epoch (before epochs, the cloud skipped these as already seen).
    auto outbox = f.open();
    CHECK(outbox->memory_only());
    CHECK(outbox->epoch() != first_memory_epoch);
    CHECK(outbox->epoch() != durable_epoch);
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  // Space is back: the store's own stream resumes where it was, its status still waiting.
  auto outbox = f.open();
  CHECK_FALSE(outbox->memory_only());
  CHECK(outbox->epoch() == durable_epoch);
  CHECK(outbox->next_seq() >= durable_next);
  CHECK(outbox->size() == 1);
}

TEST_CASE("while the disk fails, the pending disk work stays within the outbox's bounds") {
  Fixture f;
  f.config.max_items = 50;
  auto outbox = f.open();
  outbox->append("t", temp(0), 0);
  outbox->flush();
  struct rlimit saved {};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tight = saved;
  tight.rlim_cur = 0;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &tight) == 0);
  // A long outage of the disk with the cloud acknowledging as it goes: thousands of
  // statuses come and go; what waits for the disk must not grow with them.
  uint64_t after = 0;
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 100; ++i) outbox->append("d" + std::to_string(i % 7), temp(i), i);
    auto items = outbox->read_after(after, 10'000);
    if (!items.empty()) {
      after = items.back().seq;
      outbox->ack(after);
    }
    f.run_until([&] { return !outbox->health().empty(); }, 200);
  }
  outbox->flush();
  CHECK_FALSE(outbox->health().empty());
  CHECK(outbox->pending_ops() <= f.config.max_items * 2 + 16);
  CHECK(outbox->index_entries() <= f.config.max_items + 1);
  ::setrlimit(RLIMIT_FSIZE, &saved);
}

TEST_CASE("when full, coalescing is counted, survives a restart, and the oldest-first drop stays linear") {
  Fixture f;
  f.config.max_items = 100;
  {
    auto outbox = f.open();
    // Two devices flooding: every new state folds into the device's waiting one.
    for (int i = 0; i < 100; ++i) outbox->append("other-" + std::to_string(i), temp(i), i);
    for (int i = 0; i < 5000; ++i) outbox->append(i % 2 ? "a" : "b", temp(i), i);
    CHECK(outbox->size() == 100);
    CHECK(outbox->coalesced() + outbox->dropped() == 5000);
    CHECK(outbox->coalesced() >= 4990);
    // Removed entries do not pile up in the index.
    CHECK(outbox->index_entries() <= 200);
    outbox->flush();
  }
  auto outbox = f.open();
  CHECK(outbox->coalesced() >= 4990);
}

TEST_CASE("the per-device table shrinks when a device's statuses have all left") {
  Fixture f;
  auto outbox = f.open();
  for (int i = 0; i < 1000; ++i) outbox->append("dev-" + std::to_string(i), temp(i), i);
  CHECK(outbox->known_devices() == 1000);
  auto items = f.read_all(*outbox);
  REQUIRE(items.size() == 1000);
  outbox->ack(items[499].seq);
  CHECK(outbox->known_devices() == 500);
  outbox->ack(items.back().seq);
  CHECK(outbox->known_devices() == 0);
  CHECK(outbox->waiting_devices().empty());
}

TEST_CASE("the per-device table holds only devices with something waiting, also when statuses are dropped, coalesced or refused") {
  Fixture f;
  f.config.max_items = 10;
  auto outbox = f.open();
  // 1,000 devices seen once each (ids from outside: discovery, a broker): the oldest are
  // dropped for room, and their rows go with them.
  for (int i = 0; i < 1000; ++i) outbox->append("dev-" + std::to_string(i), temp(i), i);
  CHECK(outbox->dropped() == 990);
  CHECK(outbox->known_devices() == 10);
  // One device reporting often while full: folded into its newest state, one row.
  for (int i = 0; i < 100; ++i) outbox->append("chatty", temp(i), 1000 + i);
  CHECK(outbox->known_devices() <= 10);
  // A status refused at the link (too big for any frame) leaves, and its device's row with it.
  auto items = f.read_all(*outbox);
  REQUIRE_FALSE(items.empty());
  const OutboxItem last = items.back();
  outbox->drop(last.seq);
  outbox->ack(items[items.size() - 2].seq);
  CHECK(outbox->size() == 0);
  CHECK(outbox->known_devices() == 0);
  CHECK(outbox->waiting_devices().empty());
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

namespace {

// What <path>.held says: the statuses held in memory only when it was last written.
uint64_t held_on_disk(const std::string& path) {
  std::ifstream in(path + ".held");
  std::string key;
  uint64_t count = 0;
  in >> key >> count;
  return key == "held" ? count : 0;
}

}  // namespace

TEST_CASE("statuses held in memory only when the process ends on a failing disk are counted as lost at the next start") {
  // Issue 17: a crash while the disk fails and the cloud does not acknowledge lost what the
  // outbox held in memory, and the next start could not tell (it continues after the
  // reservation, a gap like every restart's): nothing was counted.
  Fixture f;
  const std::string big(2000, 'x');
  uint64_t waiting = 0;
  {
    auto outbox = f.open();
    outbox->append("t", temp(0), 0);
    outbox->flush();
    struct rlimit saved {};
    ::getrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit tight = saved;
    tight.rlim_cur = 64 * 1024;  // the store cannot grow; the held file's block is at offset 0
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &tight) == 0);
    for (int i = 1; i <= 60; ++i) outbox->append("t", Json{{"text", big}, {"i", i}}, i);
    f.run_until([&] { return !outbox->health().empty(); });
    REQUIRE(outbox->health().find("outbox not durable") == 0);
    // The link is down: nothing is acknowledged. These are certainly in memory only.
    for (int i = 61; i <= 85; ++i) outbox->append("t", temp(i), i);
    waiting = outbox->size();
    REQUIRE(waiting == 86);
    f.run_until([&] { return held_on_disk(f.path) >= 25; });
    CHECK(held_on_disk(f.path) >= 25);
    // The process ends with the disk still full (as kill -9 would: nothing more reaches it).
    outbox.reset();
    ::setrlimit(RLIMIT_FSIZE, &saved);
  }
  uint64_t lost = 0;
  {
    auto outbox = f.open();
    lost = outbox->lost();
    CHECK(lost >= 25);
    // Every status that waited is either in the store or counted: none silently gone.
    CHECK(outbox->size() + lost == waiting);
    CHECK(held_on_disk(f.path) == 0);  // kept in the store's lost count now
    outbox->flush();
  }
  // Counted once: the next start does not count them again.
  auto outbox = f.open();
  CHECK(outbox->lost() == lost);
}

TEST_CASE("a memory-only run that ends is counted at the next start that can keep the count") {
  Fixture f;
  {
    auto outbox = f.open();
    outbox->append("t", temp(0), 0);
    outbox->flush();
  }
  struct rlimit saved {};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tight = saved;
  tight.rlim_cur = 1024;  // the held file's record (offset 0) fits; SQLite's pages do not
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &tight) == 0);
  {
    auto outbox = f.open();
    REQUIRE(outbox->memory_only());
    for (int i = 1; i <= 30; ++i) outbox->append("t", temp(i), i);
    auto items = f.read_all(*outbox);
    REQUIRE(items.size() == 30);
    outbox->ack(items[9].seq);  // the cloud took 10, then the link went down
    f.run_until([&] { return held_on_disk(f.path) == 20; });
    CHECK(held_on_disk(f.path) == 20);
  }
  {
    // Still full: this start cannot keep the count in its store either; it carries it.
    auto outbox = f.open();
    REQUIRE(outbox->memory_only());
    CHECK(outbox->lost() == 20);
    outbox->append("t", temp(31), 31);
    f.run_until([&] { return held_on_disk(f.path) == 21; });
    CHECK(held_on_disk(f.path) == 21);
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  {
    auto outbox = f.open();
    CHECK_FALSE(outbox->memory_only());
    CHECK(outbox->lost() == 21);
    CHECK(outbox->size() == 1);  // the store's own status, still waiting
    outbox->flush();
  }
  auto outbox = f.open();
  CHECK(outbox->lost() == 21);
}

TEST_CASE("what waited for a failing disk reaches it whole once it works again: statuses and command ids") {
  // Issue 17, finding 4: on a failed commit the remembered command ids were not retried at all;
  // a restart after the disk came back could run such a command again. Then (the retry list
  // compacted in place, each kept change moved onto itself) they were retried with an empty id,
  // and the waiting statuses with an empty device: after a restart every frame holding one was
  // refused by the cloud, and the link closed on each reconnect.
  Fixture f;
  auto outbox = f.open();
  outbox->append("t", temp(0), 0);
  outbox->flush();
  struct rlimit saved {};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tight = saved;
  tight.rlim_cur = 64 * 1024;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &tight) == 0);
  const std::string big(2000, 'x');
  for (int i = 1; i <= 60; ++i) outbox->append("t", Json{{"text", big}, {"i", i}}, i);
  f.run_until([&] { return !outbox->health().empty(); });
  REQUIRE(outbox->health().find("outbox not durable") == 0);
  const int64_t now = SystemClock::instance().wall_ms();
  outbox->remember_command("c-during", now + 600'000);
  outbox->flush();  // handed to the writer; the disk refuses it
  ::setrlimit(RLIMIT_FSIZE, &saved);
  outbox->append("t", temp(99), 99);
  f.run_until([&] { return outbox->health().empty(); }, 5000);
  REQUIRE(outbox->health().empty());
  outbox->flush();
  outbox.reset();
  auto reopened = f.open();
  bool found = false;
  for (const auto& [id, until] : reopened->recent_commands()) found |= id == "c-during";
  CHECK(found);
  auto items = f.read_all(*reopened);
  CHECK(items.size() == 62);
  size_t without_device = 0;
  for (const auto& item : items) without_device += item.device != "t";
  CHECK(without_device == 0);
}

TEST_CASE("statuses beyond the memory window while the disk fails are all sent once the disk works again") {
  Fixture f;
  f.config.memory_items = 10;
  auto outbox = f.open();
  outbox->append("t", temp(0), 0);
  outbox->flush();
  struct rlimit saved {};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tight = saved;
  tight.rlim_cur = 64 * 1024;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &tight) == 0);
  const std::string big(2000, 'x');
  for (int i = 1; i <= 60; ++i) outbox->append("t", Json{{"text", big}, {"i", i}}, i);
  f.run_until([&] { return !outbox->health().empty(); });
  REQUIRE(outbox->health().find("outbox not durable") == 0);
  // A link reads what it can meanwhile: the window, then it asks the disk for the rest.
  auto first = f.read_all(*outbox);
  CHECK(!first.empty());
  ::setrlimit(RLIMIT_FSIZE, &saved);
  outbox->append("t", temp(99), 99);
  f.run_until([&] { return outbox->health().empty(); }, 5000);
  REQUIRE(outbox->health().empty());
  auto rest = f.read_all(*outbox, first.empty() ? 0 : first.back().seq);
  CHECK(first.size() + rest.size() == 62);
}
