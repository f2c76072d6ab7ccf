// Tests of the configuration loader: exact error messages for each kind of mistake,
// defaults, referenced files (token, TLS), the shipped examples and the summaries.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config_loader.h"

using namespace flatlink::config;
using Json = nlohmann::json;

namespace {

const std::string kExamples = std::string(FLATLINK_SOURCE_DIR) + "/config/examples";
const std::string kHashA = "af83df711009792271456e0bf45e479e36b906b85434aec54ddd07d50f04caa6";
const std::string kHashB = "5b81faab555d433c3be60f6f25b1b7ff8a4fb516f6c965812007a23aa2ff1de4";
const std::string kPasswordHash =
    "pbkdf2-sha256$100000$6a1f3c9e2b7d4a50c8e1f2a3b4c5d6e7$"
    "e65bcfaa0531992854bcfa3a983bc0f702608c340959b1c3a6d5dd2a66b1094a";

// A fresh folder under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/flatlink-config-test-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  std::string write(const std::string& name, const std::string& content, mode_t mode = 0600) const {
    const std::string full = file(name);
    std::filesystem::create_directories(std::filesystem::path(full).parent_path());
    {
      std::ofstream out(full, std::ios::binary | std::ios::trunc);
      out << content;
    }
    REQUIRE(::chmod(full.c_str(), mode) == 0);
    return full;
  }

 private:
  std::string path_;
};

// Redirects fd 2 into a temporary file, to see what the loader logged.
class StderrCapture {
 public:
  StderrCapture() : file_(std::tmpfile()) {
    REQUIRE(file_ != nullptr);
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(::fileno(file_), STDERR_FILENO);
  }
  ~StderrCapture() {
    restore();
    std::fclose(file_);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  std::string text() {
    restore();
    std::string out;
    std::rewind(file_);
    char buf[512];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) out.append(buf, n);
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  std::FILE* file_;
  int saved_ = -1;
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Json minimal_gateway() {
  return Json::parse(R"({
    "gateway_id": "gw-1",
    "flat": "flat-a",
    "cloud": { "url": "ws://127.0.0.1:8080/", "token": "secret-token-1" },
    "adapters": [ { "type": "sim", "devices": [ { "id": "lamp-1", "kind": "lamp" } ] } ]
  })");
}

// A serial adapter with one device, declared by "device" (lines need not name it).
Json serial_adapter(const std::string& name = "uart", const std::string& port = "/dev/ttyUSB0") {
  return Json{{"type", "serial"}, {"name", name}, {"port", port}, {"device", name + "-dev"}};
}

Json minimal_cloud() {
  return Json{{"flats", Json::array({Json{{"id", "flat-a"}, {"gateway_token_sha256", kHashA}}})}};
}

std::string gateway_error_text(const std::string& text, const std::string& base_dir = ".") {
  const Loaded<GatewayConfig> loaded = parse_gateway_config(text, "gateway.json", base_dir);
  const auto* error = std::get_if<ConfigError>(&loaded);
  REQUIRE_MESSAGE(error != nullptr, "the configuration was accepted");
  return error->message;
}

std::string gateway_error(const Json& doc, const std::string& base_dir = ".") {
  return gateway_error_text(doc.dump(2), base_dir);
}

GatewayConfig gateway_ok(const Json& doc, const std::string& base_dir = ".") {
  Loaded<GatewayConfig> loaded = parse_gateway_config(doc.dump(2), "gateway.json", base_dir);
  if (const auto* error = std::get_if<ConfigError>(&loaded)) FAIL_CHECK(error->message);
  REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
  return std::get<GatewayConfig>(std::move(loaded));
}

std::string cloud_error(const Json& doc, const std::string& base_dir = ".") {
  const Loaded<CloudConfig> loaded = parse_cloud_config(doc.dump(2), "cloud.json", base_dir);
  const auto* error = std::get_if<ConfigError>(&loaded);
  REQUIRE_MESSAGE(error != nullptr, "the configuration was accepted");
  return error->message;
}

CloudConfig cloud_ok(const Json& doc, const std::string& base_dir = ".") {
  Loaded<CloudConfig> loaded = parse_cloud_config(doc.dump(2), "cloud.json", base_dir);
  if (const auto* error = std::get_if<ConfigError>(&loaded)) FAIL_CHECK(error->message);
  REQUIRE(std::holds_alternative<CloudConfig>(loaded));
  return std::get<CloudConfig>(std::move(loaded));
}

std::string to_hex(const unsigned char* data, size_t size) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0x0f];
  }
  return out;
}

std::string sha256_hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return to_hex(digest, sizeof digest);
}

}  // namespace

// ---------------------------------------------------------------- parse errors

TEST_CASE("a syntax error names the file, the line and the column") {
  CHECK(gateway_error_text("{\n  \"gateway_id\": \"gw-1\",\n}\n") ==
        "gateway.json: line 3, column 1: syntax error while parsing object key - unexpected '}'; "
        "expected string literal");
  CHECK(gateway_error_text("") ==
        "gateway.json: line 1, column 1: syntax error while parsing value - unexpected end of input; "
        "expected '[', '{', or a literal");
  CHECK(gateway_error_text("{\"gateway_id\": 1e400}") == "gateway.json: number overflow parsing '1e400'");
}

TEST_CASE("a syntax error does not echo the input, which may be a token") {
  const std::string message = gateway_error_text("{\"cloud\": {\"token\": \"hunter2-secret\n\"}}");
  CHECK(message ==
        "gateway.json: line 2, column 0: syntax error while parsing value - invalid string: control character U+000A "
        "(LF) must be escaped to \\u000A or \\n");
  CHECK_FALSE(contains(message, "hunter2"));
}

TEST_CASE("comments are not JSON and are refused") {
  CHECK(contains(gateway_error_text("// gateway\n{}"), "gateway.json: line 1, column 1: syntax error"));
}

TEST_CASE("a key written twice in one object is refused with its path") {
  CHECK(gateway_error_text(R"({"gateway_id": "a", "cloud": {"url": "ws://127.0.0.1/", "url": "ws://x/"}})") ==
        "gateway.json: cloud.url: duplicate key");
  CHECK(gateway_error_text(R"({"adapters": [{"type": "sim"}, {"devices": [{"id": "a", "id": "b"}]}]})") ==
        "gateway.json: adapters[1].devices[0].id: duplicate key");
}

TEST_CASE("the top level must be an object") {
  CHECK(gateway_error_text("[1, 2]") == "gateway.json: expected an object at the top level, got [1,2]");
  CHECK(gateway_error_text("null") == "gateway.json: expected an object at the top level, got null");
  const Loaded<CloudConfig> cloud = parse_cloud_config("\"text\"", "cloud.json");
  REQUIRE(std::holds_alternative<ConfigError>(cloud));
  CHECK(std::get<ConfigError>(cloud).message == "cloud.json: expected an object at the top level, got \"text\"");
}

// ---------------------------------------------------------------- schema errors

TEST_CASE("an unknown key is refused and the allowed keys are listed") {
  Json doc = minimal_gateway();
  doc["adapters"] = Json::array({serial_adapter()});
  doc["adapters"][0]["baudrate"] = 9600;
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[0].baudrate: unknown key (expected one of: name, port, baud, data_bits, parity, "
        "stop_bits, flow_control, protocol, max_line_bytes, command_timeout_ms, device, devices, reopen_min_ms, "
        "reopen_max_ms, type)");

  doc = minimal_gateway();
  doc["gateway"] = "gw-1";
  CHECK(gateway_error(doc) ==
        "gateway.json: gateway: unknown key (expected one of: gateway_id, flat, state_dir, log_level, "
        "command_timeout_ms, outbox, cloud, adapters)");

  doc = minimal_gateway();
  doc["_comment"] = "not allowed either";
  CHECK(contains(gateway_error(doc), "gateway.json: _comment: unknown key"));
}

TEST_CASE("a missing required key is named with its full path") {
  Json doc = minimal_gateway();
  doc["cloud"].erase("url");
  CHECK(gateway_error(doc) == "gateway.json: cloud.url: required key is missing");

  doc = minimal_gateway();
  doc.erase("gateway_id");
  CHECK(gateway_error(doc) == "gateway.json: gateway_id: required key is missing");

  doc = minimal_gateway();
  doc.erase("adapters");
  CHECK(gateway_error(doc) == "gateway.json: adapters: required key is missing");

  doc = minimal_gateway();
  doc["adapters"][0].erase("type");
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].type: required key is missing");

  doc = minimal_gateway();
  doc["adapters"][0]["devices"][0].erase("kind");
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].devices[0].kind: required key is missing");

  doc = minimal_gateway();
  doc["adapters"] = Json::array({Json{{"type", "serial"}, {"name", "uart"}}});
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].port: required key is missing");
}

TEST_CASE("a value of the wrong type is shown as it was written") {
  Json doc = minimal_gateway();
  doc["gateway_id"] = 5;
  CHECK(gateway_error(doc) == "gateway.json: gateway_id: expected an id (1 to 64 of A-Z a-z 0-9 _ . : -), got 5");

  doc = minimal_gateway();
  doc["flat"] = "flat a";
  CHECK(gateway_error(doc) == "gateway.json: flat: expected an id (1 to 64 of A-Z a-z 0-9 _ . : -), got \"flat a\"");

  doc = minimal_gateway();
  doc["state_dir"] = Json::array({"/var"});
  CHECK(gateway_error(doc) == "gateway.json: state_dir: expected a non-empty string, got [\"/var\"]");

  doc = minimal_gateway();
  doc["cloud"] = "ws://127.0.0.1/";
  CHECK(gateway_error(doc) == "gateway.json: cloud: expected an object, got \"ws://127.0.0.1/\"");

  doc = minimal_gateway();
  doc["cloud"]["insecure"] = "yes";
  CHECK(gateway_error(doc) == "gateway.json: cloud.insecure: expected true or false, got \"yes\"");

  doc = minimal_gateway();
  doc["adapters"] = Json::object();
  CHECK(gateway_error(doc) == "gateway.json: adapters: expected an array, got {}");

  doc = minimal_gateway();
  doc["adapters"] = Json::array();  // the packaged starting file: no adapter yet
  CHECK(gateway_ok(doc).adapters.empty());

  doc = minimal_gateway();
  doc["adapters"][0]["devices"] = Json::array();
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].devices: expected a non-empty array, got []");

  doc = minimal_gateway();
  doc["adapters"] = Json::array({5});
  CHECK(gateway_error(doc) == "gateway.json: adapters[0]: expected an object, got 5");

  doc = minimal_gateway();
  doc["adapters"][0]["devices"] = Json::array({Json{{"id", "lamp-1"}, {"kind", "lamp"}}, "lamp-2"});
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].devices[1]: expected an object, got \"lamp-2\"");

  Json cloud = minimal_cloud();
  cloud["flats"].push_back(7);
  CHECK(cloud_error(cloud) == "cloud.json: flats[1]: expected an object, got 7");
  cloud = minimal_cloud();
  cloud["flats"][0]["users"] = Json::array({Json::array()});
  CHECK(cloud_error(cloud) == "cloud.json: flats[0].users[0]: expected an object, got []");

  doc = minimal_gateway();
  doc["adapters"][0]["devices"][0]["room"] = 12;
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].devices[0].room: expected a string, got 12");

  doc = minimal_gateway();
  doc["cloud"]["url"] = nullptr;
  CHECK(gateway_error(doc) == "gateway.json: cloud.url: expected a string, got null");
}

