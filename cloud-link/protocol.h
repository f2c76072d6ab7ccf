// The wire protocol between gateway, cloud and browser: message types, encoder and validating decoder.
//
// Pure code: no sockets, no libwebsockets. Both flatlinkd (cloud-link) and flatlink-cloud use it.
// docs/protocol.md is the reference for the JSON on the wire and the delivery rules.
//
// Contract:
// - encode() never throws (invalid UTF-8 in strings is replaced, see encode below) and does not
//   validate: a struct that breaks the rules encodes fine and is refused by the peer's decoder.
// - decode_*() never throws. Each takes one WebSocket text frame and either returns the message
//   or a DecodeError whose message names the offending field, e.g.
//   "status.items[3].seq: expected an integer between 1 and 9007199254740991, got -1".
//   Decoding is strict: unknown keys are refused too, so that typos and version skew show up.
// - Every function is reentrant; call it from any thread.
#pragma once

#include "common/device_model.h"
#include "common/json_depth.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace flatlink::proto {

// WebSocket subprotocol names; the version is part of the name.
inline constexpr std::string_view kGatewaySubprotocol = "flatlink-gateway.v1";
inline constexpr std::string_view kBrowserSubprotocol = "flatlink-browser.v1";

// Largest seq (and time stamp): 2^53-1, the largest integer a JavaScript number holds exactly.
inline constexpr int64_t kMaxSeq = 9'007'199'254'740'991;
// Nesting deeper than this ({"a":{"b":...}}) is refused before parsing.
inline constexpr int kMaxDepth = 8;

inline constexpr int64_t kDefaultTtlMs = 10'000;
inline constexpr int64_t kMinTtlMs = 100;
inline constexpr int64_t kMaxTtlMs = 600'000;

// WebSocket close codes used by both ends (docs/protocol.md, "Close codes").
namespace close_code {
inline constexpr uint16_t kNormal = 1000;
inline constexpr uint16_t kGoingAway = 1001;         // server shutting down / client leaving
inline constexpr uint16_t kProtocolError = 1002;     // a frame the decoder refused
inline constexpr uint16_t kBinaryNotAccepted = 1003; // binary frames are reserved for streams
inline constexpr uint16_t kPolicyViolation = 1008;   // authentication failed, rate limit
inline constexpr uint16_t kMessageTooBig = 1009;
inline constexpr uint16_t kReplaced = 4001;          // a newer gateway connection for the same flat
inline constexpr uint16_t kHandshakeTimeout = 4002;  // no hello / login in time
inline constexpr uint16_t kUnauthorized = 4003;
}  // namespace close_code

// DecodeError::code values; also sent as Error::code before closing.
namespace error_code {
inline constexpr std::string_view kMessageTooBig = "message_too_big";
inline constexpr std::string_view kInvalidJson = "invalid_json";      // not JSON, too deep, not an object
inline constexpr std::string_view kUnknownType = "unknown_type";      // missing/unknown/wrong-direction "type"
inline constexpr std::string_view kInvalidMessage = "invalid_message"; // a field is missing, wrong or extra
}  // namespace error_code

struct Limits {
  size_t max_message_bytes = 65536;  // checked before parsing
  size_t max_batch = 500;            // items in one status batch
  size_t max_devices = 1000;         // devices in one list
  size_t max_state_keys = 64;        // keys in one state/set object; also capabilities per device and enum options
  size_t max_string = kMaxTextLength;  // bytes in a name, unit, user, password, version, state string value
  size_t max_text = 1024;            // bytes in a human-readable message (result, error)
  size_t max_points = 5000;          // points in a history reply
  // The cloud's per-link message rate (a token bucket: messages_per_s, burst), announced in
  // its answer to hello; the gateway paces its text frames to it. 0: not announced, not paced.
  uint32_t messages_per_s = 0;
  uint32_t burst = 0;

  bool operator==(const Limits&) const = default;
};

// A stream epoch: 32 lowercase hex digits (128 random bits). Empty: the legacy stream of a
// gateway older than epochs.
bool valid_epoch(std::string_view epoch);

struct DecodeError {
  std::string code;     // one of error_code::*
  std::string message;  // for a person; names the field

  bool operator==(const DecodeError&) const = default;
};

