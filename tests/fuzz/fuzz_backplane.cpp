// The cloud's MQTT backplane: one message from the broker (topic + payload, outside
// bytes) through backplane::check_message (cloud-server/backplane_messages.h), as the
// instance "cloud-a" that knows every flat but "flat-unknown" and watches every flat
// but "flat-unwatched", with limits.max_message_bytes 4096 (so the size caps are
// reachable).
//
// Input framing: the topic, a newline, the payload (the rest, any bytes). No newline:
// all of it is the topic and the payload is empty. A leading '!' (never the start of a
// flatlink/v1 topic) marks the message retained.
//
// Contract checked: nothing throws or crashes; an accepted flat message's flat is the
// topic's flat and its topic is exactly the one its kind is published on (results only
// to this instance); an instance message's instance is the topic's; this instance's own
// messages are never handed on (except holder claims, by design); ids are valid; and
// an accepted message re-encoded with Backplane's own encoders (and the wire
// protocol's) is accepted again as the same typed message, and encodes the same again.
// A stream topic's message also goes through backplane::check_stream (check_stream_message).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "cloud-link/stream_frames.h"
#include "cloud-server/backplane_messages.h"
#include "common/device_model.h"

using namespace flatlink;
using namespace flatlink::cloud;

namespace {

const std::string kInstance = "cloud-a";
const std::string kRun = "00aa11bb22cc33dd";

backplane::CheckContext make_context(size_t max_message_bytes) {
  backplane::CheckContext context;
  context.instance = kInstance;
  context.run = kRun;
  context.max_message_bytes = max_message_bytes;
  context.knows_flat = [](const std::string& flat) { return flat != "flat-unknown"; };
  context.watching = [](const std::string& flat) { return flat != "flat-unwatched"; };
  return context;
}

void require(bool ok) {
  if (!ok) std::abort();
}

// The topic and payload Backplane would publish for an accepted message; the topic of
// a result is the one it came on (flats/<flat>/results/<us>, or flats/<flat>/results).
struct Encoded {
  std::string topic;
  std::string payload;
};

Encoded encode(const backplane::Checked& checked, std::string_view original_topic) {
  const auto result_topic = [&](const std::string& flat) {
    return original_topic == backplane::flat_topic(flat, "results") ? backplane::flat_topic(flat, "results")
                                                                     : backplane::flat_topic(flat, "results/" + kInstance);
  };
  return std::visit(
      [&](const auto& m) -> Encoded {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, backplane::InstanceStatus>) {
          return {backplane::instance_topic(m.instance),
                  backplane::encode_instance(m.instance, m.online,
                                             backplane::InstanceRun{m.run, m.started_ms, m.at_ms, m.accounts})};
        } else if constexpr (std::is_same_v<T, backplane::GatewayMessage>) {
          return {m.resent ? result_topic(m.flat) : backplane::flat_topic(m.flat, "status"),
                  backplane::encode_gateway_message(m.flat, m.from, m.gateway, proto::encode(m.message), m.epoch, m.prev,
                                                    m.resent)};
        } else if constexpr (std::is_same_v<T, backplane::ResendRequest>) {
          return {backplane::flat_topic(m.flat, "resend"), backplane::encode_resend(m)};
        } else if constexpr (std::is_same_v<T, backplane::RepairDone>) {
          return {result_topic(m.flat), backplane::encode_repair_done(m)};
        } else if constexpr (std::is_same_v<T, backplane::StateMessage>) {
          return {backplane::flat_topic(m.flat, "state"), backplane::encode_state(m.flat, m.state.from, m.state)};
        } else if constexpr (std::is_same_v<T, backplane::HolderMessage>) {
          return {backplane::flat_topic(m.flat, "holder"), backplane::encode_holder(m.flat, m.claim.from, m.claim)};
        } else if constexpr (std::is_same_v<T, backplane::CommandMessage>) {
          return {backplane::flat_topic(m.flat, "commands"), backplane::encode_command(m.flat, m.from, m.command)};
        } else if constexpr (std::is_same_v<T, backplane::ResultMessage>) {
          const std::string topic = original_topic == backplane::flat_topic(m.flat, "results")
                                        ? backplane::flat_topic(m.flat, "results")
                                        : backplane::flat_topic(m.flat, "results/" + kInstance);
          return {topic, m.accepted ? backplane::encode_accepted(m.flat, m.from, m.result.id)
                                    : backplane::encode_result(m.flat, m.from, m.result)};
        } else {
          std::abort();  // Refused and Ignored are not encoded
        }
      },
      checked);
}

// The flat, `from` and topic of an accepted flat message.
void check_flat(const std::string& flat, const std::string& from, std::string_view topic, const char* kind) {
  require(valid_id(flat) && valid_id(from));
  require(flat != "flat-unknown" && flat != "flat-unwatched");
  require(topic == backplane::flat_topic(flat, kind));
}

