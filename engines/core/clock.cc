#include "engines/core/clock.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace vox {
namespace {

class RealClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                         absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) override {
    return mu->AwaitWithDeadline(cond, deadline);
  }
};

}  // namespace

Clock* Clock::Real() {
  static Clock* clock = new RealClock();
  return clock;
}

FakeClock::FakeClock(absl::Time start) : now_(start) {}

FakeClock::~FakeClock() = default;

absl::Time FakeClock::Now() {
  absl::MutexLock lock(&time_mu_);
  return now_;
}

bool FakeClock::WaitCondition::Eval() {
  // Called with the waiter's mu held (lock order: mu, then time_mu_).
  if (waiter->cond->Eval()) return true;
  absl::MutexLock lock(&clock->time_mu_);
  return waiter->expired;
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                  absl::Time deadline) {
  Waiter waiter;
  waiter.mu = mu;
  waiter.cond = &cond;
  waiter.deadline = deadline;
  std::list<Waiter*>::iterator it;
  {
    absl::MutexLock lock(&time_mu_);
    waiter.expired = now_ >= deadline;
    it = waiters_.insert(waiters_.end(), &waiter);
    ++generation_;
  }
  WaitCondition wait{this, &waiter};
  mu->Await(absl::Condition(&wait, &WaitCondition::Eval));

  // Leaving: another thread may be about to lock `mu` (to wake or inspect us); let it finish
  // first so that it never touches a mutex whose owner may be gone once we return.
  time_mu_.Lock();
  while (waiter.kicks_in_flight > 0) {
    time_mu_.Unlock();
    mu->Unlock();
    {
      absl::MutexLock lock(&time_mu_);
      time_mu_.Await(absl::Condition(
          +[](Waiter* w) { return w->kicks_in_flight == 0; }, &waiter));
    }
    mu->Lock();
    time_mu_.Lock();
  }
  waiters_.erase(it);
  ++generation_;
  time_mu_.Unlock();
  return cond.Eval();
}

std::vector<FakeClock::Waiter*> FakeClock::PinWaiters(bool only_reached_deadlines,
                                                      uint64_t* generation) {
  std::vector<Waiter*> pinned;
  absl::MutexLock lock(&time_mu_);
  for (Waiter* w : waiters_) {
    if (only_reached_deadlines) {
      if (w->expired || now_ < w->deadline) continue;
      w->expired = true;
    }
    ++w->kicks_in_flight;
    pinned.push_back(w);
  }
  if (generation != nullptr) *generation = generation_;
  return pinned;
}

void FakeClock::Unpin(const std::vector<Waiter*>& pinned) {
  absl::MutexLock lock(&time_mu_);
  for (Waiter* w : pinned) --w->kicks_in_flight;
}

void FakeClock::Advance(absl::Duration d) {
  {
    absl::MutexLock lock(&time_mu_);
    if (d > absl::ZeroDuration()) now_ += d;
  }
  const std::vector<Waiter*> woken = PinWaiters(/*only_reached_deadlines=*/true, nullptr);
  // absl::Mutex re-evaluates its waiters' conditions when it is released: locking and
  // releasing each woken waiter's mutex makes it see `expired`.
  for (Waiter* w : woken) {
    w->mu->Lock();
    w->mu->Unlock();
  }
  Unpin(woken);
}

int FakeClock::CountBlocked(const std::vector<Waiter*>& pinned) {
  int blocked = 0;
  for (Waiter* w : pinned) {
    // Holding w->mu, the waiter's state cannot change under us: it is either parked in Await
    // (count it when its condition is false and time has not reached its deadline) or on its
    // way out (its condition or deadline then says so).
    w->mu->Lock();
    const bool ready = w->cond->Eval();
    bool expired;
    {
      absl::MutexLock lock(&time_mu_);
      expired = w->expired || now_ >= w->deadline;
    }
    w->mu->Unlock();
    if (!ready && !expired) ++blocked;
  }
  return blocked;
}

int FakeClock::BlockedWaiters() {
  const std::vector<Waiter*> pinned = PinWaiters(false, nullptr);
  const int blocked = CountBlocked(pinned);
  Unpin(pinned);
  return blocked;
}

bool FakeClock::WaitForBlockedWaiters(int n, absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;  // real time, on purpose
  while (true) {
    uint64_t generation = 0;
    const std::vector<Waiter*> pinned = PinWaiters(false, &generation);
    const int blocked = CountBlocked(pinned);
    Unpin(pinned);
    if (blocked >= n) return true;
    if (absl::Now() >= give_up) return false;
    // Some waiter is about to return, or not there yet: wait until waiters come or go.
    std::pair<FakeClock*, uint64_t> seen(this, generation);
    absl::MutexLock lock(&time_mu_);
    time_mu_.AwaitWithDeadline(
        absl::Condition(
            +[](std::pair<FakeClock*, uint64_t>* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return p->first->generation_ != p->second;
            },
            &seen),
        give_up);
  }
}

absl::Time FakeClock::NextDeadline() {
  absl::MutexLock lock(&time_mu_);
  absl::Time next = absl::InfiniteFuture();
  for (Waiter* w : waiters_) {
    if (!w->expired) next = std::min(next, w->deadline);
  }
  return next;
}

absl::Time FakeClock::AdvanceToNextDeadline() {
  const absl::Time next = NextDeadline();
  const absl::Time now = Now();
  if (next != absl::InfiniteFuture() && next > now) Advance(next - now);
  return Now();
}

int FakeClock::waiters() {
  absl::MutexLock lock(&time_mu_);
  return static_cast<int>(waiters_.size());
}

}  // namespace vox
