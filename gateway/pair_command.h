// `flatlinkd pair URL CODE`: pairs this gateway with a flat on the cloud using a one-time
// code (`flatlink-cloud admin pair-code FLAT`): POST URL/pair over HTTPS with the certificate
// verified, then writes the flat, the cloud's wss:// URL and the token into the config's
// folder (token 0600 for the service user) and (re)starts flatlinkd under systemd.
// Command line only; blocking.
#pragma once

namespace flatlink::gateway {

// argv after "pair". Returns the exit code (0 paired, 1 failure, 2 bad usage).
int pair_command(int argc, char** argv);

}  // namespace flatlink::gateway
