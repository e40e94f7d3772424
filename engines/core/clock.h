#ifndef VOX_ENGINES_CORE_CLOCK_H_
#define VOX_ENGINES_CORE_CLOCK_H_

#include <cstdint>
#include <list>
#include <memory>
#include <vector>

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
  // Waits on `mu` (held by the caller, held again on return) until `cond` is true or the clock
  // reaches `deadline` (absl::InfiniteFuture() = no deadline). Returns cond's value at return.
  // `mu` may be released and re-acquired more than once, as with any condition wait: callers
  // re-check their state after the call. `cond` is evaluated with `mu` held, possibly by other
  // threads (absl::Mutex semantics), so it must be cheap and must not block.
  virtual bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                 absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;

  // The process-wide real clock (never destroyed).
  static Clock* Real();
};

// A clock that moves only when told to, for tests. Thread-safe.
//
// Advance() wakes, at once, every waiter whose deadline it reaches (no polling, no real-time
// slices). BlockedWaiters()/WaitForBlockedWaiters() let a test wait until a worker thread is
// parked in AwaitWithDeadline with its condition false, i.e. idle until time moves or its state
// changes, so "nothing happened before Advance" can be asserted deterministically.
//
// Lock order: a waiter's `mu` before the clock's own lock. Advance(), BlockedWaiters() and
// WaitForBlockedWaiters() take waiters' mutexes briefly: never call them while holding a mutex
// that someone waits on through this clock.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch() + absl::Hours(1));
  ~FakeClock() override;

  absl::Time Now() override;
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                         absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) override;

  // Moves time forward by `d` (>= 0) and wakes the waiters whose deadline is now reached.
  void Advance(absl::Duration d);
  // Moves time to the earliest deadline among current waiters (no-op when none has a finite
  // deadline or it already passed). Returns the new time.
  absl::Time AdvanceToNextDeadline();

  // Threads currently inside AwaitWithDeadline (blocked or about to return).
  int waiters();
  // Threads parked in AwaitWithDeadline whose condition is false and whose deadline is not
  // reached: they will not move until the state they wait on changes or time advances. Exact:
  // each waiter's condition is evaluated under its own mutex, so a waiter whose state just
  // changed is never counted as blocked. Takes each waiter's mutex briefly.
  int BlockedWaiters();
  // Blocks (real time) until at least `n` waiters are blocked as above; false if that did not
  // happen within `timeout` of real time (a test should fail then, not hang).
  [[nodiscard]] bool WaitForBlockedWaiters(int n, absl::Duration timeout = absl::Seconds(60));
  // The earliest deadline among current waiters (InfiniteFuture when none).
  absl::Time NextDeadline();

 private:
  struct Waiter {
    absl::Mutex* mu = nullptr;
    const absl::Condition* cond = nullptr;
    absl::Time deadline;
    bool expired = false;     // guarded by time_mu_ (read by the waiter's condition)
    int kicks_in_flight = 0;  // guarded by time_mu_: another thread is about to lock `mu`
  };
  // Evaluated by absl with the waiter's mu held.
  struct WaitCondition {
    FakeClock* clock;
    Waiter* waiter;
    bool Eval();
  };
  // Pins the current waiters (their mutexes stay valid until Unpin).
  std::vector<Waiter*> PinWaiters(bool only_reached_deadlines, uint64_t* generation);
  void Unpin(const std::vector<Waiter*>& pinned);
  int CountBlocked(const std::vector<Waiter*>& pinned);

  absl::Mutex time_mu_;
  absl::Time now_ ABSL_GUARDED_BY(time_mu_);
  std::list<Waiter*> waiters_ ABSL_GUARDED_BY(time_mu_);
  uint64_t generation_ ABSL_GUARDED_BY(time_mu_) = 0;  // bumped when waiters come and go
};

}  // namespace vox

#endif  // VOX_ENGINES_CORE_CLOCK_H_
