// The backplane between flatlink-cloud instances: the broker session, subscriptions, delivery.
#include "cloud-server/backplane.h"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <variant>

#include <openssl/rand.h>

#include "cloud-server/auth.h"
#include "common/log.h"
#include "mqtt/mqtt_session.h"

namespace flatlink::cloud {
namespace {

using mqtt::Message;
using mqtt::Session;
using mqtt::SessionOptions;

constexpr uint32_t kStateIntervalMs = 100;    // retained states are published at most this often per flat
constexpr uint32_t kRefusalLogBurst = 10;     // refusal log lines per window
constexpr int64_t kRefusalWindowMs = 10'000;
// Messages without a valid tag: logged at once, then once per window, 1 s doubling to 5 min.
constexpr int64_t kRejectLogMinMs = 1'000;
constexpr int64_t kRejectLogMaxMs = 300'000;
constexpr size_t kMaxUnsafe = 200'000;        // unacknowledged publishes kept across a broker outage
// Handed to the session and not yet acknowledged: far below 65,535 (libmosquitto's 16-bit
// message ids) and enough to keep a loopback or LAN broker busy.
constexpr size_t kMaxInFlight = 1'000;
constexpr size_t kMaxInFlightBytes = 4 << 20;
// Broker liveness of our own: a killed broker closes the connection at once, but a hung one
// (or a cluster node that lost its quorum) keeps it open and answers libmosquitto's keepalive
// late or never. A ping to ourselves through the broker every half second, lost after 3 s:
// the flats held elsewhere show offline here within 3.5 s (docs/scale-out.md says 4).
constexpr uint32_t kPingIntervalMs = 500;
constexpr int64_t kPingLostMs = 3'000;
// Device streams: what may wait unwritten in libmosquitto (about 8 KiB, as a browser's or
// gateway's socket: TCP_NOTSENT_LOWAT, stream_frames.h), so that audio waits here, where old
// frames are dropped, and what may wait here at all.
constexpr size_t kStreamUnwrittenBytes = 8 * 1024;
constexpr size_t kStreamQueueBytes = 1 << 20;

}  // namespace

using backplane::flat_topic;
using backplane::instance_topic;

Backplane::Backplane(const config::BackplaneConfig& config, const config::LimitsConfig& limits, EventLoop& loop,
                     const Clock& clock, Metrics& metrics, BackplaneListener& listener)
    : config_(config),
      limits_(limits),
      loop_(loop),
      clock_(clock),
      metrics_(metrics),
      listener_(listener),
      state_timer_(loop, [this] { flush_states(); }),
      ping_timer_(loop, [this] { ping(); }) {
  metrics_.backplane_enabled = true;
  unsigned char rnd[8];
  RAND_bytes(rnd, sizeof rnd);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : rnd) {
    run_ += kHex[c >> 4];
    run_ += kHex[c & 15];
  }
  started_ms_ = clock_.wall_ms();
  check_context_.instance = config_.instance_id;
  check_context_.run = run_;
  check_context_.knows_flat = [this](const std::string& flat) { return listener_.backplane_knows_flat(flat); };
  check_context_.watching = [this](const std::string& flat) { return watched_.count(flat) != 0; };
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
  options.max_payload = backplane::max_payload_bytes(limits_.max_message_bytes);
  // The broker says we died when we do: other instances show our flats offline.
  options.will_topic = instance_topic(config_.instance_id);
  options.will_payload = seal(options.will_topic, backplane::encode_instance(config_.instance_id, false));
  options.will_retain = true;
  session_ = std::make_unique<Session>(
      std::move(options), loop_,
      Session::Callbacks{[this] { on_connected(); }, [this](const std::string& why) { on_disconnected(why); },
                         [this](Message& m) { on_message(m); }, [this](int mid) { on_published(mid); },
                         [this](size_t bytes) { on_qos0_written(bytes); }});
  session_->subscribe(instance_topic("+"));
  session_->subscribe(std::string(backplane::kStreamsRoot) + config_.instance_id + "/#");
  session_->subscribe(backplane::ping_topic(config_.instance_id));
  for (const auto& flat : watched_) subscribe_flat(flat, true);
  if (config_.shared_key.empty()) {
    LOG_WARN("backplane") << "instance=" << config_.instance_id
                          << " insecure: backplane messages are neither signed nor checked; any client of the broker"
                             " can command every flat (set backplane.shared_key_file, docs/scale-out.md)";
  }
  LOG_INFO("backplane") << "instance=" << config_.instance_id << " joining over " << config_.brokers.size()
                        << " broker(s), first " << config_.brokers.front().host << ":" << config_.brokers.front().port;
  return session_->start();
}

