// The cloud's device streams (docs/protocol.md, "Streams"): a browser of a flat opens a
// stream to or from one of that flat's stream devices; the cloud checks the flat, the
// device, its stream capability and the flat's limits, numbers the stream, asks the
// gateway, and then relays binary frames between the two links.
//
// Real time, not durable: frames are never stored or resent; each connection queues at
// most limits.stream_buffer_ms of audio per stream and drops the oldest beyond it
// (Server::Session), and text always goes out before binary on a connection.
//
// Across instances (docs/scale-out.md, "Streams across instances"): a browser's stream for a
// flat whose gateway link another instance holds is relayed over the backplane. Its instance
// (the origin) numbers it and asks the holder; each side keeps the other's end as a RemotePeer
// (streams.cpp), which turns what the hub would send to a browser or a gateway into QoS 0
// messages on the stream's topic; the holder checks the device and its limits again. Each hop
// keeps the same bound: limits.stream_buffer_ms per connection queue and in the backplane's
// stream queue, oldest dropped and counted in frames_dropped.
//
// Isolation: every lookup goes through the Router with the peer's own flat; a stream id is
// only meaningful within the flat that opened it (and across instances, within the flat of
// its topic, checked by the holder against that flat's own gateway). Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "cloud-link/stream_protocol.h"
#include "cloud-server/backplane.h"
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

  // Across instances: null, alone (a stream for a flat held elsewhere is refused).
  void attach_backplane(Backplane* backplane) { backplane_ = backplane; }
  // From the backplane (checked by backplane::check_stream), through the Router.
  void remote_control(const backplane::StreamControl& message);
  void remote_frame(backplane::StreamData& data);
  // That instance left or died, or the broker is lost (instance empty: every other instance):
  // the streams across it end, and their local ends are told.
  void instance_gone(const std::string& instance);

  StreamMetrics& metrics() { return metrics_; }
  uint32_t buffer_ms() const { return config_.limits.stream_buffer_ms; }

 private:
  struct Stream;
  using Key = std::pair<std::string, uint16_t>;  // flat, stream id

  void refuse(Peer& browser, const proto::StreamMessage& request, const std::string& flat, const std::string& why);
  // A stream_open from `browser` (a local one, or the origin's RemotePeer at the holder) for
  // the flat, to `gateway` (local, or null: the holder elsewhere): checked, numbered, asked.
  Stream* open(Peer& browser, const std::string& flat, const proto::StreamMessage& m, Peer* gateway,
               const std::string& holder);
  void gateway_opened(Stream& s);
  // A frame of the stream from one end, relayed to the other (or dropped, counted).
  void relay(Stream& s, std::string frame, size_t payload_bytes, bool from_gateway);
  void end(Key key, const std::string& reason, bool tell_browser, bool tell_gateway);  // key by value: a timer of the stream may be the caller
  bool has_streams(Peer& peer) const;

  const config::CloudConfig& config_;
  Router& router_;
  EventLoop& loop_;
  const Clock& clock_;
  std::map<Key, std::unique_ptr<Stream>> streams_;
  std::map<std::string, uint16_t> last_id_;  // per flat
  std::map<Peer*, size_t> peers_;            // peers with streams, and how many
  // At the holder: the streams other instances opened, by (flat, origin instance, id there).
  std::map<std::tuple<std::string, std::string, uint16_t>, uint16_t> remote_ids_;
  Backplane* backplane_ = nullptr;
  StreamMetrics metrics_;
};

}  // namespace flatlink::cloud
