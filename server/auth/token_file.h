#ifndef VOX_SERVER_AUTH_TOKEN_FILE_H_
#define VOX_SERVER_AUTH_TOKEN_FILE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vox {

using Sha256 = std::array<uint8_t, 32>;

// One bearer token of the token file (docs/operations.md, "Tokens"): who it is, which services it
// may call and its quotas. The token itself is never stored, only its SHA-256. Plain data.
struct TokenPolicy {
  std::string name;                   // in the access log and metric labels
  Sha256 sha256{};                    // of the token's bytes
  std::vector<std::string> services;  // full names ("vox.v1.TranslationService"); "*" = every one
  absl::Time expires = absl::InfiniteFuture();
  double requests_per_second = 0;     // bursts up to one second's worth; 0 = no limit
  int concurrent_streams = 0;         // vox.v1 calls open at once (CallQuotas); 0 = no limit
  int64_t characters_per_day = 0;     // text sent per UTC day (DailyCharacters); 0 = no limit

  bool Allows(absl::string_view service) const;
};

// Parses a token file (TOML: one [[token]] table per token). INVALID_ARGUMENT naming `source`, the
// token and the key for anything malformed: a missing name or hash, a hash that is not 64 hex
// digits, two tokens with one name or one hash, a service not in `services` (full names), an
// unknown key.
absl::StatusOr<std::vector<TokenPolicy>> ParseTokenFile(const std::string& text,
                                                        const std::string& source,
                                                        const std::vector<std::string>& services);

// Reads `path` and parses it as above. NOT_FOUND when it cannot be read.
absl::StatusOr<std::vector<TokenPolicy>> LoadTokenFile(const std::string& path,
                                                       const std::vector<std::string>& services);

// SHA-256 of `data`, and as 64 lowercase hex digits (what the token file holds).
Sha256 Sha256Of(absl::string_view data);
std::string Sha256Hex(absl::string_view data);

}  // namespace vox

#endif  // VOX_SERVER_AUTH_TOKEN_FILE_H_