TEST_CASE("a long value is cut short in the message") {
  Json doc = minimal_gateway();
  doc["flat"] = std::string(200, 'x');
  CHECK(gateway_error(doc) == "gateway.json: flat: expected an id (1 to 64 of A-Z a-z 0-9 _ . : -), got \"" +
                                  std::string(76, 'x') + "...");
}

TEST_CASE("a number out of range is refused with the range") {
  Json doc = minimal_gateway();
  doc["command_timeout_ms"] = 50;
  CHECK(gateway_error(doc) == "gateway.json: command_timeout_ms: expected an integer from 100 to 600000, got 50");

  doc = minimal_gateway();
  doc["cloud"]["ping_interval_s"] = 0;
  CHECK(gateway_error(doc) == "gateway.json: cloud.ping_interval_s: expected an integer from 1 to 3600, got 0");

  doc = minimal_gateway();
  doc["adapters"] = Json::array({serial_adapter()});
  doc["adapters"][0]["data_bits"] = 9;
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].data_bits: expected an integer from 5 to 8, got 9");

  doc = minimal_gateway();
  doc["adapters"][0]["devices"][0]["initial"] = 150;
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[0].devices[0].initial: expected a number from -50 to 100, got 150");

  doc = minimal_gateway();
  doc["cloud"]["backoff_base_ms"] = 1000;
  doc["cloud"]["backoff_max_ms"] = 500;
  CHECK(gateway_error(doc) ==
        "gateway.json: cloud.backoff_max_ms: expected an integer from 1000 to 3600000, got 500");
}

TEST_CASE("fractions, negative numbers and booleans are refused where whole numbers are expected") {
  Json doc = minimal_gateway();
  doc["adapters"][0]["latency_ms"] = 20.5;
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].latency_ms: expected an integer from 0 to 60000, got 20.5");

  doc["adapters"][0]["latency_ms"] = 20.0;
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].latency_ms: expected an integer from 0 to 60000, got 20.0");

  doc["adapters"][0]["latency_ms"] = -1;
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].latency_ms: expected an integer from 0 to 60000, got -1");

  doc["adapters"][0]["latency_ms"] = true;
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].latency_ms: expected an integer from 0 to 60000, got true");

  doc["adapters"][0]["latency_ms"] = "20";
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].latency_ms: expected an integer from 0 to 60000, got \"20\"");

  doc = minimal_gateway();
  doc["adapters"][0]["seed"] = -1;
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].seed: expected a non-negative integer, got -1");

  doc = minimal_gateway();
  doc["adapters"][0]["devices"][0]["initial"] = false;
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[0].devices[0].initial: expected a number from -50 to 100, got false");

  doc = minimal_gateway();
  doc["adapters"] = Json::array({serial_adapter()});
  doc["adapters"][0]["baud"] = 9600.5;
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[0].baud: expected one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, "
        "230400, got 9600.5");
}

TEST_CASE("a value outside an enumeration is refused with the choices") {
  Json doc = minimal_gateway();
  doc["log_level"] = "verbose";
  CHECK(gateway_error(doc) ==
        "gateway.json: log_level: expected one of \"debug\", \"info\", \"warn\", \"error\", got \"verbose\"");

  doc = minimal_gateway();
  doc["adapters"][0]["devices"][0]["kind"] = "fan";
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[0].devices[0].kind: expected one of \"lamp\", \"thermometer\", \"lock\", got \"fan\"");

  doc = minimal_gateway();
  doc["adapters"][0]["type"] = "zwave";
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[0].type: expected one of \"sim\", \"serial\", \"wifly\", \"mqtt\", \"audio\", got \"zwave\"");

  doc = minimal_gateway();
  doc["adapters"] = Json::array({serial_adapter()});
  doc["adapters"][0]["parity"] = "mark";
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[0].parity: expected one of \"none\", \"odd\", \"even\", got \"mark\"");
  doc["adapters"][0].erase("parity");
  doc["adapters"][0]["stop_bits"] = 3;
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].stop_bits: expected one of 1, 2, got 3");
  doc["adapters"][0].erase("stop_bits");
  doc["adapters"][0]["flow_control"] = "hardware";
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[0].flow_control: expected one of \"none\", \"rtscts\", \"xonxoff\", got \"hardware\"");
  doc["adapters"][0].erase("flow_control");
  doc["adapters"][0]["protocol"] = "modbus";
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[0].protocol: expected one of \"json\", \"keyvalue\", got \"modbus\"");
}

TEST_CASE("a baud rate written as a word is refused with every supported rate") {
  Json doc = minimal_gateway();
  doc["adapters"].push_back(serial_adapter());
  doc["adapters"][1]["baud"] = "fast";
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[1].baud: expected one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, "
        "230400, got \"fast\"");
  doc["adapters"][1]["baud"] = "9600";
  CHECK(contains(gateway_error(doc), ", got \"9600\""));
  doc["adapters"][1]["baud"] = 14400;
  CHECK(contains(gateway_error(doc), ", got 14400"));
}

TEST_CASE("a device id used twice anywhere in the gateway is refused") {
  Json doc = minimal_gateway();
  doc["adapters"][0]["devices"].push_back(Json{{"id", "lamp-1"}, {"kind", "lock"}});
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[0].devices[1].id: duplicate device id \"lamp-1\", first used at "
        "adapters[0].devices[0].id");

  doc = minimal_gateway();
  doc["adapters"].push_back(serial_adapter());
  doc["adapters"][1]["device"] = "lamp-1";
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[1].device: duplicate device id \"lamp-1\", first used at adapters[0].devices[0].id");

  doc = minimal_gateway();
  doc["adapters"].push_back(Json{{"type", "sim"}, {"name", "sim-2"}, {"devices", doc["adapters"][0]["devices"]}});
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[1].devices[0].id: duplicate device id \"lamp-1\", first used at "
        "adapters[0].devices[0].id");
}

TEST_CASE("two adapters with the same name are refused, also when the name is the default") {
  Json doc = minimal_gateway();
  doc["adapters"] = Json::array({serial_adapter("uart", "/dev/ttyUSB0"), serial_adapter("uart", "/dev/ttyUSB1")});
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[1].name: duplicate adapter name \"uart\", first used by adapters[0]");

  doc = minimal_gateway();
  const Json lamp2 = Json{{"id", "lamp-2"}, {"kind", "lamp"}};
  doc["adapters"].push_back(Json{{"type", "sim"}, {"devices", Json::array({lamp2})}});
  CHECK(gateway_error(doc) ==
        "gateway.json: adapters[1]: duplicate adapter name \"sim\" (the default for type \"sim\"), first used by "
        "adapters[0]; give each adapter its own \"name\"");

  doc["adapters"][1]["name"] = "sim-2";
  CHECK(gateway_ok(doc).adapters.size() == 2);
}

TEST_CASE("two serial adapters on the same port are refused") {
  Json doc = minimal_gateway();
  doc["adapters"] = Json::array({serial_adapter("a", "/dev/ttyUSB0"), serial_adapter("b", "/dev/ttyUSB0")});
  CHECK(gateway_error(doc) == "gateway.json: adapters[1].port: port \"/dev/ttyUSB0\" is already used by adapters[0]");
}

TEST_CASE("a serial port is a path or usb:VID:PID with an optional serial number") {
  Json doc = minimal_gateway();
  for (const char* good : {"/dev/ttyUSB0", "/dev/serial/by-id/usb-FTDI-if00", "usb:0403:6001", "usb:0403:6001:A50285BI",
                           "usb:10C4:EA60"}) {
    doc["adapters"] = Json::array({serial_adapter("uart", good)});
    CHECK_MESSAGE(std::get<SerialAdapterConfig>(gateway_ok(doc).adapters[0]).port == good, good);
  }
  for (const char* bad : {"COM3", "ttyUSB0", "/", "usb:403:6001", "usb:0403:60011", "usb:04g3:6001", "usb:0403:6001:",
                          "usb:0403"}) {
    doc["adapters"] = Json::array({serial_adapter("uart", bad)});
    CHECK(gateway_error(doc) ==
          std::string("gateway.json: adapters[0].port: expected a device path starting with \"/\" or "
                      "usb:VID:PID[:serial] with VID and PID of 4 hex digits, got \"") +
              bad + "\"");
  }
  doc["adapters"] = Json::array({serial_adapter("uart", "")});
  CHECK(gateway_error(doc) == "gateway.json: adapters[0].port: expected a non-empty string, got \"\"");
}

TEST_CASE("the first error in schema order is the one reported") {
  Json doc = minimal_gateway();
  doc["log_level"] = "loud";
  doc["gateway_id"] = "bad id";
  doc["adapters"][0]["latency_ms"] = -5;
  CHECK(gateway_error(doc) ==
        "gateway.json: gateway_id: expected an id (1 to 64 of A-Z a-z 0-9 _ . : -), got \"bad id\"");

  // An unknown key in an object comes before the fields of that object: it is
  // most often a misspelt one.
  doc = minimal_gateway();
  doc["cloud"].erase("url");
  doc["cloud"]["ulr"] = "ws://127.0.0.1/";
  CHECK(contains(gateway_error(doc), "gateway.json: cloud.ulr: unknown key"));
}

