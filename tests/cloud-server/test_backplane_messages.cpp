// The backplane's message check and encoders (cloud-server/backplane_messages.h), without
// a broker: every kind accepted as published by the encoders, and each refusal with its
// reason. tests/integration/backplane.test.mjs runs them through real brokers.
#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "cloud-link/stream_frames.h"
#include "cloud-server/backplane_messages.h"

using namespace flatlink;
using namespace flatlink::cloud;

namespace {

backplane::CheckContext context() {
  backplane::CheckContext c;
  c.instance = "cloud-a";
  c.max_message_bytes = 4096;
  c.knows_flat = [](const std::string& flat) { return flat == "flat-a" || flat == "flat-b"; };
  c.watching = [](const std::string& flat) { return flat == "flat-a"; };
  return c;
}

backplane::Checked check(const std::string& topic, const std::string& payload, bool retained = false) {
  return backplane::check_message(backplane::Incoming{topic, payload, retained, 0}, context());
}

std::string refusal(const backplane::Checked& checked) {
  const auto* refused = std::get_if<backplane::Refused>(&checked);
  return refused ? refused->why : std::string("(not refused)");
}

const std::string kStatus = backplane::flat_topic("flat-a", "status");
const std::string kCommands = backplane::flat_topic("flat-a", "commands");
const std::string kToUs = backplane::flat_topic("flat-a", "results/cloud-a");
const std::string kState = backplane::flat_topic("flat-a", "state");
const std::string kHolder = backplane::flat_topic("flat-a", "holder");

proto::CommandMsg command() { return proto::CommandMsg{"c-17", "lamp-1", Json{{"on", true}}, 1700000005000}; }

}  // namespace

TEST_CASE("backplane: every kind of message, as the encoders write it, is accepted as what it is") {
  const auto online = check(backplane::instance_topic("cloud-b"), backplane::encode_instance("cloud-b", false));
  REQUIRE(std::holds_alternative<backplane::InstanceStatus>(online));
  backplane::InstanceStatus left;
  left.instance = "cloud-b";
  CHECK(std::get<backplane::InstanceStatus>(online) == left);

  const proto::Presence presence{"lamp-1", false, 1700000000000};
  const auto status =
      check(kStatus, backplane::encode_gateway_message("flat-a", "cloud-b", "gw-a", proto::encode(presence)));
  REQUIRE(std::holds_alternative<backplane::GatewayMessage>(status));
  CHECK(std::get<backplane::GatewayMessage>(status) ==
        backplane::GatewayMessage{"flat-a", "cloud-b", "gw-a", proto::GatewayToCloud{presence}, ""});
  // A status batch carries its stream epoch (issue 17): relayed, it is counted per (gateway, epoch).
  const std::string epoch(32, 'e');
  const auto with_epoch = check(
      kStatus, backplane::encode_gateway_message("flat-a", "cloud-b", "gw-a", proto::encode(presence), epoch));
  REQUIRE(std::holds_alternative<backplane::GatewayMessage>(with_epoch));
  CHECK(std::get<backplane::GatewayMessage>(with_epoch).epoch == epoch);
  Json bad_epoch = Json::parse(backplane::encode_gateway_message("flat-a", "cloud-b", "gw-a", proto::encode(presence)));
  bad_epoch["epoch"] = "not-hex";
  CHECK(std::holds_alternative<backplane::Refused>(check(kStatus, bad_epoch.dump())));

  RemoteState state;
  state.from = "cloud-b";
  state.gateway = "gw-a";
  state.online = true;
  state.since = 1700000000000;
  state.seq = 13;
  state.dropped = 2;
  state.epoch = epoch;
  state.lost = 7;
  const auto retained = check(kState, backplane::encode_state("flat-a", "cloud-b", state), true);
  REQUIRE(std::holds_alternative<backplane::StateMessage>(retained));
  CHECK(std::get<backplane::StateMessage>(retained) == backplane::StateMessage{"flat-a", state});

  const HolderClaim claim{"cloud-b", "cloud-b", 1700000000000, "gw-a"};
  const auto holder = check(kHolder, backplane::encode_holder("flat-a", "cloud-b", claim));
  REQUIRE(std::holds_alternative<backplane::HolderMessage>(holder));
  CHECK(std::get<backplane::HolderMessage>(holder) == backplane::HolderMessage{"flat-a", claim});
  // A release, and our own claim coming back: both handed on (the receiver withdraws an old claim of ours).
  CHECK(std::holds_alternative<backplane::HolderMessage>(check(
      kHolder, backplane::encode_holder("flat-a", "cloud-b", HolderClaim{"", "", 5, ""}))));
  CHECK(std::holds_alternative<backplane::HolderMessage>(
      check(kHolder,
            backplane::encode_holder("flat-a", "cloud-a", HolderClaim{"", "cloud-a", 5, "gw-a"}))));

  const auto cmd = check(kCommands, backplane::encode_command("flat-a", "cloud-b", command()));
  REQUIRE(std::holds_alternative<backplane::CommandMessage>(cmd));
  CHECK(std::get<backplane::CommandMessage>(cmd) == backplane::CommandMessage{"flat-a", "cloud-b", command()});

  const proto::Result result{"c-17", Outcome::rejected, "out of range"};
  const auto res = check(kToUs, backplane::encode_result("flat-a", "cloud-b", result));
  REQUIRE(std::holds_alternative<backplane::ResultMessage>(res));
  CHECK(std::get<backplane::ResultMessage>(res) == backplane::ResultMessage{"flat-a", "cloud-b", result, false});

  const auto accepted = check(kToUs, backplane::encode_accepted("flat-a", "cloud-b", "c-17"));
  REQUIRE(std::holds_alternative<backplane::ResultMessage>(accepted));
  CHECK(std::get<backplane::ResultMessage>(accepted) ==
        backplane::ResultMessage{"flat-a", "cloud-b", proto::Result{"c-17", Outcome::ok, ""}, true});
}

