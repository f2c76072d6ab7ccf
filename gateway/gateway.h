// The gateway core: wires the adapters, the device registry, the command
// executor, the outbox and the cloud link together. Loop thread only.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cloud-link/link_client.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/gateway_config.h"
#include "device-adapters/adapter.h"
#include "gateway/command_executor.h"
#include "gateway/device_registry.h"
#include "gateway/outbox.h"
#include "gateway/stream_hub.h"

namespace flatlink::gateway {

class Gateway final : public link::LinkListener {
 public:
  Gateway(EventLoop& loop, config::GatewayConfig config, const Clock& clock = SystemClock::instance());
  ~Gateway() override;

  // The protocols the gateway's EventLoop must carry, and its context settings.
  static std::vector<lws_protocols> protocols();
  static void tune_context(const config::GatewayConfig& config, lws_context_creation_info& info);

  void start();
  // Stops adapters, ends pending commands, closes the link; then `done`.
  void stop(std::function<void()> done);

  const DeviceRegistry& registry() const { return registry_; }
  // Empty when all is well; otherwise what the operator should know (the outbox's state,
  // and what it has coalesced, dropped or lost).
  std::string health() const;
  // For the service status line: the cloud link is up, and statuses wait in the outbox.
  bool link_up() const { return link_ && link_->up(); }
  size_t waiting() const { return outbox_->size(); }
  // Presence and stream messages the link dropped from its full control queue (never
  // statuses, results or the device list).
  uint64_t control_dropped() const { return link_ ? link_->stats().control_dropped : 0; }

  // LinkListener
  proto::Hello make_hello() override;
  proto::DeviceList device_list() override;
  std::vector<proto::EncodedStatus> statuses_after(int64_t after, size_t max) override;
  void on_ack(int64_t seq) override;
  int64_t dropped() override;
  int64_t coalesced() override;
  void refuse_status(const proto::EncodedStatus& item, const std::string& why) override;
  void on_command(const proto::CommandMsg& command) override;
  void on_link_state(bool up) override;

 private:
  // Each adapter gets its own host, so that the core knows who reports what.
  class Slot;

  void device_added(adapters::Adapter* adapter, const DeviceInfo& device);
  void device_removed(adapters::Adapter* adapter, const std::string& device_id);
  void status(adapters::Adapter* adapter, const std::string& device_id, const Json& state, int64_t observed_ms);
  void presence(adapters::Adapter* adapter, const std::string& device_id, bool online);
  bool owns(adapters::Adapter* adapter, const std::string& device_id) const;
  // The boundary between adapters and the core: what the cloud would refuse is refused here,
  // said once per device (and then with backoff), so that it can never poison a frame.
  bool device_fits(adapters::Adapter* adapter, const DeviceInfo& device);
  bool state_fits(adapters::Adapter* adapter, const std::string& device_id, Json& state);
  std::vector<proto::DeviceReport> reports() const;
  // The bytes the device list (hello, devices) takes, kept incrementally: each device's
  // encoded report is measured once and again only after its state changed, so that checking
  // n devices as they come costs O(n) encodings, not O(n^2) (a whole list per device).
  size_t device_list_bytes();
  void device_changed(const std::string& id) { stale_reports_.insert(id); }

  std::map<std::string, size_t> report_bytes_;      // per registry device: its encoded report's size
  std::set<std::string> stale_reports_;             // devices whose report_bytes_ must be measured again
  size_t reports_total_ = 0;                        // the sum of report_bytes_
  std::map<std::string, size_t> placeholder_bytes_;  // per id: its offline placeholder's size (reports())

  EventLoop& loop_;
  config::GatewayConfig config_;
  const Clock& clock_;
  DeviceRegistry registry_;
  std::unique_ptr<Outbox> outbox_;
  int64_t acked_ = 0;  // the highest seq a cloud acknowledged (this process): sent in hello
  uint64_t refused_values_ = 0;  // values refused at the boundary (log backoff)
  uint64_t ignored_statuses_ = 0;  // statuses of devices not announced or refused (log backoff)
  std::unique_ptr<link::LinkClient> link_;
  std::unique_ptr<CommandExecutor> executor_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::unique_ptr<StreamHub> streams_;  // device streams; destroyed before the adapters
};

}  // namespace flatlink::gateway
