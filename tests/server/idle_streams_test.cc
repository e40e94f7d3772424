// IdleStreams: the checker asks every registered stream, and only those, whether it is idle.
#include "server/idle_streams.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

// Idle from `since`; ends itself (once) when asked with a later cutoff.
class FakeStream : public IdleStreams::Stream {
 public:
  explicit FakeStream(absl::Time since) : since_(since) {}
  void EndIfIdleSince(absl::Time cutoff) override {
    checks_.fetch_add(1);
    if (since_ <= cutoff && !ended_.HasBeenNotified()) ended_.Notify();
  }
  absl::Notification& ended() { return ended_; }
  int checks() const { return checks_.load(); }

 private:
  const absl::Time since_;
  std::atomic<int> checks_{0};
  absl::Notification ended_;
};

TEST(IdleStreamsTest, EndsStreamsIdleLongerThanTheTimeoutOnly) {
  IdleStreams idle(absl::Milliseconds(200));
  FakeStream old_one(absl::Now());
  FakeStream busy(absl::InfiniteFuture());  // never idle
  idle.Add(&old_one);
  idle.Add(&busy);
  EXPECT_TRUE(old_one.ended().WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_GT(busy.checks(), 0);
  EXPECT_FALSE(busy.ended().HasBeenNotified());
  idle.Remove(&old_one);
  idle.Remove(&busy);
  const int checks = busy.checks();
  absl::SleepFor(absl::Milliseconds(300));  // several ticks: a removed stream is never asked
  EXPECT_EQ(busy.checks(), checks);
}

// A stream that removes itself while the checker asks it (as a call that finishes inline).
class SelfRemoving : public IdleStreams::Stream {
 public:
  explicit SelfRemoving(IdleStreams* idle) : idle_(idle) {}
  void EndIfIdleSince(absl::Time) override {
    idle_->Remove(this);
    done_.Notify();
  }
  absl::Notification done_;

 private:
  IdleStreams* const idle_;
};

TEST(IdleStreamsTest, AStreamMayRemoveItselfFromInsideItsCheck) {
  IdleStreams idle(absl::Milliseconds(100));
  SelfRemoving s(&idle);
  idle.Add(&s);
  EXPECT_TRUE(s.done_.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(IdleStreamsTest, ZeroTimeoutChecksNothing) {
  IdleStreams idle(absl::ZeroDuration());
  FakeStream s(absl::InfinitePast());
  idle.Add(&s);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(s.checks(), 0);
  idle.Remove(&s);
}

}  // namespace
}  // namespace vox