TEST_CASE("backplane: an online message carries its run and accounts; our instance_id from another run is kept") {
  const backplane::InstanceRun run{"00aa11bb22cc33dd", 1700000000000, 1700000001000, "0123456789abcdef"};
  const auto other = check(backplane::instance_topic("cloud-b"), backplane::encode_instance("cloud-b", true, run));
  REQUIRE(std::holds_alternative<backplane::InstanceStatus>(other));
  const auto& status = std::get<backplane::InstanceStatus>(other);
  CHECK(status.online);
  CHECK(status.run == run.run);
  CHECK(status.started_ms == run.started_ms);
  CHECK(status.at_ms == run.at_ms);
  CHECK(status.accounts == run.accounts);

  // Our instance_id: our own run is ignored, another process's run is kept (the Backplane
  // tells a second process with one instance_id apart by it).
  auto ours = context();
  ours.run = run.run;
  const std::string topic = backplane::instance_topic("cloud-a");
  const auto own = backplane::check_message(
      backplane::Incoming{topic, backplane::encode_instance("cloud-a", true, run), false, 0}, ours);
  CHECK(std::holds_alternative<backplane::Ignored>(own));
  ours.run = "ffffffffffffffff";
  const auto twin = backplane::check_message(
      backplane::Incoming{topic, backplane::encode_instance("cloud-a", true, run), false, 0}, ours);
  REQUIRE(std::holds_alternative<backplane::InstanceStatus>(twin));
  CHECK(std::get<backplane::InstanceStatus>(twin).run == run.run);

  CHECK(refusal(check(backplane::instance_topic("cloud-b"),
                      R"({"v":1,"instance":"cloud-b","online":true,"run":"x y","started":1,"at":1,"accounts":"a"})")) ==
        "bad run of an instance message");
  CHECK(refusal(check(backplane::instance_topic("cloud-b"),
                      R"({"v":1,"instance":"cloud-b","online":true,"run":"r1","started":-5,"at":1,"accounts":"a"})")) ==
        "bad run of an instance message");
  CHECK(refusal(check(backplane::instance_topic("cloud-b"),
                      R"({"v":1,"instance":"cloud-b","online":true,"run":"r1","started":1,"at":1})")) ==
        "bad run of an instance message");
}

