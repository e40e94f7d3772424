#include "server/scheduler/continuous_batcher.h"

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engines/core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/scheduler/toy_step_model.h"

namespace vox {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing_toy::Reference;
using testing_toy::ToyLog;
using testing_toy::ToyModel;
using testing_toy::ToySeq;

using Batcher = ContinuousBatcher<ToySeq, uint64_t>;

// Outputs and final statuses per sequence key.
class Streams {
 public:
  Batcher::Callbacks For(int key) {
    Batcher::Callbacks cb;
    cb.on_output = [this, key](uint64_t v) {
      absl::MutexLock lock(&mu_);
      outputs_[key].push_back(v);
    };
    cb.on_done = [this, key](absl::Status s, EndReason why) {
      absl::MutexLock lock(&mu_);
      ++done_calls_[key];
      status_.emplace(key, std::move(s));
      reason_.emplace(key, why);
      done_order_.push_back(key);
    };
    return cb;
  }
  void WaitDone(int key) {
    std::pair<Streams*, int> want(this, key);
    absl::MutexLock lock(&mu_);
    // Bounded so that a scheduler that never ends the sequence fails instead of hanging.
    if (!mu_.AwaitWithTimeout(absl::Condition(
                                  +[](std::pair<Streams*, int>* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                    return p->first->status_.count(p->second) > 0;
                                  },
                                  &want),
                              absl::Seconds(60))) {
      ADD_FAILURE() << "sequence " << key << " never ended";
    }
  }
  std::vector<uint64_t> outputs(int key) {
    absl::MutexLock lock(&mu_);
    return outputs_[key];
  }
  absl::Status status(int key) {
    absl::MutexLock lock(&mu_);
    auto it = status_.find(key);
    return it == status_.end() ? absl::NotFoundError("not done") : it->second;
  }
  // Why it ended; nullopt while it has not.
  std::optional<EndReason> reason(int key) {
    absl::MutexLock lock(&mu_);
    auto it = reason_.find(key);
    if (it == reason_.end()) return std::nullopt;
    return it->second;
  }
  bool done(int key) {
    absl::MutexLock lock(&mu_);
    return status_.count(key) > 0;
  }
  int done_calls(int key) {
    absl::MutexLock lock(&mu_);
    return done_calls_[key];
  }
  std::vector<int> done_order() {
    absl::MutexLock lock(&mu_);
    return done_order_;
  }

 private:
  absl::Mutex mu_;
  std::map<int, std::vector<uint64_t>> outputs_;
  std::map<int, absl::Status> status_;
  std::map<int, EndReason> reason_;
  std::map<int, int> done_calls_;
  std::vector<int> done_order_;
};

SchedulerOptions Options(int max_batch, int64_t delay_us = 0) {
  SchedulerOptions o;
  o.name = "toy-decoder";
  o.max_batch_size = max_batch;
  o.max_queue_delay_us = delay_us;
  return o;
}

struct Fixture {
  FakeClock clock;
  ToyLog log;
  ToyModel* model = nullptr;  // owned by the batcher
  std::unique_ptr<Batcher> batcher;
  Streams streams;

  void Start(const SchedulerOptions& o,
             std::function<void(int, const std::vector<int>&)> on_step = {}) {
    auto m = std::make_unique<ToyModel>(&log, std::move(on_step));
    model = m.get();
    std::vector<std::unique_ptr<StepModel<ToySeq, uint64_t>>> models;
    models.push_back(std::move(m));
    auto b = Batcher::Create(o, std::move(models), &clock);
    ASSERT_TRUE(b.ok()) << b.status();
    batcher = std::move(*b);
  }
  TicketId Submit(const ToySeq& s, RequestOptions ro = {}) {
    auto id = batcher->Submit(s, ro, streams.For(s.key));
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : 0;
  }
};

ToySeq Seq(int key, int length) { return ToySeq{1000u + 17u * key, length, key}; }

TEST(ContinuousBatcherTest, NeedsOneModelPerReplica) {
  FakeClock clock;
  SchedulerOptions o = Options(4);
  o.replicas = 2;
  ToyLog log;
  std::vector<std::unique_ptr<StepModel<ToySeq, uint64_t>>> models;
  models.push_back(std::make_unique<ToyModel>(&log));
  auto b = Batcher::Create(o, std::move(models), &clock);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("1 models given for replicas=2"));
}