template <class T>
using Decoded = std::variant<T, DecodeError>;

// A device as the gateway reports it and the cloud shows it: what it is, its last state and presence.
struct DeviceReport {
  DeviceInfo info;
  Json state = Json::object();    // capability name -> scalar value; may be empty
  bool online = false;
  std::optional<int64_t> last_ts;  // when state was last observed; absent if never

  // Field by field, capabilities included (common/ declares no equality for DeviceInfo).
  bool operator==(const DeviceReport& other) const;
};

// ---- gateway -> cloud -------------------------------------------------------------------------

// First message on a gateway link.
struct Hello {
  std::string gateway;  // id
  std::string version;  // software version, e.g. "0.1.0"
  std::vector<DeviceReport> devices;
  int64_t next_seq = 1;  // the seq the gateway gives its next status in this epoch: the head of its stream
  int64_t dropped = 0;   // statuses the outbox had to drop so far (0 is omitted on the wire)
  // The highest seq a cloud has acknowledged to this gateway process (0, omitted, when none):
  // a cloud instance the gateway moved to waits until its backplane has delivered that far.
  int64_t acked = 0;
  std::string epoch = {};  // the stream's epoch (valid_epoch); empty (omitted): the legacy stream
  int64_t coalesced = 0;   // statuses folded into a newer state of their device because the outbox was full
  int64_t lost = 0;        // statuses that may be lost because the gateway found its store gone

  bool operator==(const Hello&) const = default;
};

struct StatusItem {
  int64_t seq = 1;
  std::string device;
  Json state = Json::object();  // at least one key
  int64_t ts = 0;                // observed at, ms since the epoch

  bool operator==(const StatusItem&) const = default;
};

// A status whose state is already encoded: the compact JSON text of its state object, as
// the gateway's outbox keeps it (encoded once when the status is taken).
struct EncodedStatus {
  int64_t seq = 1;
  std::string device;
  std::string state;  // a JSON object's text, e.g. {"on":true}
  int64_t ts = 0;
};

// 1..max_batch statuses with strictly increasing seq.
struct StatusBatch {
  std::vector<StatusItem> items;
  int64_t dropped = 0;  // statuses the gateway's outbox dropped so far (0 is omitted on the wire)
  int64_t coalesced = 0;  // statuses it folded into newer ones so far (0 is omitted)

  bool operator==(const StatusBatch&) const = default;
};

// A device went offline or came back (gateway -> cloud, and cloud -> browser).
struct Presence {
  std::string device;
  bool online = false;
  int64_t ts = 0;

  bool operator==(const Presence&) const = default;
};

// The device list changed: full replacement (gateway -> cloud, and cloud -> browser).
struct DeviceList {
  std::vector<DeviceReport> devices;

  bool operator==(const DeviceList&) const = default;
};

// How a command ended (gateway -> cloud, and cloud -> browser). Exactly one per command.
struct Result {
  std::string id;  // the command's id
  Outcome outcome = Outcome::ok;
  std::string message;  // for a person; may be empty. encode() cuts it to Limits{}.max_text bytes.

  bool operator==(const Result&) const = default;
};

// ---- cloud -> gateway -------------------------------------------------------------------------

// Cumulative: every status up to and including seq is safe with the cloud. Right after hello the
// cloud sends its last seen seq (0 if none) and the gateway resends what follows.
struct Ack {
  int64_t seq = 0;
  // Only in the answer to hello: the limits the cloud holds a gateway's frames to
  // (max_message_bytes, max_batch, max_devices, max_state_keys, max_string on the wire).
  std::optional<Limits> limits = std::nullopt;

  bool operator==(const Ack&) const = default;
};

struct CommandMsg {
  std::string id;
  std::string device;
  Json set = Json::object();  // capability name -> scalar value; at least one key
  int64_t expires = 0;        // absolute wall time, ms since the epoch; never run after it

  bool operator==(const CommandMsg&) const = default;
};

Command to_command(const CommandMsg& msg);
CommandMsg to_message(const Command& command);

// Sent (to a gateway or a browser) before the cloud closes a connection for a violation,
// or to a browser when a request of its own failed.
struct Error {
  std::string code;     // an id, e.g. one of error_code::* or "unauthorized"
  std::string message;  // encode() cuts it to Limits{}.max_text bytes

