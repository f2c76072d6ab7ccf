// The schema of an MQTT adapter's entry in the gateway configuration.
#include "config/adapter_schemas.h"

#include <ostream>

namespace flatlink::config::detail {

void read_mqtt_adapter(ObjectReader& r, AdapterContext& ctx, MqttAdapterConfig& mqtt) {
  r.only_keys({"name", "host", "port", "type"});
  if (r.id("name", mqtt.name, Need::required)) claim_adapter_name(r, ctx.names, mqtt.name);
  r.non_empty_string("host", mqtt.host);
  r.integer("port", mqtt.port, 1, 65535);
}

void summarize_adapter(std::ostream& out, const MqttAdapterConfig& mqtt) {
  out << "  mqtt '" << mqtt.name << "' to broker " << mqtt.host << ":" << mqtt.port << "\n";
}

}  // namespace flatlink::config::detail
