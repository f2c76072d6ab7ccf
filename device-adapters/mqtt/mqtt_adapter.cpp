// The mqtt adapter: the device table, presence, command confirmation by the
// device's own state echo, and the rate-limited log of bad payloads. Topics
// and payloads are the sources' business (tasmota_source.cpp, ...); the broker
// connection is the session's (mqtt_session.cpp).
#include "device-adapters/mqtt/mqtt_adapter.h"

#include "device-adapters/adapter_base.h"

#include <algorithm>
#include <map>
#include <optional>

#include "common/log.h"
#include "device-adapters/mqtt/payload.h"
#include "device-adapters/mqtt/source.h"
#include "mqtt/mqtt_session.h"

namespace flatlink::adapters::mqtt {
namespace {

SessionOptions session_options(const config::MqttAdapterConfig& config) {
  SessionOptions options;
  options.log_name = "adapter=" + config.name;
  options.brokers.push_back(SessionOptions::Broker{config.host, config.port});
  options.client_id = config.client_id;
  options.clean_session = false;
  options.keepalive_s = config.keepalive_s;
  options.username = config.username;
  options.password = config.password;
  options.tls = config.tls;
  options.backoff = BackoffPolicy{config.backoff_base_ms, config.backoff_max_ms, 50};
  options.max_payload = config.max_payload_bytes;
  return options;
}

AdapterBase::Limits limits_of(const config::MqttAdapterConfig& config) {
  AdapterBase::Limits limits;
  limits.command_timeout_ms = config.command_timeout_ms;
  return limits;
}

class MqttAdapter final : public AdapterBase, public SourceHost {
 public:
  MqttAdapter(const config::MqttAdapterConfig& config, EventLoop& loop, AdapterHost& host, const Clock& clock)
      : AdapterBase(config.name, "mqtt", loop, host, clock, limits_of(config)),
        config_(config),
        session_(session_options(config_), loop_,
                 Session::Callbacks{[this] { on_connected(); }, [this](const std::string& why) { on_disconnected(why); },
                                    [this](Message& m) { on_message(m); }, {}, {}}) {
    for (const auto& preset : config_.presets) {
      switch (preset.kind) {
        case config::MqttPresetKind::tasmota: sources_.push_back(make_tasmota_source(*this, preset)); break;
        case config::MqttPresetKind::zigbee2mqtt: sources_.push_back(make_zigbee2mqtt_source(*this, preset)); break;
        case config::MqttPresetKind::homeassistant:
          sources_.push_back(make_homeassistant_source(*this, preset));
          break;
      }
    }
    if (!config_.rules.empty()) sources_.push_back(make_rule_source(*this, config_.rules));
  }
  ~MqttAdapter() override { stop(); }

  void start() override {
    if (running_) return;
    running_ = true;
    for (auto& source : sources_) {
      for (const auto& filter : source->subscriptions()) session_.subscribe(filter);
      source->start();
    }
    LOG_INFO("mqtt") << "adapter=" << config_.name << " connecting to " << config_.host << ":" << config_.port
                     << (config_.tls.enabled ? " with TLS" : "") << " as client " << log::q(config_.client_id);
    if (!session_.start()) LOG_ERROR("mqtt") << "adapter=" << config_.name << " not started; its devices stay offline";
  }

  void stop() override {
    if (!running_) return;
    running_ = false;
    session_.stop();
    drop_commands();  // the core ends the commands still pending
  }

  // AdapterBase
  bool device_known(const std::string& device_id) const override { return devices_.count(device_id) > 0; }

  bool device_online(const std::string& device_id) const override {
    const auto it = devices_.find(device_id);
    return running_ && it != devices_.end() && session_.connected() && it->second.reported.value_or(true);
  }

  Dispatch dispatch(const Command& command) override {
    auto it = devices_.find(command.device);
    CommandPlan plan;
    std::string error;
    if (!it->second.source->plan(command.device, command.set, plan, error)) {
      return {CommandResult{Outcome::rejected, error}, nullptr};
    }
    for (const auto& [topic, payload] : plan.publishes) {
      LOG_DEBUG("mqtt") << "adapter=" << config_.name << " device=" << command.device << " command=" << command.id
                        << " topic=" << log::q(topic) << " publish " << log::q(payload);
      if (!session_.publish(topic, payload)) {
        return {CommandResult{Outcome::device_error, "could not publish to " + topic}, nullptr};
      }
    }
    // A command that nothing reads back ends once published.
    if (plan.expect.empty()) return {CommandResult{Outcome::ok, ""}, nullptr};
    return {std::nullopt, std::move(plan.expect)};
  }

  // SourceHost
  const std::string& adapter_name() const override { return config_.name; }

