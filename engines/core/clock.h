#ifndef VOX_ENGINES_CORE_CLOCK_H_
#define VOX_ENGINES_CORE_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vox {

// The time seam: everything that waits, times out or measures takes a Clock, so tests can
// drive time by hand instead of sleeping. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  // Waits on `mu` (held by the caller) until `cond` is true or the clock reaches `deadline`.
  // Returns true when `cond` became true. A FakeClock wakes its waiters when it is advanced.
  virtual bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                 absl::Time deadline) = 0;

  // The process-wide real clock (never destroyed).
  static Clock* Real();
};

// A clock that moves only when told to. Waiters re-check their condition whenever Advance()
// is called, so a test can step through timeouts deterministically.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch() + absl::Hours(1));
  absl::Time Now() override;
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                         absl::Time deadline) override;
  void Advance(absl::Duration d);
  // Number of threads currently blocked in AwaitWithDeadline (lets tests wait for a waiter).
  int waiters();

 private:
  absl::Mutex time_mu_;
  absl::Time now_ ABSL_GUARDED_BY(time_mu_);
  int generation_ ABSL_GUARDED_BY(time_mu_) = 0;
  int waiters_ ABSL_GUARDED_BY(time_mu_) = 0;
};

}  // namespace vox

#endif  // VOX_ENGINES_CORE_CLOCK_H_
