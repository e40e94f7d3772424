// IdleStreams: the checker asks every registered stream, and only those, whether it is idle.
#include "server/idle_streams.h"

#include <atomic>
#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics/metrics.h"

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

TEST(StreamActivityTest, EndsOnlyAWaitingReadWithNothingLeftAndDropsItsCompletion) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  StreamActivity activity(t0);
  const absl::Time later = t0 + absl::Seconds(10);
  EXPECT_FALSE(activity.EndIfIdle(later, [] { return true; }));  // no read waits
  ASSERT_TRUE(activity.BeginRead());
  EXPECT_FALSE(activity.EndIfIdle(t0 - absl::Seconds(1), [] { return true; }));  // moved since
  EXPECT_FALSE(activity.EndIfIdle(later, [] { return false; }));  // work left
  EXPECT_TRUE(activity.ReadDone(t0 + absl::Seconds(5)));  // a message: activity
  ASSERT_TRUE(activity.BeginRead());
  EXPECT_FALSE(activity.EndIfIdle(t0 + absl::Seconds(4), [] { return true; }));
  activity.WriteDone(t0 + absl::Seconds(8));
  EXPECT_FALSE(activity.EndIfIdle(t0 + absl::Seconds(7), [] { return true; }));
  EXPECT_TRUE(activity.EndIfIdle(later, [] { return true; }));
  EXPECT_FALSE(activity.EndIfIdle(later, [] { return true; }));  // once
  EXPECT_FALSE(activity.ReadDone(later));  // the waiting read's completion is dropped
  EXPECT_FALSE(activity.BeginRead());      // and no read starts
}

TEST(IdleStreamsTest, ExpiredNamesTheTimeoutAndIsCounted) {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Create("");
  ASSERT_TRUE(metrics.ok());
  IdleStreams idle(absl::ZeroDuration(), metrics->get());
  const absl::Status s = idle.Expired("", "nothing was stored");
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(s.message()),
              ::testing::AllOf(::testing::HasSubstr("server.idle_stream_timeout_seconds"),
                               ::testing::HasSubstr("nothing was stored")));
  EXPECT_THAT((*metrics)->Scrape(),
              ::testing::HasSubstr(
                  "vox_quota_rejections_total{quota=\"idle_stream_timeout\",token=\"-\"} 1"));
}

}  // namespace
}  // namespace vox
