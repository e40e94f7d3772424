#ifndef VOX_SERVER_AUTH_DAILY_CHARACTERS_H_
#define VOX_SERVER_AUTH_DAILY_CHARACTERS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vox {

class Metrics;

// Each token's characters per day (the token file's characters_per_day): Unicode code points of
// the text its calls send, counted per UTC day in this process (a restart starts from zero, and
// N replicas allow N times the budget). Every charge is counted in vox_token_characters_total; a
// refusal in vox_quota_rejections_total{quota="characters_per_day"}. Thread-safe.
class DailyCharacters {
 public:
  // `metrics` may be null; `now` is the clock (tests move it across midnight).
  explicit DailyCharacters(Metrics* metrics, std::function<absl::Time()> now = absl::Now);

  // Replaces the limits by token name (start-up and SIGHUP); a token absent or at 0 has none.
  // Today's counts stay.
  void SetLimits(std::map<std::string, int64_t> per_day);

  // Counts `characters` for `token` ("" = no token: never limited, not counted), or refuses them
  // all with RESOURCE_EXHAUSTED when they would take the token past its limit for today.
  absl::Status Charge(const std::string& token, int64_t characters);

  // Characters `token` has sent today (tests).
  int64_t used(const std::string& token) const;

 private:
  // Starts a new day's counts when the UTC date changed.
  void RollLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Metrics* const metrics_;
  const std::function<absl::Time()> now_;
  mutable absl::Mutex mu_;
  std::map<std::string, int64_t> limits_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> used_ ABSL_GUARDED_BY(mu_);
  int64_t day_ ABSL_GUARDED_BY(mu_) = 0;  // days since 1970-01-01 (UTC) of used_
};

}  // namespace vox

#endif  // VOX_SERVER_AUTH_DAILY_CHARACTERS_H_