void Backplane::stop() {
  state_timer_.cancel();
  ping_timer_.cancel();
  if (!session_) return;
  // A clean leave: say so (the will only fires on an unclean one).
  if (session_->connected()) {
    session_->publish(instance_topic(config_.instance_id),
                      seal(instance_topic(config_.instance_id), backplane::encode_instance(config_.instance_id, false)),
                      true);
  }
  session_->stop();
  session_.reset();
  metrics_.backplane_connected = false;
  delivering_ = false;
}

bool Backplane::connected() const { return session_ && session_->connected(); }

bool Backplane::alive(const std::string& instance) const {
  return instance == config_.instance_id || dead_.count(instance) == 0;
}

void Backplane::watch(const std::string& flat) {
  if (!watched_.insert(flat).second) return;
  LOG_DEBUG("backplane") << "flat=" << flat << " subscribing";
  if (session_) subscribe_flat(flat, true);
}

void Backplane::unwatch(const std::string& flat) {
  if (watched_.erase(flat) == 0) return;
  LOG_DEBUG("backplane") << "flat=" << flat << " unsubscribing";
  if (session_) subscribe_flat(flat, false);
}

// A flat's messages: every kind, and the results addressed to this instance.
void Backplane::subscribe_flat(const std::string& flat, bool subscribe) {
  for (const std::string& topic : {flat_topic(flat, "+"), flat_topic(flat, "results/" + config_.instance_id)}) {
    if (subscribe) {
      session_->subscribe(topic);
    } else {
      session_->unsubscribe(topic);
    }
  }
}

void Backplane::publish_gateway_message(const std::string& flat, const std::string& gateway, const std::string& encoded,
                                        std::function<void()> on_safe, std::function<void()> on_dropped,
                                        const std::string& epoch, int64_t prev) {
  enqueue(flat_topic(flat, "status"),
          backplane::encode_gateway_message(flat, config_.instance_id, gateway, encoded, epoch, prev),
          false, std::move(on_safe), std::move(on_dropped));
}

void Backplane::send_resend(const backplane::ResendRequest& request) {
  backplane::ResendRequest r = request;
  r.from = config_.instance_id;
  enqueue(flat_topic(r.flat, "resend"), backplane::encode_resend(r), false);
}

void Backplane::send_resent(const std::string& flat, const std::string& to, const std::string& gateway,
                            const std::string& epoch, int64_t prev, const std::string& encoded) {
  enqueue(flat_topic(flat, "results/" + to),
          backplane::encode_gateway_message(flat, config_.instance_id, gateway, encoded, epoch, prev, true), false);
}

void Backplane::send_repair_done(const std::string& to, const backplane::RepairDone& done) {
  backplane::RepairDone d = done;
  d.from = config_.instance_id;
  enqueue(flat_topic(d.flat, "results/" + to), backplane::encode_repair_done(d), false);
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
    enqueue(flat_topic(flat, "state"), backplane::encode_state(flat, config_.instance_id, *state), true);
  }
}

void Backplane::claim(const std::string& flat, const std::string& gateway, int64_t since) {
  enqueue(flat_topic(flat, "holder"),
          backplane::encode_holder(flat, config_.instance_id, HolderClaim{"", config_.instance_id, since, gateway}),
          true);
}

void Backplane::release(const std::string& flat, int64_t since) {
  enqueue(flat_topic(flat, "holder"),
          backplane::encode_holder(flat, config_.instance_id, HolderClaim{"", "", since, ""}), true);
}

uint64_t Backplane::send_command(const std::string& flat, const proto::CommandMsg& command) {
  return enqueue(flat_topic(flat, "commands"), backplane::encode_command(flat, config_.instance_id, command), false,
                 {}, {}, command.expires);
}

bool Backplane::withdraw(uint64_t handle) {
  if (handle == 0) return false;
  // Only the part not handed to the session in this connection can hold it (commands are few
  // and this runs once per command the holder did not take in time).
  for (auto it = unsent_; it != unsafe_.end(); ++it) {
    if (it->handle != handle) continue;
    if (it->left) return false;
    if (it == unsent_) unsent_ = std::next(it);
    unsafe_.erase(it);
    return true;
  }
  return false;
}

