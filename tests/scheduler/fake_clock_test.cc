#include "engines/core/clock.h"

#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

TEST(FakeClockTest, AdvanceMovesNow) {
  const absl::Time start = absl::FromUnixSeconds(1000);
  FakeClock clock(start);
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(absl::Milliseconds(5));
  EXPECT_EQ(clock.Now(), start + absl::Milliseconds(5));
}

TEST(FakeClockTest, PastDeadlineReturnsAtOnceWithConditionValue) {
  FakeClock clock;
  absl::Mutex mu;
  bool flag = false;
  absl::MutexLock lock(&mu);
  EXPECT_FALSE(clock.AwaitWithDeadline(&mu, absl::Condition(&flag), clock.Now()));
  flag = true;
  EXPECT_TRUE(clock.AwaitWithDeadline(&mu, absl::Condition(&flag), absl::InfiniteFuture()));
}

TEST(FakeClockTest, AdvanceWakesWaiterOnlyWhenDeadlineReached) {
  FakeClock clock;
  absl::Mutex mu;
  bool flag = false;
  const absl::Time deadline = clock.Now() + absl::Milliseconds(10);
  absl::Notification returned;
  bool result = true;
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    result = clock.AwaitWithDeadline(&mu, absl::Condition(&flag), deadline);
    returned.Notify();
  });
  ASSERT_TRUE(clock.WaitForBlockedWaiters(1));
  EXPECT_EQ(clock.NextDeadline(), deadline);
  clock.Advance(absl::Milliseconds(9));
  // Not reached: the waiter is still blocked (Advance wakes only reached deadlines).
  EXPECT_EQ(clock.BlockedWaiters(), 1);
  EXPECT_FALSE(returned.HasBeenNotified());
  clock.Advance(absl::Milliseconds(1));
  returned.WaitForNotification();
  waiter.join();
  EXPECT_FALSE(result);
  EXPECT_EQ(clock.waiters(), 0);
  EXPECT_EQ(clock.BlockedWaiters(), 0);
}

TEST(FakeClockTest, StateChangeWakesWaiterWithoutTimeMoving) {
  FakeClock clock;
  absl::Mutex mu;
  bool flag = false;
  bool result = false;
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    result = clock.AwaitWithDeadline(&mu, absl::Condition(&flag), absl::InfiniteFuture());
  });
  ASSERT_TRUE(clock.WaitForBlockedWaiters(1));
  {
    absl::MutexLock lock(&mu);
    flag = true;
  }
  waiter.join();
  EXPECT_TRUE(result);
  EXPECT_EQ(clock.BlockedWaiters(), 0);
}

TEST(FakeClockTest, AdvanceToNextDeadlineWakesEarliestWaiterOnly) {
  FakeClock clock;
  const absl::Time t0 = clock.Now();
  absl::Mutex mu;
  bool never = false;
  std::thread early([&] {
    absl::MutexLock lock(&mu);
    clock.AwaitWithDeadline(&mu, absl::Condition(&never), t0 + absl::Seconds(1));
  });
  std::thread late([&] {
    absl::MutexLock lock(&mu);
    clock.AwaitWithDeadline(&mu, absl::Condition(&never), t0 + absl::Seconds(5));
  });
  ASSERT_TRUE(clock.WaitForBlockedWaiters(2));
  EXPECT_EQ(clock.AdvanceToNextDeadline(), t0 + absl::Seconds(1));
  early.join();
  ASSERT_TRUE(clock.WaitForBlockedWaiters(1));
  EXPECT_EQ(clock.waiters(), 1);
  EXPECT_EQ(clock.AdvanceToNextDeadline(), t0 + absl::Seconds(5));
  late.join();
  EXPECT_EQ(clock.waiters(), 0);
}

TEST(FakeClockTest, WaitForBlockedWaitersGivesUpAfterItsRealTimeout) {
  FakeClock clock;
  EXPECT_FALSE(clock.WaitForBlockedWaiters(1, absl::Milliseconds(20)));
  EXPECT_TRUE(clock.WaitForBlockedWaiters(0, absl::Milliseconds(20)));
}

// A waiter whose condition is already true is not blocked, even before it returns.
TEST(FakeClockTest, WaiterWithTrueConditionIsNeverCountedBlocked) {
  FakeClock clock;
  absl::Mutex mu;
  bool flag = false;
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    clock.AwaitWithDeadline(&mu, absl::Condition(&flag), absl::InfiniteFuture());
  });
  ASSERT_TRUE(clock.WaitForBlockedWaiters(1));
  {
    absl::MutexLock lock(&mu);
    flag = true;
  }
  EXPECT_EQ(clock.BlockedWaiters(), 0);  // exact even if the waiter has not woken yet
  waiter.join();
}

// Many waiters on their own short-lived mutexes while another thread advances: exercises the
// hand-off that keeps Advance() from touching a mutex whose waiter already returned.
TEST(FakeClockTest, ConcurrentAdvanceAndShortLivedWaiters) {
  FakeClock clock;
  std::vector<std::thread> threads;
  std::atomic<bool> done{false};
  std::thread advancer([&] {
    while (!done.load()) clock.Advance(absl::Microseconds(1));
  });
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        auto mu = std::make_unique<absl::Mutex>();
        bool never = false;
        absl::MutexLock lock(mu.get());
        clock.AwaitWithDeadline(mu.get(), absl::Condition(&never),
                                clock.Now() + absl::Microseconds(3));
      }
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  advancer.join();
  EXPECT_EQ(clock.waiters(), 0);
}

}  // namespace
}  // namespace vox
