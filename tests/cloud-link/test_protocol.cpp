// Tests of the wire protocol: every message survives encode + decode, and every kind of bad
// frame is refused with a message that names the field.
#include "cloud-link/protocol.h"

#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <string>

using namespace flatlink;
using namespace flatlink::proto;

namespace {

template <class V>
using Decoder = Decoded<V> (*)(std::string_view, const Limits&);

// Encodes msg, decodes it with decoder and returns what came out (msg's type, or a failed check).
template <class T, class V>
T round_trip(const T& msg, Decoder<V> decoder) {
  const std::string text = encode(msg);
  const auto decoded = decoder(text, Limits{});
  if (const auto* error = std::get_if<DecodeError>(&decoded)) {
    FAIL(error->message, " for ", text);
  }
  const auto& value = std::get<V>(decoded);
  REQUIRE_MESSAGE(std::holds_alternative<T>(value), "decoded as another type: ", text);
  return std::get<T>(value);
}

// The refusal of text by decoder, or code "accepted" when the decoder took it.
template <class V>
DecodeError refusal(Decoder<V> decoder, std::string_view text, const Limits& limits = {}) {
  const auto decoded = decoder(text, limits);
  if (const auto* error = std::get_if<DecodeError>(&decoded)) return *error;
  return DecodeError{"accepted", ""};
}

std::string gateway_refusal(std::string_view text, const Limits& limits = {}) {
  return refusal(&decode_from_gateway, text, limits).message;
}
std::string browser_refusal(std::string_view text) { return refusal(&decode_from_browser, text).message; }
std::string for_gateway_refusal(std::string_view text) {
  return refusal(&decode_from_cloud_for_gateway, text).message;
}
std::string for_browser_refusal(std::string_view text) {
  return refusal(&decode_from_cloud_for_browser, text).message;
}

Capability capability(std::string name, ValueType type, bool writable) {
  Capability cap;
  cap.name = std::move(name);
  cap.type = type;
  cap.writable = writable;
  return cap;
}

DeviceReport lamp() {
  Capability brightness = capability("brightness", ValueType::integer, true);
  brightness.min = 0;
  brightness.max = 100;
  brightness.unit = "%";
  DeviceReport d;
  d.info = DeviceInfo{"lamp-1", "Lamp in the hall", "lamp", "hall", {capability("on", ValueType::boolean, true), brightness}};
  d.state = {{"on", true}, {"brightness", 40}};
  d.online = true;
  d.last_ts = 1'700'000'000'000;
  return d;
}

DeviceReport thermostat() {
  Capability temperature = capability("temperature", ValueType::number, false);
  temperature.min = -40.5;
  temperature.unit = "°C";
  Capability mode = capability("mode", ValueType::enumeration, true);
  mode.options = {"off", "heat", "eco"};
  Capability label = capability("label", ValueType::text, true);
  label.max_length = 32;
  Capability lock = capability("child_lock", ValueType::boolean, true);
  lock.confirm = true;
  DeviceReport d;
  d.info = DeviceInfo{"thermo-1", "Thermostat", "thermostat", "", {temperature, mode, label, lock}};
  d.state = {{"temperature", 21.5}, {"mode", "eco"}, {"label", "Küche"}};
  d.online = false;
  return d;
}

// A hello around the given device objects.
std::string hello_with_devices(const std::string& devices) {
  return R"({"type":"hello","gateway":"gw-1","version":"0.1.0","next_seq":1,"devices":[)" + devices + "]}";
}

std::string device_with_capability(const std::string& capability) {
  return R"({"id":"d","name":"D","kind":"k","capabilities":[)" + capability + R"(],"state":{},"online":true})";
}

std::string status_items(const std::string& items) { return R"({"type":"status","items":[)" + items + "]}"; }

}  // namespace

// ---- round trips ------------------------------------------------------------------------------

TEST_CASE("a hello with devices of every capability type survives encode and decode") {
  Hello hello{.gateway = "gw-1", .version = "0.1.0", .devices = {lamp(), thermostat()}, .next_seq = 42, .dropped = 3};
  CHECK(round_trip(hello, &decode_from_gateway) == hello);

  hello.acked = 41;  // everything it numbered was acknowledged
  CHECK(round_trip(hello, &decode_from_gateway) == hello);

  hello.dropped = 0;
  hello.acked = 0;
  hello.devices.clear();
  CHECK(round_trip(hello, &decode_from_gateway) == hello);
  CHECK(encode(hello).find("dropped") == std::string::npos);
  CHECK(encode(hello).find("acked") == std::string::npos);
}

TEST_CASE("a status batch survives encode and decode") {
  StatusBatch batch{.items = {{.seq = 12, .device = "lamp-1", .state = {{"on", true}, {"brightness", 40}}, .ts = 1'700'000'000'000},
                              {.seq = 13, .device = "thermo-1", .state = {{"temperature", -3.25}}, .ts = 1'700'000'000'500},
                              {.seq = kMaxSeq, .device = "lamp-1", .state = {{"label", ""}}, .ts = 0}}};
  CHECK(round_trip(batch, &decode_from_gateway) == batch);
}

TEST_CASE("presence, device list and result survive the trip in both directions they travel") {
  const Presence presence{.device = "lamp-1", .online = false, .ts = 1'700'000'000'000};
  CHECK(round_trip(presence, &decode_from_gateway) == presence);
  CHECK(round_trip(presence, &decode_from_cloud_for_browser) == presence);

  const DeviceList list{.devices = {thermostat(), lamp()}};
  CHECK(round_trip(list, &decode_from_gateway) == list);
  CHECK(round_trip(list, &decode_from_cloud_for_browser) == list);

  for (Outcome outcome : {Outcome::ok, Outcome::rejected, Outcome::expired, Outcome::timeout, Outcome::offline,
                          Outcome::device_error}) {
    const Result result{.id = "c-17", .outcome = outcome, .message = "brightness: 140 is out of range"};
    CHECK(round_trip(result, &decode_from_gateway) == result);
    CHECK(round_trip(result, &decode_from_cloud_for_browser) == result);
  }
}

