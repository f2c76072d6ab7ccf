// The in-memory outbox: sequence numbers, reading after an ack, bounds.
#include <doctest/doctest.h>

#include "gateway/outbox.h"

using namespace flatlink;
using namespace flatlink::gateway;

TEST_CASE("statuses get increasing sequence numbers and leave only when acknowledged") {
  MemoryOutbox outbox;
  CHECK(outbox.append("lamp-1", Json{{"on", true}}, 10) == 1);
  CHECK(outbox.append("lamp-1", Json{{"on", false}}, 11) == 2);
  CHECK(outbox.append("thermo-1", Json{{"temperature", 21.5}}, 12) == 3);
  CHECK(outbox.next_seq() == 4);

  auto items = outbox.read_after(0, 10);
  REQUIRE(items.size() == 3);
  CHECK(items[0].seq == 1);
  CHECK(items[2].device == "thermo-1");

  CHECK(outbox.read_after(1, 10).front().seq == 2);
  CHECK(outbox.read_after(1, 1).size() == 1);

  outbox.ack(2);
  CHECK(outbox.size() == 1);
  CHECK(outbox.read_after(0, 10).front().seq == 3);
  outbox.ack(99);
  CHECK(outbox.size() == 0);
  CHECK(outbox.append("lamp-1", Json{{"on", true}}, 13) == 4);
}

TEST_CASE("a full outbox drops the oldest status and counts the drop") {
  MemoryOutbox outbox(3);
  for (int i = 0; i < 5; ++i) outbox.append("t", Json{{"v", i}}, i);
  CHECK(outbox.size() == 3);
  CHECK(outbox.dropped() == 2);
  auto items = outbox.read_after(0, 10);
  CHECK(items.front().seq == 3);
  CHECK(items.back().seq == 5);
}