TEST(ContinuousBatcherTest, SequenceProducesReferenceOutputsAndLeavesOnce) {
  Fixture f;
  f.Start(Options(4));
  f.Submit(Seq(1, 5));
  f.streams.WaitDone(1);
  EXPECT_TRUE(f.streams.status(1).ok());
  EXPECT_EQ(f.streams.reason(1), EndReason::kFinished);
  EXPECT_EQ(f.streams.outputs(1), Reference(Seq(1, 5)));
  f.batcher.reset();
  EXPECT_THAT(f.log.joined, ElementsAre(1));
  EXPECT_THAT(f.log.left, ElementsAre(1));
}

// A short sequence joining while a long one runs joins at the next step boundary, finishes
// first, and leaves the long one's outputs untouched.
TEST(ContinuousBatcherTest, ShortJoinsMidBatchAndFinishesFirst) {
  Fixture f;
  f.Start(Options(4), [&](int step, const std::vector<int>&) {
    if (step == 5) f.Submit(Seq(2, 3));  // arrives while step 5 runs
  });
  f.Submit(Seq(1, 12));
  f.streams.WaitDone(1);
  EXPECT_THAT(f.streams.done_order(), ElementsAre(2, 1));
  EXPECT_EQ(f.streams.outputs(1), Reference(Seq(1, 12)));
  EXPECT_EQ(f.streams.outputs(2), Reference(Seq(2, 3)));
  std::vector<std::vector<int>> want;
  for (int s = 0; s < 12; ++s) {
    if (s >= 6 && s <= 8) {
      want.push_back({1, 2});  // steps 6..8: joined at the boundary after step 5, left after 8
    } else {
      want.push_back({1});
    }
  }
  EXPECT_EQ(f.log.Steps(), want);
}

TEST(ContinuousBatcherTest, BatchedEqualsUnbatched) {
  std::vector<ToySeq> seqs;
  for (int k = 0; k < 20; ++k) seqs.push_back(Seq(k, 1 + (k * 7) % 13));
  std::map<int, std::map<int, std::vector<uint64_t>>> by_batch;
  for (int max_batch : {1, 8}) {
    Fixture f;
    // A delay makes the idle worker wait for a full first batch, so batch 8 really batches.
    f.Start(Options(max_batch, /*delay_us=*/1000));
    for (const ToySeq& s : seqs) f.Submit(s);
    for (const ToySeq& s : seqs) {
      // Sequences left waiting for the delay (a partial first batch) need time to move.
      while (!f.streams.done(s.key)) {
        ASSERT_TRUE(f.clock.WaitForBlockedWaiters(1));
        if (!f.streams.done(s.key)) f.clock.AdvanceToNextDeadline();
      }
      ASSERT_TRUE(f.streams.status(s.key).ok()) << f.streams.status(s.key);
      by_batch[max_batch][s.key] = f.streams.outputs(s.key);
    }
    absl::MutexLock lock(&f.log.mu);
    EXPECT_EQ(f.log.max_active, max_batch);
  }
  for (const ToySeq& s : seqs) {
    EXPECT_EQ(by_batch[1][s.key], Reference(s)) << "key " << s.key;
    EXPECT_EQ(by_batch[8][s.key], by_batch[1][s.key]) << "key " << s.key;
  }
}