void Backplane::send_stream_control(const std::string& topic, const std::string& flat, const std::string& encoded) {
  if (!connected()) return;  // the streams end at backplane_down, on both sides
  std::string payload = seal(topic, backplane::encode_stream_control(flat, config_.instance_id, encoded));
  stream_out_bytes_ += payload.size();
  stream_out_.push_back(StreamOut{topic, std::move(payload), clock_.mono_ms(), true});
  pump_streams();
}

void Backplane::send_stream_frame(const std::string& topic, std::string_view frame) {
  if (!connected()) {
    drop_stream_frames(1);
    return;
  }
  std::string payload = backplane::sign_frame(config_.shared_key, topic, frame);
  stream_out_bytes_ += payload.size();
  stream_out_.push_back(StreamOut{topic, std::move(payload), clock_.mono_ms(), false});
  uint64_t dropped = 0;
  while (stream_out_bytes_ > kStreamQueueBytes) {
    auto oldest = std::find_if(stream_out_.begin(), stream_out_.end(), [](const StreamOut& o) { return !o.control; });
    if (oldest == stream_out_.end()) break;
    stream_out_bytes_ -= oldest->payload.size();
    stream_out_.erase(oldest);
    ++dropped;
  }
  drop_stream_frames(dropped);
  pump_streams();
}

void Backplane::pump_streams() {
  if (!connected()) return;
  const int64_t now = clock_.mono_ms();
  uint64_t dropped = 0;
  while (!stream_out_.empty() && stream_unwritten_bytes_ < kStreamUnwrittenBytes) {
    StreamOut& next = stream_out_.front();
    const bool stale = !next.control && now - next.queued_ms > static_cast<int64_t>(limits_.stream_buffer_ms);
    if (!stale && !session_->publish_qos0(next.topic, next.payload)) break;  // not connected: on_disconnected drops them
    stream_out_bytes_ -= next.payload.size();
    if (stale) {
      ++dropped;
    } else {
      ++metrics_.backplane_messages_out;
      stream_unwritten_bytes_ += next.payload.size();
    }
    stream_out_.pop_front();
  }
  drop_stream_frames(dropped);
}

void Backplane::on_qos0_written(size_t bytes) {
  stream_unwritten_bytes_ -= std::min(bytes, stream_unwritten_bytes_);
  pump_streams();
}

void Backplane::drop_stream_frames(uint64_t frames) {
  if (frames > 0 && on_stream_drops_) on_stream_drops_(frames);
}

void Backplane::send_result(const std::string& flat, const std::string& to, const proto::Result& result) {
  enqueue(flat_topic(flat, "results/" + to), backplane::encode_result(flat, config_.instance_id, result), false);
}

void Backplane::send_accepted(const std::string& flat, const std::string& to, const std::string& command_id) {
  enqueue(flat_topic(flat, "results/" + to), backplane::encode_accepted(flat, config_.instance_id, command_id), false);
}

uint64_t Backplane::enqueue(std::string topic, std::string payload, bool retain, std::function<void()> on_safe,
                            std::function<void()> on_dropped, int64_t deadline_ms) {
  if (unsafe_.size() >= kMaxUnsafe) {
    // Only reachable when the broker is gone for long: statuses stop being
    // acknowledged long before (the gateways' windows). Refused loudly: the
    // caller hears it (a gateway's link is closed and resends), and it is counted.
    ++metrics_.backplane_dropped;
    LOG_ERROR("backplane") << "instance=" << config_.instance_id << " " << unsafe_.size()
                           << " messages wait for the broker; dropping topic=" << log::q(topic.substr(0, 200));
    if (on_dropped) on_dropped();
    return 0;
  }
  const bool pending_before = unsent_ != unsafe_.end();
  const uint64_t handle = next_handle_++;
  payload = seal(topic, std::move(payload));
  unsafe_.push_back(Outgoing{std::move(topic), std::move(payload), retain, std::move(on_safe), handle, deadline_ms});
  if (!pending_before) unsent_ = std::prev(unsafe_.end());
  pump();
  return handle;
}

