// The schema of a WiFly adapter's entry in the gateway configuration.
#include <arpa/inet.h>

#include <algorithm>
#include <ostream>
#include <set>

#include "config/adapter_schemas.h"

namespace flatlink::config::detail {
namespace {

bool is_ip_address(const std::string& text) {
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

// Reads an object from an array item, recording "expected an object" otherwise.
const Json* item_object(ObjectReader& r, const Json& array, size_t i, const std::string& path) {
  const Json& item = array[i];
  if (!item.is_object()) {
    r.errors().expected(path, "an object", item);
    return nullptr;
  }
  return &item;
}

void read_device(ObjectReader& r, AdapterContext& ctx, WiflyDeviceConfig& device) {
  r.only_keys({"id", "name", "kind", "room", "address", "capabilities"});
  if (r.id("id", device.id, Need::required)) claim_device_id(r.errors(), ctx.device_ids, device.id, r.path("id"));
  if (!r.non_empty_string("name", device.name)) device.name = device.id;
  if (!r.non_empty_string("kind", device.kind)) device.kind = "sensor";
  r.string("room", device.room);
  if (r.non_empty_string("address", device.address) && !is_ip_address(device.address)) {
    r.errors().expected(r.path("address"), "an IPv4 or IPv6 address", device.address);
  }
  const Json* caps = r.array("capabilities", 1, Need::required);
  if (!caps) return;
  std::set<std::string> seen;
  for (size_t i = 0; i < caps->size() && r.errors().ok(); ++i) {
    const std::string path = index_path(r.path("capabilities"), i);
    const Json* item = item_object(r, *caps, i, path);
    if (!item) return;
    ObjectReader cap_reader(*item, path, r.errors());
    Capability cap;
    read_capability(cap_reader, cap, /*line_device=*/true);
    if (!r.errors().ok()) return;
    if (cap.name == "dev" || cap.name == "set" || cap.name == "ok" || cap.name == "error") {
      r.errors().fail(path + ".name",
                      "\"" + cap.name + "\" is reserved by the line protocol (dev, set, ok, error); choose another name");
    } else if (!seen.insert(cap.name).second) {
      r.errors().fail(path + ".name", "capability \"" + cap.name + "\" appears twice");
    }
    device.capabilities.push_back(std::move(cap));
  }
}

void read_module(ObjectReader& r, WiflyModuleConfig& module) {
  r.only_keys({"host", "port", "device"});
  if (r.non_empty_string("host", module.host, Need::required) && !is_ip_address(module.host)) {
    r.errors().expected(r.path("host"), "an IPv4 or IPv6 address (names are not looked up)", module.host);
  }
  r.integer("port", module.port, 1, 65'535);
  r.id("device", module.device);
}

}  // namespace

void read_wifly_adapter(ObjectReader& r, AdapterContext& ctx, WiflyAdapterConfig& wifly) {
  Errors& errors = r.errors();
  r.only_keys({"name", "type", "listen", "modules", "devices", "markers", "handshake_timeout_ms",
               "max_handshake_bytes", "max_line_bytes", "max_connections", "connect_timeout_ms", "backoff_base_ms",
               "backoff_max_ms", "command_timeout_ms"});
  if (r.id("name", wifly.name, Need::required)) claim_adapter_name(r, ctx.names, wifly.name);

  if (const Json* listen = r.object("listen")) {
    ObjectReader lr(*listen, r.path("listen"), errors);
    lr.only_keys({"address", "port"});
    wifly.listen.enabled = true;
    if (lr.non_empty_string("address", wifly.listen.address) && !is_ip_address(wifly.listen.address)) {
      errors.expected(lr.path("address"), "an IPv4 or IPv6 address", wifly.listen.address);
    }
    lr.integer("port", wifly.listen.port, 1, 65'535);
    if (errors.ok()) {
      const std::string key = "tcp:" + wifly.listen.address + ":" + std::to_string(wifly.listen.port);
      if (const auto [it, fresh] = ctx.ports.emplace(key, lr.path()); !fresh) {
        errors.fail(lr.path("port"), "port " + std::to_string(wifly.listen.port) + " is already used by " + it->second);
      }
    }
  }

  if (const Json* markers = r.object("markers")) {
    ObjectReader mr(*markers, r.path("markers"), errors);
    mr.only_keys({"open", "close", "hello"});
    mr.string("open", wifly.marker_open);
    mr.string("close", wifly.marker_close);
    mr.string("hello", wifly.marker_hello);
    for (const std::string* m : {&wifly.marker_open, &wifly.marker_close, &wifly.marker_hello}) {
      if (m->size() > 32 || m->find_first_of("\r\n") != std::string::npos) {
        errors.expected(r.path("markers"), "marker strings of at most 32 characters without line breaks", *m);
        break;
      }
    }
  }

  r.integer("handshake_timeout_ms", wifly.handshake_timeout_ms, 50, 600'000);
  r.integer("max_handshake_bytes", wifly.max_handshake_bytes, 256, 65'536);
  r.integer("max_line_bytes", wifly.max_line_bytes, 16, 65'536);
  r.integer("max_connections", wifly.max_connections, 1, 10'000);
  r.integer("connect_timeout_ms", wifly.connect_timeout_ms, 50, 600'000);
  r.integer("backoff_base_ms", wifly.backoff_base_ms, 10, 3'600'000);
  if (!r.integer("backoff_max_ms", wifly.backoff_max_ms, wifly.backoff_base_ms, 3'600'000)) {
    wifly.backoff_max_ms = std::max(wifly.backoff_max_ms, wifly.backoff_base_ms);
  }
  wifly.command_timeout_ms = ctx.default_timeout_ms;
  r.integer("command_timeout_ms", wifly.command_timeout_ms, 100, 600'000);

  const Json* devices = r.array("devices", 1, Need::required);
  if (devices) {
    for (size_t i = 0; i < devices->size() && errors.ok(); ++i) {
      const std::string path = index_path(r.path("devices"), i);
      const Json* item = item_object(r, *devices, i, path);
      if (!item) break;
      ObjectReader dr(*item, path, errors);
      WiflyDeviceConfig device;
      read_device(dr, ctx, device);
      wifly.devices.push_back(std::move(device));
    }
  }
  std::set<std::string> ids;
  for (const auto& d : wifly.devices) ids.insert(d.id);

  if (const Json* modules = r.array("modules", 0)) {
    for (size_t i = 0; i < modules->size() && errors.ok(); ++i) {
      const std::string path = index_path(r.path("modules"), i);
      const Json* item = item_object(r, *modules, i, path);
      if (!item) break;
      ObjectReader mr(*item, path, errors);
      WiflyModuleConfig module;
      read_module(mr, module);
      if (errors.ok() && !module.device.empty() && !ids.count(module.device)) {
        errors.fail(mr.path("device"), "no device \"" + module.device + "\" in this adapter's devices");
      }
      wifly.modules.push_back(std::move(module));
    }
  }
  if (errors.ok() && !wifly.listen.enabled && wifly.modules.empty()) {
    errors.fail(r.path(), "needs \"listen\" or \"modules\" (or both): otherwise no module can ever reach it");
  }
}

void summarize_adapter(std::ostream& out, const WiflyAdapterConfig& wifly) {
  out << "  wifly '" << wifly.name << "'";
  if (wifly.listen.enabled) out << " listening on " << wifly.listen.address << ":" << wifly.listen.port;
  if (!wifly.modules.empty()) {
    out << (wifly.listen.enabled ? "," : "") << " connecting to";
    for (size_t i = 0; i < wifly.modules.size(); ++i) {
      const auto& m = wifly.modules[i];
      out << (i ? ", " : " ") << m.host << ":" << m.port;
      if (!m.device.empty()) out << " (" << m.device << ")";
    }
  }
  out << "; " << wifly.devices.size() << (wifly.devices.size() == 1 ? " device:" : " devices:");
  for (size_t i = 0; i < wifly.devices.size(); ++i) {
    out << (i ? ", " : " ") << wifly.devices[i].id << " (" << wifly.devices[i].kind;
    if (!wifly.devices[i].address.empty()) out << ", from " << wifly.devices[i].address;
    out << ")";
  }
  out << "; handshake " << wifly.max_handshake_bytes << " bytes in " << wifly.handshake_timeout_ms
      << " ms, command timeout " << wifly.command_timeout_ms << " ms\n";
}

}  // namespace flatlink::config::detail