// ---------------------------------------------------------------- token rules

TEST_CASE("exactly one of token and token_file is required") {
  TempDir dir;
  dir.write("token.txt", "from-file\n");
  Json doc = minimal_gateway();
  doc["cloud"]["token_file"] = "token.txt";
  CHECK(gateway_error(doc, dir.path()) ==
        "gateway.json: cloud: expected exactly one of \"token\" and \"token_file\", got both");

  doc["cloud"].erase("token");
  doc["cloud"].erase("token_file");
  CHECK(gateway_error(doc, dir.path()) ==
        "gateway.json: cloud: expected exactly one of \"token\" and \"token_file\", got neither");
}

TEST_CASE("an inline token that cannot go in a header is refused without showing it") {
  Json doc = minimal_gateway();
  doc["cloud"]["token"] = "two words";
  CHECK(gateway_error(doc) ==
        "gateway.json: cloud.token: expected a non-empty string of printable ASCII without spaces, got a string "
        "of 9 characters");
  doc["cloud"]["token"] = 123456;
  CHECK(gateway_error(doc) ==
        "gateway.json: cloud.token: expected a non-empty string of printable ASCII without spaces, got a number");
  doc["cloud"]["token"] = "";
  CHECK(contains(gateway_error(doc), "got an empty string"));
}

TEST_CASE("a token file that is missing, empty or not one line is refused") {
  TempDir dir;
  Json doc = minimal_gateway();
  doc["cloud"].erase("token");

  doc["cloud"]["token_file"] = "missing.txt";
  CHECK(gateway_error(doc, dir.path()) == "gateway.json: cloud.token_file: cannot read \"" + dir.file("missing.txt") +
                                             "\": No such file or directory");

  dir.write("empty.txt", "");
  doc["cloud"]["token_file"] = "empty.txt";
  CHECK(gateway_error(doc, dir.path()) == "gateway.json: cloud.token_file: \"" + dir.file("empty.txt") + "\" is empty");

  dir.write("blank.txt", " \n\n");
  doc["cloud"]["token_file"] = "blank.txt";
  CHECK(gateway_error(doc, dir.path()) == "gateway.json: cloud.token_file: \"" + dir.file("blank.txt") + "\" is empty");

  dir.write("two-lines.txt", "secret-one\nsecret-two\n");
  doc["cloud"]["token_file"] = "two-lines.txt";
  const std::string message = gateway_error(doc, dir.path());
  CHECK(message == "gateway.json: cloud.token_file: \"" + dir.file("two-lines.txt") +
                       "\" must hold only the token: one line of printable ASCII without spaces");
  CHECK_FALSE(contains(message, "secret-one"));

  std::filesystem::create_directory(dir.file("folder"));
  doc["cloud"]["token_file"] = "folder";
  CHECK(gateway_error(doc, dir.path()) ==
        "gateway.json: cloud.token_file: cannot read \"" + dir.file("folder") + "\": Is a directory");

  doc["cloud"]["token_file"] = "";
  CHECK(gateway_error(doc, dir.path()) == "gateway.json: cloud.token_file: expected a non-empty string, got \"\"");
}

TEST_CASE("a token file is read relative to the config's folder and trimmed") {
  TempDir dir;
  dir.write("secrets/token", "  tok-123_ABC \r\n\n");
  Json doc = minimal_gateway();
  doc["cloud"].erase("token");
  doc["cloud"]["token_file"] = "secrets/token";
  StderrCapture err;
  const GatewayConfig config = gateway_ok(doc, dir.path());
  CHECK(config.cloud.token == "tok-123_ABC");
  CHECK(config.cloud.token_file == dir.file("secrets/token"));
  CHECK(err.text().empty());  // mode 0600: nothing to warn about

  const std::string absolute = dir.write("abs-token", "abs\n");
  doc["cloud"]["token_file"] = absolute;
  CHECK(gateway_ok(doc, "/nonexistent").cloud.token == "abs");
}

TEST_CASE("a world-readable token file still loads, with a warning that does not show the token") {
  TempDir dir;
  const std::string path = dir.write("token.txt", "world-readable-token\n", 0644);
  Json doc = minimal_gateway();
  doc["cloud"].erase("token");
  doc["cloud"]["token_file"] = "token.txt";
  StderrCapture err;
  const GatewayConfig config = gateway_ok(doc, dir.path());
  const std::string logged = err.text();
  CHECK(config.cloud.token == "world-readable-token");
  CHECK(contains(logged,
                 "WARN config: gateway.json: cloud.token_file \"" + path + "\" is readable by every local user"));
  CHECK(contains(logged, "chmod 600 " + path));
  CHECK_FALSE(contains(logged, "world-readable-token"));
}

TEST_CASE("a world-readable config file holding the token inline is warned about") {
  TempDir dir;
  const std::string path = dir.write("gateway.json", minimal_gateway().dump(), 0644);
  StderrCapture err;
  const Loaded<GatewayConfig> loaded = load_gateway_config(path);
  const std::string logged = err.text();
  REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
  CHECK(contains(logged, path + ": holds the gateway token and is readable by every local user"));
  CHECK_FALSE(contains(logged, "secret-token-1"));
}

// ---------------------------------------------------------------- cloud url

TEST_CASE("ws:// to another machine is refused unless insecure is set") {
  Json doc = minimal_gateway();
  doc["cloud"]["url"] = "ws://cloud.example.com/";
  CHECK(gateway_error(doc) ==
        "gateway.json: cloud.url: expected wss:// (ws:// would send the token unencrypted; it is only allowed to a "
        "loopback host unless \"insecure\" is true), got \"ws://cloud.example.com/\"");
  for (const char* remote : {"ws://10.0.0.1:8080/", "ws://127.0.0.1.example.com/", "ws://localhost.example.com/",
                             "ws://[2001:db8::1]:8080/", "ws://128.0.0.1/"}) {
    doc["cloud"]["url"] = remote;
    CHECK_MESSAGE(contains(gateway_error(doc), "gateway.json: cloud.url: expected wss://"), remote);
  }
  doc["cloud"]["insecure"] = true;
  const GatewayConfig config = gateway_ok(doc);
  CHECK(config.cloud.insecure);
  CHECK(config.cloud.url == "ws://128.0.0.1/");
}

TEST_CASE("ws:// to a loopback host and wss:// anywhere are accepted") {
  Json doc = minimal_gateway();
  for (const char* url : {"ws://127.0.0.1:8080/", "ws://127.1.2.3/", "ws://localhost:8080/flatlink", "ws://LocalHost",
                          "ws://[::1]:8080/", "wss://cloud.example.com/", "wss://cloud.example.com:8443/ws?v=1",
                          "wss://[2001:db8::1]/"}) {
    doc["cloud"]["url"] = url;
    CHECK_MESSAGE(gateway_ok(doc).cloud.url == url, url);
  }
}

TEST_CASE("a URL that is not ws:// or wss:// or is malformed is refused") {
  Json doc = minimal_gateway();
  doc["cloud"]["url"] = "http://127.0.0.1:8080/";
  CHECK(gateway_error(doc) ==
        "gateway.json: cloud.url: expected a URL starting with ws:// or wss://, got \"http://127.0.0.1:8080/\"");
  for (const char* bad : {"ws:///path", "ws://127.0.0.1:99999/", "ws://127.0.0.1:/", "ws://[::1/",
                          "ws://user@127.0.0.1/",
                          "ws://127.0.0.1/a b", "wss://:443/"}) {
    doc["cloud"]["url"] = bad;
    CHECK(gateway_error(doc) == std::string("gateway.json: cloud.url: expected ws://host[:port][/path] or "
                                            "wss://host[:port][/path], got \"") +
                                    bad + "\"");
  }
}

TEST_CASE("a CA file is resolved relative to the config and must exist") {
  TempDir dir;
  Json doc = minimal_gateway();
  doc["cloud"]["url"] = "wss://cloud.example.com/";
  doc["cloud"]["ca_file"] = "ca.pem";
  CHECK(gateway_error(doc, dir.path()) ==
        "gateway.json: cloud.ca_file: cannot read \"" + dir.file("ca.pem") + "\": No such file or directory");
  dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  CHECK(gateway_ok(doc, dir.path()).cloud.ca_file == dir.file("ca.pem"));
}

// ---------------------------------------------------------------- gateway defaults

TEST_CASE("defaults fill in what the gateway file leaves out") {
  const GatewayConfig config = gateway_ok(minimal_gateway());
  CHECK(config.source == "gateway.json");
  CHECK(config.gateway_id == "gw-1");
  CHECK(config.flat == "flat-a");
  CHECK(config.state_dir == "/var/lib/flatlink");
  CHECK(config.log_level == flatlink::log::Level::info);
  CHECK(config.command_timeout_ms == 5000);
  CHECK(config.cloud.token == "secret-token-1");
  CHECK(config.cloud.token_file.empty());
  CHECK(config.cloud.ca_file.empty());
  CHECK_FALSE(config.cloud.insecure);
  CHECK(config.cloud.backoff_base_ms == 500);
  CHECK(config.cloud.backoff_max_ms == 30000);
  CHECK(config.cloud.ping_interval_s == 20);
  CHECK(config.cloud.pong_timeout_s == 10);
  CHECK(config.cloud.send_queue_max == 10000);
  REQUIRE(config.adapters.size() == 1);
  const auto& sim = std::get<SimAdapterConfig>(config.adapters[0]);
  CHECK(sim.name == "sim");
  CHECK(sim.latency_ms == 20);
  CHECK(sim.seed == 0);
  REQUIRE(sim.devices.size() == 1);
  CHECK(sim.devices[0].id == "lamp-1");
  CHECK(sim.devices[0].kind == "lamp");
  CHECK(sim.devices[0].name == "lamp-1");
  CHECK(sim.devices[0].room.empty());
  CHECK(sim.devices[0].interval_ms == 5000);
  CHECK(sim.devices[0].initial == doctest::Approx(21.0));
}

