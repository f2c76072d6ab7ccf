// The cloud's device streams.
#include "cloud-server/streams.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "cloud-link/stream_frames.h"
#include "common/log.h"

namespace flatlink::cloud {
namespace {

constexpr uint32_t kOpenTimeoutMs = 5000;  // the gateway answers a stream_open within this

const char* capability_for(proto::StreamDirection direction) {
  return direction == proto::StreamDirection::from_device ? "audio_capture" : "audio_playback";
}

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
  if (!gateway) {
    const std::string holder = router_.flat_holder_elsewhere(flat);
    if (!holder.empty()) {
      return refuse(browser, m, flat,
                    "the flat's gateway is connected to instance " + holder +
                        "; streams do not cross the backplane: open it on that instance");
    }
    return refuse(browser, m, flat, "the flat's gateway is not connected");
  }
  const proto::DeviceReport* device = router_.flat_device(flat, m.device);
  if (!device) return refuse(browser, m, flat, "unknown device " + m.device);
  if (!device->info.capability(capability_for(m.direction))) {
    return refuse(browser, m, flat,
                  "device " + m.device + " has no " + capability_for(m.direction) + " capability (direction " +
                      std::string(proto::to_string(m.direction)) + ")");
  }
  size_t count = 0;
  uint64_t bitrate = 0;
  for (const auto& [key, stream] : streams_) {
    if (key.first != flat) continue;
    ++count;
    bitrate += stream->params.bitrate();
    if (stream->browser == &browser && stream->params.ref == m.ref) {
      return refuse(browser, m, flat, "a stream with ref " + m.ref + " is already open on this connection");
    }
  }
  const auto& limits = config_.limits;
  if (count >= limits.max_streams_per_flat) {
    return refuse(browser, m, flat,
                  "the flat has " + std::to_string(count) + " streams open; its limit is " +
                      std::to_string(limits.max_streams_per_flat));
  }
  if (bitrate + m.bitrate() > uint64_t{limits.max_stream_kbps_per_flat} * 1000) {
    return refuse(browser, m, flat,
                  "this stream's " + std::to_string(m.bitrate() / 1000) + " kbit/s would bring the flat to " +
                      std::to_string((bitrate + m.bitrate()) / 1000) + " kbit/s; its limit is " +
                      std::to_string(limits.max_stream_kbps_per_flat) + " kbit/s");
  }
  uint16_t& last = last_id_[flat];
  uint16_t id = 0;
  for (uint32_t tries = 0; tries < proto::kMaxStreamId && id == 0; ++tries) {
    last = static_cast<uint16_t>(last == proto::kMaxStreamId ? 1 : last + 1);
    if (!streams_.count(Key{flat, last})) id = last;
  }
  if (id == 0) return refuse(browser, m, flat, "no free stream id");

  auto stream = std::make_unique<Stream>();
  stream->flat = flat;
  stream->id = id;
  stream->params = m;
  stream->browser = &browser;
  stream->gateway = gateway;
  const Key key{flat, id};
  stream->open_timer = std::make_unique<Timer>(loop_, [this, key] {
    ++metrics_.refused;
    end(key, "the gateway did not answer within " + std::to_string(kOpenTimeoutMs) + " ms", true, true);
  });
  stream->open_timer->start(kOpenTimeoutMs);
  streams_[key] = std::move(stream);
  ++peers_[&browser];
  ++peers_[gateway];
  LOG_INFO("streams") << "flat=" << flat << " stream=" << id << " device=" << m.device << " "
                      << proto::to_string(m.direction) << " " << m.codec << "/" << m.rate << " ref=" << m.ref
                      << " asking the gateway";
  proto::StreamMessage open = m;
  open.stream = id;
  gateway->send(proto::encode(open, proto::StreamRoute::cloud_to_gateway));
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
  if (m.type == proto::StreamType::opened) {
    if (s.open) return;
    s.open = true;
    s.open_timer.reset();
    s.tokens = s.params.bitrate() / 8.0;  // about a second's worth
    s.refill_ms = clock_.mono_ms();
    ++metrics_.opened;
    ++metrics_.open;
    LOG_INFO("streams") << "flat=" << s.flat << " stream=" << s.id << " device=" << s.params.device << " open";
    proto::StreamMessage opened = s.params;
    opened.type = proto::StreamType::opened;
    opened.stream = s.id;
    s.browser->send(proto::encode(opened, proto::StreamRoute::cloud_to_browser));
    return;
  }
  // stream_closed: a refusal, or the device ended it.
  if (!s.open) ++metrics_.refused;
  end(it->first, m.reason.empty() ? "closed by the gateway" : m.reason, true, false);
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
  Stream& s = *it->second;
  // The declared bitrate with its headers at 50 frames/s, a quarter to spare and a second's
  // burst; beyond it frames are dropped. A frame costs its header and at least 5 ms of audio,
  // so that a flood of tiny frames is bounded too.
  const double bytes_per_s = (s.params.bitrate() / 8.0 + 50.0 * stream::kHeaderBytes) * 1.25;
  const int64_t now = clock_.mono_ms();
  s.tokens = std::min(bytes_per_s, s.tokens + (now - s.refill_ms) * bytes_per_s / 1000.0);
  s.refill_ms = now;
  const double min_payload = s.params.bitrate() / 8.0 / 200.0;  // 5 ms
  const double cost = std::max(min_payload, static_cast<double>(decoded->payload.size())) + stream::kHeaderBytes;
  if (decoded->payload.empty() || s.tokens < cost) {
    ++metrics_.frames_refused;
    return true;
  }
  s.tokens -= cost;
  ++s.frames;
  ++metrics_.frames_in;
  metrics_.bytes_in += frame.size();
  const uint32_t duration = s.params.frame_duration_us(decoded->payload.size());
  Peer* to = from_gateway ? s.browser : s.gateway;
  to->send_binary(std::move(frame), s.id, duration);
  return true;
}

}  // namespace flatlink::cloud
