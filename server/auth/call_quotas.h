#ifndef VOX_SERVER_AUTH_CALL_QUOTAS_H_
#define VOX_SERVER_AUTH_CALL_QUOTAS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace vox {

class Metrics;

// The limits that need a call's end: vox.v1 calls open at once, per token and over all clients.
// Refusals are RESOURCE_EXHAUSTED naming the limit, counted in vox_quota_rejections_total.
// Thread-safe.
class CallQuotas {
 public:

  // A call's place among the open calls; released when destroyed. Movable.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    ~Slot();

   private:
    friend class CallQuotas;
    Slot(CallQuotas* quotas, std::string token) : quotas_(quotas), token_(std::move(token)) {}
    CallQuotas* quotas_ = nullptr;
    std::string token_;
  };

  // `max_calls` over all clients (0 = no limit). `metrics` may be null.
  CallQuotas(int max_calls, Metrics* metrics);

  // Replaces the per-token limits, calls open at once by token name (start-up and SIGHUP); the
  // calls open stay counted.
  void SetTokenLimits(std::map<std::string, int> concurrent_streams);

  // Takes a slot for a call of `token` ("" = no token), or RESOURCE_EXHAUSTED.
  absl::StatusOr<Slot> Enter(const std::string& token);

  // Calls open now, in all and for `token` (tests).
  int open_calls() const;
  int open_calls(const std::string& token) const;

 private:
  void Leave(const std::string& token);
  absl::Status Refuse(const std::string& token, const char* quota, std::string message);

  const int max_calls_;
  Metrics* const metrics_;
  mutable absl::Mutex mu_;
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> limits_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> open_by_token_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vox

#endif  // VOX_SERVER_AUTH_CALL_QUOTAS_H_