void Backplane::pump() {
  if (!connected()) return;  // on_connected starts again from the oldest
  while (unsent_ != unsafe_.end() && in_flight_.size() < kMaxInFlight && in_flight_bytes_ < kMaxInFlightBytes) {
    if (unsent_->deadline_ms != 0 && unsent_->deadline_ms <= clock_.wall_ms()) {
      // A command past its deadline: the holder would only answer `expired`, and its sender
      // has ended it itself. Published late it could only do harm.
      LOG_WARN("backplane") << "instance=" << config_.instance_id << " topic=" << log::q(unsent_->topic.substr(0, 200))
                            << " command past its deadline by " << clock_.wall_ms() - unsent_->deadline_ms
                            << " ms; dropped, not published " << (unsent_->left ? "again" : "at all");
      unsent_ = unsafe_.erase(unsent_);
      continue;
    }
    int mid = 0;
    if (!session_->publish(unsent_->topic, unsent_->payload, unsent_->retain, &mid)) return;
    ++metrics_.backplane_messages_out;
    unsent_->left = true;
    in_flight_bytes_ += unsent_->payload.size();
    in_flight_[mid] = unsent_;
    ++unsent_;
  }
}

void Backplane::on_published(int mid) {
  auto it = in_flight_.find(mid);
  if (it == in_flight_.end()) return;  // from before a reconnect: its copy was sent again
  auto entry = it->second;
  in_flight_.erase(it);
  in_flight_bytes_ -= entry->payload.size();
  std::function<void()> on_safe = std::move(entry->on_safe);
  unsafe_.erase(entry);
  pump();
  if (on_safe) on_safe();
}

void Backplane::set_accounts(const std::vector<config::FlatConfig>& flats) {
  std::string all;
  for (const auto& flat : flats) {
    all += flat.id + '\n' + flat.gateway_token_sha256 + '\n';
    for (const auto& user : flat.users) all += user.name + '\n' + user.password_hash + '\n';
    all += '\n';
  }
  const std::string digest = hash_token(all).substr(0, 16);
  if (digest == accounts_) return;
  accounts_ = digest;
  if (connected()) publish_online();
}

void Backplane::publish_online() {
  const std::string topic = instance_topic(config_.instance_id);
  session_->publish(topic,
                    seal(topic, backplane::encode_instance(config_.instance_id, true,
                                                           backplane::InstanceRun{run_, started_ms_, clock_.wall_ms(), accounts_})),
                    true);
}

void Backplane::on_connected() {
  if (fatal_) return;
  metrics_.backplane_connected = true;
  dead_.erase(config_.instance_id);
  // We ask for a persistent session: a broker that answers without one (restarted without
  // persistence, its sessions lost) delivered to nobody here what was published meanwhile.
  const bool session_lost = had_session_ && !session_->session_present();
  had_session_ = true;
  LOG_INFO("backplane") << "instance=" << config_.instance_id << " connected; run=" << run_ << ", " << unsafe_.size()
                        << " messages to publish again, " << watched_.size() << " flats watched";
  publish_online();
  in_flight_.clear();
  in_flight_bytes_ = 0;
  unsent_ = unsafe_.begin();
  pump();
  delivering_ = true;  // the broker has answered the connect and every subscription
  ping_sent_ms_ = 0;
  ping();
  listener_.backplane_up();
  if (session_lost) {
    ++metrics_.backplane_resyncs;
    LOG_WARN("backplane") << "instance=" << config_.instance_id
                          << " the broker kept no session for this instance (restarted without persistence?): what"
                             " was published while we were away did not reach us; asking the holders of the flats"
                             " watched here for it";
    listener_.backplane_session_lost();
  }
  if (!dirty_states_.empty()) flush_states();
}

void Backplane::on_disconnected(const std::string& why) {
  metrics_.backplane_connected = false;
  ping_timer_.cancel();
  in_flight_.clear();  // unacknowledged ones are published again on connect
  in_flight_bytes_ = 0;
  unsent_ = unsafe_.begin();
  // Stream data is real time: what waits for the broker now is of no use later.
  uint64_t frames = 0;
  for (const auto& o : stream_out_) frames += o.control ? 0 : 1;
  stream_out_.clear();
  stream_out_bytes_ = 0;
  stream_unwritten_bytes_ = 0;
  drop_stream_frames(frames);
  LOG_WARN("backplane") << "instance=" << config_.instance_id << " broker connection lost (" << why << "); "
                        << unsafe_.size() << " messages wait for the next one";
  if (delivering_) lost(why);
}

