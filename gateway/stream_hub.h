// The gateway's side of device streams (docs/protocol.md, "Streams"): takes the cloud's
// stream_open / stream_close, starts and stops the device's audio through its adapter's
// StreamDevices, frames captured audio for the link and hands received audio to the
// speaker. Nothing here touches the outbox: stream data is real time, never resent.
// Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "cloud-link/link_client.h"
#include "device-adapters/audio/stream_devices.h"
#include "gateway/device_registry.h"

namespace flatlink::gateway {

class StreamHub final : public link::StreamListener {
 public:
  StreamHub(link::LinkClient& link, const DeviceRegistry& registry);
  ~StreamHub() override;

  void on_stream_message(const proto::StreamMessage& message) override;
  void on_stream_frame(std::string frame) override;
  // The link went down, or the gateway stops: every stream ends (the cloud ends its side).
  void stop_all(const std::string& reason);

 private:
  struct Stream {
    adapters::StreamDevices* devices = nullptr;
    std::string device;
    proto::StreamDirection direction = proto::StreamDirection::from_device;
    uint32_t rate = 16000;
    bool opus = false;
    uint32_t next_seq = 0;
  };
  void open(const proto::StreamMessage& message);
  void close(uint16_t id, const std::string& reason, bool tell_cloud);

  link::LinkClient& link_;
  const DeviceRegistry& registry_;
  std::map<uint16_t, Stream> streams_;
};

}  // namespace flatlink::gateway
