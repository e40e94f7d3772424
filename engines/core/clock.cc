#include "engines/core/clock.h"

#include <atomic>

namespace vox {
namespace {

class RealClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                         absl::Time deadline) override {
    return mu->AwaitWithDeadline(cond, deadline);
  }
};

}  // namespace

Clock* Clock::Real() {
  static Clock* clock = new RealClock();
  return clock;
}

FakeClock::FakeClock(absl::Time start) : now_(start) {}

absl::Time FakeClock::Now() {
  absl::MutexLock lock(&time_mu_);
  return now_;
}

void FakeClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&time_mu_);
  now_ += d;
  ++generation_;
}

int FakeClock::waiters() {
  absl::MutexLock lock(&time_mu_);
  return waiters_;
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                  absl::Time deadline) {
  // The caller holds `mu`. Poll the condition, releasing `mu` in short real-time slices so
  // that other threads can change the state; the fake time decides when we give up.
  {
    absl::MutexLock lock(&time_mu_);
    ++waiters_;
  }
  bool result = false;
  while (true) {
    if (cond.Eval()) { result = true; break; }
    {
      absl::MutexLock lock(&time_mu_);
      if (now_ >= deadline) break;
    }
    // Wake on a state change (cond) or after a short real slice to re-read the fake time.
    if (mu->AwaitWithTimeout(cond, absl::Milliseconds(1))) { result = true; break; }
  }
  {
    absl::MutexLock lock(&time_mu_);
    --waiters_;
  }
  return result;
}

}  // namespace vox