  bool operator==(const Error&) const = default;
};

// ---- browser -> cloud -------------------------------------------------------------------------

struct Login {
  std::string flat;
  std::string user;
  std::string password;  // never appears in a DecodeError message

  bool operator==(const Login&) const = default;
};

struct BrowserCommand {
  std::string id;  // chosen by the browser; its result carries it back
  std::string device;
  Json set = Json::object();
  int64_t ttl_ms = kDefaultTtlMs;  // kMinTtlMs..kMaxTtlMs; the cloud turns it into an absolute expiry

  bool operator==(const BrowserCommand&) const = default;
};

// Without range, from, to and resolution: the recent values. Their meaning (presets, levels,
// retention) is the cloud's to check (docs/protocol.md "history"); the decoder checks types.
struct HistoryRequest {
  std::string device;
  std::string capability;
  std::string id = {};     // echoed; "" none
  std::string range = {};  // "" none; 1h, 24h, 7d, 30d or custom
  int64_t from = -1;       // -1: not given
  int64_t to = -1;         // -1: not given
  std::string resolution = {};  // "" none; raw, 1m, 1h or auto
  int64_t limit = 0;       // 0: not given

  bool ranged() const { return !range.empty() || from >= 0 || to >= 0 || !resolution.empty(); }

  bool operator==(const HistoryRequest&) const = default;
};

// With a session cookie (docs/protocol.md, "Sessions"): "I am the session of this link's cookie".
struct Resume {
  bool operator==(const Resume&) const = default;
};

// Ends this session, or every session of the user.
struct Logout {
  bool everywhere = false;

  bool operator==(const Logout&) const = default;
};

// A page of the flat's event log, newest first.
struct EventsRequest {
  std::string id;  // echoed; "" none
  int64_t from = 0;
  int64_t to = 0;  // 0: now
  std::string device;
  std::vector<std::string> kinds;  // empty: every kind
  int64_t before = 0;              // 0: from the newest
  int64_t limit = 100;

  bool operator==(const EventsRequest&) const = default;
};

// An owner's flat webhook (docs/protocol.md "webhook"): read it, set it, or clear it.
struct WebhookRequest {
  std::string action;               // get, set, clear
  std::string url;                  // set: http:// or https:// (checked by the cloud)
  std::vector<std::string> events;  // set: door_unlocked, device_offline, gateway_offline
  std::string secret;               // set: "" keeps the current one, or makes one on a new webhook

  bool operator==(const WebhookRequest&) const = default;
};

// An owner's name and room for a device of the flat (docs/protocol.md "device_label"),
// shown to the flat's pages over the gateway's own; "" for either: the gateway's.
struct DeviceLabelRequest {
  std::string id;  // echoed; "" none
  std::string device;
  std::string name;
  std::string room;

  bool operator==(const DeviceLabelRequest&) const = default;
};

// ---- cloud -> browser -------------------------------------------------------------------------

struct Snapshot {
  std::string flat;
  std::string name;  // for people
  bool gateway_online = false;
  std::vector<DeviceReport> devices;

  bool operator==(const Snapshot&) const = default;
};

struct Update {
  std::string device;
  Json state = Json::object();  // at least one key
  int64_t ts = 0;
  // The gateway's seq of this status (0: none, omitted on the wire). A browser drops an
  // update whose seq is not above the last one it saw since its latest snapshot: the only
  // duplicates possible come from a cloud that died between forwarding and acknowledging.
  int64_t seq = 0;

  bool operator==(const Update&) const = default;
};

struct GatewayState {
  bool online = false;

  bool operator==(const GatewayState&) const = default;
};

struct HistoryPoint {
  int64_t ts = 0;
  Json value;  // scalar

  bool operator==(const HistoryPoint&) const = default;
};

// Points in time order (ts never decreases).
struct HistoryReply {
  std::string device;
  std::string capability;
  std::vector<HistoryPoint> points;

  bool operator==(const HistoryReply&) const = default;
};

// ---- messages by direction --------------------------------------------------------------------

using GatewayToCloud = std::variant<Hello, StatusBatch, Presence, DeviceList, Result>;
using CloudToGateway = std::variant<Ack, CommandMsg, Error>;
using BrowserToCloud =
    std::variant<Login, BrowserCommand, HistoryRequest, Resume, Logout, EventsRequest, WebhookRequest, DeviceLabelRequest>;