TEST_CASE("a serial adapter's defaults, and its command timeout following the gateway's") {
  Json doc = minimal_gateway();
  doc["command_timeout_ms"] = 7000;
  doc["adapters"] = Json::array({serial_adapter()});
  const GatewayConfig config = gateway_ok(doc);
  const auto& serial = std::get<SerialAdapterConfig>(config.adapters[0]);
  CHECK(serial.name == "uart");
  CHECK(serial.port == "/dev/ttyUSB0");
  CHECK(serial.baud == 9600);
  CHECK(serial.data_bits == 8);
  CHECK(serial.parity == Parity::none);
  CHECK(serial.stop_bits == 1);
  CHECK(serial.flow_control == FlowControl::none);
  CHECK(serial.protocol == LineProtocol::json);
  CHECK(serial.max_line_bytes == 1024);
  CHECK(serial.command_timeout_ms == 7000);
  CHECK(serial.device == "uart-dev");
  REQUIRE(serial.devices.size() == 1);
  CHECK(serial.devices[0].id == "uart-dev");
  CHECK(serial.reopen_min_ms == 500);
  CHECK(serial.reopen_max_ms == 30000);

  doc["adapters"][0]["command_timeout_ms"] = 250;
  doc["adapters"][0]["parity"] = "odd";
  doc["adapters"][0]["stop_bits"] = 2;
  doc["adapters"][0]["data_bits"] = 7;
  doc["adapters"][0]["flow_control"] = "rtscts";
  doc["adapters"][0]["protocol"] = "keyvalue";
  doc["adapters"][0]["baud"] = 230400;
  doc["adapters"][0]["device"] = "boiler";
  const auto serial2 = std::get<SerialAdapterConfig>(gateway_ok(doc).adapters[0]);
  CHECK(serial2.command_timeout_ms == 250);
  CHECK(serial2.parity == Parity::odd);
  CHECK(serial2.stop_bits == 2);
  CHECK(serial2.data_bits == 7);
  CHECK(serial2.flow_control == FlowControl::rtscts);
  CHECK(serial2.protocol == LineProtocol::keyvalue);
  CHECK(serial2.baud == 230400);
  CHECK(serial2.device == "boiler");
}

TEST_CASE("a larger backoff base without a cap raises the cap with it") {
  Json doc = minimal_gateway();
  doc["cloud"]["backoff_base_ms"] = 60000;
  const GatewayConfig config = gateway_ok(doc);
  CHECK(config.cloud.backoff_base_ms == 60000);
  CHECK(config.cloud.backoff_max_ms == 60000);
}

TEST_CASE("state_dir is resolved relative to the config's folder") {
  Json doc = minimal_gateway();
  doc["state_dir"] = "state";
  CHECK(gateway_ok(doc, "/etc/flatlink").state_dir == "/etc/flatlink/state");
  doc["state_dir"] = "/srv/flatlink/";
  CHECK(gateway_ok(doc, "/etc/flatlink").state_dir == "/srv/flatlink/");
}

TEST_CASE("a 64-bit seed is kept whole") {
  Json doc = minimal_gateway();
  doc["adapters"][0]["seed"] = 18446744073709551615ULL;
  CHECK(std::get<SimAdapterConfig>(gateway_ok(doc).adapters[0]).seed == 18446744073709551615ULL);
}

// ---------------------------------------------------------------- files

TEST_CASE("a config file that cannot be read is named with the reason") {
  TempDir dir;
  const Loaded<GatewayConfig> gateway = load_gateway_config(dir.file("nope.json"));
  REQUIRE(std::holds_alternative<ConfigError>(gateway));
  CHECK(std::get<ConfigError>(gateway).message == dir.file("nope.json") + ": cannot read: No such file or directory");
  const Loaded<CloudConfig> cloud = load_cloud_config(dir.path());
  REQUIRE(std::holds_alternative<ConfigError>(cloud));
  CHECK(std::get<ConfigError>(cloud).message == dir.path() + ": cannot read: Is a directory");
}

TEST_CASE("load names errors after the path it was given and resolves files from its folder") {
  TempDir dir;
  dir.write("etc/token", "tok\n");
  Json doc = minimal_gateway();
  doc["cloud"].erase("token");
  doc["cloud"]["token_file"] = "token";
  const std::string path = dir.write("etc/gateway.json", doc.dump());
  const Loaded<GatewayConfig> loaded = load_gateway_config(path);
  REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
  CHECK(std::get<GatewayConfig>(loaded).cloud.token_file == dir.file("etc/token"));
  CHECK(std::get<GatewayConfig>(loaded).source == path);

  doc["log_level"] = 3;
  dir.write("etc/gateway.json", doc.dump());
  const Loaded<GatewayConfig> bad = load_gateway_config(path);
  REQUIRE(std::holds_alternative<ConfigError>(bad));
  CHECK(std::get<ConfigError>(bad).message ==
        path + ": log_level: expected one of \"debug\", \"info\", \"warn\", \"error\", got 3");
}

// ---------------------------------------------------------------- cloud file

TEST_CASE("defaults fill in what the cloud file leaves out") {
  const CloudConfig config = cloud_ok(minimal_cloud());
  CHECK(config.source == "cloud.json");
  CHECK(config.listen_address == "127.0.0.1");
  CHECK(config.port == 8080);
  CHECK(config.tls.cert_file.empty());
  CHECK(config.tls.key_file.empty());
  CHECK(config.dashboard_dir.empty());
  CHECK(config.log_level == flatlink::log::Level::info);
  CHECK(config.limits.handshake_timeout_s == 10);
  CHECK(config.limits.max_message_bytes == 65536);
  CHECK(config.limits.messages_per_s == 200);
  CHECK(config.limits.burst == 400);
  CHECK(config.limits.history_points == 720);
  CHECK(config.limits.command_timeout_ms == 15000);
  REQUIRE(config.flats.size() == 1);
  CHECK(config.flats[0].id == "flat-a");
  CHECK(config.flats[0].name == "flat-a");
  CHECK(config.flats[0].gateway_token_sha256 == kHashA);
  CHECK(config.flats[0].users.empty());
}

TEST_CASE("tls needs both a certificate and a key, and both must exist") {
  TempDir dir;
  dir.write("cert.pem", "cert");
  dir.write("key.pem", "key");
  Json doc = minimal_cloud();
  doc["tls"] = Json{{"cert_file", "cert.pem"}};
  CHECK(cloud_error(doc, dir.path()) ==
        "cloud.json: tls.key_file: required key is missing (cert_file and key_file go together)");
  doc["tls"] = Json{{"key_file", "key.pem"}};
  CHECK(cloud_error(doc, dir.path()) ==
        "cloud.json: tls.cert_file: required key is missing (cert_file and key_file go together)");
  doc["tls"] = Json{{"cert_file", "missing.pem"}, {"key_file", "key.pem"}};
  CHECK(cloud_error(doc, dir.path()) ==
        "cloud.json: tls.cert_file: cannot read \"" + dir.file("missing.pem") + "\": No such file or directory");
  doc["tls"] = Json{{"cert_file", "cert.pem"}, {"key_file", "key.pem"}};
  const CloudConfig config = cloud_ok(doc, dir.path());
  CHECK(config.tls.cert_file == dir.file("cert.pem"));
  CHECK(config.tls.key_file == dir.file("key.pem"));
  doc["tls"] = Json::object();
  CHECK(cloud_ok(doc, dir.path()).tls.cert_file.empty());
}

TEST_CASE("a gateway token hash must be 64 lowercase hex digits, and is never shown") {
  Json doc = minimal_cloud();
  doc["flats"][0]["gateway_token_sha256"] = "abc";
  CHECK(cloud_error(doc) ==
        "cloud.json: flats[0].gateway_token_sha256: expected 64 lowercase hex digits (the SHA-256 of the flat's "
        "gateway token), got a string of 3 characters");
  std::string upper = kHashA;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  doc["flats"][0]["gateway_token_sha256"] = upper;
  CHECK(cloud_error(doc) ==
        "cloud.json: flats[0].gateway_token_sha256: expected 64 lowercase hex digits (the SHA-256 of the flat's "
        "gateway token), got a string of 64 characters");
  doc["flats"][0].erase("gateway_token_sha256");
  CHECK(cloud_error(doc) == "cloud.json: flats[0].gateway_token_sha256: required key is missing");
}

TEST_CASE("a password hash must be Argon2id or legacy pbkdf2-sha256, and is never shown") {
  Json doc = minimal_cloud();
  doc["flats"][0]["users"] = Json::array({Json{{"name", "demo"}, {"password_hash", "plain"}}});
  CHECK(cloud_error(doc) ==
        "cloud.json: flats[0].users[0].password_hash: expected \"$argon2id$v=19$m=<kib>,t=<passes>,p=<lanes>$<salt>$<hash>\" "
        "(from `flatlink-cloud hash-password`) or a legacy \"pbkdf2-sha256$<iterations>$<salt-hex>$<sha256-hex>\"");
  const std::string hash64 = std::string(64, 'a');
  const std::string salt16 = std::string(32, 'b');
  for (const std::string& bad :
       {std::string("pbkdf2-sha256$100000$abcd"), "pbkdf2-sha256$0$abcd$" + hash64,
        "pbkdf2-sha256$20000000$abcd$" + hash64, "pbkdf2-sha1$1000$abcd$" + hash64, "pbkdf2-sha256$1000$xyz1$" + hash64,
        "pbkdf2-sha256$1000$abcd$" + hash64 + "$x",
        "pbkdf2-sha256$1000$abcd$" + std::string(64, 'A'), "pbkdf2-sha256$1000$$" + hash64,
        std::string("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$"), "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + hash64,
        std::string("$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA")}) {
    doc["flats"][0]["users"][0]["password_hash"] = bad;
    const std::string message = cloud_error(doc);
    CHECK_MESSAGE(contains(message, "cloud.json: flats[0].users[0].password_hash: expected"), bad);
    CHECK_FALSE(contains(message, bad));
  }
  doc["flats"][0]["users"][0]["password_hash"] = kPasswordHash;
  CHECK(cloud_ok(doc).flats[0].users[0].password_hash == kPasswordHash);
  const std::string argon = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";
  doc["flats"][0]["users"][0]["password_hash"] = argon;
  CHECK(cloud_ok(doc).flats[0].users[0].password_hash == argon);
}