// A device stream's message (flatlink/v1/streams/...): accepted only on its own topic to this
// instance; a control message re-encoded is accepted again as the same; a frame is the payload.
void check_stream_message(const backplane::Incoming& in, const backplane::CheckContext& context) {
  const backplane::CheckedStream checked = backplane::check_stream(in, context);
  if (const auto* c = std::get_if<backplane::StreamControl>(&checked)) {
    require(valid_id(c->flat) && valid_id(c->from) && valid_id(c->origin) && c->id >= 1);
    require(c->flat != "flat-unknown" && c->flat != "flat-unwatched" && c->from != kInstance);
    require(in.topic == backplane::stream_topic(kInstance, c->flat, c->origin, c->id, c->nonce));
    require(c->to_holder == (c->from == c->origin));
    require(c->to_holder || c->origin == kInstance);
    const auto route = c->to_holder ? proto::StreamRoute::cloud_to_gateway : proto::StreamRoute::cloud_to_browser;
    const std::string again = backplane::encode_stream_control(c->flat, c->from, proto::encode(c->message, route));
    require(backplane::check_stream(backplane::Incoming{in.topic, again, false, 0}, make_context(4096 * 2)) == checked);
  } else if (const auto* d = std::get_if<backplane::StreamData>(&checked)) {
    require(in.topic == backplane::stream_topic(kInstance, d->flat, d->origin, d->id, d->nonce));
    require(d->frame == in.payload && stream::decode_frame(d->frame).has_value());
  } else if (const auto* r = std::get_if<backplane::Refused>(&checked)) {
    require(!r->why.empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  backplane::Incoming in;
  if (!input.empty() && input.front() == '!') {
    in.retained = true;
    input.remove_prefix(1);
  }
  const size_t newline = input.find('\n');
  in.topic = input.substr(0, newline);
  if (newline != std::string_view::npos) in.payload = input.substr(newline + 1);

  const auto context = make_context(4096);
  if (backplane::is_stream_topic(in.topic)) check_stream_message(in, context);
  const backplane::Checked checked = backplane::check_message(in, context);

  bool accepted = true;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, backplane::Refused>) {
          require(!m.why.empty());
          accepted = false;
        } else if constexpr (std::is_same_v<T, backplane::Ignored>) {
          if (m.reason == backplane::Ignored::Reason::cleared_retained) require(in.retained && in.payload.empty());
          accepted = false;
        } else if constexpr (std::is_same_v<T, backplane::InstanceStatus>) {
          // Our own instance_id only from another run (a second process with our id).
          require(valid_id(m.instance) && (m.instance != kInstance || (!m.run.empty() && m.run != kRun)));
          require(m.run.empty() == m.accounts.empty() && (m.run.empty() || valid_id(m.run)));
          require(in.topic == backplane::instance_topic(m.instance));
        } else if constexpr (std::is_same_v<T, backplane::GatewayMessage>) {
          if (m.resent) {
            require(in.topic == backplane::flat_topic(m.flat, "results/" + kInstance) ||
                    in.topic == backplane::flat_topic(m.flat, "results"));
            require(std::holds_alternative<proto::StatusBatch>(m.message));
          } else {
            check_flat(m.flat, m.from, in.topic, "status");
          }
          require(m.prev >= -1);
          require(m.from != kInstance && valid_id(m.gateway));
          require(std::holds_alternative<proto::StatusBatch>(m.message) ||
                  std::holds_alternative<proto::Presence>(m.message) ||
                  std::holds_alternative<proto::DeviceList>(m.message));
        } else if constexpr (std::is_same_v<T, backplane::StateMessage>) {
          check_flat(m.flat, m.state.from, in.topic, "state");
          require(m.state.from != kInstance);
          require(m.state.since >= 0 && m.state.seq >= 0 && m.state.dropped >= 0);
        } else if constexpr (std::is_same_v<T, backplane::HolderMessage>) {
          check_flat(m.flat, m.claim.from, in.topic, "holder");
          require(m.claim.instance.empty() || m.claim.instance == m.claim.from);
        } else if constexpr (std::is_same_v<T, backplane::CommandMessage>) {
          check_flat(m.flat, m.from, in.topic, "commands");
          require(m.from != kInstance);
        } else if constexpr (std::is_same_v<T, backplane::ResendRequest>) {
          check_flat(m.flat, m.from, in.topic, "resend");
          require(m.from != kInstance && valid_id(m.to) && valid_id(m.gateway) && m.after >= 0);
          require(m.upto == 0 || m.upto > m.after);
        } else if constexpr (std::is_same_v<T, backplane::RepairDone>) {
          require(valid_id(m.flat) && valid_id(m.from) && valid_id(m.gateway));
          require(m.after >= 0 && m.through >= 0 && m.missing >= 0);
        } else if constexpr (std::is_same_v<T, backplane::ResultMessage>) {
          require(valid_id(m.flat) && valid_id(m.from));
          require(in.topic == backplane::flat_topic(m.flat, "results/" + kInstance) ||
                  in.topic == backplane::flat_topic(m.flat, "results"));
          if (m.accepted) require(m.result.outcome == Outcome::ok && m.result.message.empty());
        }
      },
      checked);
  if (!accepted) return 0;

  // Round trip through the encoders. The re-check allows a larger payload: the wire
  // protocol's encoder may spell a number longer than the input did.
  const Encoded again = encode(checked, in.topic);
  require(again.topic == in.topic);
  const auto rechecked = backplane::check_message(backplane::Incoming{again.topic, again.payload, false, 0},
                                                  make_context(4096 * 2));
  require(rechecked == checked);
  require(encode(rechecked, in.topic).payload == again.payload);
  return 0;
}