TEST_CASE("ack, command and error from the cloud survive the trip to a gateway") {
  CHECK(round_trip(Ack{.seq = 0}, &decode_from_cloud_for_gateway) == Ack{.seq = 0});
  CHECK(round_trip(Ack{.seq = 41}, &decode_from_cloud_for_gateway) == Ack{.seq = 41});

  const CommandMsg command{.id = "c-17", .device = "lamp-1", .set = {{"on", true}, {"brightness", 10}},
                           .expires = 1'700'000'005'000};
  CHECK(round_trip(command, &decode_from_cloud_for_gateway) == command);

  const Error error{.code = "invalid_message", .message = "status.items[0].ts: required but missing"};
  CHECK(round_trip(error, &decode_from_cloud_for_gateway) == error);
  CHECK(round_trip(error, &decode_from_cloud_for_browser) == error);
}

TEST_CASE("login, command and history request survive the trip from a browser") {
  const Login login{.flat = "flat-a", .user = "demo@example.org", .password = "p\"ss wörd"};
  CHECK(round_trip(login, &decode_from_browser) == login);

  const BrowserCommand command{.id = "b-1", .device = "lamp-1", .set = {{"on", false}}, .ttl_ms = 250};
  CHECK(round_trip(command, &decode_from_browser) == command);

  const HistoryRequest history{.device = "thermo-1", .capability = "temperature"};
  CHECK(round_trip(history, &decode_from_browser) == history);
  const HistoryRequest ranged{.device = "thermo-1", .capability = "temperature", .id = "h-1", .range = "custom",
                              .from = 1'700'000'000'000, .to = 1'700'003'600'000, .resolution = "1m", .limit = 100};
  CHECK(round_trip(ranged, &decode_from_browser) == ranged);
}

TEST_CASE("a history request's range keys are typed; their meaning is the cloud's to check") {
  // an unknown range is decoded (the cloud answers invalid_range and keeps the link)
  const auto decoded = decode_from_browser(R"({"type":"history","device":"t","capability":"c","range":"2w"})");
  REQUIRE(std::holds_alternative<BrowserToCloud>(decoded));
  CHECK(std::get<HistoryRequest>(std::get<BrowserToCloud>(decoded)).range == "2w");
  CHECK(browser_refusal(R"({"type":"history","device":"t","capability":"c","from":"yesterday"})").find("history.from") !=
        std::string::npos);
  CHECK(browser_refusal(R"({"type":"history","device":"t","capability":"c","limit":0})").find("history.limit") !=
        std::string::npos);
}

TEST_CASE("snapshot, update, gateway state and history reply survive the trip to a browser") {
  const Snapshot snapshot{.flat = "flat-a", .name = "Demo flat", .gateway_online = true, .devices = {lamp(), thermostat()}};
  CHECK(round_trip(snapshot, &decode_from_cloud_for_browser) == snapshot);

  const Update update{.device = "lamp-1", .state = {{"on", true}}, .ts = 1'700'000'000'000};
  CHECK(round_trip(update, &decode_from_cloud_for_browser) == update);

  CHECK(round_trip(GatewayState{.online = false}, &decode_from_cloud_for_browser) == GatewayState{.online = false});
  CHECK(round_trip(GatewayState{.online = true}, &decode_from_cloud_for_browser) == GatewayState{.online = true});

  const HistoryReply reply{.device = "thermo-1", .capability = "temperature",
                           .points = {{1'700'000'000'000, 20.5}, {1'700'000'000'000, 21}, {1'700'000'060'000, "n/a"}}};
  CHECK(round_trip(reply, &decode_from_cloud_for_browser) == reply);
  const HistoryReply empty{.device = "thermo-1", .capability = "temperature", .points = {}};
  CHECK(round_trip(empty, &decode_from_cloud_for_browser) == empty);
}

TEST_CASE("encoding a direction's variant gives the same text as encoding the message itself") {
  const Presence presence{.device = "lamp-1", .online = true, .ts = 5};
  CHECK(encode(GatewayToCloud{presence}) == encode(presence));
  CHECK(encode(CloudToBrowser{presence}) == encode(presence));
  CHECK(encode(CloudToGateway{Ack{.seq = 7}}) == R"({"seq":7,"type":"ack"})");
  CHECK(encode(BrowserToCloud{HistoryRequest{.device = "a", .capability = "b"}}) == encode(HistoryRequest{"a", "b"}));
}