TEST_CASE("the front door's settings load with their defaults, and an origin must be scheme://host[:port]") {
  Json doc = minimal_cloud();
  CloudConfig plain = cloud_ok(doc);
  CHECK(plain.login.ban_after == 10);
  CHECK(plain.metrics.listen_address == "127.0.0.1");
  CHECK(plain.metrics.port == 9464);
  CHECK(plain.limits.browser_queue_hard_bytes == 1024 * 1024);
  CHECK(plain.allowed_origins.empty());
  doc["login"] = Json{{"ban_after", 3}, {"ban_s", 30}, {"workers", 4}};
  doc["metrics"] = Json{{"port", 0}};
  doc["allowed_origins"] = Json::array({"https://flats.example.org", "http://10.0.0.5:8080"});
  CloudConfig set = cloud_ok(doc);
  CHECK(set.login.ban_after == 3);
  CHECK(set.login.workers == 4);
  CHECK(set.metrics.port == 0);
  CHECK(set.allowed_origins.size() == 2);
  doc["allowed_origins"] = Json::array({"https://flats.example.org/path"});
  CHECK(contains(cloud_error(doc), "cloud.json: allowed_origins[0]: expected an origin such as"));
  doc["allowed_origins"] = Json::array({"*"});
  CHECK(contains(cloud_error(doc), "allowed_origins[0]"));
}

TEST_CASE("a weak password hash is refused by the loader, naming why (1 iteration, a 1-byte salt, cheap Argon2id)") {
  Json doc = minimal_cloud();
  const std::string hash64 = std::string(64, 'a');
  const auto refusal = [&](const std::string& hash) {
    doc["flats"][0]["users"] = Json::array({Json{{"name", "demo"}, {"password_hash", hash}}});
    return cloud_error(doc);
  };
  CHECK(contains(refusal("pbkdf2-sha256$1$" + std::string(32, 'b') + "$" + hash64),
                 "PBKDF2 with 1 iterations is too weak (at least 100000"));
  CHECK(contains(refusal("pbkdf2-sha256$100000$ab$" + hash64), "the salt is shorter than 16 bytes"));
  CHECK(contains(refusal("$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"),
                 "Argon2id with m=1024 KiB, t=1 is too weak"));
  CHECK(contains(refusal("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"),
                 "the salt is shorter than 16 bytes"));
}

TEST_CASE("flat ids, user names and gateway tokens are unique") {
  Json doc = minimal_cloud();
  doc["flats"].push_back(Json{{"id", "flat-a"}, {"gateway_token_sha256", kHashB}});
  CHECK(cloud_error(doc) == "cloud.json: flats[1].id: duplicate flat id \"flat-a\", first used at flats[0].id");

  doc["flats"][1]["id"] = "flat-b";
  doc["flats"][1]["gateway_token_sha256"] = kHashA;
  CHECK(cloud_error(doc) ==
        "cloud.json: flats[1].gateway_token_sha256: the same as flats[0].gateway_token_sha256; every flat needs its "
        "own gateway token");

  doc["flats"][1]["gateway_token_sha256"] = kHashB;
  doc["flats"][1]["users"] = Json::array({Json{{"name", "ann"}, {"password_hash", kPasswordHash}},
                                          Json{{"name", "ann"}, {"password_hash", kPasswordHash}}});
  CHECK(cloud_error(doc) ==
        "cloud.json: flats[1].users[1].name: duplicate user name \"ann\", first used at flats[1].users[0].name");

  // The same person may have a login in two flats.
  doc["flats"][1]["users"].erase(1);
  doc["flats"][0]["users"] = Json::array({Json{{"name", "ann"}, {"password_hash", kPasswordHash}}});
  CHECK(cloud_ok(doc).flats.size() == 2);
}

TEST_CASE("cloud numbers, lists and keys are checked like the gateway's") {
  Json doc = minimal_cloud();
  doc["port"] = 0;
  CHECK(cloud_error(doc) == "cloud.json: port: expected an integer from 1 to 65535, got 0");
  doc["port"] = 65536;
  CHECK(cloud_error(doc) == "cloud.json: port: expected an integer from 1 to 65535, got 65536");
  doc["port"] = 443;
  CHECK(cloud_ok(doc).port == 443);

  doc = minimal_cloud();
  doc["limits"] = Json{{"messages_per_s", 500}, {"burst", 100}};
  CHECK(cloud_error(doc) == "cloud.json: limits.burst: expected an integer from 500 to 1000000, got 100");
  doc["limits"].erase("burst");
  CHECK(cloud_ok(doc).limits.burst == 1000);

  doc = minimal_cloud();
  doc["limits"] = Json{{"max_messages", 5}};
  CHECK(cloud_error(doc) ==
        "cloud.json: limits.max_messages: unknown key (expected one of: handshake_timeout_s, max_message_bytes, "
        "messages_per_s, burst, history_points, command_timeout_ms, max_streams_per_flat, max_stream_kbps_per_flat, "
        "stream_buffer_ms, max_browsers_per_ip, max_unauthenticated_per_ip, max_connections_per_user, "
        "browser_queue_soft_bytes, browser_queue_hard_bytes, gateway_queue_hard_bytes, output_budget_bytes)");

  doc = minimal_cloud();
  doc["limits"] = Json{{"max_message_bytes", 512}};
  CHECK(cloud_error(doc) == "cloud.json: limits.max_message_bytes: expected an integer from 1024 to 16777216, got 512");

  doc = minimal_cloud();
  doc["flats"] = Json::array();  // the packaged starting file: no flat, no credential
  CHECK(cloud_ok(doc, "/etc/flatlink").flats.empty());

  doc = minimal_cloud();
  doc.erase("flats");
  CHECK(cloud_error(doc) == "cloud.json: flats: required key is missing");

  doc = minimal_cloud();
  doc["listen_address"] = "";
  CHECK(cloud_error(doc) == "cloud.json: listen_address: expected a non-empty string, got \"\"");

  doc = minimal_cloud();
  doc["flats"][0]["users"] = Json::array({Json{{"name", "x y"}, {"password_hash", kPasswordHash}}});
  CHECK(cloud_error(doc) ==
        "cloud.json: flats[0].users[0].name: expected an id (1 to 64 of A-Z a-z 0-9 _ . : -), got \"x y\"");

  doc = minimal_cloud();
  doc["log_level"] = "trace";
  CHECK(cloud_error(doc) ==
        "cloud.json: log_level: expected one of \"debug\", \"info\", \"warn\", \"error\", got \"trace\"");
}

TEST_CASE("dashboard_dir is resolved relative to the config's folder when set") {
  Json doc = minimal_cloud();
  doc["dashboard_dir"] = "../share/dashboard";
  CHECK(cloud_ok(doc, "/opt/flatlink/etc").dashboard_dir == "/opt/flatlink/share/dashboard");
  doc["dashboard_dir"] = "";
  CHECK(cloud_ok(doc, "/opt/flatlink/etc").dashboard_dir.empty());
}

// ---------------------------------------------------------------- examples and summaries

TEST_CASE("the full gateway example loads") {
  StderrCapture err;  // the token file in a checkout is mode 0644: a warning is expected
  const Loaded<GatewayConfig> loaded = load_gateway_config(kExamples + "/gateway.example.json");
  if (const auto* error = std::get_if<ConfigError>(&loaded)) FAIL_CHECK(error->message);
  REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
  const GatewayConfig& config = std::get<GatewayConfig>(loaded);
  CHECK(config.gateway_id == "gw-flat-a");
  CHECK(config.cloud.url == "wss://cloud.example.com/flatlink");
  CHECK(config.cloud.token == "demo-flat-a-token-change-me");
  CHECK(config.cloud.token_file == kExamples + "/gateway-token.txt");
  REQUIRE(config.adapters.size() == 3);
  CHECK(std::get<SimAdapterConfig>(config.adapters[0]).devices.size() == 3);
  CHECK(std::get<SimAdapterConfig>(config.adapters[0]).devices[1].initial == doctest::Approx(21.5));
  const auto& boiler = std::get<SerialAdapterConfig>(config.adapters[1]);
  CHECK(boiler.port == "usb:0403:6001:A50285BI");
  CHECK(boiler.baud == 115200);
  CHECK(boiler.device == "boiler");
  const auto& meters = std::get<SerialAdapterConfig>(config.adapters[2]);
  CHECK(meters.parity == Parity::even);
  CHECK(meters.protocol == LineProtocol::keyvalue);
  CHECK(meters.command_timeout_ms == 5000);
}

TEST_CASE("the demo gateway loads and summarizes without its token") {
  StderrCapture err;
  const Loaded<GatewayConfig> loaded = load_gateway_config(kExamples + "/demo-gateway.json");
  if (const auto* error = std::get_if<ConfigError>(&loaded)) FAIL_CHECK(error->message);
  REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
  const GatewayConfig& config = std::get<GatewayConfig>(loaded);
  CHECK(config.gateway_id == "gw-demo");
  CHECK(config.flat == "flat-a");
  CHECK(config.cloud.url == "ws://127.0.0.1:8080/");
  CHECK(config.cloud.token == "demo-flat-a-token-change-me");
  const auto& sim = std::get<SimAdapterConfig>(config.adapters.at(0));
  REQUIRE(sim.devices.size() == 3);
  CHECK(sim.devices[0].id == "lamp-1");
  CHECK(sim.devices[0].kind == "lamp");
  CHECK(sim.devices[0].room == "Living room");
  CHECK(sim.devices[1].id == "thermo-1");
  CHECK(sim.devices[1].kind == "thermometer");
  CHECK(sim.devices[1].room == "Living room");
  CHECK(sim.devices[2].id == "door-1");
  CHECK(sim.devices[2].kind == "lock");
  CHECK(sim.devices[2].room == "Hall");

  const std::string summary = summarize(config);
  CHECK(summary ==
        "gateway gw-demo for flat flat-a, state in /tmp/flatlink-demo, log level info, command timeout 5000 ms\n"
        "cloud ws://127.0.0.1:8080/ (token from " +
            kExamples +
            "/gateway-token.txt), ping after 20 s idle, dead after 10 s without pong, reconnect backoff "
            "500..30000 ms, send queue 10000\n"
            "1 adapter:\n"
            "  sim 'sim' (latency 20 ms) with 3 devices: lamp-1 (lamp, Living room), thermo-1 (thermometer, "
            "Living room), door-1 (lock, Hall)\n");
  CHECK_FALSE(contains(summary, config.cloud.token));
}

