// The backplane's messages on their own: the strict check of one message as the
// broker delivered it (topic + payload -> a typed message or the reason it is
// refused) and the encoders of the payloads Backplane publishes. Pure functions:
// no broker, no loop, no state (what the receiving instance knows comes in a
// CheckContext), so tests/cloud-server and tests/fuzz/fuzz_backplane.cpp call
// them directly. docs/scale-out.md has the topic layout and the envelopes.
//
// Threads: any; nothing shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cloud-link/protocol.h"
#include "cloud-link/stream_protocol.h"

namespace flatlink::cloud {

// Which instance holds a flat's gateway link (retained, per flat). An empty
// instance is a release of the claim (`from`, `since`).
struct HolderClaim {
  std::string from;      // the instance that published it
  std::string instance;  // the holder; empty: `from` let go of its claim made at `since`
  int64_t since = 0;     // wall ms the holder's link opened: newer wins, ties by instance id
  std::string gateway;

  bool operator==(const HolderClaim&) const = default;
};

// The last known state of a flat, published (retained) by its holder.
struct RemoteState {
  std::string from;
  std::string gateway;
  bool online = false;  // the gateway said hello on the holder's link
  int64_t since = 0;    // the holder's link (as in HolderClaim)
  int64_t seq = 0;      // the highest seq the holder accepted
  bool reset = false;   // this link's hello restarted the gateway's stream (its store was wiped): seq may go down
  int64_t dropped = 0;
  std::string epoch;    // the stream epoch `seq` belongs to ("" from an older instance, or a gateway without epochs)
  int64_t lost = 0;     // what the gateway reports maybe lost with a store it found gone (its hello's `lost`)
  std::vector<proto::DeviceReport> devices;

  bool operator==(const RemoteState&) const = default;
};

namespace backplane {

inline constexpr std::string_view kRoot = "flatlink/v1/";
inline constexpr size_t kMaxTopicBytes = 512;
// The envelope around one protocol message (itself at most proto::kMaxDepth deep).
inline constexpr int kMaxDepth = 1 + proto::kMaxDepth;

// flatlink/v1/flats/<flat>/<kind> (kind: status, state, holder, commands, results/<instance>).
std::string flat_topic(const std::string& flat, const std::string& kind);
// flatlink/v1/instances/<instance>
std::string instance_topic(const std::string& instance);
// flatlink/v1/ping/<instance>: only that instance subscribes to it.
std::string ping_topic(const std::string& instance);

// The largest payload taken for a given limits.max_message_bytes: an envelope around one
// protocol message of at most that size (the broker session's cap is the same).
inline size_t max_payload_bytes(size_t max_message_bytes) { return max_message_bytes * 2 + 1024; }

// One message as the broker delivered it.
struct Incoming {
  std::string_view topic;
  std::string_view payload;
  bool retained = false;
  size_t oversize = 0;  // the payload was over the session's cap: its size (payload is then empty)
};

// What the receiving instance brings to the check.
struct CheckContext {
  std::string instance;                 // this instance's id: its own messages come back from the broker
  std::string run;                      // this process's run id: an instance message of our id from another run is kept
  size_t max_message_bytes = 65'536;    // the config's limits.max_message_bytes
  std::function<bool(const std::string& flat)> knows_flat;  // the flat is in this instance's config
  std::function<bool(const std::string& flat)> watching;    // the flat is watched now
};

// Refused: counted and logged by Backplane, changes nothing.
struct Refused {
  std::string why;

  bool operator==(const Refused&) const = default;
};
// Well-formed so far but nothing to act on (not counted as a refusal).
struct Ignored {
  enum class Reason {
    cleared_retained,  // an empty retained payload: a retained message was cleared
    own_message,       // this instance's own message, back from the broker
    not_watched,       // a flat not watched now (a persistent session's old subscription)
  };
  Reason reason;

  bool operator==(const Ignored&) const = default;
};
// flatlink/v1/instances/<instance>: online, or its will / clean leave. An online message
// also says which run of the instance it is (a random id, the wall ms it started, the wall ms
// it was published) and a digest of its accounts (flats, tokens, users): two processes with
// one instance_id, and instances whose accounts differ, are told apart by these. Absent in
// a will, and from older versions: empty / 0.
struct InstanceStatus {
  std::string instance;
  bool online = false;
  std::string run;
  int64_t started_ms = 0;
  int64_t at_ms = 0;
  std::string accounts;

