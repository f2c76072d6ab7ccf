// TLS to an MQTT broker: the MQTT adapter's and the cloud backplane's (mqtt/mqtt_session.h).
#pragma once

#include <string>

namespace flatlink::config {

struct MqttTls {
  bool enabled = false;  // "tls" present in the config
  std::string ca_file;   // empty: the system's CA folder
  std::string cert_file; // client certificate, with key_file
  std::string key_file;
};

}  // namespace flatlink::config
