// The backplane between flatlink-cloud instances: topics, envelopes, strict checks.
#include "cloud-server/backplane.h"

#include <mosquitto.h>

#include <utility>

#include "common/log.h"
#include "device-adapters/mqtt/mqtt_session.h"
#include "device-adapters/mqtt/topic_pattern.h"

namespace flatlink::cloud {
namespace {

using adapters::mqtt::Message;
using adapters::mqtt::Session;
using adapters::mqtt::SessionOptions;

constexpr std::string_view kRoot = "flatlink/v1/";
constexpr uint32_t kStateIntervalMs = 100;    // retained states are published at most this often per flat
constexpr uint32_t kRefusalLogBurst = 10;     // refusal log lines per window
constexpr int64_t kRefusalWindowMs = 10'000;
constexpr size_t kMaxUnsafe = 200'000;        // unacknowledged publishes kept across a broker outage

// The keys of an object are exactly `required` plus any of `optional`.
bool has_keys(const Json& j, std::initializer_list<const char*> required, std::initializer_list<const char*> optional,
              std::string& why) {
  size_t seen = 0;
  for (const char* key : required) {
    if (!j.contains(key)) {
      why = std::string("missing key \"") + key + "\"";
      return false;
    }
    ++seen;
  }
  for (const char* key : optional) {
    if (j.contains(key)) ++seen;
  }
  if (seen != j.size()) {
    why = "unexpected keys";
    return false;
  }
  return true;
}

bool is_int(const Json& j, int64_t min = 0) {
  return j.is_number_integer() && j.get<int64_t>() >= min && j.get<int64_t>() <= proto::kMaxSeq;
}

bool is_id(const Json& j, bool may_be_empty = false) {
  if (!j.is_string()) return false;
  const auto& s = j.get_ref<const std::string&>();
  return (may_be_empty && s.empty()) || valid_id(s);
}

}  // namespace

std::string Backplane::flat_topic(const std::string& flat, const std::string& kind) {
  return std::string(kRoot) + "flats/" + flat + "/" + kind;
}

std::string Backplane::instance_topic(const std::string& instance) {
  return std::string(kRoot) + "instances/" + instance;
}

Backplane::Backplane(const config::BackplaneConfig& config, const config::LimitsConfig& limits, EventLoop& loop,
                     const Clock& clock, Metrics& metrics, BackplaneListener& listener)
    : config_(config),
      limits_(limits),
      loop_(loop),
      clock_(clock),
      metrics_(metrics),
      listener_(listener),
      state_timer_(loop, [this] { flush_states(); }) {
  metrics_.backplane_enabled = true;
}

Backplane::~Backplane() { stop(); }

bool Backplane::start() {
  SessionOptions options;
  options.log_name = "backplane instance=" + config_.instance_id;
  for (const auto& b : config_.brokers) options.brokers.push_back(SessionOptions::Broker{b.host, b.port});
  options.client_id = "flatlink-cloud-" + config_.instance_id;
  // A persistent session: what other instances publish while we reconnect (to
  // this broker or another node of its cluster) is kept for us.
  options.clean_session = false;
  options.keepalive_s = config_.keepalive_s;
  options.username = config_.username;
  options.password = config_.password;
  options.tls.enabled = config_.tls;
  options.tls.ca_file = config_.ca_file;
  options.tls.cert_file = config_.cert_file;
  options.tls.key_file = config_.key_file;
  options.backoff = BackoffPolicy{config_.backoff_base_ms, config_.backoff_max_ms, 50};
  options.max_payload = limits_.max_message_bytes * 2 + 1024;
  // The broker says we died when we do: other instances show our flats offline.
  options.will_topic = instance_topic(config_.instance_id);
  options.will_payload = Json{{"v", 1}, {"instance", config_.instance_id}, {"online", false}}.dump();
  options.will_retain = true;
  session_ = std::make_unique<Session>(
      std::move(options), loop_,
      Session::Callbacks{[this] { on_connected(); }, [this](const std::string& why) { on_disconnected(why); },
                         [this](Message& m) { on_message(m); }, [this](int mid) { on_published(mid); }});
  session_->subscribe(std::string(kRoot) + "instances/+");
  for (const auto& flat : watched_) {
    session_->subscribe(flat_topic(flat, "+"));
    session_->subscribe(flat_topic(flat, "results/" + config_.instance_id));
  }
  LOG_INFO("backplane") << "instance=" << config_.instance_id << " joining over " << config_.brokers.size()
                        << " broker(s), first " << config_.brokers.front().host << ":" << config_.brokers.front().port;
  return session_->start();
}

void Backplane::stop() {
  state_timer_.cancel();
  if (!session_) return;
  // A clean leave: say so (the will only fires on an unclean one).
  if (session_->connected()) {
    session_->publish(instance_topic(config_.instance_id),
                      Json{{"v", 1}, {"instance", config_.instance_id}, {"online", false}}.dump(), true);
  }
  session_->stop();
  session_.reset();
  metrics_.backplane_connected = false;
}

bool Backplane::connected() const { return session_ && session_->connected(); }

bool Backplane::alive(const std::string& instance) const {
  return instance == config_.instance_id || dead_.count(instance) == 0;
}

void Backplane::watch(const std::string& flat) {
  if (!watched_.insert(flat).second) return;
  LOG_DEBUG("backplane") << "flat=" << flat << " subscribing";
  if (!session_) return;
  session_->subscribe(flat_topic(flat, "+"));
  session_->subscribe(flat_topic(flat, "results/" + config_.instance_id));
}

void Backplane::unwatch(const std::string& flat) {
  if (watched_.erase(flat) == 0) return;
  LOG_DEBUG("backplane") << "flat=" << flat << " unsubscribing";
  if (!session_) return;
  session_->unsubscribe(flat_topic(flat, "+"));
  session_->unsubscribe(flat_topic(flat, "results/" + config_.instance_id));
}

Json Backplane::envelope(const std::string& flat) const {
  return Json{{"v", 1}, {"flat", flat}, {"from", config_.instance_id}};
}

void Backplane::publish_gateway_message(const std::string& flat, const std::string& gateway, const std::string& encoded,
                                        std::function<void()> on_safe) {
  Json j = envelope(flat);
  j["gateway"] = gateway;
  j["msg"] = Json::parse(encoded);
  enqueue(flat_topic(flat, "status"), j.dump(), false, std::move(on_safe));
}

void Backplane::state_changed(const std::string& flat, bool now) {
  dirty_states_.insert(flat);
  if (now) {
    flush_states();
    return;
  }
  if (!state_timer_.active()) state_timer_.start(kStateIntervalMs);
}

void Backplane::flush_states() {
  if (!connected()) return;  // published again on connect
  std::set<std::string> dirty = std::move(dirty_states_);
  dirty_states_.clear();
  for (const auto& flat : dirty) {
    auto state = listener_.backplane_state(flat);
    if (!state) continue;  // no longer ours: the new holder publishes it
    Json j = envelope(flat);
    j["gateway"] = state->gateway;
    j["online"] = state->online;
    j["since"] = state->since;
    j["seq"] = state->seq;
    j["reset"] = state->reset;
    j["dropped"] = state->dropped;
    j["msg"] = Json::parse(proto::encode(proto::DeviceList{state->devices}));
    enqueue(flat_topic(flat, "state"), j.dump(), true);
  }
}

void Backplane::claim(const std::string& flat, const std::string& gateway, int64_t since) {
  Json j = envelope(flat);
  j["instance"] = config_.instance_id;
  j["since"] = since;
  j["gateway"] = gateway;
  enqueue(flat_topic(flat, "holder"), j.dump(), true);
}

void Backplane::release(const std::string& flat, int64_t since) {
  Json j = envelope(flat);
  j["instance"] = "";
  j["since"] = since;
  j["gateway"] = "";
  enqueue(flat_topic(flat, "holder"), j.dump(), true);
}

void Backplane::send_command(const std::string& flat, const proto::CommandMsg& command) {
  Json j = envelope(flat);
  j["msg"] = Json::parse(proto::encode(command));
  enqueue(flat_topic(flat, "commands"), j.dump(), false);
}

void Backplane::send_result(const std::string& flat, const std::string& to, const proto::Result& result) {
  Json j = envelope(flat);
  j["msg"] = Json::parse(proto::encode(result));
  enqueue(flat_topic(flat, "results/" + to), j.dump(), false);
}

void Backplane::send_accepted(const std::string& flat, const std::string& to, const std::string& command_id) {
  Json j = envelope(flat);
  j["accepted"] = command_id;
  enqueue(flat_topic(flat, "results/" + to), j.dump(), false);
}

void Backplane::enqueue(std::string topic, std::string payload, bool retain, std::function<void()> on_safe) {
  if (unsafe_.size() >= kMaxUnsafe) {
    // Only reachable when the broker is gone for long: statuses stop being
    // acknowledged long before (the gateways' windows), so this drops states/claims.
    LOG_WARN("backplane") << "instance=" << config_.instance_id << " " << unsafe_.size()
                          << " messages wait for the broker; dropping topic=" << topic;
    return;
  }
  unsafe_.push_back(Outgoing{std::move(topic), std::move(payload), retain, std::move(on_safe), 0});
  if (connected()) send(unsafe_.back());
}

// `out` is the newest entry of unsafe_ (after a reconnect on_connected resends them all).
void Backplane::send(Outgoing& out) {
  int mid = 0;
  if (!session_->publish(out.topic, out.payload, out.retain, &mid)) return;  // again after the reconnect
  ++metrics_.backplane_messages_out;
  out.mid = mid;
  in_flight_[mid] = std::prev(unsafe_.end());
}

void Backplane::on_published(int mid) {
  auto it = in_flight_.find(mid);
  if (it == in_flight_.end()) return;  // from before a reconnect: its copy was sent again
  auto entry = it->second;
  in_flight_.erase(it);
  std::function<void()> on_safe = std::move(entry->on_safe);
  unsafe_.erase(entry);
  if (on_safe) on_safe();
}

void Backplane::on_connected() {
  metrics_.backplane_connected = true;
  dead_.erase(config_.instance_id);
  LOG_INFO("backplane") << "instance=" << config_.instance_id << " connected; " << unsafe_.size()
                        << " messages to publish again, " << watched_.size() << " flats watched";
  session_->publish(instance_topic(config_.instance_id),
                    Json{{"v", 1}, {"instance", config_.instance_id}, {"online", true}}.dump(), true);
  in_flight_.clear();
  for (auto it = unsafe_.begin(); it != unsafe_.end(); ++it) {
    int mid = 0;
    if (!session_->publish(it->topic, it->payload, it->retain, &mid)) break;
    ++metrics_.backplane_messages_out;
    it->mid = mid;
    in_flight_[mid] = it;
  }
  listener_.backplane_up();
  if (!dirty_states_.empty()) flush_states();
}

void Backplane::on_disconnected(const std::string& why) {
  metrics_.backplane_connected = false;
  in_flight_.clear();  // unacknowledged ones are published again on connect
  LOG_WARN("backplane") << "instance=" << config_.instance_id << " broker connection lost (" << why << "); "
                        << unsafe_.size() << " messages wait for the next one";
}

void Backplane::refuse(const std::string& topic, const std::string& why) {
  ++metrics_.backplane_refused;
  const int64_t now = clock_.mono_ms();
  if (now - refusal_window_ms_ >= kRefusalWindowMs) {
    if (refusals_suppressed_ > 0) {
      LOG_WARN("backplane") << "instance=" << config_.instance_id << " " << refusals_suppressed_
                            << " more backplane messages refused (not logged)";
    }
    refusal_window_ms_ = now;
    refusals_in_window_ = 0;
    refusals_suppressed_ = 0;
  }
  if (++refusals_in_window_ > kRefusalLogBurst) {
    ++refusals_suppressed_;
    return;
  }
  LOG_WARN("backplane") << "instance=" << config_.instance_id << " topic=" << log::q(topic.substr(0, 200))
                        << " refused: " << why;
}

void Backplane::on_message(Message& message) {
  ++metrics_.backplane_messages_in;
  const std::string& topic = message.topic;
  if (message.oversize > 0) {
    refuse(topic, "payload of " + std::to_string(message.oversize) + " bytes is over the cap");
    return;
  }
  if (topic.size() > 512 || topic.compare(0, kRoot.size(), kRoot) != 0) {
    refuse(topic, "not a flatlink/v1 topic");
    return;
  }
  std::vector<std::string> levels;
  for (std::string_view level : adapters::mqtt::split_topic(topic)) levels.emplace_back(level);
  // An empty retained payload clears a retained message: nothing to act on.
  if (message.payload.empty()) {
    if (!message.retained) refuse(topic, "empty payload");
    return;
  }
  if (message.payload.size() > limits_.max_message_bytes * 2u + 1024u) {
    refuse(topic, "payload over the cap");
    return;
  }
  Json payload = Json::parse(message.payload, nullptr, false);
  if (payload.is_discarded() || !payload.is_object()) {
    refuse(topic, "payload is not a JSON object");
    return;
  }
  if (!payload.contains("v") || payload["v"] != 1) {
    refuse(topic, "not a version 1 backplane message");
    return;
  }
  std::string why;
  if (levels.size() == 4 && levels[2] == "instances") {
    if (!has_keys(payload, {"v", "instance", "online"}, {}, why) || !is_id(payload["instance"]) ||
        !payload["online"].is_boolean()) {
      refuse(topic, why.empty() ? "bad instance message" : why);
      return;
    }
    const std::string& instance = payload["instance"].get_ref<const std::string&>();
    if (instance != levels[3]) {
      refuse(topic, "instance in the payload differs from the topic's");
      return;
    }
    if (instance == config_.instance_id) return;
    if (payload["online"].get<bool>()) {
      if (dead_.erase(instance)) LOG_INFO("backplane") << "instance=" << instance << " is back";
    } else if (dead_.insert(instance).second) {
      LOG_WARN("backplane") << "instance=" << instance << " left or died (its will); its flats show offline";
      listener_.instance_down(instance);
    }
    return;
  }
  // flatlink/v1/flats/<flat>/<kind> or flatlink/v1/flats/<flat>/results/<us>
  if (levels.size() < 5 || levels[2] != "flats" || !valid_id(levels[3]) ||
      (levels.size() == 6 && (levels[4] != "results" || levels[5] != config_.instance_id)) || levels.size() > 6) {
    refuse(topic, "not a topic of the backplane's layout");
    return;
  }
  const std::string& flat = levels[3];
  if (!listener_.backplane_knows_flat(flat)) {
    refuse(topic, "flat " + flat + " is not in this instance's config");
    return;
  }
  if (!payload.contains("flat") || payload["flat"] != flat) {
    refuse(topic, "the flat in the payload is not the topic's flat " + flat);
    return;
  }
  if (!payload.contains("from") || !is_id(payload["from"])) {
    refuse(topic, "missing or bad \"from\"");
    return;
  }
  if (!watched_.count(flat)) {
    // A persistent session may still carry a subscription of an earlier run.
    LOG_DEBUG("backplane") << "flat=" << flat << " message for a flat not watched now; ignored";
    return;
  }
  const std::string kind = levels.size() == 6 ? "results" : levels[4];
  handle_flat_message(flat, kind, payload, topic);
}

void Backplane::handle_flat_message(const std::string& flat, const std::string& kind, const Json& payload,
                                    const std::string& topic) {
  const std::string& from = payload["from"].get_ref<const std::string&>();
  proto::Limits limits;
  limits.max_message_bytes = limits_.max_message_bytes;
  std::string why;
  const auto embedded = [&](const char* key) -> std::string {
    const Json* msg = payload.contains(key) ? &payload[key] : nullptr;
    return msg && msg->is_object() ? msg->dump() : std::string();
  };

  if (kind == "status") {
    if (!has_keys(payload, {"v", "flat", "from", "gateway", "msg"}, {}, why) || !is_id(payload["gateway"])) {
      refuse(topic, why.empty() ? "bad gateway id" : why);
      return;
    }
    if (from == config_.instance_id) return;  // our own, back from the broker
    auto decoded = proto::decode_from_gateway(embedded("msg"), limits);
    if (auto* error = std::get_if<proto::DecodeError>(&decoded)) {
      refuse(topic, "msg: " + error->message);
      return;
    }
    const auto& message = std::get<proto::GatewayToCloud>(decoded);
    if (!std::holds_alternative<proto::StatusBatch>(message) && !std::holds_alternative<proto::Presence>(message) &&
        !std::holds_alternative<proto::DeviceList>(message)) {
      refuse(topic, "msg: only status, presence and devices travel on a status topic");
      return;
    }
    listener_.remote_gateway_message(flat, from, payload["gateway"].get<std::string>(), message);
  } else if (kind == "state") {
    if (!has_keys(payload, {"v", "flat", "from", "gateway", "online", "since", "seq", "reset", "dropped", "msg"}, {},
                  why) ||
        !is_id(payload["gateway"], true) || !payload["online"].is_boolean() || !is_int(payload["since"]) ||
        !is_int(payload["seq"]) || !payload["reset"].is_boolean() || !is_int(payload["dropped"])) {
      refuse(topic, why.empty() ? "bad state fields" : why);
      return;
    }
    if (from == config_.instance_id) return;
    auto decoded = proto::decode_from_gateway(embedded("msg"), limits);
    const auto* list = std::get_if<proto::GatewayToCloud>(&decoded);
    if (!list || !std::holds_alternative<proto::DeviceList>(*list)) {
      refuse(topic, "msg: expected a valid devices message");
      return;
    }
    RemoteState state;
    state.from = from;
    state.gateway = payload["gateway"].get<std::string>();
    state.online = payload["online"].get<bool>();
    state.since = payload["since"].get<int64_t>();
    state.seq = payload["seq"].get<int64_t>();
    state.reset = payload["reset"].get<bool>();
    state.dropped = payload["dropped"].get<int64_t>();
    state.devices = std::get<proto::DeviceList>(*list).devices;
    listener_.remote_state(flat, state);
  } else if (kind == "holder") {
    if (!has_keys(payload, {"v", "flat", "from", "instance", "since", "gateway"}, {}, why) ||
        !is_id(payload["instance"], true) || !is_int(payload["since"]) || !is_id(payload["gateway"], true)) {
      refuse(topic, why.empty() ? "bad holder fields" : why);
      return;
    }
    HolderClaim claim;
    claim.from = from;
    claim.instance = payload["instance"].get<std::string>();
    claim.since = payload["since"].get<int64_t>();
    claim.gateway = payload["gateway"].get<std::string>();
    if (!claim.instance.empty() && claim.instance != from) {
      refuse(topic, "a claim made for another instance");
      return;
    }
    // Our own claims come back too: one left retained by an earlier run of this instance is withdrawn there.
    listener_.remote_holder(flat, claim);
  } else if (kind == "commands") {
    if (!has_keys(payload, {"v", "flat", "from", "msg"}, {}, why)) {
      refuse(topic, why);
      return;
    }
    if (from == config_.instance_id) return;
    auto decoded = proto::decode_from_cloud_for_gateway(embedded("msg"), limits);
    const auto* message = std::get_if<proto::CloudToGateway>(&decoded);
    if (!message || !std::holds_alternative<proto::CommandMsg>(*message)) {
      refuse(topic, "msg: expected a valid command");
      return;
    }
    listener_.remote_command(flat, from, std::get<proto::CommandMsg>(*message));
  } else if (kind == "results") {
    if (payload.contains("accepted")) {
      if (!has_keys(payload, {"v", "flat", "from", "accepted"}, {}, why) || !payload["accepted"].is_string() ||
          payload["accepted"].get_ref<const std::string&>().size() > limits.max_string) {
        refuse(topic, why.empty() ? "bad accepted id" : why);
        return;
      }
      listener_.remote_result(flat, from, proto::Result{payload["accepted"].get<std::string>(), Outcome::ok, ""}, true);
      return;
    }
    if (!has_keys(payload, {"v", "flat", "from", "msg"}, {}, why)) {
      refuse(topic, why);
      return;
    }
    auto decoded = proto::decode_from_gateway(embedded("msg"), limits);
    const auto* message = std::get_if<proto::GatewayToCloud>(&decoded);
    if (!message || !std::holds_alternative<proto::Result>(*message)) {
      refuse(topic, "msg: expected a valid result");
      return;
    }
    listener_.remote_result(flat, from, std::get<proto::Result>(*message), false);
  } else {
    refuse(topic, "not a kind of message the backplane has");
  }
}

}  // namespace flatlink::cloud