TEST_CASE("a browser command without ttl_ms gets the default of ten seconds") {
  const auto decoded = decode_from_browser(R"({"type":"command","id":"b-1","device":"lamp-1","set":{"on":true}})");
  REQUIRE(std::holds_alternative<BrowserToCloud>(decoded));
  const auto& command = std::get<BrowserCommand>(std::get<BrowserToCloud>(decoded));
  CHECK(command.ttl_ms == 10'000);
}

TEST_CASE("a hello without dropped and a device without room or last_ts take the defaults") {
  const auto decoded = decode_from_gateway(hello_with_devices(
      R"({"id":"lamp-1","name":"Lamp","kind":"lamp","capabilities":[],"state":{},"online":false})"));
  REQUIRE(std::holds_alternative<GatewayToCloud>(decoded));
  const auto& hello = std::get<Hello>(std::get<GatewayToCloud>(decoded));
  CHECK(hello.dropped == 0);
  REQUIRE(hello.devices.size() == 1);
  CHECK(hello.devices[0].info.room.empty());
  CHECK_FALSE(hello.devices[0].last_ts.has_value());
}

TEST_CASE("a command converts to and from the device model's Command without loss") {
  const Command command{.id = "c-1", .device = "lock-1", .set = {{"locked", false}}, .expires_ms = 99};
  const CommandMsg msg = to_message(command);
  CHECK(msg == CommandMsg{.id = "c-1", .device = "lock-1", .set = {{"locked", false}}, .expires = 99});
  const Command back = to_command(msg);
  CHECK(back.id == command.id);
  CHECK(back.device == command.device);
  CHECK(back.set == command.set);
  CHECK(back.expires_ms == command.expires_ms);
}

// ---- refusals before and while parsing --------------------------------------------------------

TEST_CASE("a message larger than the limit is refused before parsing, quickly and with close code 1009") {
  const std::string huge(64 * 1024 * 1024, '[');
  const auto start = std::chrono::steady_clock::now();
  const DecodeError error = refusal(&decode_from_gateway, huge);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(error.code == "message_too_big");
  CHECK(error.message == "message: 67108864 bytes, more than the limit of 65536");
  CHECK(close_code_for(error) == 1009);
  CHECK(elapsed < std::chrono::milliseconds(100));

  Limits small;
  small.max_message_bytes = 10;
  CHECK(gateway_refusal(R"({"type":"ack","seq":1})", small) == "message: 22 bytes, more than the limit of 10");
}

TEST_CASE("text that is not JSON is refused as invalid_json with close code 1002") {
  const DecodeError error = refusal(&decode_from_gateway, R"({"type":"ack",)");
  CHECK(error.code == "invalid_json");
  CHECK(error.message == "message: not valid JSON: parse error at line 1, column 15: syntax error while parsing object key - unexpected end of input; expected string literal");
  CHECK(error.message.find("last read") == std::string::npos);
  CHECK(close_code_for(error) == 1002);

  CHECK(refusal(&decode_from_browser, "").code == "invalid_json");
  CHECK(refusal(&decode_from_browser, "{\"type\":\"login\"} trailing").code == "invalid_json");
}

TEST_CASE("nesting deeper than eight levels is refused without parsing") {
  std::string deep = R"({"type":"status","items":[{"state":{"a":)";
  for (int i = 0; i < 5; ++i) deep += "[";
  CHECK(gateway_refusal(deep) == "message: nested deeper than 8 levels");
  // Brackets inside strings do not count.
  const std::string in_string = R"({"type":"error","code":"x","message":"[[[[[[[[[[[[{{{{{{{{\"]]]"})";
  CHECK(refusal(&decode_from_cloud_for_gateway, in_string).code == "accepted");
}

TEST_CASE("a frame that is not an object is refused") {
  CHECK(gateway_refusal("[1,2]") == "message: expected a JSON object, got an array");
  CHECK(gateway_refusal("42") == "message: expected a JSON object, got 42");
  CHECK(gateway_refusal(R"("hello")") == "message: expected a JSON object, got a string");
}

TEST_CASE("a missing, non-string or unknown type is refused as unknown_type") {
  CHECK(refusal(&decode_from_gateway, "{}").code == "unknown_type");
  CHECK(gateway_refusal("{}") == "type: required but missing");
  CHECK(gateway_refusal(R"({"type":7})") == "type: expected a string, got 7");
  CHECK(gateway_refusal(R"({"type":"frobnicate"})") == R"(type: unknown message type "frobnicate")");
  CHECK(gateway_refusal(R"({"type":")" + std::string(100, 'x') + "\"}") ==
        R"(type: unknown message type "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"...)");
}

TEST_CASE("a message type of another direction is refused by every decoder it is not meant for") {
  CHECK(gateway_refusal(R"({"type":"login","flat":"flat-a","user":"u","password":"p"})") ==
        R"(type: "login" is not a gateway -> cloud message)");
  CHECK(gateway_refusal(R"({"type":"ack","seq":1})") == R"(type: "ack" is not a gateway -> cloud message)");
  CHECK(browser_refusal(hello_with_devices("")) == R"(type: "hello" is not a browser -> cloud message)");
  CHECK(browser_refusal(R"({"type":"status","items":[]})") == R"(type: "status" is not a browser -> cloud message)");
  CHECK(for_gateway_refusal(R"({"type":"snapshot"})") == R"(type: "snapshot" is not a cloud -> gateway message)");
  CHECK(for_browser_refusal(R"({"type":"hello"})") == R"(type: "hello" is not a cloud -> browser message)");
  CHECK(refusal(&decode_from_browser, encode(Presence{"lamp-1", true, 1})).code == "unknown_type");
}

TEST_CASE("garbage bytes and invalid UTF-8 are refused without a crash") {
  CHECK(refusal(&decode_from_gateway, "\xff\xfe\x00\x01").code == "invalid_json");
  const DecodeError bad_utf8 = refusal(&decode_from_cloud_for_gateway, "{\"type\":\"error\",\"code\":\"x\",\"message\":\"\xC3\x28\"}");
  CHECK(bad_utf8.code == "invalid_json");
  CHECK(bad_utf8.message.find("UTF-8") != std::string::npos);

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 2000; ++round) {
    std::string junk(static_cast<size_t>(round % 200), '\0');
    for (auto& c : junk) c = static_cast<char>(byte(rng));
    CHECK(std::holds_alternative<DecodeError>(decode_from_gateway(junk)));
    CHECK(std::holds_alternative<DecodeError>(decode_from_browser(junk)));
  }
}

TEST_CASE("mangled valid messages never crash a decoder, and whatever is accepted encodes back the same") {
  const std::vector<std::string> seeds = {
      encode(Hello{.gateway = "gw-1", .version = "0.1.0", .devices = {lamp(), thermostat()}, .next_seq = 42, .dropped = 3}),
      encode(StatusBatch{.items = {{.seq = 1, .device = "a", .state = {{"x", 1}}, .ts = 2}}}),
      encode(Snapshot{.flat = "f", .name = "n", .gateway_online = true, .devices = {thermostat()}}),
      encode(HistoryReply{.device = "d", .capability = "c", .points = {{1, 2.5}, {3, true}}}),
      encode(BrowserCommand{.id = "b-1", .device = "lamp-1", .set = {{"on", true}}, .ttl_ms = 500}),
      encode(CommandMsg{.id = "c", .device = "d", .set = {{"on", true}}, .expires = 5}),
  };
  std::mt19937 rng(99);
  const std::string alphabet = "{}[]\",:0123456789-.eE truefalsnl\\u\xff\xc3";
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = seeds[static_cast<size_t>(round) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0: text[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: text.erase(at, 1 + rng() % 4); break;
        default: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      }
      if (text.empty()) text = "{";
    }
    const auto check = [&](auto decoder) {
      const auto first = decoder(text, Limits{});
      if (std::holds_alternative<DecodeError>(first)) return;
      ++accepted;
      const auto& message = std::get<0>(first);
      const std::string again = encode(message);
      const auto second = decoder(again, Limits{});
      REQUIRE_MESSAGE(std::holds_alternative<std::decay_t<decltype(message)>>(second), again);
      CHECK(std::get<0>(second) == message);
    };
    check(&decode_from_gateway);
    check(&decode_from_cloud_for_gateway);
    check(&decode_from_browser);
    check(&decode_from_cloud_for_browser);
  }
  CHECK(accepted > 0);
}

// ---- refusals of fields -----------------------------------------------------------------------

TEST_CASE("a seq, ts or ttl out of range is refused with the range and the value") {
  const std::string ok_item = R"({"seq":1,"device":"a","state":{"x":1},"ts":1})";
  CHECK(gateway_refusal(status_items(ok_item + "," + R"({"seq":2,"device":"a","state":{"x":1},"ts":1})" + "," +
                                     R"({"seq":3,"device":"a","state":{"x":1},"ts":1})" + "," +
                                     R"({"seq":-1,"device":"a","state":{"x":1},"ts":1})")) ==
        "status.items[3].seq: expected an integer between 1 and 9007199254740991, got -1");
  CHECK(gateway_refusal(status_items(R"({"seq":0,"device":"a","state":{"x":1},"ts":1})")) ==
        "status.items[0].seq: expected an integer between 1 and 9007199254740991, got 0");
  CHECK(gateway_refusal(status_items(R"({"seq":9007199254740992,"device":"a","state":{"x":1},"ts":1})")) ==
        "status.items[0].seq: expected an integer between 1 and 9007199254740991, got 9007199254740992");
  CHECK(gateway_refusal(status_items(R"({"seq":18446744073709551615,"device":"a","state":{"x":1},"ts":1})")) ==
        "status.items[0].seq: expected an integer between 1 and 9007199254740991, got 18446744073709551615");
  CHECK(gateway_refusal(status_items(R"({"seq":1.5,"device":"a","state":{"x":1},"ts":1})")) ==
        "status.items[0].seq: expected an integer between 1 and 9007199254740991, got 1.5");
  CHECK(gateway_refusal(status_items(R"({"seq":"1","device":"a","state":{"x":1},"ts":1})")) ==
        "status.items[0].seq: expected an integer between 1 and 9007199254740991, got a string");
  CHECK(gateway_refusal(status_items(R"({"seq":1,"device":"a","state":{"x":1},"ts":-5})")) ==
        "status.items[0].ts: expected an integer between 0 and 9007199254740991, got -5");
  CHECK(gateway_refusal(R"({"type":"presence","device":"a","online":true,"ts":1e3})") ==
        "presence.ts: expected an integer between 0 and 9007199254740991, got 1000.0");
  CHECK(for_gateway_refusal(R"({"type":"ack","seq":-1})") ==
        "ack.seq: expected an integer between 0 and 9007199254740991, got -1");
  CHECK(for_gateway_refusal(R"({"type":"command","id":"c","device":"d","set":{"on":true},"expires":null})") ==
        "command.expires: expected an integer between 0 and 9007199254740991, got null");
  CHECK(browser_refusal(R"({"type":"command","id":"b","device":"d","set":{"on":true},"ttl_ms":99})") ==
        "command.ttl_ms: expected an integer between 100 and 600000, got 99");
  CHECK(browser_refusal(R"({"type":"command","id":"b","device":"d","set":{"on":true},"ttl_ms":600001})") ==
        "command.ttl_ms: expected an integer between 100 and 600000, got 600001");
  CHECK(gateway_refusal(R"({"type":"hello","gateway":"g","version":"1","devices":[],"next_seq":0})") ==
        "hello.next_seq: expected an integer between 1 and 9007199254740991, got 0");
  CHECK(gateway_refusal(R"({"type":"hello","gateway":"g","version":"1","devices":[],"next_seq":1,"dropped":-2})") ==
        "hello.dropped: expected an integer between 0 and 9007199254740991, got -2");
  CHECK(gateway_refusal(R"({"type":"hello","gateway":"g","version":"1","devices":[],"next_seq":5,"acked":5})") ==
        "hello.acked: expected below next_seq (5), got 5");
  CHECK(gateway_refusal(R"({"type":"hello","gateway":"g","version":"1","devices":[],"next_seq":5,"acked":-1})") ==
        "hello.acked: expected an integer between 0 and 9007199254740991, got -1");
}

TEST_CASE("a missing field is refused by its path") {
  CHECK(gateway_refusal(status_items(R"({"seq":1,"device":"a","state":{"x":1}})")) ==
        "status.items[0].ts: required but missing");
  CHECK(gateway_refusal(R"({"type":"status"})") == "status.items: required but missing");
  CHECK(gateway_refusal(R"({"type":"hello","gateway":"g","version":"1","devices":[]})") ==
        "hello.next_seq: required but missing");
  CHECK(gateway_refusal(R"({"type":"result","id":"c-1","outcome":"ok"})") == "result.message: required but missing");
  CHECK(browser_refusal(R"({"type":"login","flat":"flat-a","user":"demo"})") == "login.password: required but missing");
  CHECK(for_browser_refusal(R"({"type":"gateway"})") == "gateway.online: required but missing");
  CHECK(gateway_refusal(hello_with_devices(R"({"id":"d","name":"D","kind":"k","capabilities":[],"online":true})")) ==
        "hello.devices[0].state: required but missing");
}

TEST_CASE("a field of the wrong type is refused, naming what was expected") {
  CHECK(gateway_refusal(R"({"type":"presence","device":"a","online":"yes","ts":1})") ==
        "presence.online: expected true or false, got a string");
  CHECK(gateway_refusal(R"({"type":"status","items":{}})") == "status.items: expected an array, got an object");
  CHECK(gateway_refusal(status_items("5")) == "status.items[0]: expected an object, got 5");
  CHECK(gateway_refusal(R"({"type":"hello","gateway":"g","version":1,"devices":[],"next_seq":1})") ==
        "hello.version: expected a string, got 1");
  CHECK(for_browser_refusal(R"({"type":"history","device":"d","capability":"c","points":[[1,2,3]]})") ==
        "history.points[0]: expected [ts, value], got an array");
  CHECK(for_browser_refusal(R"({"type":"history","device":"d","capability":"c","points":[5]})") ==
        "history.points[0]: expected [ts, value], got 5");
}

TEST_CASE("a password is never echoed in a refusal") {
  const std::string message = browser_refusal(R"({"type":"login","flat":"flat-a","user":"demo","password":1234})");
  CHECK(message == "login.password: expected a string, got a number");
}

TEST_CASE("ids that break the id alphabet are refused and quoted") {
  CHECK(gateway_refusal(status_items(R"({"seq":1,"device":"lamp 1","state":{"x":1},"ts":1})")) ==
        R"(status.items[0].device: expected an id (1 to 64 characters of A-Z a-z 0-9 _ . : -), got "lamp 1")");
  CHECK(gateway_refusal(R"({"type":"hello","gateway":"","version":"1","devices":[],"next_seq":1})") ==
        R"(hello.gateway: expected an id (1 to 64 characters of A-Z a-z 0-9 _ . : -), got "")");
  CHECK(gateway_refusal(R"({"type":"result","id":"c/1","outcome":"ok","message":""})") ==
        R"(result.id: expected an id (1 to 64 characters of A-Z a-z 0-9 _ . : -), got "c/1")");
  CHECK(browser_refusal(R"({"type":"login","flat":"../etc","user":"u","password":"p"})") ==
        R"(login.flat: expected an id (1 to 64 characters of A-Z a-z 0-9 _ . : -), got "../etc")");
  CHECK(browser_refusal(R"({"type":"history","device":"d","capability":7})") ==
        "history.capability: expected an id (1 to 64 characters of A-Z a-z 0-9 _ . : -), got 7");
  CHECK(for_gateway_refusal(R"({"type":"command","id":"c","device":"d\u0000","set":{"on":true},"expires":1})") ==
        R"(command.device: expected an id (1 to 64 characters of A-Z a-z 0-9 _ . : -), got "d\u0000")");
  CHECK(for_gateway_refusal(R"({"type":"error","code":"bad code","message":""})") ==
        R"(error.code: expected an id (1 to 64 characters of A-Z a-z 0-9 _ . : -), got "bad code")");
}

TEST_CASE("state values must be scalars under id keys, within the limits") {
  const auto state = [](const std::string& s) {
    return gateway_refusal(status_items(R"({"seq":1,"device":"a","state":)" + s + R"(,"ts":1})"));
  };
  CHECK(state(R"({"on":{"x":1}})") == "status.items[0].state.on: expected a scalar (true/false, a number or a string), got an object");
  CHECK(state(R"({"on":[true]})") == "status.items[0].state.on: expected a scalar (true/false, a number or a string), got an array");
  CHECK(state(R"({"on":null})") == "status.items[0].state.on: expected a scalar (true/false, a number or a string), got null");
  CHECK(state(R"({"bad key":1})") ==
        R"(status.items[0].state: key "bad key" is not an id (1 to 64 characters of A-Z a-z 0-9 _ . : -))");
  CHECK(state(R"({})") == "status.items[0].state: expected at least one key");
  CHECK(state(R"([])") == "status.items[0].state: expected an object, got an array");
  CHECK(state(R"({"label":")" + std::string(257, 'x') + "\"}") ==
        "status.items[0].state.label: expected a string of at most 256 bytes, got 257");
  CHECK(state(R"({"t":1e400})").rfind("message: not valid JSON", 0) == 0);

  std::string many = "{";
  for (int i = 0; i < 65; ++i) many += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\":1";
  CHECK(state(many + "}") == "status.items[0].state: expected at most 64 keys, got 65");

  CHECK(for_gateway_refusal(R"({"type":"command","id":"c","device":"d","set":{},"expires":1})") ==
        "command.set: expected at least one key");
  CHECK(browser_refusal(R"({"type":"command","id":"c","device":"d","set":{"on":{}}})") ==
        "command.set.on: expected a scalar (true/false, a number or a string), got an object");
  CHECK(for_browser_refusal(R"({"type":"history","device":"d","capability":"c","points":[[1,null]]})") ==
        "history.points[0][1]: expected a scalar (true/false, a number or a string), got null");
}

TEST_CASE("a status batch must hold 1 to 500 items with strictly increasing seq") {
  CHECK(gateway_refusal(R"({"type":"status","items":[]})") == "status.items: expected 1 to 500 items, got 0");

  std::string items;
  for (int i = 1; i <= 501; ++i) {
    items += (i > 1 ? "," : "") + std::string(R"({"seq":)") + std::to_string(i) + R"(,"device":"a","state":{"x":1},"ts":1})";
  }
  CHECK(gateway_refusal(status_items(items)) == "status.items: expected 1 to 500 items, got 501");
  Limits roomy;
  roomy.max_batch = 501;
  CHECK(refusal(&decode_from_gateway, status_items(items), roomy).code == "accepted");

  CHECK(gateway_refusal(status_items(R"({"seq":5,"device":"a","state":{"x":1},"ts":1},)"
                                     R"({"seq":5,"device":"a","state":{"x":1},"ts":1})")) ==
        "status.items[1].seq: expected more than 5 (seq increases strictly within a batch), got 5");
  CHECK(gateway_refusal(status_items(R"({"seq":5,"device":"a","state":{"x":1},"ts":1},)"
                                     R"({"seq":3,"device":"a","state":{"x":1},"ts":1})")) ==
        "status.items[1].seq: expected more than 5 (seq increases strictly within a batch), got 3");
}

TEST_CASE("history points must be in time order and within the limit") {
  CHECK(for_browser_refusal(R"({"type":"history","device":"d","capability":"c","points":[[5,1],[4,1]]})") ==
        "history.points[1][0]: expected at least 5 (points are in time order), got 4");
  std::string points;
  for (int i = 0; i < 5001; ++i) points += (i ? "," : "") + std::string("[1,1]");
  CHECK(for_browser_refusal(R"({"type":"history","device":"d","capability":"c","points":[)" + points + "]}") ==
        "history.points: expected at most 5000 items, got 5001");
}

TEST_CASE("an unknown outcome is refused with the list of outcomes") {
  CHECK(gateway_refusal(R"({"type":"result","id":"c-1","outcome":"done","message":""})") ==
        R"(result.outcome: expected one of ok, rejected, expired, timeout, offline, device_error, got "done")");
  CHECK(for_browser_refusal(R"({"type":"result","id":"c-1","outcome":3,"message":""})") ==
        "result.outcome: expected one of ok, rejected, expired, timeout, offline, device_error, got 3");
}

TEST_CASE("capabilities are checked: type names, ranges, options and their kinds") {
  const auto cap = [](const std::string& c) { return gateway_refusal(hello_with_devices(device_with_capability(c))); };
  CHECK(cap(R"({"name":"t","type":"float","writable":false})") ==
        R"(hello.devices[0].capabilities[0].type: expected one of bool, int, number, enum, text, got "float")");
  CHECK(cap(R"({"name":"t","writable":false})") == "hello.devices[0].capabilities[0].type: required but missing");
  CHECK(cap(R"({"name":"t","type":"bool"})") == "hello.devices[0].capabilities[0].writable: required but missing");
  CHECK(cap(R"({"name":"t","type":"bool","writable":false,"min":0})") ==
        "hello.devices[0].capabilities[0].min: only int and number capabilities have a range");
  CHECK(cap(R"({"name":"t","type":"int","writable":false,"min":10,"max":5})") ==
        "hello.devices[0].capabilities[0].max: expected at least min (10.0), got 5.0");
  CHECK(cap(R"({"name":"t","type":"int","writable":false,"max":"5"})") ==
        "hello.devices[0].capabilities[0].max: expected a finite number, got a string");
  CHECK(cap(R"({"name":"t","type":"enum","writable":true})") ==
        "hello.devices[0].capabilities[0].options: required for an enum capability but missing");
  CHECK(cap(R"({"name":"t","type":"enum","writable":true,"options":[]})") ==
        "hello.devices[0].capabilities[0].options: expected 1 to 64 items, got 0");
  CHECK(cap(R"({"name":"t","type":"enum","writable":true,"options":["a",""]})") ==
        "hello.devices[0].capabilities[0].options[1]: expected a non-empty string");
  CHECK(cap(R"({"name":"t","type":"text","writable":true,"options":["a"]})") ==
        "hello.devices[0].capabilities[0].options: only enum capabilities have options");
  CHECK(cap(R"({"name":"t","type":"int","writable":true,"max_length":5})") ==
        "hello.devices[0].capabilities[0].max_length: only text capabilities have a max_length");
  CHECK(cap(R"({"name":"t","type":"text","writable":true,"max_length":0})") ==
        "hello.devices[0].capabilities[0].max_length: expected an integer between 1 and 256, got 0");
  CHECK(cap(R"({"name":"t","type":"bool","writable":true,"confirm":"yes"})") ==
        "hello.devices[0].capabilities[0].confirm: expected true or false, got a string");
  CHECK(cap(R"({"name":"on","type":"bool","writable":true},{"name":"on","type":"int","writable":true})") ==
        R"(hello.devices[0].capabilities[1].name: duplicate capability "on")");
}

TEST_CASE("duplicate device ids in a device list are refused") {
  const std::string d = R"({"id":"lamp-1","name":"L","kind":"lamp","capabilities":[],"state":{},"online":true})";
  CHECK(gateway_refusal(hello_with_devices(d + "," + d)) == R"(hello.devices[1].id: duplicate device id "lamp-1")");
  CHECK(gateway_refusal(R"({"type":"devices","devices":[)" + d + "," + d + "]}") ==
        R"(devices.devices[1].id: duplicate device id "lamp-1")");
  CHECK(for_browser_refusal(R"({"type":"snapshot","flat":"f","name":"n","gateway_online":true,"devices":[)" + d + "," +
                            d + "]}") == R"(snapshot.devices[1].id: duplicate device id "lamp-1")");
}

TEST_CASE("a device list longer than max_devices is refused") {
  Limits limits;
  limits.max_devices = 2;
  std::string devices;
  for (int i = 0; i < 3; ++i) {
    devices += (i ? "," : "") + std::string(R"({"id":"d)") + std::to_string(i) +
               R"(","name":"D","kind":"k","capabilities":[],"state":{},"online":true})";
  }
  CHECK(gateway_refusal(hello_with_devices(devices), limits) == "hello.devices: expected at most 2 items, got 3");
}

TEST_CASE("unknown keys are refused, at the top and inside") {
  CHECK(gateway_refusal(R"({"type":"presence","device":"a","online":true,"ts":1,"extra":1})") ==
        R"(presence: unknown key "extra")");
  CHECK(gateway_refusal(status_items(R"({"sq":1,"device":"a","state":{"x":1},"ts":1})")) ==
        R"(status.items[0]: unknown key "sq")");
  CHECK(gateway_refusal(hello_with_devices(R"({"id":"d","name":"D","kind":"k","capabilities":[],"state":{},"online":true,"color":"red"})")) ==
        R"(hello.devices[0]: unknown key "color")");
  CHECK(gateway_refusal(hello_with_devices(device_with_capability(R"({"name":"t","type":"bool","writable":true,"step":1})"))) ==
        R"(hello.devices[0].capabilities[0]: unknown key "step")");
  CHECK(for_gateway_refusal(R"({"type":"command","id":"c","device":"d","set":{"on":true},"expires":1,"ttl_ms":5})") ==
        R"(command: unknown key "ttl_ms")");
  CHECK(browser_refusal(R"({"type":"command","id":"c","device":"d","set":{"on":true},"expires":1})") ==
        R"(command: unknown key "expires")");
}

TEST_CASE("strings longer than the limits are refused") {
  CHECK(gateway_refusal(R"({"type":"hello","gateway":"g","version":")" + std::string(257, 'v') +
                        R"(","devices":[],"next_seq":1})") == "hello.version: expected at most 256 bytes, got 257");
  CHECK(gateway_refusal(R"({"type":"hello","gateway":"g","version":"","devices":[],"next_seq":1})") ==
        "hello.version: expected a non-empty string");
  CHECK(gateway_refusal(R"({"type":"result","id":"c","outcome":"ok","message":")" + std::string(1025, 'm') + "\"}") ==
        "result.message: expected at most 1024 bytes, got 1025");
  CHECK(browser_refusal(R"({"type":"login","flat":"f","user":"","password":""})") ==
        "login.user: expected a non-empty string");
}

// ---- encoding never throws --------------------------------------------------------------------

TEST_CASE("encoding strings with invalid UTF-8 does not throw and gives text the decoder accepts") {
  const Result result{.id = "c-1", .outcome = Outcome::device_error, .message = "bad \xff\xfe bytes \xC3"};
  std::string text;
  CHECK_NOTHROW(text = encode(result));
  const auto decoded = decode_from_gateway(text);
  REQUIRE(std::holds_alternative<GatewayToCloud>(decoded));
  CHECK(std::get<Result>(std::get<GatewayToCloud>(decoded)).message == "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes \xEF\xBF\xBD");

  const Update update{.device = "lamp-1", .state = {{"label", "\xff"}}, .ts = 1};
  CHECK_NOTHROW(text = encode(update));
  CHECK(text.find("\xEF\xBF\xBD") != std::string::npos);
}

TEST_CASE("a result or error message longer than the limit is cut by the encoder at a character boundary") {
  std::string long_message;
  for (int i = 0; i < 600; ++i) long_message += "ü";  // 2 bytes each
  const Result result{.id = "c-1", .outcome = Outcome::device_error, .message = "x" + long_message};
  const Result back = round_trip(result, &decode_from_gateway);
  CHECK(back.message.size() == 1023);
  CHECK(back.message == ("x" + long_message).substr(0, 1023));

  const Error error = round_trip(Error{.code = "c", .message = long_message}, &decode_from_cloud_for_browser);
  CHECK(error.message.size() == 1024);
}

TEST_CASE("clip_utf8 never splits a character and replaces invalid bytes") {
  CHECK(clip_utf8("abc", 10) == "abc");
  CHECK(clip_utf8("abc", 2) == "ab");
  CHECK(clip_utf8("a\xC3\xBC", 2) == "a");           // ü does not fit
  CHECK(clip_utf8("\xE2\x82\xAC!", 3) == "\xE2\x82\xAC");  // €
  CHECK(clip_utf8("a\xffz", 10) == "a\xEF\xBF\xBDz");
  CHECK(clip_utf8("\xC0\xAF", 10) == "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  CHECK(clip_utf8("\xED\xA0\x80", 10) == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  CHECK(clip_utf8("\xF0\x9F\x92\xA1", 4) == "\xF0\x9F\x92\xA1");
  CHECK(clip_utf8("", 0).empty());
}

TEST_CASE("close codes and subprotocol names are the documented ones") {
  CHECK(kGatewaySubprotocol == "flatlink-gateway.v1");
  CHECK(kBrowserSubprotocol == "flatlink-browser.v1");
  CHECK(close_code::kBinaryNotAccepted == 1003);
  CHECK(close_code::kReplaced == 4001);
  CHECK(close_code_for(DecodeError{"invalid_message", "x"}) == 1002);
}

TEST_CASE("a hello carries its stream's epoch and its coalesced and lost counts; an ack its cloud's limits") {
  Hello hello;
  hello.gateway = "gw-1";
  hello.version = "1.0";
  hello.epoch = "0123456789abcdef0123456789abcdef";
  hello.next_seq = 42;
  hello.coalesced = 7;
  hello.lost = 3;
  CHECK(round_trip(hello, &decode_from_gateway) == hello);
  Ack ack{5, Limits{}};
  ack.limits->max_message_bytes = 32768;
  ack.limits->max_batch = 100;
  CHECK(round_trip(ack, &decode_from_cloud_for_gateway) == ack);
  ack.limits->messages_per_s = 20;  // the cloud's per-link rate, which the gateway paces to
  ack.limits->burst = 40;
  CHECK(round_trip(ack, &decode_from_cloud_for_gateway) == ack);
  CHECK(round_trip(Ack{5}, &decode_from_cloud_for_gateway) == Ack{5});
  StatusBatch batch;
  batch.items.push_back(StatusItem{1, "t", Json{{"v", 1}}, 1});
  batch.coalesced = 9;
  CHECK(round_trip(batch, &decode_from_gateway) == batch);
}

TEST_CASE("an epoch that is not 32 lowercase hex digits, or limits out of range, are refused") {
  CHECK(gateway_refusal(R"({"type":"hello","gateway":"g","version":"1","devices":[],"next_seq":1,"epoch":"ABC"})") ==
        R"(hello.epoch: expected 32 lowercase hex digits, got "ABC")");
  CHECK(gateway_refusal(R"({"type":"hello","gateway":"g","version":"1","devices":[],"next_seq":1,"epoch":"0123456789ABCDEF0123456789abcdef"})")
            .find("hello.epoch") == 0);
  CHECK(for_gateway_refusal(R"({"type":"ack","seq":1,"limits":{"max_message_bytes":10,"max_batch":1,"max_devices":1,"max_state_keys":1,"max_string":16}})")
            .find("ack.limits.max_message_bytes: expected an integer between 1024") == 0);
  CHECK(for_gateway_refusal(R"({"type":"ack","seq":1,"limits":{"max_batch":1}})").find("ack.limits.max_message_bytes") == 0);
  // A rate comes with its burst.
  CHECK(for_gateway_refusal(R"({"type":"ack","seq":1,"limits":{"max_message_bytes":2048,"max_batch":1,"max_devices":1,"max_state_keys":1,"max_string":16,"messages_per_s":5}})")
            .find("ack.limits.burst") == 0);
  CHECK(for_gateway_refusal(R"({"type":"ack","seq":1,"limits":{"max_message_bytes":2048,"max_batch":1,"max_devices":1,"max_state_keys":1,"max_string":16,"messages_per_s":0,"burst":1}})")
            .find("ack.limits.messages_per_s: expected an integer between 1") == 0);
}

// Clouds are upgraded before gateways: a gateway that refused an ack announcing a limit it
// did not know (as one built before messages_per_s refused the rate) could never connect to
// the newer cloud. It ignores such a limit and applies the ones it knows.
TEST_CASE("an ack's limit the gateway does not know is ignored; the known ones still apply") {
  const auto decoded = decode_from_cloud_for_gateway(
      R"({"type":"ack","seq":7,"limits":{"max_message_bytes":2048,"max_batch":3,"max_devices":4,"max_state_keys":5,"max_string":16,"max_history_points":9,"future":{"x":1}}})");
  const auto* msg = std::get_if<CloudToGateway>(&decoded);
  REQUIRE(msg != nullptr);
  const auto* ack = std::get_if<Ack>(msg);
  REQUIRE(ack != nullptr);
  CHECK(ack->seq == 7);
  REQUIRE(ack->limits);
  CHECK(ack->limits->max_message_bytes == 2048);
  CHECK(ack->limits->max_batch == 3);
  CHECK(ack->limits->max_devices == 4);
  CHECK(ack->limits->max_state_keys == 5);
  CHECK(ack->limits->max_string == 16);
  CHECK(ack->limits->messages_per_s == 0);  // not announced: not paced
  // Unknown keys of the ack itself are still refused: only limits may grow.
  CHECK(for_gateway_refusal(R"({"type":"ack","seq":1,"extra":1})").find("unknown key") != std::string::npos);
}

TEST_CASE("a status batch is cut at the byte limit: every frame fits and decodes, and nothing is left out") {
  // Statuses of an 11-value device: 200 of them pass 64 KiB in one frame.
  std::vector<StatusItem> items;
  for (int i = 1; i <= 200; ++i) {
    Json state;
    for (int k = 0; k < 11; ++k) state["value_" + std::to_string(k)] = std::string(20, 'a' + k) + std::to_string(i);
    items.push_back(StatusItem{i, "meter-1", state, 1'700'000'000'000 + i});
  }
  StatusBatch whole;
  whole.items = items;
  REQUIRE(encode(whole).size() > Limits{}.max_message_bytes);
  std::vector<StatusItem> arrived;
  size_t next = 0;
  int frames = 0;
  while (next < items.size()) {
    StatusBatchEncoder encoder(Limits{}.max_message_bytes, Limits{}.max_batch);
    encoder.set_counts(12, 34);
    while (next < items.size() && encoder.add(items[next])) ++next;
    REQUIRE(encoder.items() > 0);
    const std::string frame = encoder.finish();
    ++frames;
    CHECK(frame.size() <= Limits{}.max_message_bytes);
    const auto decoded = decode_from_gateway(frame);
    REQUIRE(std::holds_alternative<GatewayToCloud>(decoded));
    const auto& batch = std::get<StatusBatch>(std::get<GatewayToCloud>(decoded));
    CHECK(batch.dropped == 12);
    CHECK(batch.coalesced == 34);
    arrived.insert(arrived.end(), batch.items.begin(), batch.items.end());
  }
  CHECK(frames >= 2);
  CHECK(arrived == items);
  // An item that alone does not fit is not added, and says how big it would be.
  StatusBatchEncoder small(4096, 500);
  StatusItem big{1, "t", Json{{"text", std::string(5000, 'x')}}, 1};
  CHECK_FALSE(small.add(big));
  CHECK(small.frame_size_of(big) > 4096);
  // The count limit cuts too.
  StatusBatchEncoder counted(1 << 20, 3);
  for (int i = 0; i < 3; ++i) CHECK(counted.add(items[static_cast<size_t>(i)]));
  CHECK_FALSE(counted.add(items[3]));
}

TEST_CASE("a batch from encoded states is byte for byte the batch from state trees") {
  // The gateway's outbox keeps each state's text; the frame built from it must be the one
  // the tree-based encoder makes (docs/protocol.md's wire format), escapes included.
  std::vector<StatusItem> items = {
      {1, "lamp-1", Json{{"on", true}, {"brightness", 50}}, 1'700'000'000'000},
      {2, "t\"h\\e\nrm\u00e9", Json{{"temp", 21.5}, {"note", "caf\u00e9 \"x\"\t"}}, 1'700'000'000'001},
      {3, "bad\xff", Json{{"text", "ok"}}, -5},
      {4, "lamp-1", Json::object(), 0},
  };
  for (const int64_t dropped : {0, 7}) {
    StatusBatchEncoder trees(Limits{}.max_message_bytes, Limits{}.max_batch);
    StatusBatchEncoder texts(Limits{}.max_message_bytes, Limits{}.max_batch);
    trees.set_counts(dropped, 3);
    texts.set_counts(dropped, 3);
    for (const auto& item : items) {
      const EncodedStatus encoded{item.seq, item.device,
                                  item.state.dump(-1, ' ', false, Json::error_handler_t::replace), item.ts};
      CHECK(texts.frame_size_of(encoded) == trees.frame_size_of(item));
      REQUIRE(trees.add(item));
      REQUIRE(texts.add(encoded));
    }
    CHECK(texts.finish() == trees.finish());
    CHECK(texts.items() == 0);  // empty again: the next frame starts afresh
    REQUIRE(texts.add(EncodedStatus{9, "lamp-1", R"({"on":false})", 1}));
    CHECK(texts.finish() == std::string(R"({"type":"status","items":[{"device":"lamp-1","seq":9,"state":{"on":false},"ts":1}])") +
                                (dropped ? R"(,"dropped":7)" : "") + R"(,"coalesced":3})");
  }
}

TEST_CASE("the boundary checks say what the cloud would refuse in a state or a device") {
  CHECK_FALSE(check_state(Json{{"on", true}}, Limits{}));
  const auto too_long = check_state(Json{{"text", std::string(300, 'x')}}, Limits{});
  REQUIRE(too_long);
  CHECK(too_long->find("state.text: expected a string of at most 256 bytes") == 0);
  DeviceReport device;
  device.info.id = "d";
  device.info.name = "d";
  device.info.kind = "k";
  for (int i = 0; i < 70; ++i) device.info.capabilities.push_back(capability("c" + std::to_string(i), ValueType::boolean, false));
  REQUIRE(check_device(device, Limits{}));
  device.info.capabilities.resize(3);
  CHECK_FALSE(check_device(device, Limits{}));
}