  bool announce(Source& source, const DeviceInfo& info) override {
    auto it = devices_.find(info.id);
    if (it != devices_.end() && it->second.source != &source) {
      LOG_ERROR("mqtt") << "adapter=" << config_.name << " device=" << info.id << " from " << source.kind()
                        << " has the id of a device from " << it->second.source->kind() << "; ignored";
      return false;
    }
    if (it == devices_.end()) {
      // Discovery is outside input: the device table is capped.
      if (!admit_device(info, devices_.size())) return false;
      it = devices_.emplace(info.id, Device{info, &source, std::nullopt, false, false}).first;
      LOG_INFO("mqtt") << "adapter=" << config_.name << " device=" << info.id << " found (" << source.kind() << ", "
                       << info.capabilities.size() << " capabilities)";
    } else if (to_json(it->second.info) == to_json(info)) {
      return true;
    } else if (!admit_device(info, 0)) {
      return false;
    } else {
      it->second.info = info;
      LOG_INFO("mqtt") << "adapter=" << config_.name << " device=" << info.id << " now has "
                       << info.capabilities.size() << " capabilities";
    }
    if (running_) {
      host_.device_added(info);
      update_presence(it->second);
    }
    return true;
  }

  void remove(const std::string& device_id) override {
    auto it = devices_.find(device_id);
    if (it == devices_.end()) return;
    devices_.erase(it);
    device_lost(device_id, "device " + device_id + " was removed");
    LOG_INFO("mqtt") << "adapter=" << config_.name << " device=" << device_id << " removed";
    if (running_) host_.device_removed(device_id);
  }

  void state(const std::string& device_id, const Json& values) override {
    if (!running_ || values.empty() || devices_.find(device_id) == devices_.end()) return;
    host_.status(device_id, values, clock_.wall_ms());
    confirm_values(device_id, values);
  }

  void reported_presence(const std::string& device_id, bool online) override {
    auto it = devices_.find(device_id);
    if (it == devices_.end()) return;
    it->second.reported = online;
    update_presence(it->second);
  }

  bool publish(const std::string& topic, const std::string& payload) override {
    return session_.publish(topic, payload);
  }

  void subscribe(const std::string& filter) override { session_.subscribe(filter); }

  void bad_payload(const std::string& device_id, const std::string& topic, const std::string& why) override {
    warn_bad_input(device_id + '\n' + topic, "adapter=" + config_.name + (device_id.empty() ? "" : " device=") +
                                                  device_id + " topic=" + log::quote(topic) + " payload ignored: " + why);
  }

 private:
  struct Device {
    DeviceInfo info;
    Source* source = nullptr;
    std::optional<bool> reported;  // what the device said; unknown counts as online
    bool presence_sent = false;
    bool online_sent = false;
  };

  void on_connected() {
    LOG_INFO("mqtt") << "adapter=" << config_.name << " connected to " << config_.host << ":" << config_.port;
    for (auto& [id, device] : devices_) update_presence(device);
    for (auto& source : sources_) source->connected();
  }

  void on_disconnected(const std::string& why) {
    LOG_WARN("mqtt") << "adapter=" << config_.name << " lost the broker " << config_.host << ":" << config_.port << ": "
                     << why << "; reconnecting";
    for (auto& [id, device] : devices_) update_presence(device);
  }

  void on_message(Message& message) {
    if (!running_) return;
    if (message.oversize) {
      bad_payload("", message.topic,
                  std::to_string(message.oversize) + " bytes, over the cap of " +
                      std::to_string(config_.max_payload_bytes));
      return;
    }
    if (const std::string why = check_text(message.payload); !why.empty()) {
      bad_payload("", message.topic, "binary, not text: " + why);
      return;
    }
    for (auto& source : sources_) {
      if (source->handle(message)) return;
    }
    LOG_DEBUG("mqtt") << "adapter=" << config_.name << " topic=" << log::q(message.topic) << " not for any device";
  }

  void update_presence(Device& device) {
    if (!running_) return;
    const bool online = session_.connected() && device.reported.value_or(true);
    if (device.presence_sent && device.online_sent == online) return;
    device.presence_sent = true;
    device.online_sent = online;
    if (!online) device_lost(device.info.id, "device " + device.info.id + " went offline");
    host_.presence(device.info.id, online);
  }

  config::MqttAdapterConfig config_;
  Session session_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::map<std::string, Device> devices_;
  bool running_ = false;
};

}  // namespace

std::unique_ptr<Adapter> make_mqtt_adapter(const config::MqttAdapterConfig& config, EventLoop& loop, AdapterHost& host,
                                            const Clock& clock) {
  return std::make_unique<MqttAdapter>(config, loop, host, clock);
}

}  // namespace flatlink::adapters::mqtt
