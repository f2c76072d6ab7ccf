// The cloud's device streams.
#include "cloud-server/streams.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include <openssl/rand.h>

#include "cloud-link/stream_frames.h"
#include "common/log.h"

namespace flatlink::cloud {
namespace {

constexpr uint32_t kOpenTimeoutMs = 5000;  // the gateway answers a stream_open within this

const char* capability_for(proto::StreamDirection direction) {
  return direction == proto::StreamDirection::from_device ? "audio_capture" : "audio_playback";
}

std::string random_nonce() {
  unsigned char rnd[backplane::kNonceHexBytes / 2];
  RAND_bytes(rnd, sizeof rnd);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : rnd) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// The other instance's end of a stream: what the hub sends to it (the stream messages it
// would send to a gateway or a browser, and frames) goes out on the stream's topic.
class RemotePeer final : public Peer {
 public:
  RemotePeer(Backplane& backplane, std::string topic, std::string flat, const std::string& instance)
      : backplane_(backplane),
        topic_(std::move(topic)),
        flat_(std::move(flat)),
        describe_("instance=" + instance + " topic=" + topic_) {}
  void send(std::string frame) override { backplane_.send_stream_control(topic_, flat_, frame); }
  void close(uint16_t, const std::string&) override {}
  const std::string& describe() const override { return describe_; }
  void send_binary(std::string frame, uint16_t, uint32_t) override { backplane_.send_stream_frame(topic_, frame); }

