// The device registry: ownership, state merging, presence.
#include <doctest/doctest.h>

#include "gateway/device_registry.h"

using namespace flatlink;
using namespace flatlink::gateway;

namespace {
class NullAdapter final : public adapters::Adapter {
 public:
  explicit NullAdapter(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  void start() override {}
  void stop() override {}
  void execute(const Command&, adapters::CommandDone done) override { done({}); }

 private:
  std::string name_;
};
}  // namespace

TEST_CASE("a device id belongs to the adapter that announced it first") {
  NullAdapter a("a"), b("b");
  DeviceRegistry registry;
  DeviceInfo lamp;
  lamp.id = "lamp-1";
  CHECK(registry.upsert(lamp, &a));
  CHECK_FALSE(registry.upsert(lamp, &b));
  CHECK(registry.find("lamp-1")->adapter == &a);
}

TEST_CASE("statuses merge into the device's state and stamp when it was observed") {
  NullAdapter a("a");
  DeviceRegistry registry;
  DeviceInfo lamp;
  lamp.id = "lamp-1";
  registry.upsert(lamp, &a);
  CHECK(registry.apply_status("lamp-1", Json{{"on", true}, {"brightness", 10}}, 100));
  CHECK(registry.apply_status("lamp-1", Json{{"brightness", 50}}, 200));
  const DeviceEntry* entry = registry.find("lamp-1");
  CHECK(entry->state == Json{{"on", true}, {"brightness", 50}});
  CHECK(entry->last_ts == 200);
  CHECK_FALSE(registry.apply_status("nope", Json{{"on", true}}, 1));
  CHECK(registry.set_online("lamp-1", true));
  CHECK(registry.find("lamp-1")->online);
}