TEST_CASE("the demo cloud accepts the demo gateway's token and the demo user's password") {
  StderrCapture err;
  const Loaded<GatewayConfig> gateway = load_gateway_config(kExamples + "/demo-gateway.json");
  const Loaded<CloudConfig> loaded = load_cloud_config(kExamples + "/demo-cloud.json");
  if (const auto* error = std::get_if<ConfigError>(&loaded)) FAIL_CHECK(error->message);
  REQUIRE(std::holds_alternative<CloudConfig>(loaded));
  REQUIRE(std::holds_alternative<GatewayConfig>(gateway));
  const CloudConfig& config = std::get<CloudConfig>(loaded);
  CHECK(config.listen_address == "127.0.0.1");
  CHECK(config.port == 8080);
  REQUIRE(config.flats.size() == 1);
  const FlatConfig& flat = config.flats[0];
  CHECK(flat.id == "flat-a");
  CHECK(flat.name == "Demo flat");
  CHECK(flat.gateway_token_sha256 == sha256_hex(std::get<GatewayConfig>(gateway).cloud.token));
  REQUIRE(flat.users.size() == 1);
  CHECK(flat.users[0].name == "demo");

  // pbkdf2-sha256$<iterations>$<salt-hex>$<hash-hex>: recompute it for "demo".
  const std::string& encoded = flat.users[0].password_hash;
  const size_t a = encoded.find('$'), b = encoded.find('$', a + 1), c = encoded.find('$', b + 1);
  const int iterations = std::stoi(encoded.substr(a + 1, b - a - 1));
  const std::string salt_hex = encoded.substr(b + 1, c - b - 1);
  std::string salt;
  for (size_t i = 0; i < salt_hex.size(); i += 2) {
    salt += static_cast<char>(std::stoi(salt_hex.substr(i, 2), nullptr, 16));
  }
  unsigned char out[32];
  REQUIRE(PKCS5_PBKDF2_HMAC("demo", 4, reinterpret_cast<const unsigned char*>(salt.data()),
                            static_cast<int>(salt.size()),
                            iterations, EVP_sha256(), sizeof out, out) == 1);
  CHECK(encoded.substr(c + 1) == to_hex(out, sizeof out));

  const std::string summary = summarize(config);
  CHECK(summary ==
        "cloud on 127.0.0.1:8080, no TLS (plain ws:// and http://), log level info\n"
        "dashboard built in\n"
        "limits: handshake 10 s, messages up to 65536 bytes, 200/s (burst 400), 720 history points, command timeout "
        "15000 ms\n"
        "backplane: off (a single instance)\n"
        "store: sqlite /tmp/flatlink-demo/cloud.db, accounts read every 500 ms; the flats below seed an empty store\n"
        "1 flat:\n"
        "  flat-a 'Demo flat', 1 user: demo\n");
}

TEST_CASE("the full cloud example loads next to its TLS files, and its summary shows no hashes") {
  TempDir dir;
  std::filesystem::copy_file(kExamples + "/cloud.example.json", dir.file("cloud.json"));
  dir.write("tls/fullchain.pem", "cert");
  dir.write("tls/privkey.pem", "key");
  const Loaded<CloudConfig> loaded = load_cloud_config(dir.file("cloud.json"));
  if (const auto* error = std::get_if<ConfigError>(&loaded)) FAIL_CHECK(error->message);
  REQUIRE(std::holds_alternative<CloudConfig>(loaded));
  const CloudConfig& config = std::get<CloudConfig>(loaded);
  CHECK(config.port == 8443);
  CHECK(config.tls.cert_file == dir.file("tls/fullchain.pem"));
  CHECK(config.tls.key_file == dir.file("tls/privkey.pem"));
  REQUIRE(config.flats.size() == 2);
  CHECK(config.flats[1].users.at(0).name == "tenant-b");
  const std::string summary = summarize(config);
  CHECK(contains(summary, "cloud on 0.0.0.0:8443, TLS cert " + dir.file("tls/fullchain.pem")));
  CHECK(contains(summary, "2 flats:\n  flat-a 'Flat A, 2nd floor', 1 user: demo\n  flat-b 'Flat B, 3rd floor', 1 user: "
                          "tenant-b\n"));
  CHECK_FALSE(contains(summary, config.flats[0].gateway_token_sha256));
  CHECK_FALSE(contains(summary, "pbkdf2"));
}

TEST_CASE("the summary of a gateway shows inline tokens, TLS choices and serial ports without secrets") {
  Json doc = minimal_gateway();
  doc["cloud"]["url"] = "wss://cloud.example.com/";
  doc["adapters"].push_back(serial_adapter("uart", "usb:0403:6001"));
  doc["adapters"][1]["parity"] = "even";
  doc["adapters"][1]["device"] = "boiler";
  const std::string summary = summarize(gateway_ok(doc));
  CHECK(contains(summary, "cloud wss://cloud.example.com/ (token inline), system CAs, "));
  CHECK(contains(summary, "2 adapters:\n  sim 'sim' (latency 20 ms) with 1 device: lamp-1 (lamp)\n"));
  CHECK(contains(summary, "  serial 'uart' on usb:0403:6001, 9600 8E1, flow control none, json lines up to 1024 bytes, "
                          "command timeout 5000 ms, all lines for device boiler\n"));
  CHECK_FALSE(contains(summary, "secret-token-1"));

  doc["cloud"]["insecure"] = true;
  CHECK(contains(summarize(gateway_ok(doc)), "certificate NOT verified (insecure)"));
}

TEST_CASE("the outbox section has defaults and checks every field") {
  auto loaded = parse_gateway_config(minimal_gateway().dump(), "gateway.json");
  REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
  const OutboxConfig& defaults = std::get<GatewayConfig>(loaded).outbox;
  CHECK(defaults.durability == Durability::group);
  CHECK(defaults.commit_interval_ms == 50);
  CHECK(defaults.max_items == 100000);

  Json doc = minimal_gateway();
  doc["outbox"] = {{"durability", "sync"}, {"max_items", 500}, {"max_bytes", 65536}, {"memory_items", 100}};
  loaded = parse_gateway_config(doc.dump(), "gateway.json");
  REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
  CHECK(std::get<GatewayConfig>(loaded).outbox.durability == Durability::sync);
  CHECK(std::get<GatewayConfig>(loaded).outbox.max_items == 500);

  doc["outbox"] = {{"durability", "fsync"}};
  CHECK(gateway_error(doc) == "gateway.json: outbox.durability: expected one of \"group\", \"sync\", got \"fsync\"");
  doc["outbox"] = {{"max_items", 5}};
  CHECK(gateway_error(doc).find("gateway.json: outbox.max_items: expected") == 0);
  doc["outbox"] = {{"commit_every", 5}};
  CHECK(gateway_error(doc).find("gateway.json: outbox.commit_every: unknown key") == 0);
}

// ---- the cloud's backplane section and the gateway's list of cloud URLs ----

TEST_CASE("without a backplane section the cloud runs alone; with one it names its brokers and instance") {
  CHECK_FALSE(cloud_ok(minimal_cloud()).backplane.enabled);
  Json doc = minimal_cloud();
  doc["backplane"] = Json{{"instance_id", "cloud-a"},
                          {"brokers", Json::array({"mqtt://127.0.0.1:18830", "mqtt://broker-2.example"})},
                          {"command_offline_ms", 500},
                          {"insecure", true}};
  const CloudConfig config = cloud_ok(doc);
  const BackplaneConfig& bp = config.backplane;
  CHECK(bp.enabled);
  CHECK(bp.instance_id == "cloud-a");
  REQUIRE(bp.brokers.size() == 2);
  CHECK(bp.brokers[0].host == "127.0.0.1");
  CHECK(bp.brokers[0].port == 18830);
  CHECK(bp.brokers[1].host == "broker-2.example");
  CHECK(bp.brokers[1].port == 1883);
  CHECK_FALSE(bp.tls);
  CHECK(bp.command_offline_ms == 500);
  CHECK(contains(summarize(config), "backplane: instance cloud-a over mqtt 127.0.0.1:18830, broker-2.example:1883, "
                                    "INSECURE: messages not signed"));
  doc["backplane"]["enabled"] = false;
  CHECK_FALSE(cloud_ok(doc).backplane.enabled);
}

TEST_CASE("backplane mistakes are refused with their path") {
  const auto with = [](Json backplane) {
    Json doc = minimal_cloud();
    if (!backplane.contains("insecure")) backplane["insecure"] = true;  // the key's own cases are below
    doc["backplane"] = std::move(backplane);
    return cloud_error(doc);
  };
  const Json brokers = Json::array({"mqtt://127.0.0.1:1883"});
  CHECK(contains(with(Json{{"brokers", brokers}}), "backplane.instance_id: required key is missing"));
  CHECK(contains(with(Json{{"instance_id", "a"}}), "backplane.brokers: required key is missing"));
  CHECK(contains(with(Json{{"instance_id", "a"}, {"brokers", brokers}, {"brokerz", 1}}), "backplane.brokerz: unknown key"));
  CHECK(contains(with(Json{{"instance_id", "a/b"}, {"brokers", brokers}}), "backplane.instance_id"));
  CHECK(contains(with(Json{{"instance_id", "a"}, {"brokers", Json::array({"tcp://x:1"})}}), "backplane.brokers[0]"));
  CHECK(contains(with(Json{{"instance_id", "a"}, {"brokers", Json::array({"mqtt://x:0"})}}), "backplane.brokers[0]"));
  CHECK(contains(with(Json{{"instance_id", "a"}, {"brokers", Json::array({"mqtt://x", "mqtts://y"})}}),
                 "backplane.brokers[1]: mixes mqtt:// and mqtts://"));
  CHECK(contains(with(Json{{"instance_id", "a"}, {"brokers", brokers}, {"tls", Json::object()}}),
                 "use mqtts:// URLs"));
  CHECK(contains(with(Json{{"instance_id", "a"}, {"brokers", brokers}, {"command_offline_ms", 10}}),
                 "backplane.command_offline_ms"));
}