TEST_CASE("backplane: our own messages, a cleared retained message and an unwatched flat are ignored, not refused") {
  using Reason = backplane::Ignored::Reason;
  const auto ignored = [](const backplane::Checked& c) {
    const auto* i = std::get_if<backplane::Ignored>(&c);
    return i ? static_cast<int>(i->reason) : -1;
  };
  CHECK(ignored(check(backplane::instance_topic("cloud-a"), backplane::encode_instance("cloud-a", true))) ==
        static_cast<int>(Reason::own_message));
  CHECK(ignored(check(kCommands, backplane::encode_command("flat-a", "cloud-a", command()))) ==
        static_cast<int>(Reason::own_message));
  CHECK(ignored(check(kState, "", true)) == static_cast<int>(Reason::cleared_retained));
  CHECK(ignored(check(backplane::flat_topic("flat-b", "commands"),
                      backplane::encode_command("flat-b", "cloud-b", command()))) ==
        static_cast<int>(Reason::not_watched));
}

TEST_CASE("backplane: each refusal says why") {
  const std::string cmd = backplane::encode_command("flat-a", "cloud-b", command());
  CHECK(refusal(backplane::check_message(backplane::Incoming{kCommands, "", false, 70'000}, context())) ==
        "payload of 70000 bytes is over the cap");
  CHECK(refusal(check("zigbee2mqtt/lamp", cmd)) == "not a flatlink/v1 topic");
  CHECK(refusal(check(kCommands + std::string(600, 'x'), cmd)) == "not a flatlink/v1 topic");
  CHECK(refusal(check(kCommands, "")) == "empty payload");
  CHECK(refusal(check(kCommands, std::string(4096 * 2 + 1025, ' '))) == "payload over the cap");
  CHECK(refusal(check(kCommands, "[1]")) == "payload is not a JSON object");
  // Checked before parsing: 65'000 levels under "msg" used to overflow the stack (found by reading the
  // code for fuzz_backplane; tests/fuzz/corpus/backplane/regression_deep_nesting is a shallower copy).
  {
    auto big = context();
    big.max_message_bytes = 65'536;
    const std::string deep = R"({"v":1,"flat":"flat-a","from":"cloud-b","gateway":"gw-a","msg":{"a":)" +
                             std::string(65'000, '[') + std::string(65'000, ']') + "}}";
    CHECK(refusal(backplane::check_message(backplane::Incoming{kStatus, deep, false, 0}, big)) ==
          "payload nested deeper than 9 levels");
    CHECK(refusal(check(kStatus, R"({"v":1,"flat":"flat-a","from":"cloud-b","gateway":"gw-a","msg":{"a":[[[[[[[[1]]]]]]]]}})")) ==
          "payload nested deeper than 9 levels");
  }
  CHECK(refusal(check(kCommands, "{\"v\":1,")) == "payload is not a JSON object");
  CHECK(refusal(check(kCommands, R"({"v":2,"flat":"flat-a","from":"cloud-b","msg":{}})")) ==
        "not a version 1 backplane message");
  // instances/<id>
  CHECK(refusal(check(backplane::instance_topic("cloud-c"), backplane::encode_instance("cloud-b", true))) ==
        "instance in the payload differs from the topic's");
  CHECK(refusal(check(backplane::instance_topic("cloud-b"), R"({"v":1,"instance":"cloud-b"})")) ==
        "missing key \"online\"");
  CHECK(refusal(check(backplane::instance_topic("cloud-b"), R"({"v":1,"instance":"cloud-b","online":1})")) ==
        "bad instance message");
  // The layout, the flat, from.
  CHECK(refusal(check(backplane::flat_topic("flat-a", "results/cloud-b"), cmd)) ==
        "not a topic of the backplane's layout");
  CHECK(refusal(check(backplane::flat_topic("flat-a", "a/b/c"), cmd)) == "not a topic of the backplane's layout");
  CHECK(refusal(check(backplane::flat_topic("bad flat", "commands"), cmd)) == "not a topic of the backplane's layout");
  CHECK(refusal(check(backplane::flat_topic("flat-x", "commands"), cmd)) ==
        "flat flat-x is not in this instance's config");
  CHECK(refusal(check(backplane::flat_topic("flat-b", "commands"), cmd)) ==
        "the flat in the payload is not the topic's flat flat-b");
  CHECK(refusal(check(kCommands, R"({"v":1,"flat":"flat-a","from":"bad id","msg":{}})")) == "missing or bad \"from\"");
  // Per kind: exact keys, types, the embedded message through the protocol's decoder.
  CHECK(refusal(check(kCommands, R"({"v":1,"flat":"flat-a","from":"cloud-b","msg":{},"x":1})")) == "unexpected keys");
  CHECK(refusal(check(kCommands, R"({"v":1,"flat":"flat-a","from":"cloud-b","msg":{"type":"command"}})")) ==
        "msg: expected a valid command");
  const proto::Hello hello{"gw-a", "1.0.0", {}, 1, 0};
  CHECK(refusal(check(kStatus, backplane::encode_gateway_message("flat-a", "cloud-b", "gw-a", proto::encode(hello))))
            .rfind("msg: only status, presence and devices", 0) == 0);
  CHECK(refusal(check(kStatus, backplane::encode_gateway_message("flat-a", "cloud-b", "", proto::encode(hello)))) ==
        "bad gateway id");
  CHECK(refusal(check(kStatus, R"({"v":1,"flat":"flat-a","from":"cloud-b","gateway":"gw-a","msg":[]})"))
            .rfind("msg: ", 0) == 0);
  CHECK(refusal(check(kState,
                      R"({"v":1,"flat":"flat-a","from":"cloud-b","gateway":"gw-a","online":true,"since":-1,"seq":0,"reset":false,"dropped":0,"msg":{"type":"devices","devices":[]}})")) ==
        "bad state fields");
  CHECK(refusal(check(kState,
                      R"({"v":1,"flat":"flat-a","from":"cloud-b","gateway":"gw-a","online":true,"since":0,"seq":0,"reset":false,"dropped":0,"msg":{"type":"presence","device":"lamp-1","online":true,"ts":1}})")) ==
        "msg: expected a valid devices message");
  CHECK(refusal(check(kHolder,
                      backplane::encode_holder("flat-a", "cloud-b", HolderClaim{"", "cloud-c", 5, "gw-a"}))) ==
        "a claim made for another instance");
  CHECK(refusal(check(kHolder,
                      R"({"v":1,"flat":"flat-a","from":"cloud-b","instance":"cloud-b","since":9007199254740992,"gateway":"gw-a"})")) ==
        "bad holder fields");
  CHECK(refusal(check(kToUs, backplane::encode_accepted("flat-a", "cloud-b", std::string(257, 'c')))) ==
        "bad accepted id");
  CHECK(refusal(check(kToUs, backplane::encode_command("flat-a", "cloud-b", command()))) ==
        "msg: expected a valid result");
  CHECK(refusal(check(backplane::flat_topic("flat-a", "snapshot"), cmd)) == "not a kind of message the backplane has");
}

TEST_CASE("backplane: only this process's own ping is taken as one; another run's or instance's is refused") {
  auto ours = context();
  ours.run = "run-1";
  const auto checked = [&](const std::string& topic, const std::string& payload) {
    return backplane::check_message(backplane::Incoming{topic, payload, false, 0}, ours);
  };
  const std::string topic = backplane::ping_topic("cloud-a");
  CHECK(topic == "flatlink/v1/ping/cloud-a");
  CHECK(std::get<backplane::Ping>(checked(topic, backplane::encode_ping("cloud-a", "run-1", 7))).n == 7);
  CHECK(refusal(checked(topic, backplane::encode_ping("cloud-a", "run-2", 7))) == "not this process's ping");
  CHECK(refusal(checked(backplane::ping_topic("cloud-b"), backplane::encode_ping("cloud-b", "run-1", 7))) ==
        "not this process's ping");
  CHECK(refusal(checked(topic, backplane::encode_ping("cloud-b", "run-1", 7))) ==
        "instance in the payload differs from the topic's");
  CHECK(refusal(checked(topic, R"({"v":1,"instance":"cloud-a","run":"run-1"})")) != "(not refused)");
}

TEST_CASE("backplane: a message signed with the shared key is taken; unsigned, changed, moved or of another key it is not (#20 finding 7)") {
  const std::string key = "0123456789abcdef0123456789abcdef";
  const std::string payload = backplane::encode_command("flat-a", "cloud-b", command());
  const std::string sealed = backplane::sign(key, kCommands, payload);
  // Still one JSON object: the tag is its first key.
  CHECK(sealed.rfind(R"({"sig":")", 0) == 0);
  CHECK(sealed.size() == payload.size() + backplane::kSignedOverhead - 1);
  CHECK(Json::parse(sealed)["msg"]["id"] == "c-17");
  std::string why;
  const auto inner = backplane::verify(key, kCommands, sealed, why);
  REQUIRE(inner.has_value());
  CHECK(*inner == payload);
  CHECK(std::holds_alternative<backplane::CommandMessage>(check(kCommands, *inner)));

  // Unsigned: what a plain broker client publishes.
  CHECK_FALSE(backplane::verify(key, kCommands, payload, why).has_value());
  CHECK(why == "no tag (not signed with the backplane's key)");
  // Another key.
  CHECK_FALSE(backplane::verify("another key, also 32 bytes long!", kCommands, sealed, why).has_value());
  CHECK(why == "wrong tag (signed with another key, or changed on the way)");
  // One byte of the payload changed (the command's value).
  std::string changed = sealed;
  changed.replace(changed.find("true"), 4, "fals");
  CHECK_FALSE(backplane::verify(key, kCommands, changed, why).has_value());
  // The tag changed.
  std::string bad_tag = sealed;
  bad_tag[10] = bad_tag[10] == 'a' ? 'b' : 'a';
  CHECK_FALSE(backplane::verify(key, kCommands, bad_tag, why).has_value());
  // Moved to another flat's topic or another kind's: the tag covers the topic.
  CHECK_FALSE(backplane::verify(key, backplane::flat_topic("flat-b", "commands"), sealed, why).has_value());
  CHECK_FALSE(backplane::verify(key, kStatus, sealed, why).has_value());
  // Cut short, or a tag alone.
  CHECK_FALSE(backplane::verify(key, kCommands, sealed.substr(0, backplane::kSignedOverhead), why).has_value());
  CHECK_FALSE(backplane::verify(key, kCommands, "", why).has_value());

  // Without a key an instance takes both, the tag taken off unchecked.
  CHECK(backplane::strip_tag(sealed) == payload);
  CHECK(backplane::strip_tag(payload) == payload);
}

TEST_CASE("backplane: gap repair's messages (a status's prev, a resend request, a resent batch, the end of an answer) are taken as what they are") {
  const std::string batch = proto::encode(proto::StatusBatch{{{7, "lamp-1", Json{{"on", true}}, 1}}, 0, 0});
  auto status = check(kStatus, backplane::encode_gateway_message("flat-a", "cloud-b", "gw-a", batch, "", 6));
  REQUIRE(std::holds_alternative<backplane::GatewayMessage>(status));
  CHECK(std::get<backplane::GatewayMessage>(status).prev == 6);
  CHECK_FALSE(std::get<backplane::GatewayMessage>(status).resent);
  // Without prev (an older instance): -1.
  CHECK(std::get<backplane::GatewayMessage>(check(kStatus, backplane::encode_gateway_message("flat-a", "cloud-b", "gw-a", batch))).prev == -1);

  const auto resent = check(kToUs, backplane::encode_gateway_message("flat-a", "cloud-b", "gw-a", batch, "", 6, true));
  REQUIRE(std::holds_alternative<backplane::GatewayMessage>(resent));
  CHECK(std::get<backplane::GatewayMessage>(resent).resent);
  // A resent batch goes only to the instance that asked; a presence is never resent.
  CHECK(refusal(check(kStatus, backplane::encode_gateway_message("flat-a", "cloud-b", "gw-a", batch, "", 6, true))) ==
        "unexpected keys");
  CHECK(refusal(check(kToUs, backplane::encode_gateway_message("flat-a", "cloud-b", "gw-a",
                                                               proto::encode(proto::Presence{"lamp-1", false, 1}), "", 6,
                                                               true))) == "msg: only a status batch is resent");

  const backplane::ResendRequest request{"flat-a", "cloud-b", "cloud-a", "gw-a", "", 6, 9};
  const auto asked = check(backplane::flat_topic("flat-a", "resend"), backplane::encode_resend(request));
  REQUIRE(std::holds_alternative<backplane::ResendRequest>(asked));
  CHECK(std::get<backplane::ResendRequest>(asked) == request);
  CHECK(refusal(check(backplane::flat_topic("flat-a", "resend"),
                      backplane::encode_resend({"flat-a", "cloud-b", "cloud-a", "gw-a", "", 9, 6}))) == "bad resend range");

  const backplane::RepairDone done{"flat-a", "cloud-b", "gw-a", "", 6, 9, 2};
  const auto ended = check(kToUs, backplane::encode_repair_done(done));
  REQUIRE(std::holds_alternative<backplane::RepairDone>(ended));
  CHECK(std::get<backplane::RepairDone>(ended) == done);
  CHECK(refusal(check(kToUs, R"({"v":1,"flat":"flat-a","from":"cloud-b","gateway":"gw-a","after":6,"through":9,"missing":-1})")) ==
        "bad repair fields");
}

TEST_CASE("backplane: a device stream's control messages and frames are taken on its own topic, for this instance only (#20 finding 9)") {
  const auto ctx = context();
  const std::string nonce = "0123456789abcdef";
  const auto on_topic = [&](const std::string& topic, const std::string& payload) {
    return backplane::check_stream(backplane::Incoming{topic, payload, false, 0}, ctx);
  };
  const auto stream_refusal = [](const backplane::CheckedStream& c) {
    const auto* refused = std::get_if<backplane::Refused>(&c);
    return refused ? refused->why : std::string("(not refused)");
  };
  // The origin (cloud-b, its browser) asks us, the holder, for stream 7.
  const std::string to_us = backplane::stream_topic("cloud-a", "flat-a", "cloud-b", 7, nonce);
  CHECK(to_us == "flatlink/v1/streams/cloud-a/flat-a/cloud-b/7/0123456789abcdef");
  CHECK(backplane::is_stream_topic(to_us));
  CHECK_FALSE(backplane::is_stream_topic(kStatus));
  proto::StreamMessage open;
  open.stream = 7;
  open.device = "door-mic";
  const auto control = on_topic(to_us, backplane::encode_stream_control(
                                         "flat-a", "cloud-b", proto::encode(open, proto::StreamRoute::cloud_to_gateway)));
  REQUIRE(std::holds_alternative<backplane::StreamControl>(control));
  const auto& c = std::get<backplane::StreamControl>(control);
  CHECK(c.to_holder);
  CHECK(c.origin == "cloud-b");
  CHECK(c.id == 7);
  CHECK(c.nonce == nonce);
  CHECK(c.message == open);
  // An answer to a stream we opened (origin cloud-a), from its holder cloud-b.
  proto::StreamMessage opened;
  opened.type = proto::StreamType::closed;
  opened.ref = "remote";
  opened.stream = 3;
  opened.reason = "busy";
  const std::string ours = backplane::stream_topic("cloud-a", "flat-a", "cloud-a", 9, nonce);
  const auto answer = on_topic(ours, backplane::encode_stream_control(
                                       "flat-a", "cloud-b", proto::encode(opened, proto::StreamRoute::cloud_to_browser)));
  REQUIRE(std::holds_alternative<backplane::StreamControl>(answer));
  CHECK_FALSE(std::get<backplane::StreamControl>(answer).to_holder);
  // A frame, binary as it is.
  const std::string frame = stream::encode_frame(stream::FrameHeader{1, 1, 3, 0, 1700000000000}, std::string(640, 'x'));
  const auto data = on_topic(to_us, frame);
  REQUIRE(std::holds_alternative<backplane::StreamData>(data));
  CHECK(std::get<backplane::StreamData>(data).frame == frame);

  CHECK(stream_refusal(on_topic(backplane::stream_topic("cloud-c", "flat-a", "cloud-b", 7, nonce), frame)) ==
        "a stream message for another instance");
  CHECK(stream_refusal(on_topic("flatlink/v1/streams/cloud-a/flat-a/cloud-b/0/" + nonce, frame)) == "bad stream id");
  CHECK(stream_refusal(on_topic("flatlink/v1/streams/cloud-a/flat-a/cloud-b/65536/" + nonce, frame)) == "bad stream id");
  CHECK(stream_refusal(on_topic("flatlink/v1/streams/cloud-a/flat-a/cloud-b/7/XYZ", frame)) == "bad stream nonce");
  CHECK(stream_refusal(on_topic(backplane::stream_topic("cloud-a", "flat-z", "cloud-b", 7, nonce), frame)) ==
        "flat flat-z is not in this instance's config");
  CHECK(std::holds_alternative<backplane::Ignored>(on_topic(backplane::stream_topic("cloud-a", "flat-b", "cloud-b", 7, nonce), frame)));
  CHECK(stream_refusal(on_topic(to_us, std::string("\x01\x01", 2))).rfind("frame: ", 0) == 0);
  // An answer (opened/closed) for a stream another instance opened, or an open in the wrong direction.
  CHECK(stream_refusal(on_topic(backplane::stream_topic("cloud-a", "flat-a", "cloud-c", 7, nonce),
                              backplane::encode_stream_control("flat-a", "cloud-b",
                                                               proto::encode(opened, proto::StreamRoute::cloud_to_browser)))) ==
        "a stream answer for a stream another instance opened");
  CHECK(stream_refusal(on_topic(ours, backplane::encode_stream_control(
                                        "flat-a", "cloud-b", proto::encode(open, proto::StreamRoute::cloud_to_gateway)))) ==
        "msg: not a stream message");
  // The flat in the payload must be the topic's.
  CHECK(stream_refusal(on_topic(to_us, backplane::encode_stream_control(
                                         "flat-b", "cloud-b", proto::encode(open, proto::StreamRoute::cloud_to_gateway)))) ==
        "the flat in the payload is not the topic's flat flat-a");

  // Signed frames: the tag covers topic and frame.
  const std::string key(32, 'k');
  const std::string sealed = backplane::sign_frame(key, to_us, frame);
  CHECK(sealed.size() == frame.size() + backplane::kFrameTagBytes);
  std::string why;
  CHECK(backplane::verify_frame(key, to_us, sealed, why) == frame);
  CHECK_FALSE(backplane::verify_frame(key, ours, sealed, why));
  CHECK(why.find("wrong tag") == 0);
  CHECK_FALSE(backplane::verify_frame(std::string(32, 'j'), to_us, sealed, why));
  CHECK(backplane::verify_frame("", to_us, backplane::sign_frame("", to_us, frame), why) == frame);
}
