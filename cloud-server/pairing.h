// Pairing a gateway with a one-time code instead of a copied token (docs/operations.md,
// "First run"): the operator makes a code for a flat (`flatlink-cloud admin pair-code FLAT`),
// the Pi sends it to POST /pair over HTTPS (`flatlinkd pair URL CODE`) and gets a new gateway
// token for that flat. Codes: 8 characters of an alphabet without look-alikes (40 bits), kept
// as a SHA-256 in the store, with an expiry, used once (store/store_pairing.h). Failed
// attempts are throttled per source address and in all (PairThrottle). Pure code, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace flatlink::cloud {

inline constexpr int64_t kPairCodeDefaultSeconds = 15 * 60;
inline constexpr size_t kPairRequestMaxBytes = 1024;

// A new code, "ABCD-EFGH" (crypto-random).
std::string new_pairing_code();
// The code as stored: upper case, without '-' and spaces; "" when it is no code.
std::string normalize_pairing_code(std::string_view code);
// A new gateway token: 32 random bytes in hex.
std::string new_gateway_token();

// POST /pair's body: {"code": "...", "name": "..."} (name optional: the gateway's id, logged).
struct PairRequest {
  std::string code;  // normalized
  std::string name;
};
// The request, or a reason for a 400 in `error`.
std::optional<PairRequest> parse_pair_request(std::string_view body, std::string& error);

// Failed pairing attempts: a source may fail `per_source` times in a window, all sources
// together `in_all` times; beyond that every attempt (even a right code) is refused with 429
// until the window ends. A success does not reset the counts (it is rare and cheap to wait).
class PairThrottle {
 public:
  PairThrottle(uint32_t per_source = 5, uint32_t in_all = 50, int64_t window_ms = 15 * 60 * 1000)
      : per_source_(per_source), in_all_(in_all), window_ms_(window_ms) {}
  // 0 when an attempt may be made, else the milliseconds until it may.
  int64_t refused_for(const std::string& source, int64_t now_ms);
  void failed(const std::string& source, int64_t now_ms);

 private:
  struct Count {
    uint32_t failures = 0;
    int64_t since_ms = 0;
  };
  void expire(Count& c, int64_t now_ms) const;
  uint32_t per_source_;
  uint32_t in_all_;
  int64_t window_ms_;
  Count all_;
  std::unordered_map<std::string, Count> sources_;  // entries older than a window are dropped
};

}  // namespace flatlink::cloud