TEST_CASE("backplane credentials come from a file: needs a user name, warns when others may read it") {
  TempDir dir;
  const std::string path = dir.write("bp-password.txt", "broker-secret\n", 0644);
  Json doc = minimal_cloud();
  doc["backplane"] = Json{{"instance_id", "a"},
                          {"brokers", Json::array({"mqtts://broker.example"})},
                          {"password_file", "bp-password.txt"},
                          {"insecure", true}};
  CHECK(contains(cloud_error(doc, dir.path()), "expected \"username\" with it"));
  doc["backplane"]["username"] = "cloud";
  StderrCapture err;
  const CloudConfig config = cloud_ok(doc, dir.path());
  const std::string logged = err.text();
  CHECK(config.backplane.password == "broker-secret");
  CHECK(config.backplane.tls);
  CHECK(config.backplane.brokers[0].port == 8883);
  CHECK(contains(logged, "backplane.password_file \"" + path + "\" is readable by every local user"));
  CHECK_FALSE(contains(logged, "broker-secret"));
  CHECK_FALSE(contains(summarize(config), "broker-secret"));
}

TEST_CASE("the backplane's shared key: required unless insecure, from a file only the service reads, long enough (#20 finding 7)") {
  TempDir dir;
  const std::string key = "4f1c0e3a9b7d2c6e8a5f0b1d3c7e9a2b4f6d8c0e1a3b5d7f9e2c4a6b8d0f1e3a";
  const std::string good = dir.write("bp.key", key + "\n", 0600);
  const std::string open = dir.write("bp-open.key", key + "\n", 0644);
  dir.write("bp-short.key", "short-key\n", 0600);
  Json doc = minimal_cloud();
  doc["backplane"] = Json{{"instance_id", "a"}, {"brokers", Json::array({"mqtt://127.0.0.1:1883"})}};
  // Neither a key nor "insecure": refused, saying how to make one.
  const std::string missing = cloud_error(doc, dir.path());
  CHECK(contains(missing, "backplane.shared_key_file: required key is missing"));
  CHECK(contains(missing, "openssl rand -hex 32"));
  CHECK(contains(missing, "\"insecure\": true"));

  doc["backplane"]["shared_key_file"] = "bp.key";
  StderrCapture err;
  const CloudConfig config = cloud_ok(doc, dir.path());
  CHECK(config.backplane.shared_key == key);  // without the trailing newline
  CHECK(config.backplane.shared_key_file == good);
  CHECK_FALSE(config.backplane.insecure);
  CHECK(contains(summarize(config), "messages signed with the key in " + good));
  CHECK_FALSE(contains(summarize(config), key));
  CHECK_FALSE(contains(err.text(), key));

  doc["backplane"]["shared_key_file"] = "bp-open.key";
  CHECK(contains(cloud_error(doc, dir.path()), "backplane.shared_key_file: \"" + open + "\" is readable by every local user"));
  doc["backplane"]["shared_key_file"] = "bp-short.key";
  CHECK(contains(cloud_error(doc, dir.path()), "holds 9 bytes; expected at least 32"));
  doc["backplane"]["shared_key_file"] = "bp-none.key";
  CHECK(contains(cloud_error(doc, dir.path()), "backplane.shared_key_file: cannot read"));
  doc["backplane"]["shared_key_file"] = "bp.key";
  doc["backplane"]["insecure"] = true;
  CHECK(contains(cloud_error(doc, dir.path()), "backplane.insecure: true with a \"shared_key_file\"; give one or the other"));
  doc["backplane"].erase("shared_key_file");
  CHECK(cloud_ok(doc, dir.path()).backplane.insecure);
  // A section kept but turned off needs no key.
  doc["backplane"].erase("insecure");
  doc["backplane"]["enabled"] = false;
  CHECK_FALSE(cloud_ok(doc, dir.path()).backplane.enabled);
}

TEST_CASE("the gateway takes one cloud URL or a list of them, each checked") {
  CHECK(gateway_ok(minimal_gateway()).cloud.urls == std::vector<std::string>{"ws://127.0.0.1:8080/"});
  Json doc = minimal_gateway();
  doc["cloud"]["url"] = Json::array({"ws://127.0.0.1:8080/", "ws://localhost:8081/"});
  const GatewayConfig config = gateway_ok(doc);
  CHECK(config.cloud.url == "ws://127.0.0.1:8080/");
  CHECK(config.cloud.urls == std::vector<std::string>{"ws://127.0.0.1:8080/", "ws://localhost:8081/"});
  CHECK(contains(summarize(config), "cloud ws://127.0.0.1:8080/, then ws://localhost:8081/ (token inline)"));
  doc["cloud"]["url"] = Json::array();
  CHECK(contains(gateway_error(doc), "cloud.url: expected a list of 1 to 16 URLs"));
  doc["cloud"]["url"] = Json::array({"ws://127.0.0.1:8080/", "http://x/"});
  CHECK(contains(gateway_error(doc), "cloud.url[1]: expected a URL starting with ws:// or wss://"));
  doc["cloud"]["url"] = Json::array({"ws://127.0.0.1:8080/", "ws://cloud.example/"});
  CHECK(contains(gateway_error(doc), "only allowed to a loopback host"));
}

TEST_CASE("audio adapter: ALSA and simulated devices, each with exactly one source or sink") {
  Json doc = minimal_gateway();
  doc["adapters"].push_back(Json::parse(R"({"type": "audio", "name": "intercom", "devices": [
    {"id": "door-mic", "direction": "capture", "pcm": "plughw:1,0", "room": "Hall"},
    {"id": "sim-mic", "direction": "capture", "tone_hz": 440, "tone_ms": 500},
    {"id": "door-speaker", "direction": "playback", "pcm": "default", "buffer_ms": 100},
    {"id": "sim-speaker", "direction": "playback", "wav_file": "out.wav"}]})"));
  const GatewayConfig config = gateway_ok(doc, "/etc/flatlink");
  const auto& audio = std::get<AudioAdapterConfig>(config.adapters.at(1));
  REQUIRE(audio.devices.size() == 4);
  CHECK(audio.devices[0].pcm == "plughw:1,0");
  CHECK(audio.devices[0].rate == 16000);
  CHECK(audio.devices[0].period_ms == 20);
  CHECK(audio.devices[1].tone_hz == 440);
  CHECK(audio.devices[2].direction == AudioDirection::playback);
  CHECK(audio.devices[2].buffer_ms == 100);
  CHECK(audio.devices[3].wav_file == "/etc/flatlink/out.wav");

  doc["adapters"][1]["devices"][0]["tone_hz"] = 440;
  CHECK(gateway_error(doc, "/etc/flatlink") ==
        "gateway.json: adapters[1].devices[0]: a capture device needs exactly one of \"pcm\" (ALSA) and \"tone_hz\" "
        "(simulated)");
  doc["adapters"][1]["devices"][0].erase("tone_hz");
  doc["adapters"][1]["devices"][2]["tone_ms"] = 100;
  CHECK(gateway_error(doc, "/etc/flatlink") == "gateway.json: adapters[1].devices[2].tone_ms: only for capture devices");
  doc["adapters"][1]["devices"][2].erase("tone_ms");
  doc["adapters"][1]["devices"][3]["id"] = "lamp-1";
  CHECK(contains(gateway_error(doc, "/etc/flatlink"), "duplicate device id \"lamp-1\""));
  doc["adapters"][1]["devices"][3]["id"] = "sim-speaker";
  doc["adapters"][1]["devices"][3]["rate"] = 44100;
  CHECK(contains(gateway_error(doc, "/etc/flatlink"), "adapters[1].devices[3].rate: expected one of 8000, 16000, 24000, 48000"));
}

TEST_CASE("cloud stream limits have defaults and bounds") {
  CloudConfig config = cloud_ok(minimal_cloud());
  CHECK(config.limits.max_streams_per_flat == 2);
  CHECK(config.limits.max_stream_kbps_per_flat == 600);
  CHECK(config.limits.stream_buffer_ms == 200);
  Json doc = minimal_cloud();
  doc["limits"] = Json{{"stream_buffer_ms", 10}};
  CHECK(contains(cloud_error(doc), "limits.stream_buffer_ms: expected an integer from 20 to 5000, got 10"));
}

TEST_CASE("the intercom example loads and summarizes") {
  StderrCapture err;
  const Loaded<GatewayConfig> loaded = load_gateway_config(kExamples + "/gateway-intercom.example.json");
  if (const auto* error = std::get_if<ConfigError>(&loaded)) FAIL_CHECK(error->message);
  REQUIRE(std::holds_alternative<GatewayConfig>(loaded));
  const GatewayConfig& config = std::get<GatewayConfig>(loaded);
  const auto& audio = std::get<AudioAdapterConfig>(config.adapters.at(0));
  REQUIRE(audio.devices.size() == 4);
  CHECK(audio.devices[0].pcm == "plughw:1,0");
  CHECK(audio.devices[3].wav_file == "/tmp/flatlink-demo-speaker.wav");
  CHECK(contains(summarize(config),
                 "  audio 'intercom' with 4 devices: door-mic (capture, ALSA plughw:1,0, pcm16 16000 Hz mono, 20 ms "
                 "frames) hall-speaker (playback, ALSA plughw:1,0, pcm16 16000 Hz mono, 20 ms frames) demo-mic "
                 "(capture, simulated 440 Hz tone, pcm16 16000 Hz mono, 20 ms frames) demo-speaker (playback, "
                 "simulated into /tmp/flatlink-demo-speaker.wav, pcm16 16000 Hz mono, 20 ms frames)\n"));
}

TEST_CASE("store.history sets each level's retention and its buffer; levels out of order are refused") {
  Json cloud = minimal_cloud();
  cloud["store"] = Json{{"path", "/tmp/x.db"}, {"history", {{"raw_days", 3}, {"minute_days", 30}, {"buffer_max", 5000}}}};
  const CloudConfig ok = cloud_ok(cloud);
  CHECK(ok.store.history);
  CHECK(ok.store.history_raw_days == 3);
  CHECK(ok.store.history_minute_days == 30);
  CHECK(ok.store.history_hour_days == 1825);
  CHECK(ok.store.history_buffer_max == 5000);
  cloud["store"]["history"]["minute_days"] = 2;
  CHECK(cloud_error(cloud) ==
        "cloud.json: store.history: expected raw_days <= minute_days <= hour_days (each level is rolled up from the finer one)");
  cloud["store"]["history"] = Json{{"raw_days", 0}};
  CHECK(contains(cloud_error(cloud), "store.history.raw_days"));
  cloud["store"]["history"] = Json{{"rows", 1}};
  CHECK(contains(cloud_error(cloud), "unknown key"));
}

