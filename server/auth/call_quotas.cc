#include "server/auth/call_quotas.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/metrics/metrics.h"

namespace vox {

CallQuotas::Slot::Slot(Slot&& other) noexcept
    : quotas_(std::exchange(other.quotas_, nullptr)), token_(std::move(other.token_)) {}

CallQuotas::Slot& CallQuotas::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    if (quotas_ != nullptr) quotas_->Leave(token_);
    quotas_ = std::exchange(other.quotas_, nullptr);
    token_ = std::move(other.token_);
  }
  return *this;
}

CallQuotas::Slot::~Slot() {
  if (quotas_ != nullptr) quotas_->Leave(token_);
}

CallQuotas::CallQuotas(int max_calls, Metrics* metrics)
    : max_calls_(max_calls), metrics_(metrics) {}

void CallQuotas::SetTokenLimits(std::map<std::string, int> concurrent_streams) {
  absl::MutexLock lock(&mu_);
  limits_ = std::move(concurrent_streams);
}

absl::Status CallQuotas::Refuse(const std::string& token, const char* quota, std::string message) {
  if (metrics_ != nullptr) metrics_->QuotaRejected(token, quota);
  return absl::ResourceExhaustedError(std::move(message));
}

absl::StatusOr<CallQuotas::Slot> CallQuotas::Enter(const std::string& token) {
  absl::MutexLock lock(&mu_);
  if (max_calls_ > 0 && open_ >= max_calls_) {
    return Refuse(token, "max_concurrent_streams",
                  absl::StrCat("the server has ", open_,
                               " calls open, its limit (server.max_concurrent_streams); retry "
                               "later or on another server"));
  }
  if (!token.empty()) {
    const auto limit = limits_.find(token);
    const int allowed = limit == limits_.end() ? 0 : limit->second;
    int& open = open_by_token_[token];
    if (allowed > 0 && open >= allowed) {
      return Refuse(token, "concurrent_streams",
                    absl::StrCat("token '", token, "' has ", open,
                                 " calls open, its limit (concurrent_streams)"));
    }
    ++open;
  }
  ++open_;
  return Slot(this, token);
}

void CallQuotas::Leave(const std::string& token) {
  absl::MutexLock lock(&mu_);
  --open_;
  if (!token.empty()) --open_by_token_[token];
}

int CallQuotas::open_calls() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

int CallQuotas::open_calls(const std::string& token) const {
  absl::MutexLock lock(&mu_);
  const auto it = open_by_token_.find(token);
  return it == open_by_token_.end() ? 0 : it->second;
}

}  // namespace vox