TEST(ContinuousBatcherTest, DeadlineMidDecodeEndsAtNextStepBoundary) {
  Fixture f;
  // Every step "takes" 10 ms of fake time.
  f.Start(Options(2, /*delay_us=*/1), [&](int, const std::vector<int>&) {
    f.clock.Advance(absl::Milliseconds(10));
  });
  RequestOptions ro;
  ro.deadline = f.clock.Now() + absl::Milliseconds(35);
  f.Submit(Seq(1, 100), ro);
  f.Submit(Seq(2, 6));
  f.streams.WaitDone(1);
  f.streams.WaitDone(2);
  // Steps start at 0, 10, 20, 30 ms; at the boundary after the 4th it is 40 ms >= 35 ms.
  EXPECT_EQ(f.streams.status(1).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(f.streams.reason(1), EndReason::kDeadlineExceeded);
  const std::vector<uint64_t> ref = Reference(Seq(1, 100));
  EXPECT_THAT(f.streams.outputs(1), ElementsAreArray(ref.begin(), ref.begin() + 4));
  EXPECT_TRUE(f.streams.status(2).ok());
  EXPECT_EQ(f.streams.outputs(2), Reference(Seq(2, 6)));
  f.batcher.reset();
  EXPECT_THAT(f.log.left, ElementsAre(1, 2));  // the expired one still left its slot
}

TEST(ContinuousBatcherTest, DefaultDeadlineInQueueNeverJoins) {
  Fixture f;
  SchedulerOptions o = Options(1);
  o.default_deadline = absl::Milliseconds(50);
  f.Start(o, [&](int step, const std::vector<int>&) {
    if (step == 0) f.Submit(Seq(2, 1));  // queued behind 1, which holds the only slot
    f.clock.Advance(absl::Milliseconds(20));
  });
  f.Submit(Seq(1, 2));  // finishes at 40 ms
  f.streams.WaitDone(1);
  f.streams.WaitDone(2);
  EXPECT_TRUE(f.streams.status(1).ok());
  // 2 was submitted at 0 ms (during step 0) with deadline 50 ms; it joins at 40 ms and runs.
  EXPECT_TRUE(f.streams.status(2).ok()) << f.streams.status(2);

  Fixture g;
  g.Start(o, [&](int step, const std::vector<int>&) {
    if (step == 0) g.Submit(Seq(2, 1));
    g.clock.Advance(absl::Milliseconds(30));  // 1 ends at 60 ms, past 2's deadline (50 ms)
  });
  g.Submit(Seq(1, 2));
  g.streams.WaitDone(2);
  g.streams.WaitDone(1);
  EXPECT_TRUE(g.streams.status(1).ok());  // finished within its last step, at 60 ms
  EXPECT_EQ(g.streams.status(2).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(g.streams.status(2).message(), HasSubstr("in the queue"));
  EXPECT_EQ(g.streams.reason(2), EndReason::kDeadlineExceeded);
  EXPECT_TRUE(g.streams.outputs(2).empty());
  g.batcher.reset();
  EXPECT_THAT(g.log.joined, ElementsAre(1));
}

TEST(ContinuousBatcherTest, CancelMidDecodeStopsAtNextStepBoundary) {
  Fixture f;
  f.Start(Options(2, /*delay_us=*/1), [&](int step, const std::vector<int>&) {
    if (step == 3) {
      EXPECT_TRUE(f.batcher->Cancel(f.model->IdOf(1)));
    }  // arrives during step 3
  });
  const TicketId first = f.Submit(Seq(1, 100));
  f.Submit(Seq(2, 8));
  f.streams.WaitDone(1);
  f.streams.WaitDone(2);
  EXPECT_EQ(f.streams.status(1).code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(f.streams.reason(1), EndReason::kCancelled);
  const std::vector<uint64_t> ref = Reference(Seq(1, 100));
  EXPECT_THAT(f.streams.outputs(1), ElementsAreArray(ref.begin(), ref.begin() + 4));
  EXPECT_TRUE(f.streams.status(2).ok());
  EXPECT_EQ(f.streams.outputs(2), Reference(Seq(2, 8)));
  EXPECT_FALSE(f.batcher->Cancel(first));
  f.batcher.reset();
  EXPECT_THAT(f.log.left, ElementsAre(1, 2));
}

TEST(ContinuousBatcherTest, HighPriorityWaitingJoinsBeforeLow) {
  Fixture f;
  f.Start(Options(1), [&](int step, const std::vector<int>&) {
    if (step == 0) {
      f.Submit(Seq(2, 1), RequestOptions{kPriorityLow});
      f.Submit(Seq(3, 1), RequestOptions{kPriorityNormal});
      f.Submit(Seq(4, 1), RequestOptions{kPriorityHigh});
    }
  });
  f.Submit(Seq(1, 2));
  for (int k = 1; k <= 4; ++k) f.streams.WaitDone(k);
  EXPECT_THAT(f.streams.done_order(), ElementsAre(1, 4, 3, 2));
}

TEST(ContinuousBatcherTest, QueueFullIsResourceExhaustedAtOnce) {
  Fixture f;
  SchedulerOptions o = Options(1);
  o.max_queue_size = 1;
  absl::StatusOr<TicketId> rejected = TicketId{0};
  f.Start(o, [&](int step, const std::vector<int>&) {
    if (step == 0) {
      f.Submit(Seq(2, 1));  // fills the queue
      rejected = f.batcher->Submit(Seq(3, 1), {}, f.streams.For(3));
    }
  });
  f.Submit(Seq(1, 2));
  f.streams.WaitDone(1);
  f.streams.WaitDone(2);
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(rejected.status().message(), HasSubstr("max_queue_size=1"));
  f.batcher.reset();
  EXPECT_EQ(f.streams.done_calls(3), 0);
}

TEST(ContinuousBatcherTest, QueueWaitPastMaxQueueWaitRefusesNewWorkAtOnce) {
  Fixture f;
  SchedulerOptions o = Options(1);
  o.max_queue_wait = absl::Milliseconds(30);
  absl::StatusOr<TicketId> early = TicketId{0};
  absl::StatusOr<TicketId> late = TicketId{0};
  absl::StatusOr<TicketId> high = TicketId{0};
  f.Start(o, [&](int step, const std::vector<int>&) {
    if (step != 0) return;
    f.Submit(Seq(2, 1));  // waits from 0 ms behind 1, which holds the only slot
    f.clock.Advance(absl::Milliseconds(20));
    early = f.batcher->Submit(Seq(3, 1), {}, f.streams.For(3));  // 2 has waited 20 ms
    f.clock.Advance(absl::Milliseconds(20));
    late = f.batcher->Submit(Seq(4, 1), {}, f.streams.For(4));  // 2 has waited 40 ms
    // Nothing of high priority waits: a high request would not wait behind 2 and 3.
    high = f.batcher->Submit(Seq(5, 1), RequestOptions{kPriorityHigh}, f.streams.For(5));
  });
  f.Submit(Seq(1, 2));
  for (int k : {1, 2, 3, 5}) f.streams.WaitDone(k);
  EXPECT_TRUE(early.ok()) << early.status();
  EXPECT_TRUE(high.ok()) << high.status();
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(late.status().message(), HasSubstr("overloaded"));
  EXPECT_THAT(late.status().message(), HasSubstr("max_queue_wait=30ms"));
  for (int k : {1, 2, 3, 5}) EXPECT_TRUE(f.streams.status(k).ok()) << k;
  EXPECT_EQ(f.streams.done_order(), (std::vector<int>{1, 5, 2, 3}));
  f.batcher.reset();
  EXPECT_EQ(f.streams.done_calls(4), 0);
}

TEST(ContinuousBatcherTest, PausedSequenceHoldsItsSlotAndResumesUnchanged) {
  Fixture f;
  f.Start(Options(1), [&](int step, const std::vector<int>&) {
    if (step == 1) {
      EXPECT_TRUE(f.batcher->Pause(f.model->IdOf(1)));
    }
  });
  const TicketId a = f.Submit(Seq(1, 5));
  f.Submit(Seq(2, 2));
  ASSERT_TRUE(f.clock.WaitForBlockedWaiters(1));  // 1 paused in the only slot; 2 must wait
  EXPECT_EQ(f.streams.outputs(1).size(), 2u);
  EXPECT_TRUE(f.streams.outputs(2).empty());
  EXPECT_EQ(f.batcher->active(), 1);
  EXPECT_EQ(f.batcher->queue_depth(), 1);
  EXPECT_TRUE(f.batcher->Resume(a));
  f.streams.WaitDone(1);
  f.streams.WaitDone(2);
  EXPECT_TRUE(f.streams.status(1).ok());
  EXPECT_EQ(f.streams.outputs(1), Reference(Seq(1, 5)));
  EXPECT_EQ(f.streams.outputs(2), Reference(Seq(2, 2)));
  EXPECT_THAT(f.streams.done_order(), ElementsAre(1, 2));
}

TEST(ContinuousBatcherTest, PausedSlotsAreBoundedLongestPausedEndsFirst) {
  Fixture f;
  SchedulerOptions o = Options(3, /*delay_us=*/1);
  o.max_paused_slots = 1;
  o.max_pause = absl::Seconds(1);
  f.Start(o, [&](int step, const std::vector<int>&) {
    if (step == 1) {
      EXPECT_TRUE(f.batcher->Pause(f.model->IdOf(1)));
    }
    if (step == 3) {
      f.clock.Advance(absl::Milliseconds(1));  // b is paused later than a
      EXPECT_TRUE(f.batcher->Pause(f.model->IdOf(2)));
    }
  });
  f.Submit(Seq(1, 100));
  f.Submit(Seq(2, 100));
  f.Submit(Seq(3, 6));
  f.streams.WaitDone(1);
  EXPECT_EQ(f.streams.status(1).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(f.streams.status(1).message(), HasSubstr("too many paused streams"));
  EXPECT_THAT(f.streams.status(1).message(), HasSubstr("max_paused_slots=1"));
  EXPECT_EQ(f.streams.reason(1), EndReason::kTooManyPaused);
  EXPECT_EQ(f.streams.outputs(1).size(), 2u);  // steps 0 and 1
  f.streams.WaitDone(3);
  EXPECT_TRUE(f.streams.status(3).ok());
  EXPECT_EQ(f.streams.outputs(3), Reference(Seq(3, 6)));
  // b alone, paused: nothing moves until its pause reaches max_pause.
  ASSERT_TRUE(f.clock.WaitForBlockedWaiters(1));
  EXPECT_FALSE(f.streams.done(2));
  EXPECT_EQ(f.streams.outputs(2).size(), 4u);  // steps 0..3
  f.clock.Advance(absl::Milliseconds(998));
  ASSERT_TRUE(f.clock.WaitForBlockedWaiters(1));
  EXPECT_FALSE(f.streams.done(2));
  f.clock.AdvanceToNextDeadline();
  f.streams.WaitDone(2);
  EXPECT_EQ(f.streams.status(2).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(f.streams.status(2).message(), HasSubstr("paused too long"));
  EXPECT_EQ(f.streams.reason(2), EndReason::kPausedTooLong);
  f.batcher.reset();
  EXPECT_THAT(f.log.left, ElementsAre(1, 3, 2));  // every joined sequence left its slot once
}

TEST(ContinuousBatcherTest, JoinFailureEndsOnlyThatSequenceWithoutLeave) {
  Fixture f;
  f.Start(Options(4));
  f.Submit(ToySeq{1, /*length=*/0, /*key=*/1});
  f.Submit(Seq(2, 3));
  f.streams.WaitDone(1);
  f.streams.WaitDone(2);
  EXPECT_EQ(f.streams.status(1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.streams.reason(1), EndReason::kFailed);
  EXPECT_TRUE(f.streams.status(2).ok());
  EXPECT_EQ(f.streams.reason(2), EndReason::kFinished);
  f.batcher.reset();
  EXPECT_THAT(f.log.left, ElementsAre(2));
}

// The reason says who ended a sequence, whatever its status reads like: a model that runs out of
// something with a message like the pause limits' is kFailed, not a slow reader.
TEST(ContinuousBatcherTest, StepErrorIsFailedWhateverItsMessageSays) {
  Fixture f;
  f.Start(Options(2));
  ToySeq failing = Seq(1, 10);
  failing.fail_at = 2;
  failing.fail_status = absl::ResourceExhaustedError("stream paused too long (not really)");
  f.Submit(failing);
  f.Submit(Seq(2, 4));
  f.streams.WaitDone(1);
  f.streams.WaitDone(2);
  EXPECT_EQ(f.streams.status(1), failing.fail_status);
  EXPECT_EQ(f.streams.reason(1), EndReason::kFailed);
  EXPECT_EQ(f.streams.outputs(1).size(), 2u);  // steps 0 and 1
  EXPECT_TRUE(f.streams.status(2).ok());
  EXPECT_EQ(f.streams.reason(2), EndReason::kFinished);
  f.batcher.reset();
  EXPECT_THAT(f.log.left, ElementsAre(1, 2));
}

TEST(ContinuousBatcherTest, DestroyEndsActiveAndQueuedWithUnavailableAfterLeave) {
  Fixture f;
  f.Start(Options(1), [&](int step, const std::vector<int>&) {
    if (step == 0) {
      EXPECT_TRUE(f.batcher->Pause(f.model->IdOf(1)));
    }
  });
  f.Submit(Seq(1, 100));
  f.Submit(Seq(2, 5));
  ASSERT_TRUE(f.clock.WaitForBlockedWaiters(1));
  f.batcher.reset();
  EXPECT_EQ(f.streams.status(1).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.streams.status(2).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.streams.reason(1), EndReason::kShutdown);
  EXPECT_EQ(f.streams.reason(2), EndReason::kShutdown);
  EXPECT_EQ(f.streams.done_calls(1), 1);
  EXPECT_EQ(f.streams.done_calls(2), 1);
  EXPECT_THAT(f.log.left, ElementsAre(1));
}

// ---- The queue, option and Submit rules (request_queue.h, scheduler_options.cc), tested
// through ContinuousBatcher.

TEST(ContinuousBatcherTest, RejectsBadOptionsNamingFieldAndRange) {
  FakeClock clock;
  ToyLog log;
  auto make = [&](const SchedulerOptions& o) {
    std::vector<std::unique_ptr<StepModel<ToySeq, uint64_t>>> models;
    models.push_back(std::make_unique<ToyModel>(&log));
    return Batcher::Create(o, std::move(models), &clock);
  };
  auto b = make(Options(0));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(b.status().message(), HasSubstr("max_batch_size=0"));
  EXPECT_THAT(b.status().message(), HasSubstr(">= 1"));
  SchedulerOptions o = Options(4);
  o.priority_levels = 1;
  b = make(o);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("priority_levels=1"));
}

TEST(ContinuousBatcherTest, PriorityOutOfRangeIsInvalidArgumentNamingRange) {
  Fixture f;
  f.Start(Options(1));
  auto r = f.batcher->Submit(Seq(1, 1), RequestOptions{3}, f.streams.For(1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("priority 3"));
  EXPECT_THAT(r.status().message(), HasSubstr("0..2"));
  f.batcher.reset();
  EXPECT_EQ(f.streams.done_calls(1), 0);
}

// An idle replica holds a partial first batch exactly max_queue_delay_us after the oldest
// submission (RequestQueue::Oldest), then all of it joins at once.
TEST(ContinuousBatcherTest, IdleWorkerJoinsPartialBatchOnlyOnceDelayPassed) {
  Fixture f;
  const absl::Time t0 = f.clock.Now();
  f.Start(Options(8, /*delay_us=*/500));
  f.Submit(Seq(1, 1));
  ASSERT_TRUE(f.clock.WaitForBlockedWaiters(1));
  EXPECT_EQ(f.clock.NextDeadline(), t0 + absl::Microseconds(500));
  f.clock.Advance(absl::Microseconds(200));
  f.Submit(Seq(2, 1));
  f.Submit(Seq(3, 1));
  ASSERT_TRUE(f.clock.WaitForBlockedWaiters(1));
  EXPECT_EQ(f.clock.NextDeadline(), t0 + absl::Microseconds(500));  // the oldest one counts
  EXPECT_TRUE(f.log.Steps().empty());
  f.clock.Advance(absl::Microseconds(299));
  ASSERT_TRUE(f.clock.WaitForBlockedWaiters(1));
  EXPECT_TRUE(f.log.Steps().empty());
  f.clock.Advance(absl::Microseconds(1));
  for (int k = 1; k <= 3; ++k) f.streams.WaitDone(k);
  EXPECT_EQ(f.log.Steps(), (std::vector<std::vector<int>>{{1, 2, 3}}));
}

// A queued deadline wakes the idle worker that waits for a fuller batch
// (RequestQueue::EarliestDeadline); the sequence never joins.
TEST(ContinuousBatcherTest, DeadlineWakesIdleWorkerWaitingForDelay) {
  Fixture f;
  SchedulerOptions o = Options(8, /*delay_us=*/1000000);
  o.default_deadline = absl::Milliseconds(5);
  f.Start(o);
  f.Submit(Seq(1, 1));
  ASSERT_TRUE(f.clock.WaitForBlockedWaiters(1));
  f.clock.Advance(absl::Milliseconds(5));
  f.streams.WaitDone(1);
  EXPECT_EQ(f.streams.status(1).code(), absl::StatusCode::kDeadlineExceeded);
  f.batcher.reset();
  EXPECT_TRUE(f.log.joined.empty());
}

TEST(ContinuousBatcherTest, CancelQueuedEndsCancelledWithoutJoiningOrTimeMoving) {
  Fixture f;
  f.Start(Options(8, /*delay_us=*/1000000));
  const TicketId first = f.Submit(Seq(1, 1));
  f.Submit(Seq(2, 1));
  ASSERT_TRUE(f.clock.WaitForBlockedWaiters(1));
  EXPECT_TRUE(f.batcher->Cancel(first));
  f.streams.WaitDone(1);
  EXPECT_EQ(f.streams.status(1).code(), absl::StatusCode::kCancelled);
  f.clock.Advance(absl::Seconds(1));
  f.streams.WaitDone(2);
  EXPECT_TRUE(f.streams.status(2).ok());
  EXPECT_FALSE(f.batcher->Cancel(first));  // already ended
  f.batcher.reset();
  EXPECT_THAT(f.log.joined, ElementsAre(2));
}

// A queued sequence that is cancelled or expires while the only slot is busy ends at the next
// step boundary and frees its queue slot (RequestQueue::Sweep).
TEST(ContinuousBatcherTest, CancelAndExpiryFreeQueueSlotsWhileSlotIsBusy) {
  Fixture f;
  SchedulerOptions o = Options(1);
  o.max_queue_size = 1;
  TicketId cancelled = 0;
  absl::StatusOr<TicketId> full_before = TicketId{0}, full_after = TicketId{0};
  f.Start(o, [&](int step, const std::vector<int>&) {
    if (step == 0) {
      cancelled = f.Submit(Seq(2, 1));  // fills the queue
      full_before = f.batcher->Submit(Seq(3, 1), {}, f.streams.For(3));
      EXPECT_TRUE(f.batcher->Cancel(cancelled));
    } else if (step == 1) {
      EXPECT_EQ(f.streams.status(2).code(), absl::StatusCode::kCancelled);
      RequestOptions soon;
      soon.deadline = f.clock.Now() + absl::Milliseconds(3);
      f.Submit(Seq(4, 1), soon);  // the slot was freed
      full_after = f.batcher->Submit(Seq(5, 1), {}, f.streams.For(5));
      f.clock.Advance(absl::Milliseconds(3));
    } else if (step == 2) {
      EXPECT_EQ(f.streams.status(4).code(), absl::StatusCode::kDeadlineExceeded);
      f.Submit(Seq(6, 1));  // freed again
    }
  });
  f.Submit(Seq(1, 4));
  f.streams.WaitDone(1);
  f.streams.WaitDone(6);
  EXPECT_EQ(full_before.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(full_after.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(f.streams.status(1).ok());
  EXPECT_TRUE(f.streams.status(6).ok());
  f.batcher.reset();
  EXPECT_EQ(f.streams.done_calls(3), 0);
  EXPECT_EQ(f.streams.done_calls(5), 0);
  EXPECT_THAT(f.log.joined, ElementsAre(1, 6));
}

// Higher levels first, and submit order within a level (RequestQueue::Pop).
TEST(ContinuousBatcherTest, WaitingJoinByPriorityThenSubmitOrder) {
  Fixture f;
  f.Start(Options(1), [&](int step, const std::vector<int>&) {
    if (step == 0) {
      f.Submit(Seq(1, 1), RequestOptions{kPriorityLow});
      f.Submit(Seq(2, 1), RequestOptions{kPriorityNormal});
      f.Submit(Seq(3, 1), RequestOptions{kPriorityHigh});
      f.Submit(Seq(4, 1), RequestOptions{kPriorityLow});
      f.Submit(Seq(5, 1), RequestOptions{kPriorityHigh});
    }
  });
  f.Submit(Seq(0, 1));
  for (int k = 0; k <= 5; ++k) f.streams.WaitDone(k);
  EXPECT_THAT(f.streams.done_order(), ElementsAre(0, 3, 5, 2, 1, 4));
}

TEST(ContinuousBatcherTest, StopAcceptingRefusesNewWorkButFinishesQueued) {
  Fixture f;
  f.Start(Options(8, /*delay_us=*/1000000));
  f.Submit(Seq(1, 3));
  f.batcher->StopAccepting();
  auto refused = f.batcher->Submit(Seq(2, 1), {}, f.streams.For(2));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  f.streams.WaitDone(1);  // draining does not wait for the delay
  EXPECT_TRUE(f.streams.status(1).ok());
  EXPECT_EQ(f.streams.outputs(1), Reference(Seq(1, 3)));
  f.batcher.reset();
  EXPECT_EQ(f.streams.done_calls(2), 0);
}

// A model whose first Step fails in the given way and whose later steps finish every sequence.
class FailingFirstStepModel : public StepModel<ToySeq, uint64_t> {
 public:
  enum class Failure { kWrongCount, kThrow };
  explicit FailingFirstStepModel(Failure failure, ToyLog* log) : failure_(failure), log_(log) {}
  absl::Status Join(TicketId id, ToySeq& seq) override {
    keys_[id] = seq.key;
    absl::MutexLock lock(&log_->mu);
    log_->joined.push_back(seq.key);
    return absl::OkStatus();
  }
  std::vector<StepResult<uint64_t>> Step(absl::Span<const TicketId> active) override {
    if (steps_++ == 0) {
      if (failure_ == Failure::kThrow) throw std::runtime_error("boom");
      return std::vector<StepResult<uint64_t>>(1);
    }
    std::vector<StepResult<uint64_t>> out(active.size());
    for (auto& r : out) r.finished = true;
    return out;
  }
  void Leave(TicketId id) override {
    absl::MutexLock lock(&log_->mu);
    log_->left.push_back(keys_.at(id));
  }

 private:
  const Failure failure_;
  ToyLog* log_;
  std::map<TicketId, int> keys_;
  int steps_ = 0;
};

TEST(ContinuousBatcherTest, StepFailuresEndThatStepsSequencesWithInternalAndWorkerSurvives) {
  for (auto failure : {FailingFirstStepModel::Failure::kWrongCount,
                       FailingFirstStepModel::Failure::kThrow}) {
    FakeClock clock;
    ToyLog log;
    std::vector<std::unique_ptr<StepModel<ToySeq, uint64_t>>> models;
    models.push_back(std::make_unique<FailingFirstStepModel>(failure, &log));
    auto b = Batcher::Create(Options(2, /*delay_us=*/1000000), std::move(models), &clock);
    ASSERT_TRUE(b.ok()) << b.status();
    Streams streams;
    ASSERT_TRUE((*b)->Submit(Seq(1, 1), {}, streams.For(1)).ok());
    ASSERT_TRUE((*b)->Submit(Seq(2, 1), {}, streams.For(2)).ok());  // a full batch: no delay
    streams.WaitDone(1);
    streams.WaitDone(2);
    for (int k : {1, 2}) {
      EXPECT_EQ(streams.status(k).code(), absl::StatusCode::kInternal) << k;
      EXPECT_THAT(streams.status(k).message(),
                  HasSubstr(failure == FailingFirstStepModel::Failure::kThrow
                                ? "threw: boom"
                                : "returned 1 step results for 2 sequences"));
    }
    ASSERT_TRUE((*b)->Submit(Seq(3, 1), {}, streams.For(3)).ok());
    clock.Advance(absl::Seconds(1));  // a lone sequence waits for the delay
    streams.WaitDone(3);
    EXPECT_TRUE(streams.status(3).ok()) << streams.status(3);
    b->reset();
    EXPECT_THAT(log.left, ElementsAre(1, 2, 3));
  }
}

}  // namespace
}  // namespace vox
