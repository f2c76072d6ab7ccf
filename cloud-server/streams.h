// The cloud's device streams (docs/protocol.md, "Streams"): a browser of a flat opens a
// stream to or from one of that flat's stream devices; the cloud checks the flat, the
// device, its stream capability and the flat's limits, numbers the stream, asks the
// gateway, and then relays binary frames between the two links.
//
// Real time, not durable: frames are never stored or resent; each connection queues at
// most limits.stream_buffer_ms of audio per stream and drops the oldest beyond it
// (Server::Session), and text always goes out before binary on a connection.
//
// Isolation: every lookup goes through the Router with the peer's own flat; a stream id is
// only meaningful within the flat that opened it. Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "cloud-link/stream_protocol.h"
#include "cloud-server/router.h"
#include "common/clock.h"
#include "common/event_loop.h"
#include "config/cloud_config.h"

namespace flatlink::cloud {

struct StreamMetrics {
  int64_t open = 0;                 // streams open now
  uint64_t opened = 0;              // streams the gateways confirmed
  uint64_t refused = 0;             // refused by the cloud (limits, device, flat) or by the gateway
  uint64_t frames_in = 0;           // binary frames received and relayed
  uint64_t bytes_in = 0;
  uint64_t frames_refused = 0;      // malformed, unknown stream, wrong direction or over the bitrate
  uint64_t frames_dropped = 0;      // dropped by a connection's bounded queue (too old or too many)
  std::string render() const;
};

class StreamHub {
 public:
  StreamHub(const config::CloudConfig& config, Router& router, EventLoop& loop, const Clock& clock);
  ~StreamHub();

  void browser_message(Peer& browser, const proto::StreamMessage& message);
  void gateway_message(Peer& gateway, const proto::StreamMessage& message);
  // A complete binary frame from a peer. False when that peer has no stream at all: the
  // caller closes it (1003), as a v1 peer that sends binary frames. Otherwise the frame is
  // relayed or dropped (counted).
  bool binary(Peer& from, bool from_gateway, std::string frame);
  // The peer's connection is closing: its streams end; the other ends are told.
  void peer_gone(Peer& peer);

  StreamMetrics& metrics() { return metrics_; }
  uint32_t buffer_ms() const { return config_.limits.stream_buffer_ms; }

 private:
  struct Stream;
  using Key = std::pair<std::string, uint16_t>;  // flat, stream id

  void refuse(Peer& browser, const proto::StreamMessage& request, const std::string& flat, const std::string& why);
  void end(Key key, const std::string& reason, bool tell_browser, bool tell_gateway);  // key by value: a timer of the stream may be the caller
  bool has_streams(Peer& peer) const;

  const config::CloudConfig& config_;
  Router& router_;
  EventLoop& loop_;
  const Clock& clock_;
  std::map<Key, std::unique_ptr<Stream>> streams_;
  std::map<std::string, uint16_t> last_id_;  // per flat
  std::map<Peer*, size_t> peers_;            // peers with streams, and how many
  StreamMetrics metrics_;
};

}  // namespace flatlink::cloud