 private:
  Backplane& backplane_;
  std::string topic_;
  std::string flat_;
  std::string describe_;
};

}  // namespace

struct StreamHub::Stream {
  std::string flat;
  uint16_t id = 0;
  proto::StreamMessage params;  // ref, device, direction, codec, rate, channels
  Peer* browser = nullptr;
  Peer* gateway = nullptr;
  bool open = false;  // the gateway confirmed
  std::unique_ptr<Timer> open_timer;
  double tokens = 0;  // bytes the stream may still send now (bitrate check)
  int64_t refill_ms = 0;
  uint64_t frames = 0;
  // Across instances: the other instance, and its end (the gateway's at the origin, the
  // browser's at the holder); the stream's name on the backplane (origin instance, its id
  // there, nonce).
  std::string remote;
  std::unique_ptr<Peer> remote_peer;
  std::string origin;
  uint16_t origin_id = 0;
  std::string nonce;
};

std::string StreamMetrics::render() const {
  std::ostringstream os;
  auto metric = [&](const char* name, const char* type, const char* help) {
    os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  metric("flatlink_streams_open", "gauge", "Device streams open now.");
  os << "flatlink_streams_open " << open << '\n';
  metric("flatlink_streams_total", "counter", "Device streams by how their opening ended.");
  os << "flatlink_streams_total{result=\"opened\"} " << opened << '\n';
  os << "flatlink_streams_total{result=\"refused\"} " << refused << '\n';
  metric("flatlink_stream_frames_total", "counter", "Binary stream frames: relayed, refused, dropped by a full queue.");
  os << "flatlink_stream_frames_total{result=\"relayed\"} " << frames_in << '\n';
  os << "flatlink_stream_frames_total{result=\"refused\"} " << frames_refused << '\n';
  os << "flatlink_stream_frames_total{result=\"dropped\"} " << frames_dropped << '\n';
  metric("flatlink_stream_bytes_total", "counter", "Bytes of binary stream frames relayed.");
  os << "flatlink_stream_bytes_total " << bytes_in << '\n';
  return os.str();
}

StreamHub::StreamHub(const config::CloudConfig& config, Router& router, EventLoop& loop, const Clock& clock)
    : config_(config), router_(router), loop_(loop), clock_(clock) {}

StreamHub::~StreamHub() = default;

bool StreamHub::has_streams(Peer& peer) const { return peers_.count(&peer) > 0; }

namespace {
// stream_closed for the browser that asked (stream 0: it was never opened).
std::string closed_message(const std::string& ref, uint32_t stream, const std::string& reason) {
  proto::StreamMessage closed;
  closed.type = proto::StreamType::closed;
  closed.ref = ref;
  closed.stream = stream;
  closed.reason = reason;
  return proto::encode(closed, proto::StreamRoute::cloud_to_browser);
}
}  // namespace

void StreamHub::refuse(Peer& browser, const proto::StreamMessage& request, const std::string& flat,
                       const std::string& why) {
  ++metrics_.refused;
  LOG_WARN("streams") << "flat=" << (flat.empty() ? "-" : flat) << " device=" << request.device << " ref=" << request.ref
                      << " stream refused: " << why;
  browser.send(closed_message(request.ref, 0, why));
}

void StreamHub::browser_message(Peer& browser, const proto::StreamMessage& m) {
  const std::string* flat_ptr = router_.browser_flat(browser);
  if (!flat_ptr) {
    if (m.type == proto::StreamType::open) {
      refuse(browser, m, "", "log in to a flat first");
    }
    browser.close(proto::close_code::kPolicyViolation, "login first");
    return;
  }
  const std::string flat = *flat_ptr;
  if (m.type == proto::StreamType::close) {
    auto it = streams_.find(Key{flat, static_cast<uint16_t>(m.stream)});
    if (it == streams_.end() || it->second->browser != &browser) return;  // already ended, or not its own
    end(it->first, "closed by the browser", true, true);
    return;
  }
  // stream_open
  Peer* gateway = router_.flat_gateway(flat);
  std::string holder;
  if (!gateway) {
    holder = router_.flat_holder_elsewhere(flat);
    if (holder.empty()) return refuse(browser, m, flat, "the flat's gateway is not connected");
    if (!backplane_ || !backplane_->delivering()) {
      return refuse(browser, m, flat,
                    "the flat's gateway is connected to instance " + holder + " and the backplane is down");
    }
  }
  open(browser, flat, m, gateway, holder);
}

StreamHub::Stream* StreamHub::open(Peer& browser, const std::string& flat, const proto::StreamMessage& m, Peer* gateway,
                                   const std::string& holder) {
  // The device is checked where the gateway link is: the holder (the origin's copy of the
  // flat's devices may still be an earlier link's, for a moment after the gateway moved).
  const proto::DeviceReport* device = gateway ? router_.flat_device(flat, m.device) : nullptr;
  if (gateway && !device) {
    refuse(browser, m, flat, "unknown device " + m.device);
    return nullptr;
  }
  if (device && !device->info.capability(capability_for(m.direction))) {
    refuse(browser, m, flat,
           "device " + m.device + " has no " + capability_for(m.direction) + " capability (direction " +
               std::string(proto::to_string(m.direction)) + ")");
    return nullptr;
  }
  size_t count = 0;
  uint64_t bitrate = 0;
  for (const auto& [key, stream] : streams_) {
    if (key.first != flat) continue;
    ++count;
    bitrate += stream->params.bitrate();
    if (stream->browser == &browser && stream->params.ref == m.ref) {
      refuse(browser, m, flat, "a stream with ref " + m.ref + " is already open on this connection");
      return nullptr;
    }
  }
  const auto& limits = config_.limits;
  if (count >= limits.max_streams_per_flat) {
    refuse(browser, m, flat,
           "the flat has " + std::to_string(count) + " streams open; its limit is " +
               std::to_string(limits.max_streams_per_flat));
    return nullptr;
  }
  if (bitrate + m.bitrate() > uint64_t{limits.max_stream_kbps_per_flat} * 1000) {
    refuse(browser, m, flat,
           "this stream's " + std::to_string(m.bitrate() / 1000) + " kbit/s would bring the flat to " +
               std::to_string((bitrate + m.bitrate()) / 1000) + " kbit/s; its limit is " +
               std::to_string(limits.max_stream_kbps_per_flat) + " kbit/s");
    return nullptr;
  }
  uint16_t& last = last_id_[flat];
  uint16_t id = 0;
  for (uint32_t tries = 0; tries < proto::kMaxStreamId && id == 0; ++tries) {
    last = static_cast<uint16_t>(last == proto::kMaxStreamId ? 1 : last + 1);
    if (!streams_.count(Key{flat, last})) id = last;
  }
  if (id == 0) {
    refuse(browser, m, flat, "no free stream id");
    return nullptr;
  }

  auto stream = std::make_unique<Stream>();
  stream->flat = flat;
  stream->id = id;
  stream->params = m;
  stream->browser = &browser;
  stream->gateway = gateway;
  if (!gateway) {
    // The origin: the holder's end is a RemotePeer on the stream's topic to the holder.
    stream->remote = holder;
    stream->origin = backplane_->instance();
    stream->origin_id = id;
    stream->nonce = random_nonce();
    stream->remote_peer = std::make_unique<RemotePeer>(
        *backplane_, backplane::stream_topic(holder, flat, stream->origin, id, stream->nonce), flat, holder);
    stream->gateway = stream->remote_peer.get();
  }
  const Key key{flat, id};
  stream->open_timer = std::make_unique<Timer>(loop_, [this, key] {
    ++metrics_.refused;
    end(key, "the gateway did not answer within " + std::to_string(kOpenTimeoutMs) + " ms", true, true);
  });
  stream->open_timer->start(kOpenTimeoutMs);
  Stream* s = stream.get();
  streams_[key] = std::move(stream);
  ++peers_[&browser];
  ++peers_[s->gateway];
  LOG_INFO("streams") << "flat=" << flat << " stream=" << id << " device=" << m.device << " "
                      << proto::to_string(m.direction) << " " << m.codec << "/" << m.rate << " ref=" << m.ref
                      << (holder.empty() ? " asking the gateway" : " asking instance " + holder + ", the holder");
  proto::StreamMessage open = m;
  open.stream = id;
  s->gateway->send(proto::encode(open, proto::StreamRoute::cloud_to_gateway));
  return s;
}

void StreamHub::gateway_message(Peer& gateway, const proto::StreamMessage& m) {
  const std::string* flat = router_.gateway_flat(gateway);
  if (!flat) return;  // replaced or before hello: ignored, as the router does
  auto it = streams_.find(Key{*flat, static_cast<uint16_t>(m.stream)});
  if (it == streams_.end() || it->second->gateway != &gateway) {
    LOG_DEBUG("streams") << "flat=" << *flat << " stream=" << m.stream << " message for no stream of this link";
    return;
  }
  Stream& s = *it->second;
  if (m.type == proto::StreamType::opened) return gateway_opened(s);
  // stream_closed: a refusal, or the device ended it.
  if (!s.open) ++metrics_.refused;
  end(it->first, m.reason.empty() ? "closed by the gateway" : m.reason, true, false);
}

void StreamHub::gateway_opened(Stream& s) {
  if (s.open) return;
  s.open = true;
  s.open_timer.reset();
  s.tokens = s.params.bitrate() / 8.0;  // about a second's worth
  s.refill_ms = clock_.mono_ms();
  ++metrics_.opened;
  ++metrics_.open;
  LOG_INFO("streams") << "flat=" << s.flat << " stream=" << s.id << " device=" << s.params.device << " open"
                      << (s.remote.empty() ? "" : " across instance " + s.remote);
  proto::StreamMessage opened = s.params;
  opened.type = proto::StreamType::opened;
  opened.stream = s.id;
  s.browser->send(proto::encode(opened, proto::StreamRoute::cloud_to_browser));
}

void StreamHub::remote_control(const backplane::StreamControl& m) {
  if (!backplane_) return;
  if (m.to_holder) {
    auto known = remote_ids_.find({m.flat, m.origin, m.id});
    if (m.message.type == proto::StreamType::close) {
      if (known == remote_ids_.end()) return;  // already ended
      auto it = streams_.find(Key{m.flat, known->second});
      if (it == streams_.end() || it->second->nonce != m.nonce) return;
      end(it->first, m.message.reason.empty() ? "closed by the browser" : m.message.reason, false, true);
      return;
    }
    if (known != remote_ids_.end()) return;  // a stream_open seen already
    // The browser's end is a RemotePeer answering on the stream's topic to the origin; the
    // holder checks everything again against the flat of the topic and its own gateway link.
    auto browser = std::make_unique<RemotePeer>(*backplane_, backplane::stream_topic(m.origin, m.flat, m.origin, m.id, m.nonce),
                                                m.flat, m.origin);
    proto::StreamMessage request = m.message;
    request.ref = "remote";  // the origin knows its browser's ref; answers need an id here
    Peer* gateway = router_.flat_gateway(m.flat);
    if (!gateway) return refuse(*browser, request, m.flat, "the flat's gateway is not connected to instance " + backplane_->instance());
    Stream* s = open(*browser, m.flat, request, gateway, "");
    if (!s) return;
    s->remote = m.origin;
    s->origin = m.origin;
    s->origin_id = m.id;
    s->nonce = m.nonce;
    s->remote_peer = std::move(browser);  // s->browser already points to it
    remote_ids_[{m.flat, m.origin, m.id}] = s->id;
    return;
  }
  // The holder's answer, to this instance: the origin.
  auto it = streams_.find(Key{m.flat, m.id});
  if (it == streams_.end() || it->second->remote != m.from || it->second->nonce != m.nonce) return;
  Stream& s = *it->second;
  if (m.message.type == proto::StreamType::opened) return gateway_opened(s);
  if (!s.open) ++metrics_.refused;
  end(it->first, m.message.reason.empty() ? "closed by instance " + m.from : m.message.reason, true, false);
}

void StreamHub::remote_frame(backplane::StreamData& data) {
  if (!backplane_) return;
  const bool at_origin = data.origin == backplane_->instance();
  uint16_t id = data.id;
  if (!at_origin) {
    auto known = remote_ids_.find({data.flat, data.origin, data.id});
    if (known == remote_ids_.end()) {
      ++metrics_.frames_refused;
      return;
    }
    id = known->second;
  }
  auto it = streams_.find(Key{data.flat, id});
  if (it == streams_.end() || it->second->nonce != data.nonce || it->second->remote.empty()) {
    ++metrics_.frames_refused;
    return;
  }
  auto decoded = stream::decode_frame(data.frame);
  if (!decoded) {
    ++metrics_.frames_refused;
    return;
  }
  const size_t payload_bytes = decoded->payload.size();
  // The frame carries the sender's number for the stream; this instance's link knows its own.
  data.frame[2] = static_cast<char>(id >> 8);
  data.frame[3] = static_cast<char>(id & 0xff);
  // At the origin frames come from the gateway's side; at the holder from the browser's.
  relay(*it->second, std::move(data.frame), payload_bytes, at_origin);
}

void StreamHub::instance_gone(const std::string& instance) {
  std::vector<std::pair<Key, bool>> ending;  // key, this instance has the browser's end
  for (const auto& [key, s] : streams_) {
    if (s->remote.empty() || (!instance.empty() && s->remote != instance)) continue;
    ending.emplace_back(key, s->remote_peer.get() == s->gateway);
  }
  const std::string why =
      instance.empty() ? std::string("the backplane is down") : "instance " + instance + " left";
  for (const auto& [key, browser_here] : ending) end(key, why, browser_here, !browser_here);
}

void StreamHub::end(Key key, const std::string& reason, bool tell_browser, bool tell_gateway) {
  auto it = streams_.find(key);
  if (it == streams_.end()) return;
  std::unique_ptr<Stream> s = std::move(it->second);
  streams_.erase(it);
  if (s->open) --metrics_.open;
  LOG_INFO("streams") << "flat=" << s->flat << " stream=" << s->id << " device=" << s->params.device << " ended after "
                      << s->frames << " frames: " << reason;
  for (Peer* peer : {s->browser, s->gateway}) {
    auto p = peers_.find(peer);
    if (p != peers_.end() && --p->second == 0) peers_.erase(p);
    peer->forget_stream(s->id);
  }
  if (!s->remote.empty() && s->origin != (backplane_ ? backplane_->instance() : std::string())) {
    remote_ids_.erase({s->flat, s->origin, s->origin_id});
  }
  if (tell_gateway) {
    proto::StreamMessage close;
    close.type = proto::StreamType::close;
    close.stream = s->id;
    close.reason = reason;
    s->gateway->send(proto::encode(close, proto::StreamRoute::cloud_to_gateway));
  }
  if (tell_browser) {
    s->browser->send(closed_message(s->params.ref, s->id, reason));
  }
}

void StreamHub::peer_gone(Peer& peer) {
  if (!has_streams(peer)) return;
  std::vector<std::pair<Key, bool>> ending;  // key, the browser left (else the gateway)
  for (const auto& [key, s] : streams_) {
    if (s->browser == &peer) ending.emplace_back(key, true);
    else if (s->gateway == &peer) ending.emplace_back(key, false);
  }
  for (const auto& [key, browser_left] : ending) {
    if (browser_left) {
      end(key, "the browser left", false, true);
    } else {
      end(key, "the gateway link closed", true, false);
    }
  }
}

bool StreamHub::binary(Peer& from, bool from_gateway, std::string frame) {
  if (!has_streams(from)) return false;
  std::string why;
  auto decoded = stream::decode_frame(frame, &why);
  if (!decoded) {
    ++metrics_.frames_refused;
    LOG_DEBUG("streams") << from.describe() << " binary frame refused: " << why;
    return true;
  }
  const std::string* flat = from_gateway ? router_.gateway_flat(from) : router_.browser_flat(from);
  if (!flat) return true;
  auto it = streams_.find(Key{*flat, decoded->header.stream});
  const auto expected_direction = from_gateway ? proto::StreamDirection::from_device : proto::StreamDirection::to_device;
  if (it == streams_.end() || !it->second->open || (from_gateway ? it->second->gateway : it->second->browser) != &from ||
      it->second->params.direction != expected_direction ||
      (!it->second->params.opus() && decoded->payload.size() % 2 != 0)) {
    ++metrics_.frames_refused;  // a stream just closed, another end's stream, or not pcm16
    return true;
  }
  relay(*it->second, std::move(frame), decoded->payload.size(), from_gateway);
  return true;
}

void StreamHub::relay(Stream& s, std::string frame, size_t payload_bytes, bool from_gateway) {
  const auto expected_direction = from_gateway ? proto::StreamDirection::from_device : proto::StreamDirection::to_device;
  if (!s.open || s.params.direction != expected_direction || (!s.params.opus() && payload_bytes % 2 != 0)) {
    ++metrics_.frames_refused;
    return;
  }
  // The declared bitrate with its headers at 50 frames/s, a quarter to spare and a second's
  // burst; beyond it frames are dropped. A frame costs its header and at least 5 ms of audio,
  // so that a flood of tiny frames is bounded too.
  const double bytes_per_s = (s.params.bitrate() / 8.0 + 50.0 * stream::kHeaderBytes) * 1.25;
  const int64_t now = clock_.mono_ms();
  s.tokens = std::min(bytes_per_s, s.tokens + (now - s.refill_ms) * bytes_per_s / 1000.0);
  s.refill_ms = now;
  const double min_payload = s.params.bitrate() / 8.0 / 200.0;  // 5 ms
  const double cost = std::max(min_payload, static_cast<double>(payload_bytes)) + stream::kHeaderBytes;
  if (payload_bytes == 0 || s.tokens < cost) {
    ++metrics_.frames_refused;
    return;
  }
  s.tokens -= cost;
  ++s.frames;
  ++metrics_.frames_in;
  metrics_.bytes_in += frame.size();
  const uint32_t duration = s.params.frame_duration_us(payload_bytes);
  Peer* to = from_gateway ? s.browser : s.gateway;
  to->send_binary(std::move(frame), s.id, duration);
}

}  // namespace flatlink::cloud
