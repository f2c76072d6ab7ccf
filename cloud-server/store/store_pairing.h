// The store's one-time pairing codes (cloud-server/pairing.h): made by the admin command,
// redeemed once by POST /pair for a new gateway token of the code's flat. Blocking calls on
// one Database: the admin command's, or the store worker's (worker.h).
#pragma once

#include <cstdint>
#include <string>

#include "cloud-server/store/store.h"

namespace flatlink::cloud::store {

// Keeps a code's hash for `flat` until `expires_ms` (wall ms). False for an unknown flat.
bool add_pairing_code(Database& db, const std::string& flat, const std::string& code_sha256, int64_t expires_ms);

enum class PairOutcome { paired, unknown, expired, used };
struct PairResult {
  PairOutcome outcome = PairOutcome::unknown;
  std::string flat;  // paired: the code's flat
};
std::string_view to_string(PairOutcome outcome);

// In one transaction: a known, unused, unexpired code is marked used and the flat's gateway
// token hash becomes `token_sha256` (a gateway paired before is replaced: its token stops
// working); the accounts' change counter moves. Codes expired a day ago are deleted.
PairResult redeem_pairing_code(Database& db, const std::string& code_sha256, const std::string& token_sha256,
                               int64_t now_ms);

}  // namespace flatlink::cloud::store
