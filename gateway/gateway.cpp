// The gateway core.
#include "gateway/gateway.h"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <variant>

#include "common/log.h"
#include "device-adapters/adapter_factory.h"
#include "gateway/durable_outbox.h"

namespace flatlink::gateway {

class Gateway::Slot final : public adapters::AdapterHost {
 public:
  explicit Slot(Gateway& gateway) : gateway_(gateway) {}
  void device_added(const DeviceInfo& device) override { gateway_.device_added(adapter.get(), device); }
  void device_removed(const std::string& id) override { gateway_.device_removed(adapter.get(), id); }
  void status(const std::string& id, const Json& state, int64_t ts) override {
    gateway_.status(adapter.get(), id, state, ts);
  }
  void presence(const std::string& id, bool online) override { gateway_.presence(adapter.get(), id, online); }

  std::unique_ptr<adapters::Adapter> adapter;

 private:
  Gateway& gateway_;
};

Gateway::Gateway(EventLoop& loop, config::GatewayConfig config, const Clock& clock)
    : loop_(loop), config_(std::move(config)), clock_(clock) {
  if (::mkdir(config_.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    LOG_ERROR("gateway") << "cannot create state_dir " << config_.state_dir << ": " << std::strerror(errno);
  }
  auto outbox = std::make_unique<DurableOutbox>(loop_, config_.outbox, config_.state_dir + "/outbox.db");
  DurableOutbox* durable = outbox.get();
  outbox_ = std::move(outbox);
  link_ = std::make_unique<link::LinkClient>(loop_, config_.cloud, *this);
  executor_ = std::make_unique<CommandExecutor>(
      loop_, registry_, clock_, config_.command_timeout_ms,
      [this](const std::string& id, const CommandResult& result) {
        link_->send_result(proto::Result{id, result.outcome, result.message});
      });
  executor_->preload(durable->recent_commands());
  executor_->on_remember([durable](const std::string& id, int64_t until) { durable->remember_command(id, until); });
  outbox_->on_available([this] { link_->statuses_available(); });
  streams_ = std::make_unique<StreamHub>(*link_, registry_);
  link_->set_stream_listener(streams_.get());
  for (const auto& adapter_config : config_.adapters) {
    auto slot = std::make_unique<Slot>(*this);
    slot->adapter = adapters::make_adapter(adapter_config, loop_, *slot, clock_);
    if (slot->adapter) slots_.push_back(std::move(slot));
  }
}

Gateway::~Gateway() {
  for (auto& slot : slots_) slot->adapter->stop();
}

std::vector<lws_protocols> Gateway::protocols() { return {link::LinkClient::protocol()}; }

void Gateway::tune_context(const config::GatewayConfig& config, lws_context_creation_info& info) {
  link::LinkClient::tune_context(config.cloud, info);
}

void Gateway::start() {
  LOG_INFO("gateway") << "gateway=" << config_.gateway_id << " flat=" << config_.flat << " starting with "
                      << slots_.size() << " adapters";
  for (auto& slot : slots_) slot->adapter->start();
  link_->start();
}

void Gateway::stop(std::function<void()> done) {
  LOG_INFO("gateway") << "gateway=" << config_.gateway_id << " stopping";
  streams_->stop_all("the gateway is stopping");
  for (auto& slot : slots_) slot->adapter->stop();
  executor_->abandon_all("the gateway is stopping");
  link_->stop(std::move(done));
}

bool Gateway::owns(adapters::Adapter* adapter, const std::string& device_id) const {
  const DeviceEntry* entry = registry_.find(device_id);
  return entry && entry->adapter == adapter;
}

bool Gateway::device_fits(adapters::Adapter* adapter, const DeviceInfo& device) {
  const proto::Limits& limits = link_->limits();
  const proto::DeviceReport report{device, Json::object(), false, std::nullopt};
  std::string why;
  if (auto refusal = proto::check_device(report, limits)) {
    why = *refusal;
  } else if (!registry_.find(device.id) && registry_.all().size() + 1 > limits.max_devices) {
    why = "the cloud takes at most " + std::to_string(limits.max_devices) + " devices";
  } else {
    // The hello carries every device with its state: it must stay one frame. The list with
    // today's states may take 7/8 of the frame; the rest is room for states that grow.
    size_t bytes = device_list_bytes() + proto::to_json(report).dump().size() + 1;
    const size_t room = limits.max_message_bytes - limits.max_message_bytes / 8;
    if (bytes > room) {
      why = "the device list would take " + std::to_string(bytes) + " bytes, over 7/8 of the cloud's frame limit of " +
            std::to_string(limits.max_message_bytes);
    }
  }
  if (why.empty()) return true;
  LOG_ERROR("gateway") << "adapter=" << adapter->name() << " device=" << device.id << " refused: " << why;
  return false;
}

size_t Gateway::device_list_bytes() {
  for (const auto& id : stale_reports_) {
    auto old = report_bytes_.find(id);
    if (old != report_bytes_.end()) {
      reports_total_ -= old->second;
      report_bytes_.erase(old);
    }
    const DeviceEntry* entry = registry_.find(id);
    if (!entry) continue;
    const size_t bytes = proto::to_json(proto::DeviceReport{entry->info, entry->state, entry->online, entry->last_ts}).dump().size();
    report_bytes_.emplace(id, bytes);
    reports_total_ += bytes;
  }
  stale_reports_.clear();
  static const size_t kEnvelope = proto::encode(proto::DeviceList{}).size();
  size_t total = kEnvelope + reports_total_ + report_bytes_.size();  // a comma per report (one too many: an upper bound)
  // The offline placeholders reports() adds. Only the current ones are kept: an id leaves once
  // its statuses have left the outbox or its adapter announced it.
  std::map<std::string, size_t> placeholders;
  for (const auto& id : outbox_->waiting_devices()) {
    if (registry_.find(id)) continue;
    auto known = placeholder_bytes_.find(id);
    const size_t bytes =
        known != placeholder_bytes_.end()
            ? known->second
            : proto::to_json(proto::DeviceReport{DeviceInfo{id, id, "device", "", {}}, Json::object(), false, std::nullopt})
                  .dump()
                  .size();
    placeholders.emplace(id, bytes);
    total += bytes + 1;
  }
  placeholder_bytes_.swap(placeholders);
  return total;
}

// A value the cloud would refuse (a text over max_string, too many keys, a bad key) is left
// out of the status, said with backoff; the rest of the status goes on.
bool Gateway::state_fits(adapters::Adapter* adapter, const std::string& device_id, Json& state) {
  const proto::Limits& limits = link_->limits();
  if (!proto::check_state(state, limits)) return true;
  std::string first;
  if (state.is_object()) {
    Json kept = Json::object();
    for (const auto& [key, value] : state.items()) {
      auto why = kept.size() < limits.max_state_keys ? proto::check_state(Json{{key, value}}, limits) : std::optional<std::string>(
          "state: more than " + std::to_string(limits.max_state_keys) + " keys");
      if (!why) {
        kept[key] = value;
      } else if (first.empty()) {
        first = *why;
      }
    }
    state = std::move(kept);
  } else {
    first = "state: not an object";
    state = Json::object();
  }
  ++refused_values_;
  if ((refused_values_ & (refused_values_ - 1)) == 0) {  // 1, 2, 4, ...: said, never a flood
    LOG_ERROR("gateway") << "adapter=" << adapter->name() << " device=" << device_id
                         << " value refused at the boundary: " << first << " (" << refused_values_
                         << " refused so far)";
  }
  return !state.empty();
}

void Gateway::device_added(adapters::Adapter* adapter, const DeviceInfo& device) {
  if (!device_fits(adapter, device)) return;
  if (!registry_.upsert(device, adapter)) {
    LOG_ERROR("gateway") << "adapter=" << adapter->name() << " device=" << device.id
                         << " already belongs to another adapter; ignored";
    return;
  }
  device_changed(device.id);
  LOG_INFO("gateway") << "adapter=" << adapter->name() << " device=" << device.id << " kind=" << device.kind << " added";
  link_->devices_changed();  // while the link is down, the next hello carries the list
}

void Gateway::device_removed(adapters::Adapter* adapter, const std::string& device_id) {
  if (!owns(adapter, device_id)) return;
  executor_->abandon_device(device_id, Outcome::device_error, "device " + device_id + " was removed");
  registry_.remove(device_id);
  device_changed(device_id);
  LOG_INFO("gateway") << "adapter=" << adapter->name() << " device=" << device_id << " removed";
  link_->devices_changed();
}

void Gateway::status(adapters::Adapter* adapter, const std::string& device_id, const Json& state, int64_t observed_ms) {
  if (!owns(adapter, device_id)) {
    // A device refused at the boundary keeps reporting: said with backoff (1st, 2nd, 4th, ...).
    if (std::has_single_bit(++ignored_statuses_)) {
      LOG_WARN("gateway") << "adapter=" << adapter->name() << " device=" << device_id
                          << " status for a device it did not announce or that was refused; ignored ("
                          << ignored_statuses_ << " so far)";
    }
    return;
  }
  // Taken as it is when it fits (the common case); copied only to cut refused values out.
  const Json* fitting = &state;
  Json cut;
  if (proto::check_state(state, link_->limits())) {
    cut = state;
    if (!state_fits(adapter, device_id, cut)) return;
    fitting = &cut;
  }
  registry_.apply_status(device_id, *fitting, observed_ms);
  device_changed(device_id);
  const uint64_t seq = outbox_->append(device_id, *fitting, observed_ms);
  LOG_DEBUG("gateway") << "device=" << device_id << " seq=" << seq << " status " << state.dump();
  link_->statuses_available();
}

void Gateway::presence(adapters::Adapter* adapter, const std::string& device_id, bool online) {
  if (!owns(adapter, device_id)) return;
  const DeviceEntry* entry = registry_.find(device_id);
  if (entry->online == online) return;
  registry_.set_online(device_id, online);
  device_changed(device_id);
  LOG_INFO("gateway") << "device=" << device_id << (online ? " online" : " offline");
  if (!online) executor_->abandon_device(device_id, Outcome::device_error, "device " + device_id + " went offline");
  link_->send_presence(proto::Presence{device_id, online, clock_.wall_ms()});
}

std::vector<proto::DeviceReport> Gateway::reports() const {
  std::vector<proto::DeviceReport> out;
  for (const auto& [id, entry] : registry_.all()) {
    out.push_back(proto::DeviceReport{entry.info, entry.state, entry.online, entry.last_ts});
  }
  // A device with statuses in the outbox that no adapter has announced since this process
  // started (an MQTT device is only known again once it publishes): announce it as an
  // offline device without capabilities, or the cloud would drop its resent statuses as
  // those of an unknown device. The adapter's own description replaces it when it comes.
  for (const auto& id : outbox_->waiting_devices()) {
    if (registry_.find(id)) continue;
    out.push_back(proto::DeviceReport{DeviceInfo{id, id, "device", "", {}}, Json::object(), false, std::nullopt});
  }
  return out;
}

proto::DeviceList Gateway::device_list() { return proto::DeviceList{reports()}; }

proto::Hello Gateway::make_hello() {
  proto::Hello hello;
  hello.gateway = config_.gateway_id;
  hello.version = FLATLINK_VERSION;
  hello.devices = reports();
  hello.epoch = outbox_->epoch();
  hello.next_seq = static_cast<int64_t>(outbox_->next_seq());
  hello.dropped = static_cast<int64_t>(outbox_->dropped());
  hello.coalesced = static_cast<int64_t>(outbox_->coalesced());
  hello.lost = static_cast<int64_t>(outbox_->lost());
  // Below next_seq by construction; a cloud that has lost track answers lower, which does not lower this.
  hello.acked = std::min(acked_, hello.next_seq - 1);
  // The boundary keeps the device list within half a frame; the states could still pass the
  // rest with many devices full of long texts. Then the hello goes without them (each device's
  // next status brings its state) rather than never getting through.
  const size_t limit = link_->limits().max_message_bytes;
  if (proto::encode(hello).size() > limit) {
    for (auto& device : hello.devices) device.state = Json::object();
    LOG_ERROR("gateway") << "gateway=" << config_.gateway_id << " hello with the devices' states would pass "
                         << limit << " bytes; sent without them";
  }
  return hello;
}

std::vector<proto::EncodedStatus> Gateway::statuses_after(int64_t after, size_t max) {
  std::vector<proto::EncodedStatus> items;
  auto waiting = outbox_->read_after(static_cast<uint64_t>(after), max);
  items.reserve(waiting.size());
  for (auto& item : waiting) {
    items.push_back(proto::EncodedStatus{static_cast<int64_t>(item.seq), std::move(item.device),
                                         std::move(item.state_text), item.ts});
  }
  return items;
}

void Gateway::on_ack(int64_t seq) {
  acked_ = std::max(acked_, seq);
  outbox_->ack(static_cast<uint64_t>(seq));
}

int64_t Gateway::dropped() { return static_cast<int64_t>(outbox_->dropped()); }

int64_t Gateway::coalesced() { return static_cast<int64_t>(outbox_->coalesced()); }

void Gateway::refuse_status(const proto::EncodedStatus& item, const std::string& why) {
  LOG_ERROR("gateway") << "device=" << item.device << " seq=" << item.seq << " cannot be sent: " << why;
  outbox_->drop(static_cast<uint64_t>(item.seq));
}

std::string Gateway::health() const {
  std::string out = outbox_->health();
  auto add = [&](uint64_t n, const char* what) {
    if (n == 0) return;
    out += (out.empty() ? "" : "; ") + std::to_string(n) + " " + what;
  };
  add(outbox_->coalesced(), "coalesced");
  add(outbox_->dropped(), "dropped");
  add(outbox_->lost(), "lost");
  return out;
}

void Gateway::on_command(const proto::CommandMsg& message) {
  LOG_INFO("command") << "command=" << message.id << " device=" << message.device << " set " << message.set.dump();
  executor_->submit(proto::to_command(message));
}

void Gateway::on_link_state(bool up) {
  if (!up) streams_->stop_all("the cloud link went down");
  LOG_INFO("gateway") << "gateway=" << config_.gateway_id << " link " << (up ? "up" : "down") << "; "
                      << outbox_->size() << " statuses waiting";
}

}  // namespace flatlink::gateway
