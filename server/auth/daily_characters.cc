#include "server/auth/daily_characters.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/metrics/metrics.h"

namespace vox {
namespace {

// Days since 1970-01-01, UTC.
int64_t UtcDay(absl::Time t) {
  const int64_t s = absl::ToUnixSeconds(t);
  return s >= 0 ? s / 86400 : (s - 86399) / 86400;
}

}  // namespace

DailyCharacters::DailyCharacters(Metrics* metrics, std::function<absl::Time()> now)
    : metrics_(metrics), now_(std::move(now)) {
  day_ = UtcDay(now_());
}

void DailyCharacters::SetLimits(std::map<std::string, int64_t> per_day) {
  absl::MutexLock lock(&mu_);
  limits_ = std::move(per_day);
}

void DailyCharacters::RollLocked() {
  const int64_t today = UtcDay(now_());
  if (today != day_) {
    day_ = today;
    used_.clear();
  }
}

absl::Status DailyCharacters::Charge(const std::string& token, int64_t characters) {
  if (token.empty() || characters <= 0) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    RollLocked();
    int64_t& used = used_[token];
    const auto limit = limits_.find(token);
    if (limit != limits_.end() && limit->second > 0 && used + characters > limit->second) {
      const std::string date =
          absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(day_ * 86400), absl::UTCTimeZone());
      const std::string message = absl::StrCat(
          "token '", token, "' has sent ", used, " of its ", limit->second,
          " characters for ", date, " (UTC, characters_per_day); these ", characters,
          " do not fit. The count starts again at 00:00 UTC");
      if (metrics_ != nullptr) metrics_->QuotaRejected(token, "characters_per_day");
      return absl::ResourceExhaustedError(message);
    }
    used += characters;
  }
  if (metrics_ != nullptr) metrics_->TokenCharacters(token, characters);
  return absl::OkStatus();
}

int64_t DailyCharacters::used(const std::string& token) const {
  absl::MutexLock lock(&mu_);
  const int64_t today = UtcDay(now_());
  if (today != day_) return 0;
  const auto it = used_.find(token);
  return it == used_.end() ? 0 : it->second;
}

}  // namespace vox
