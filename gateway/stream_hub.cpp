// The gateway's device streams.
#include "gateway/stream_hub.h"

#include "cloud-link/stream_frames.h"
#include "common/log.h"
#include "device-adapters/audio/stream_devices.h"

namespace flatlink::gateway {

StreamHub::StreamHub(link::LinkClient& link, const DeviceRegistry& registry)
    : link_(link), registry_(registry) {}

StreamHub::~StreamHub() {
  for (auto& [id, s] : streams_) s.devices->stop_stream(id);
}

void StreamHub::on_stream_message(const proto::StreamMessage& m) {
  if (m.type == proto::StreamType::open) {
    open(m);
  } else if (m.type == proto::StreamType::close) {
    close(static_cast<uint16_t>(m.stream), m.reason.empty() ? "closed by the cloud" : m.reason, false);
  }
}

void StreamHub::open(const proto::StreamMessage& m) {
  const auto id = static_cast<uint16_t>(m.stream);
  auto refuse = [&](const std::string& why) {
    LOG_WARN("streams") << "stream=" << id << " device=" << m.device << " refused: " << why;
    proto::StreamMessage closed;
    closed.type = proto::StreamType::closed;
    closed.stream = m.stream;
    closed.reason = why;
    link_.send_stream_message(closed);
  };
  if (streams_.count(id)) close(id, "replaced by a new stream with the same id", false);
  const DeviceEntry* entry = registry_.find(m.device);
  auto* devices = entry ? dynamic_cast<adapters::StreamDevices*>(entry->adapter) : nullptr;
  if (!devices) return refuse("device " + m.device + " is not a stream device of this gateway");
  if (!entry->online) return refuse("device " + m.device + " is offline");
  const adapters::StreamFormat format{m.rate, m.channels, m.opus()};
  auto ended = [this, id](const std::string& why) { close(id, why, true); };
  std::optional<std::string> why;
  if (m.direction == proto::StreamDirection::from_device) {
    why = devices->start_capture(
        m.device, id, format,
        [this, id](std::string pcm, int64_t capture_ms) {
          auto it = streams_.find(id);
          if (it == streams_.end()) return;
          stream::FrameHeader header;
          header.stream = id;
          header.seq = it->second.next_seq++;
          header.capture_ms = capture_ms;
          const uint32_t duration = stream::frame_duration_us(it->second.opus, pcm.size(), it->second.rate, 1);
          link_.send_stream_frame(id, duration, stream::encode_frame(header, pcm));
        },
        ended);
  } else {
    why = devices->start_playback(m.device, id, format, ended);
  }
  if (why) return refuse(*why);
  streams_[id] = Stream{devices, m.device, m.direction, m.rate, m.opus()};
  LOG_INFO("streams") << "stream=" << id << " device=" << m.device << " " << proto::to_string(m.direction) << " "
                      << m.codec << "/" << m.rate << " open";
  proto::StreamMessage opened;
  opened.type = proto::StreamType::opened;
  opened.stream = m.stream;
  link_.send_stream_message(opened);
}

void StreamHub::close(uint16_t id, const std::string& reason, bool tell_cloud) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Stream s = it->second;
  streams_.erase(it);
  s.devices->stop_stream(id, link_.forget_stream(id));
  LOG_INFO("streams") << "stream=" << id << " device=" << s.device << " closed: " << reason;
  if (tell_cloud) {
    proto::StreamMessage closed;
    closed.type = proto::StreamType::closed;
    closed.stream = id;
    closed.reason = reason;
    link_.send_stream_message(closed);
  }
}

void StreamHub::on_stream_frame(std::string frame) {
  std::string why;
  auto decoded = stream::decode_frame(frame, &why);
  if (!decoded) {
    LOG_DEBUG("streams") << "binary frame from the cloud refused: " << why;
    return;
  }
  auto it = streams_.find(decoded->header.stream);
  if (it == streams_.end() || it->second.direction != proto::StreamDirection::to_device) return;
  it->second.devices->play(decoded->header.stream, decoded->payload, decoded->header.capture_ms);
}

void StreamHub::stop_all(const std::string& reason) {
  while (!streams_.empty()) close(streams_.begin()->first, reason, false);
}

}  // namespace flatlink::gateway
