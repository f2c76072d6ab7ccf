// The gateway core with many devices: what it keeps in memory and what it queues stays
// bounded by its limits, not by the number of devices or of their statuses.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "cloud-link/protocol.h"
#include "gateway/gateway.h"
#include "tests/run_until.h"

using namespace flatlink;

namespace {

std::string temp_dir() {
  char dir[] = "/tmp/fl-gateway-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  return dir;
}

// Sends the process's stderr (where log lines go) to a file while it lives.
class CapturedLog {
 public:
  explicit CapturedLog(std::string path) : path_(std::move(path)) {
    saved_ = ::dup(2);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~CapturedLog() { restore(); }
  void restore() {
    if (saved_ < 0) return;
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  size_t count(const std::string& what) const {
    std::ifstream in(path_);
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) n += line.find(what) != std::string::npos;
    return n;
  }

 private:
  std::string path_;
  int saved_ = -1;
};

}  // namespace

TEST_CASE("thousands of devices: the device list stays one frame, the outbox within its bounds, the log within reason") {
  const std::string dir = temp_dir();
  config::GatewayConfig cfg;
  cfg.gateway_id = "gw-many";
  cfg.flat = "flat-a";
  cfg.state_dir = dir;
  cfg.cloud.url = "ws://127.0.0.1:1/";  // nothing listens: the link stays down, everything waits
  cfg.cloud.token = "token-of-flat-a-0123456789";
  cfg.cloud.backoff_base_ms = 1000;
  cfg.cloud.backoff_max_ms = 1000;
  cfg.outbox.max_items = 500;
  cfg.outbox.memory_items = 200;
  config::SimAdapterConfig sim;
  sim.seed = 1;
  constexpr int kDevices = 3000;
  for (int i = 0; i < kDevices; ++i) {
    sim.devices.push_back(config::SimDeviceConfig{"thermo-" + std::to_string(i), "thermometer", "", "", 20, 21.0});
  }
  cfg.adapters.push_back(sim);

  CapturedLog log(dir + "/log.txt");
  {
    EventLoop loop({gateway::Gateway::protocols(), {}, {}});
    REQUIRE(loop.ok());
    gateway::Gateway gw(loop, cfg);
    gw.start();
    // Each accepted thermometer reports every 20 ms: about a second of it, thousands of
    // statuses for an outbox of 500.
    testing::run_until(loop, [] { return false; }, 1500);
    const proto::Limits limits;  // no cloud has answered: the protocol's defaults hold

    // The devices the cloud would refuse were refused at the boundary (the list may take 7/8
    // of a frame when a device comes); the rest, with the states they have reported since,
    // make one hello that fits a frame.
    CHECK(gw.registry().all().size() > 100);
    CHECK(gw.registry().all().size() < static_cast<size_t>(kDevices));
    CHECK(gw.registry().all().size() <= limits.max_devices);
    const size_t hello_bytes = proto::encode(gw.make_hello()).size();
    MESSAGE(gw.registry().all().size() << " devices accepted; hello " << hello_bytes << " bytes");
    CHECK(hello_bytes <= limits.max_message_bytes);

    // The outbox holds at most its bound; the rest was coalesced, counted and said.
    CHECK(gw.waiting() <= cfg.outbox.max_items);
    CHECK(gw.coalesced() > 1000);
    CHECK(gw.health().find("coalesced") != std::string::npos);
    gw.stop([] {});
  }
  log.restore();
  // Said once per refused device, not once per status: the refused devices report every 20 ms
  // too, and each of their statuses used to log a line (about 2,700 devices x 50/s).
  const size_t refused = log.count("refused: ");
  const size_t ignored = log.count("did not announce");
  MESSAGE(refused << " devices refused, " << ignored << " lines about their statuses");
  CHECK(refused > 100);
  CHECK(ignored < 64);
  CHECK(log.count("coalesced so far") < 64);  // logged with backoff: 1st, 2nd, 4th, ...
  std::system(("rm -rf " + dir).c_str());
}