void Backplane::ping() {
  if (!connected() || fatal_) return;
  const int64_t now = clock_.mono_ms();
  if (delivering_ && ping_sent_ms_ != 0 && now - ping_sent_ms_ >= kPingLostMs) {
    lost("our ping did not come back through it within " + std::to_string(kPingLostMs) + " ms");
  }
  if (ping_sent_ms_ == 0) ping_sent_ms_ = now;
  const std::string topic = backplane::ping_topic(config_.instance_id);
  session_->publish(topic, seal(topic, backplane::encode_ping(config_.instance_id, run_, ++ping_n_)), false);
  // The next ping, or the moment the oldest one not back is late if that comes first.
  int64_t next = kPingIntervalMs;
  if (delivering_) next = std::min(next, ping_sent_ms_ + kPingLostMs - now);
  ping_timer_.start(static_cast<uint32_t>(std::max<int64_t>(1, next)));
}

void Backplane::on_ping(int64_t n) {
  if (n > ping_n_) return;  // not one this process sent
  ping_sent_ms_ = 0;
  if (delivering_ || !connected()) return;
  delivering_ = true;
  LOG_INFO("backplane") << "instance=" << config_.instance_id << " the broker delivers again (ping " << n << " back)";
  listener_.backplane_up();
}

// Nothing the other instances say reaches us now: the listener shows their flats offline.
void Backplane::lost(const std::string& why) {
  delivering_ = false;
  LOG_WARN("backplane") << "instance=" << config_.instance_id << " broker lost (" << why
                        << "): the flats held by other instances show offline here until it is back";
  listener_.backplane_down();
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

void Backplane::on_instance(const backplane::InstanceStatus& m) {
  if (m.instance == config_.instance_id) {
    // Another process with our instance_id (check_message keeps only other runs). The one that
    // started later leaves; a message published before this process started is an earlier
    // run's, left in the broker (a crash): not a live process.
    if (!m.online || fatal_) return;
    const bool they_are_older = std::tie(m.started_ms, m.run) < std::tie(started_ms_, run_);
    if (they_are_older && m.at_ms >= started_ms_) {
      fatal_ = true;
      const std::string why = "instance_id " + config_.instance_id + " is already used by a running flatlink-cloud (run " +
                              m.run + "): each instance needs an instance_id of its own";
      LOG_ERROR("backplane") << "instance=" << config_.instance_id << " run=" << run_ << " " << why;
      session_->stop();
      metrics_.backplane_connected = false;
      if (on_fatal_) on_fatal_(why);
    } else if (!they_are_older) {
      LOG_ERROR("backplane") << "instance=" << config_.instance_id << " run=" << run_
                             << " another process started later with this instance_id (run " << m.run
                             << "); it leaves: each instance needs an instance_id of its own";
    }
    return;
  }
  if (m.online) {
    if (dead_.erase(m.instance)) LOG_INFO("backplane") << "instance=" << m.instance << " is back";
    if (!m.accounts.empty() && !accounts_.empty() && m.accounts != accounts_ &&
        accounts_warned_[m.instance] != m.accounts) {
      accounts_warned_[m.instance] = m.accounts;
      LOG_WARN("backplane") << "instance=" << config_.instance_id << " other=" << m.instance
                            << " the instances' accounts differ (flats, gateway tokens or users; digest " << m.accounts
                            << " there, " << accounts_ << " here): a login or token may work on one and not the other;"
                               " give every instance the same flats";
    }
  } else if (dead_.insert(m.instance).second) {
    LOG_WARN("backplane") << "instance=" << m.instance << " left or died (its will); its flats show offline";
    listener_.instance_down(m.instance);
  }
}

std::string Backplane::seal(const std::string& topic, std::string payload) const {
  if (config_.shared_key.empty()) return payload;
  return backplane::sign(config_.shared_key, topic, payload);
}

void Backplane::reject(const std::string& topic, const std::string& why) {
  ++metrics_.backplane_rejected;
  const int64_t now = clock_.mono_ms();
  // Logged with backoff: the first at once, then at most one line per window, the window
  // doubling (up to kRejectLogMaxMs) while they go on; each line counts those not logged.
  if (now < reject_log_next_ms_) {
    ++rejects_suppressed_;
    return;
  }
  reject_log_window_ms_ = now - reject_log_next_ms_ > kRejectLogMaxMs
                              ? kRejectLogMinMs
                              : std::min(kRejectLogMaxMs, std::max(kRejectLogMinMs, 2 * reject_log_window_ms_));
  reject_log_next_ms_ = now + reject_log_window_ms_;
  LOG_WARN("backplane") << "instance=" << config_.instance_id << " topic=" << log::q(topic.substr(0, 200))
                        << " dropped: " << why << "; a broker client without the instances' key, or an instance"
                        << " with another backplane.shared_key_file"
                        << (rejects_suppressed_ > 0 ? " (" + std::to_string(rejects_suppressed_) +
                                                          " more dropped since the last line)"
                                                    : std::string());
  rejects_suppressed_ = 0;
}

// A stream topic's message: a binary frame after its tag, or a signed JSON control message.
void Backplane::on_stream_message(Message& message) {
  std::string payload;
  if (message.oversize == 0 && !message.payload.empty()) {
    std::string why;
    std::optional<std::string> inner;
    if (message.payload.front() != '{') {
      inner = backplane::verify_frame(config_.shared_key, message.topic, message.payload, why);
    } else if (config_.shared_key.empty()) {
      inner = backplane::strip_tag(message.payload);
    } else {
      inner = backplane::verify(config_.shared_key, message.topic, message.payload, why);
    }
    if (!inner) {
      reject(message.topic, why);
      return;
    }
    payload = std::move(*inner);
  }
  auto checked = backplane::check_stream(
      backplane::Incoming{message.topic, payload, message.retained, message.oversize}, check_context_);
  if (auto* refused = std::get_if<backplane::Refused>(&checked)) {
    refuse(message.topic, refused->why);
  } else if (auto* control = std::get_if<backplane::StreamControl>(&checked)) {
    listener_.remote_stream_control(*control);
  } else if (auto* data = std::get_if<backplane::StreamData>(&checked)) {
    listener_.remote_stream_frame(*data);
  }
}

void Backplane::on_message(Message& message) {
  ++metrics_.backplane_messages_in;
  check_context_.max_message_bytes = limits_.max_message_bytes;  // a reload may change it
  if (backplane::is_stream_topic(message.topic)) {
    on_stream_message(message);
    return;
  }
  // The tag first: a message without the instances' key is not even parsed. (An oversize one,
  // whose payload was not kept, and an empty retained one, which clears, go to the check.)
  std::string payload;
  if (message.oversize == 0 && !message.payload.empty()) {
    if (config_.shared_key.empty()) {
      payload = backplane::strip_tag(message.payload);
    } else {
      std::string why;
      auto inner = backplane::verify(config_.shared_key, message.topic, message.payload, why);
      if (!inner) {
        reject(message.topic, why);
        return;
      }
      payload = std::move(*inner);
    }
  }
  auto checked = backplane::check_message(
      backplane::Incoming{message.topic, payload, message.retained, message.oversize}, check_context_);
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, backplane::Refused>) {
          refuse(message.topic, m.why);
        } else if constexpr (std::is_same_v<T, backplane::Ignored>) {
          if (m.reason == backplane::Ignored::Reason::not_watched) {
            LOG_DEBUG("backplane") << "topic=" << log::q(message.topic.substr(0, 200))
                                   << " message for a flat not watched now; ignored";
          }
        } else if constexpr (std::is_same_v<T, backplane::InstanceStatus>) {
          on_instance(m);
        } else if constexpr (std::is_same_v<T, backplane::GatewayMessage>) {
          listener_.remote_status(m);
        } else if constexpr (std::is_same_v<T, backplane::ResendRequest>) {
          if (m.to == config_.instance_id) listener_.remote_resend(m);
        } else if constexpr (std::is_same_v<T, backplane::RepairDone>) {
          listener_.remote_repaired(m);
        } else if constexpr (std::is_same_v<T, backplane::StateMessage>) {
          listener_.remote_state(m.flat, m.state);
        } else if constexpr (std::is_same_v<T, backplane::HolderMessage>) {
          // Our own claims come back too: one left retained by an earlier run of this instance is withdrawn there.
          listener_.remote_holder(m.flat, m.claim);
        } else if constexpr (std::is_same_v<T, backplane::CommandMessage>) {
          listener_.remote_command(m.flat, m.from, m.command);
        } else if constexpr (std::is_same_v<T, backplane::ResultMessage>) {
          listener_.remote_result(m.flat, m.from, m.result, m.accepted);
        } else if constexpr (std::is_same_v<T, backplane::Ping>) {
          on_ping(m.n);
        }
      },
      checked);
}

}  // namespace flatlink::cloud