  bool operator==(const InstanceStatus&) const = default;
};
// flatlink/v1/flats/<flat>/status: a status batch, presence or device list of the flat's gateway.
struct GatewayMessage {
  std::string flat;
  std::string from;
  std::string gateway;
  proto::GatewayToCloud message;
  std::string epoch;  // the gateway's stream epoch a status batch's seqs belong to ("" when not said)
  // A status batch: the seq of the holder's previous batch of this stream, -1 when not said (an
  // older instance). The watching instances check the holder's continuity with it: a batch whose
  // prev is above the last seq seen here follows statuses that never arrived (a gap).
  int64_t prev = -1;
  // Sent again by the holder on this instance's result topic, for a gap this instance asked about.
  bool resent = false;

  bool operator==(const GatewayMessage&) const = default;
};
// flatlink/v1/flats/<flat>/resend: an instance watching the flat (`from`) asks its holder (`to`;
// the others ignore it) for the status batches of (gateway, epoch) it published with seqs in
// (after, upto]; upto 0: all it still has after `after`.
struct ResendRequest {
  std::string flat;
  std::string from;
  std::string to;
  std::string gateway;
  std::string epoch;
  int64_t after = 0;
  int64_t upto = 0;

  bool operator==(const ResendRequest&) const = default;
};
// On flatlink/v1/flats/<flat>/results/<this instance>: the end of the holder's answer to a
// ResendRequest. It sent (as resent GatewayMessages, before this) what it kept of (after,
// through]; `missing` statuses of that range it could not send (no longer kept, or published
// by an earlier holder): the asking instance counts them lost.
struct RepairDone {
  std::string flat;
  std::string from;
  std::string gateway;
  std::string epoch;
  int64_t after = 0;
  int64_t through = 0;
  int64_t missing = 0;

  bool operator==(const RepairDone&) const = default;
};
// flatlink/v1/flats/<flat>/state (retained).
struct StateMessage {
  std::string flat;
  RemoteState state;

  bool operator==(const StateMessage&) const = default;
};
// flatlink/v1/flats/<flat>/holder (retained). Our own claims are not ignored: one
// left retained by an earlier run of this instance is withdrawn by the receiver.
struct HolderMessage {
  std::string flat;
  HolderClaim claim;

  bool operator==(const HolderMessage&) const = default;
};
// flatlink/v1/flats/<flat>/commands
struct CommandMessage {
  std::string flat;
  std::string from;
  proto::CommandMsg command;

  bool operator==(const CommandMessage&) const = default;
};
// flatlink/v1/flats/<flat>/results/<this instance>: a result, or `accepted` (the
// holder took the command; result.id is the command id, outcome ok).
struct ResultMessage {
  std::string flat;
  std::string from;
  proto::Result result;
  bool accepted = false;

  bool operator==(const ResultMessage&) const = default;
};

// This instance's own ping, back from the broker (the broker still delivers; Backplane's liveness check).
struct Ping {
  int64_t n = 0;

  bool operator==(const Ping&) const = default;
};

using Checked = std::variant<Refused, Ignored, InstanceStatus, GatewayMessage, StateMessage, HolderMessage,
                             CommandMessage, ResultMessage, Ping, ResendRequest, RepairDone>;

// The strict check of one incoming message, in this order: not oversize, a
// flatlink/v1 topic of at most kMaxTopicBytes, a non-empty payload (an empty
// retained one is Ignored), at most max_payload_bytes, nested at most kMaxDepth
// deep (checked before parsing), a JSON object with "v": 1;
// then for instances/<id>: exactly {v, instance, online} with the instance equal to
// the topic's; for flats/<flat>/...: the layout (results only to this instance), a
// flat the context knows, "flat" equal to the topic's flat, a valid "from", a
// watched flat, then per kind exactly its keys, their types and ranges, and the
// embedded protocol message ("msg") through the wire protocol's own decoder (with
// limits.max_message_bytes). Never throws.
Checked check_message(const Incoming& in, const CheckContext& context);

// The payloads Backplane publishes (check_message accepts each of them when its
// fields are valid). `encoded` / the messages are wire-protocol messages.
// The online message carries the run (see InstanceStatus); the will and a clean leave do not need it.
struct InstanceRun {
  std::string run;
  int64_t started_ms = 0;
  int64_t at_ms = 0;
  std::string accounts;
};
std::string encode_instance(const std::string& instance, bool online, const InstanceRun& run = {});
// `epoch`: the stream epoch of a status batch's seqs (left out when empty); `prev`: the seq of the
// holder's previous batch of that stream (left out when negative). `resent`: sent again for a
// ResendRequest (on the asking instance's result topic).
std::string encode_gateway_message(const std::string& flat, const std::string& from, const std::string& gateway,
                                   const std::string& encoded, const std::string& epoch = {}, int64_t prev = -1,
                                   bool resent = false);
// request.flat / from are the envelope's.
std::string encode_resend(const ResendRequest& request);
std::string encode_repair_done(const RepairDone& done);
// state.from is not used: `from` is.
std::string encode_state(const std::string& flat, const std::string& from, const RemoteState& state);
// claim.from is not used: `from` is. A release has an empty instance and gateway.
std::string encode_holder(const std::string& flat, const std::string& from, const HolderClaim& claim);
std::string encode_command(const std::string& flat, const std::string& from, const proto::CommandMsg& command);
std::string encode_result(const std::string& flat, const std::string& from, const proto::Result& result);
std::string encode_ping(const std::string& instance, const std::string& run, int64_t n);
std::string encode_accepted(const std::string& flat, const std::string& from, const std::string& command_id);

// ---- Device streams across instances (docs/scale-out.md, "Streams across instances").
// flatlink/v1/streams/<to>/<flat>/<origin>/<id>/<nonce>: one topic per stream and direction,
// published with QoS 0 and received only by the instance named <to> (each subscribes to
// flatlink/v1/streams/<itself>/#). <origin> is the instance of the browser that opened the
// stream, <id> its stream id there (1..65535), <nonce> 16 hex digits it drew for the stream, so
// that frames of an earlier stream with the same id never match a new one.
// A payload is either a control message, a JSON object {"v":1,"flat","from","msg"} whose msg
// is a wire-protocol stream message (origin -> holder: stream_open / stream_close as the cloud
// sends them to a gateway; holder -> origin: stream_opened / stream_closed as the cloud sends
// them to a browser), or a binary stream frame (cloud-link/stream_frames.h) as it is, not
// JSON: signed, it follows a 64-byte tag (sign_frame).
inline constexpr std::string_view kStreamsRoot = "flatlink/v1/streams/";
inline constexpr size_t kNonceHexBytes = 16;
std::string stream_topic(const std::string& to, const std::string& flat, const std::string& origin, uint16_t id,
                         const std::string& nonce);
bool is_stream_topic(std::string_view topic);

struct StreamControl {
  std::string flat;
  std::string from;
  std::string origin;
  uint16_t id = 0;
  std::string nonce;
  proto::StreamMessage message;
  bool to_holder = false;  // from the origin to the flat's holder (else the holder's answer)

