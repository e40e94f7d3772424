#ifndef VOX_SERVER_LIMIT_REFUSAL_H_
#define VOX_SERVER_LIMIT_REFUSAL_H_

// A refusal by one of the server's configured limits (server.max_texts_per_call, ...) carries
// the limit's config key as a status payload, so that the handler ending the call counts it in
// vox_quota_rejections_total without parsing messages. Pure functions; thread-safe.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "server/metrics/metrics.h"

namespace vox {

inline constexpr char kLimitPayload[] = "type.vox.dev/limit";

// `status` marked as refused by `limit` (a config key without its table, "max_texts_per_call").
inline absl::Status LimitRefusal(absl::Status status, absl::string_view limit) {
  status.SetPayload(kLimitPayload, absl::Cord(limit));
  return status;
}

// The limit that refused `status`, if one did.
inline std::optional<std::string> RefusedLimit(const absl::Status& status) {
  const auto limit = status.GetPayload(kLimitPayload);  // absl::optional<absl::Cord>
  if (!limit.has_value()) return std::nullopt;
  return std::string(*limit);
}

// Counts `status` in vox_quota_rejections_total when a limit refused it (`metrics` may be null;
// `token` "" = none).
inline void CountLimitRefusal(Metrics* metrics, const std::string& token,
                              const absl::Status& status) {
  if (metrics == nullptr) return;
  if (std::optional<std::string> limit = RefusedLimit(status)) {
    metrics->QuotaRejected(token, *limit);
  }
}

}  // namespace vox

#endif  // VOX_SERVER_LIMIT_REFUSAL_H_