// ---------------------------------------------------------------- the documentation

namespace {

std::string read_doc(const std::string& relative) {
  std::ifstream in(std::string(FLATLINK_SOURCE_DIR) + "/" + relative, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), relative, " cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The keys a table's rows name in their first cell (`a`, `b`), from the heading that contains
// `heading` to the next heading.
std::set<std::string> keys_of_section(const std::string& doc, const std::string& heading) {
  std::set<std::string> keys;
  std::istringstream lines(doc);
  std::string line;
  bool in = false;
  while (std::getline(lines, line)) {
    if (line.rfind("#", 0) == 0) {
      in = line.find(heading) != std::string::npos;
      continue;
    }
    if (!in || line.rfind("| `", 0) != 0) continue;
    const std::string cell = line.substr(1, line.find('|', 1) - 1);
    for (size_t at = cell.find('`'); at != std::string::npos; at = cell.find('`', cell.find('`', at + 1) + 1)) {
      const size_t end = cell.find('`', at + 1);
      if (end == std::string::npos) break;
      keys.insert(cell.substr(at + 1, end - at - 1));
    }
  }
  return keys;
}

// The keys the loader allows in an adapter of this type, from its unknown-key message.
std::vector<std::string> allowed_keys(const std::string& type) {
  Json doc = minimal_gateway();
  doc["adapters"] = Json::array({Json{{"type", type}, {"zz_not_a_key", 1}}});
  const std::string error = gateway_error(doc);
  const std::string marker = "unknown key (expected one of: ";
  const size_t at = error.find(marker);
  REQUIRE_MESSAGE(at != std::string::npos, error);
  std::vector<std::string> keys;
  std::istringstream list(error.substr(at + marker.size(), error.rfind(')') - at - marker.size()));
  for (std::string key; std::getline(list, key, ',');) keys.push_back(key.substr(key.find_first_not_of(' ')));
  return keys;
}

}  // namespace

// Finding 9 of issue #18: configuration.md promised every field but had no WiFly or MQTT
// section, and its unknown-key example was not the loader's message.
TEST_CASE("configuration.md has a section for each adapter type naming every key the loader accepts") {
  const std::string doc = read_doc("docs/configuration.md");
  for (const std::string type : {"sim", "serial", "wifly", "mqtt", "audio"}) {
    const auto documented = keys_of_section(doc, "`\"type\": \"" + type + "\"`");
    INFO("adapter type ", type);
    CHECK_FALSE(documented.empty());
    for (const auto& key : allowed_keys(type)) {
      INFO("key ", key);
      CHECK(documented.count(key) == 1);
    }
  }
}

TEST_CASE("configuration.md's unknown-key example is the loader's message") {
  const std::string doc = read_doc("docs/configuration.md");
  const std::string row = "| unknown key | `<file>: ";
  const size_t at = doc.find(row);
  REQUIRE(at != std::string::npos);
  const size_t from = at + row.size() - std::string("<file>: ").size();
  const std::string example = doc.substr(from, doc.find('`', from) - from);
  Json config = minimal_gateway();
  config["adapters"] = Json::array({serial_adapter()});
  config["adapters"][0]["baudrate"] = 9600;
  std::string message = gateway_error(config);
  message.replace(0, std::string("gateway.json").size(), "<file>");
  CHECK(example == message);
}

// Finding 7 of issue #18, its second part: serial and WiFly read capabilities with copies of
// one reader whose rules had drifted apart. One reader now: the same capability object gets
// the same answer, accepted as the same capability or refused with the same message.
TEST_CASE("serial and WiFly devices read a capability the same way, accepted or refused") {
  const std::vector<Json> capabilities = {
      Json::parse(R"({"name": "on", "type": "bool", "writable": true})"),
      Json::parse(R"({"name": "level", "type": "int", "min": 0, "max": 100, "unit": "%"})"),
      Json::parse(R"({"name": "t", "type": "number", "min": -40.5, "max": 85})"),
      Json::parse(R"({"name": "mode", "type": "enum", "options": ["eco", "comfort"], "writable": true, "confirm": true})"),
      Json::parse(R"({"name": "label", "type": "text", "max_length": 32})"),
      Json::parse(R"({"name": "mode", "type": "enum"})"),
      Json::parse(R"({"name": "mode", "type": "enum", "options": []})"),
      Json::parse(R"({"name": "level", "type": "int", "min": 10, "max": 1})"),
      Json::parse(R"({"name": "label", "type": "text", "max_length": 257})"),
      Json::parse(R"({"name": "on", "type": "bool", "min": 1})"),
      Json::parse(R"({"name": "set", "type": "bool"})"),
      Json::parse(R"({"name": "x", "type": "bit"})"),
      Json::parse(R"({"name": "x", "type": "int", "colour": "red"})"),
      Json::parse(R"({"type": "int"})"),
  };
  for (const Json& capability : capabilities) {
    INFO("capability ", capability.dump());
    Json serial = minimal_gateway();
    serial["adapters"] = Json::array({Json{{"type", "serial"}, {"name", "uart"}, {"port", "/dev/ttyUSB0"},
                                           {"devices", Json::array({Json{{"id", "d1"}, {"capabilities", {capability}}}})}}});
    Json wifly = minimal_gateway();
    wifly["adapters"] = Json::array({Json{{"type", "wifly"}, {"name", "wifly"}, {"listen", Json::object()},
                                          {"devices", Json::array({Json{{"id", "d1"}, {"capabilities", {capability}}}})}}});
    const auto from_serial = parse_gateway_config(serial.dump(), "gateway.json");
    const auto from_wifly = parse_gateway_config(wifly.dump(), "gateway.json");
    REQUIRE(from_serial.index() == from_wifly.index());
    if (const auto* error = std::get_if<ConfigError>(&from_serial)) {
      CHECK(error->message == std::get<ConfigError>(from_wifly).message);
      continue;
    }
    const flatlink::Capability& a = std::get<SerialAdapterConfig>(std::get<GatewayConfig>(from_serial).adapters.at(0)).devices.at(0).capabilities.at(0);
    const flatlink::Capability& b = std::get<WiflyAdapterConfig>(std::get<GatewayConfig>(from_wifly).adapters.at(0)).devices.at(0).capabilities.at(0);
    CHECK(a.name == b.name);
    CHECK(a.type == b.type);
    CHECK(a.writable == b.writable);
    CHECK(a.min == b.min);
    CHECK(a.max == b.max);
    CHECK(a.options == b.options);
    CHECK(a.unit == b.unit);
    CHECK(a.confirm == b.confirm);
    CHECK(a.max_length == b.max_length);
  }
}

// Finding 3 of issue #17, its last part: a text capability's max_length of 4096 or 65536 was
// accepted by the serial and WiFly loaders although the wire carries at most 256 bytes of
// text, so one long value poisoned its whole batch. The loader refuses a max_length above the
// wire's, for each adapter that reads capabilities, and names the limit.
TEST_CASE("a text capability's max_length above the wire's 256 bytes is refused by the loader") {
  for (const std::string type : {"serial", "wifly"}) {
    for (const int max_length : {256, 257, 4096, 65536}) {
      INFO(type, " max_length ", max_length);
      Json adapter = Json{{"type", type}, {"name", "a"}};
      if (type == "serial") adapter["port"] = "/dev/ttyUSB0";
      else adapter["listen"] = Json::object();
      adapter["devices"] = Json::array(
          {Json{{"id", "d1"}, {"capabilities", Json::array({Json{{"name", "label"}, {"type", "text"}, {"max_length", max_length}}})}}});
      Json doc = minimal_gateway();
      doc["adapters"] = Json::array({adapter});
      if (max_length <= 256) {
        const GatewayConfig cfg = gateway_ok(doc);
        CHECK(cfg.adapters.size() == 1);
      } else {
        CHECK(gateway_error(doc) == "gateway.json: adapters[0].devices[0].capabilities[0].max_length: expected an integer "
                                    "from 1 to 256, got " + std::to_string(max_length));
      }
    }
  }
}

TEST_CASE("a cloud file past 4 MiB (5,000 flats with long names; 100,000 flats take ~10 MB) loads; past 64 MiB a file is refused, and a gateway's past 4 MiB") {
  TempDir dir;
  std::string text = R"({"listen_address": "127.0.0.1", "port": 8080, "flats": [)";
  const std::string long_name(900, 'n');
  for (int i = 0; i < 5000; ++i) {
    if (i > 0) text += ',';
    char hash[65];
    std::snprintf(hash, sizeof hash, "%064x", i);  // a hash of its own per flat
    text += R"({"id": "f)" + std::to_string(i) + R"(", "name": ")" + long_name + R"(", "gateway_token_sha256": ")" + hash + R"("})";
  }
  text += "]}";
  CHECK(text.size() > 4 * 1024 * 1024);
  dir.write("cloud.json", text);
  const Loaded<CloudConfig> loaded = load_cloud_config(dir.file("cloud.json"));
  if (const auto* error = std::get_if<ConfigError>(&loaded)) FAIL_CHECK(error->message);
  REQUIRE(std::holds_alternative<CloudConfig>(loaded));
  CHECK(std::get<CloudConfig>(loaded).flats.size() == 5000);

  dir.write("huge.json", std::string(64 * 1024 * 1024 + 1, ' '));
  const Loaded<CloudConfig> huge = load_cloud_config(dir.file("huge.json"));
  REQUIRE(std::holds_alternative<ConfigError>(huge));
  CHECK(contains(std::get<ConfigError>(huge).message, "Larger than 67108864 bytes"));

  dir.write("gateway.json", std::string(4 * 1024 * 1024 + 1, ' '));
  const Loaded<GatewayConfig> gateway = load_gateway_config(dir.file("gateway.json"));
  REQUIRE(std::holds_alternative<ConfigError>(gateway));
  CHECK(contains(std::get<ConfigError>(gateway).message, "Larger than 4194304 bytes"));
}
