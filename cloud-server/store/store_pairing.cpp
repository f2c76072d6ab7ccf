// One-time pairing codes in the store: one SQL on both engines (table pairing_codes,
// migration "pairing codes" in database.cpp).
#include "cloud-server/store/store_pairing.h"

namespace flatlink::cloud::store {

std::string_view to_string(PairOutcome outcome) {
  switch (outcome) {
    case PairOutcome::paired: return "paired";
    case PairOutcome::unknown: return "unknown code";
    case PairOutcome::expired: return "expired code";
    case PairOutcome::used: return "code already used";
  }
  return "unknown code";
}

bool add_pairing_code(Database& db, const std::string& flat, const std::string& code_sha256, int64_t expires_ms) {
  auto& c = db.connection();
  Transaction tx(c);
  if (c.query("SELECT 1 FROM flats WHERE id = ?", {flat}).empty()) return false;
  c.query("INSERT INTO pairing_codes (code_sha256, flat, expires, used) VALUES (?, ?, ?, 0)",
          {code_sha256, flat, expires_ms});
  tx.commit();
  return true;
}

PairResult redeem_pairing_code(Database& db, const std::string& code_sha256, const std::string& token_sha256,
                               int64_t now_ms) {
  auto& c = db.connection();
  Transaction tx(c);
  c.query("DELETE FROM pairing_codes WHERE expires < ?", {now_ms - 24 * 3600 * 1000LL});
  const auto rows = c.query("SELECT flat, expires, used FROM pairing_codes WHERE code_sha256 = ?", {code_sha256});
  PairResult result;
  if (rows.empty() || !rows[0][0]) {
    tx.commit();
    return result;
  }
  result.flat = *rows[0][0];
  if (rows[0][2] && std::stoll(*rows[0][2]) != 0) {
    result.outcome = PairOutcome::used;
  } else if (!rows[0][1] || std::stoll(*rows[0][1]) <= now_ms) {
    result.outcome = PairOutcome::expired;
  } else {
    // The condition on `used` makes the code single-use even when two instances race.
    c.query("UPDATE pairing_codes SET used = ? WHERE code_sha256 = ? AND used = 0", {now_ms, code_sha256});
    if (c.changes() != 1) {
      result.outcome = PairOutcome::used;
    } else {
      c.query("INSERT INTO gateways (flat, token_sha256, issued) VALUES (?, ?, ?)"
              " ON CONFLICT (flat) DO UPDATE SET token_sha256 = excluded.token_sha256, issued = excluded.issued",
              {result.flat, token_sha256, now_ms});
      c.query("UPDATE accounts_version SET version = version + 1 WHERE id = 1");
      result.outcome = PairOutcome::paired;
    }
  }
  tx.commit();
  if (result.outcome != PairOutcome::paired) result.flat.clear();
  return result;
}

}  // namespace flatlink::cloud::store
