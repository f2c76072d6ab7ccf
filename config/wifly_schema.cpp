// The schema of a WiFly adapter's entry in the gateway configuration.
#include "config/adapter_schemas.h"

#include <ostream>

namespace flatlink::config::detail {

void read_wifly_adapter(ObjectReader& r, AdapterContext& ctx, WiflyAdapterConfig& wifly) {
  r.only_keys({"name", "type"});
  if (r.id("name", wifly.name, Need::required)) claim_adapter_name(r, ctx.names, wifly.name);
}

void summarize_adapter(std::ostream& out, const WiflyAdapterConfig& wifly) {
  out << "  wifly '" << wifly.name << "'\n";
}

}  // namespace flatlink::config::detail