using CloudToBrowser = std::variant<Snapshot, Update, Presence, GatewayState, DeviceList, Result, HistoryReply, Error>;

// One JSON text frame. Never throws; strings that are not valid UTF-8 have their bad bytes
// replaced with U+FFFD; non-finite numbers become null (which the peer's decoder refuses).
std::string encode(const Hello& msg);
std::string encode(const StatusBatch& msg);
std::string encode(const Presence& msg);
std::string encode(const DeviceList& msg);
std::string encode(const Result& msg);
std::string encode(const Ack& msg);
std::string encode(const CommandMsg& msg);
std::string encode(const Error& msg);
std::string encode(const Login& msg);
std::string encode(const BrowserCommand& msg);
std::string encode(const HistoryRequest& msg);
std::string encode(const Resume& msg);
std::string encode(const Logout& msg);
std::string encode(const EventsRequest& msg);
std::string encode(const WebhookRequest& msg);
std::string encode(const DeviceLabelRequest& msg);
std::string encode(const Snapshot& msg);
std::string encode(const Update& msg);
std::string encode(const GatewayState& msg);
std::string encode(const HistoryReply& msg);
std::string encode(const GatewayToCloud& msg);
std::string encode(const CloudToGateway& msg);
std::string encode(const BrowserToCloud& msg);
std::string encode(const CloudToBrowser& msg);

// A status batch encoded one item at a time, so that a sender can stop before a frame would
// pass max_message_bytes: add() returns false (and adds nothing) when the item does not fit.
class StatusBatchEncoder {
 public:
  explicit StatusBatchEncoder(size_t max_bytes, size_t max_items) : max_bytes_(max_bytes), max_items_(max_items) {}
  // The counts the finished frame carries (set before add(): they take room).
  void set_counts(int64_t dropped, int64_t coalesced);
  bool add(const StatusItem& item);
  // The same from a state already encoded (the gateway's outbox keeps each state's text):
  // no tree is built; the frame is byte for byte the one add(StatusItem) makes.
  bool add(const EncodedStatus& item);
  // The size one item alone would take in a frame (with the counts set now).
  size_t frame_size_of(const StatusItem& item) const;
  size_t frame_size_of(const EncodedStatus& item) const;
  size_t items() const { return items_; }
  // The frame; the encoder is empty again afterwards.
  std::string finish();

 private:
  bool add_text(std::string_view text);
  size_t max_bytes_;
  size_t max_items_;
  std::string body_;
  std::string tail_ = "]}";
  std::string item_;  // the item being added, reused
  size_t items_ = 0;
  int64_t dropped_ = 0;
  int64_t coalesced_ = 0;
};

// A DeviceReport as the JSON object used in hello, devices and snapshot.
Json to_json(const DeviceReport& device);

// Decoders, one per direction; each refuses the message types of every other direction.
Decoded<GatewayToCloud> decode_from_gateway(std::string_view text, const Limits& limits = {});
Decoded<CloudToGateway> decode_from_cloud_for_gateway(std::string_view text, const Limits& limits = {});
Decoded<BrowserToCloud> decode_from_browser(std::string_view text, const Limits& limits = {});
Decoded<CloudToBrowser> decode_from_cloud_for_browser(std::string_view text, const Limits& limits = {});

// What the peer's decoder would refuse in one status's state / one device (nullopt: nothing),
// for the gateway's boundary checks: the message names the field, as a DecodeError's does.
std::optional<std::string> check_state(const Json& state, const Limits& limits, const std::string& path = "state");
std::optional<std::string> check_device(const DeviceReport& device, const Limits& limits);

// The close code that goes with closing a connection over a refused frame: 1009 for
// message_too_big, 1002 otherwise.
uint16_t close_code_for(const DecodeError& error);

// The JSON nesting pre-scan (common/json_depth.h), shared with the stream and backplane decoders.
using flatlink::nested_deeper_than;

// The longest prefix of text of at most max_bytes that does not split a UTF-8 sequence.
std::string clip_utf8(std::string_view text, size_t max_bytes);

}  // namespace flatlink::proto
