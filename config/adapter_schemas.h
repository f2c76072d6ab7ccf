// How each adapter type's entry in the gateway configuration is read: one
// function per type, each in its own file (<type>_schema.cpp). Private to config/.
#pragma once

#include <map>
#include <ostream>
#include <string>

#include "config/gateway_config.h"
#include "config/json_reader.h"

namespace flatlink::config::detail {

// Ids and names seen so far, each with the path where it first appeared.
using FirstSeen = std::map<std::string, std::string>;

// What the adapters of one file share while they are read: names and device ids
// must be unique across all of them, a port belongs to one adapter.
struct AdapterContext {
  FirstSeen names;
  FirstSeen device_ids;
  FirstSeen ports;
  uint32_t default_timeout_ms = 5000;  // the gateway's command_timeout_ms
  std::string base_dir;                // resolves relative paths (CA files, password files)
};

// Records an adapter name, refusing one used by an earlier adapter.
void claim_adapter_name(ObjectReader& r, FirstSeen& names, const std::string& name);
// Records a device id, refusing one that another device already has.
void claim_device_id(Errors& errors, FirstSeen& device_ids, const std::string& id, const std::string& path);

// A capability's type, one vocabulary for every adapter and the wire (capability_schema.cpp):
// bool, int, number, enum, text; the old spellings boolean, integer and enumeration are
// read with a deprecation warning.
bool read_value_type(ObjectReader& r, std::string_view key, ValueType& out, Need need);
// A declared capability: name, type, range, options, unit, max_length (at most
// kMaxTextLength). `line_device`: the names dev, set, ok and error are refused.
void read_capability(ObjectReader& r, Capability& cap, bool line_device);

// Each type's reader and its line in summarize(); one file per type.
void read_serial_adapter(ObjectReader& r, AdapterContext& ctx, SerialAdapterConfig& out);
void read_wifly_adapter(ObjectReader& r, AdapterContext& ctx, WiflyAdapterConfig& out);
void read_mqtt_adapter(ObjectReader& r, AdapterContext& ctx, MqttAdapterConfig& out);
void read_audio_adapter(ObjectReader& r, AdapterContext& ctx, AudioAdapterConfig& out);
void summarize_adapter(std::ostream& out, const SerialAdapterConfig& serial);
void summarize_adapter(std::ostream& out, const WiflyAdapterConfig& wifly);
void summarize_adapter(std::ostream& out, const MqttAdapterConfig& mqtt);
void summarize_adapter(std::ostream& out, const AudioAdapterConfig& audio);

}  // namespace flatlink::config::detail