  bool operator==(const StreamControl&) const = default;
};
struct StreamData {
  std::string flat;
  std::string origin;
  uint16_t id = 0;
  std::string nonce;
  std::string frame;  // a stream frame that stream::decode_frame accepts

  bool operator==(const StreamData&) const = default;
};
using CheckedStream = std::variant<Refused, Ignored, StreamControl, StreamData>;
// The check of a message on a stream topic (payload without its tag): the topic's shape, <to>
// this instance, a flat it knows and watches, then a control message's keys and its msg
// through the stream protocol's decoder for its direction, or a frame's header. Never throws.
CheckedStream check_stream(const Incoming& in, const CheckContext& context);
// A control message's payload; `encoded` is what proto::encode wrote.
std::string encode_stream_control(const std::string& flat, const std::string& from, const std::string& encoded);

// ---- The shared key (backplane.shared_key_file): every message is signed.
// A signed payload is the message's JSON object with a first key "sig": the HMAC-SHA256, in
// lowercase hex, of topic + '\0' + the object without that key (`{"v":1,...}`), under the key all
// instances share. So it stays one JSON object, the tag sits at a fixed place (no canonical form
// needed), and it covers the topic: a signed message cannot be moved to another flat's or kind's
// topic. docs/scale-out.md, "Security".
inline constexpr std::string_view kSigPrefix = "{\"sig\":\"";
inline constexpr size_t kSigHexBytes = 64;
inline constexpr size_t kSignedOverhead = kSigPrefix.size() + kSigHexBytes + 2;  // the prefix, the tag, `",`

// `payload` (a JSON object's text, as the encoders above write it) with its tag.
std::string sign(std::string_view key, std::string_view topic, std::string_view payload);
// The payload without its tag when the tag is valid for topic and payload under `key`; nullopt
// otherwise, with `why` ("no tag", "wrong tag"). Compares in constant time.
std::optional<std::string> verify(std::string_view key, std::string_view topic, std::string_view payload,
                                  std::string& why);
// The payload without a tag it may carry, unchecked (an instance running without a key).
std::string strip_tag(std::string_view payload);
// A binary stream frame as published: its tag (the HMAC-SHA256 of topic + '\0' + frame, 64 hex
// digits; 64 '0's without a key) followed by the frame.
inline constexpr size_t kFrameTagBytes = kSigHexBytes;
std::string sign_frame(std::string_view key, std::string_view topic, std::string_view frame);
// The frame when its tag is valid; nullopt otherwise, with `why`. Without a key (key empty) the
// tag is skipped unchecked.
std::optional<std::string> verify_frame(std::string_view key, std::string_view topic, std::string_view payload,
                                        std::string& why);

}  // namespace backplane
}  // namespace flatlink::cloud
