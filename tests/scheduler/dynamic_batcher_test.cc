#include "server/scheduler/dynamic_batcher.h"

#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "engines/core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Batcher = DynamicBatcher<int, int>;

// Completed results, keyed by the request's value.
class Results {
 public:
  Batcher::Callback For(int key) {
    return [this, key](absl::StatusOr<int> r) {
      absl::MutexLock lock(&mu_);
      ++calls_[key];
      results_.emplace(key, std::move(r));
      order_.push_back(key);
    };
  }
  void WaitFor(int n) {
    std::pair<Results*, int> want(this, n);
    absl::MutexLock lock(&mu_);
    // Bounded so that a scheduler that never answers fails instead of hanging the suite.
    if (!mu_.AwaitWithTimeout(absl::Condition(
                                  +[](std::pair<Results*, int>* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                    return static_cast<int>(p->first->order_.size()) >= p->second;
                                  },
                                  &want),
                              absl::Seconds(60))) {
      ADD_FAILURE() << "only " << order_.size() << " of " << n << " requests completed";
    }
  }
  int count() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(order_.size());
  }
  absl::StatusOr<int> Get(int key) {
    absl::MutexLock lock(&mu_);
    auto it = results_.find(key);
    if (it == results_.end()) return absl::NotFoundError("no result");
    return it->second;
  }
  int calls(int key) {
    absl::MutexLock lock(&mu_);
    return calls_[key];
  }

 private:
  absl::Mutex mu_;
  std::map<int, absl::StatusOr<int>> results_;
  std::map<int, int> calls_;
  std::vector<int> order_;
};

// A toy engine: answers 10*x, records every batch it ran; can hold its first batch at a gate.
class ToyEngine {
 public:
  explicit ToyEngine(bool gate_first = false) : gate_first_(gate_first) {}
  Batcher::RunFn Fn() {
    return [this](Batcher::Batch& batch) { return Run(batch); };
  }
  std::vector<absl::StatusOr<int>> Run(Batcher::Batch& batch) {
    std::vector<int> requests;
    for (size_t i = 0; i < batch.size(); ++i) requests.push_back(batch.request(i));
    bool hold = false;
    {
      absl::MutexLock lock(&mu_);
      batches_.push_back(requests);
      replicas_.insert(batch.replica());
      hold = gate_first_ && batches_.size() == 1;
    }
    if (hold) {
      entered_.Notify();
      gate_.WaitForNotification();
    }
    std::vector<absl::StatusOr<int>> out;
    for (size_t i = 0; i < batch.size(); ++i) {
      absl::Status stop = batch.CheckStop(i);
      if (!stop.ok()) {
        out.push_back(stop);
      } else {
        out.push_back(batch.request(i) * 10);
      }
    }
    return out;
  }
  std::vector<std::vector<int>> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  std::vector<int> sizes() {
    std::vector<int> s;
    for (const auto& b : batches()) s.push_back(static_cast<int>(b.size()));
    return s;
  }
  std::vector<int> run_order() {
    std::vector<int> o;
    for (const auto& b : batches()) o.insert(o.end(), b.begin(), b.end());
    return o;
  }
  std::set<int> replicas() {
    absl::MutexLock lock(&mu_);
    return replicas_;
  }
  absl::Notification& entered() { return entered_; }
  void Release() { gate_.Notify(); }

 private:
  const bool gate_first_;
  absl::Mutex mu_;
  std::vector<std::vector<int>> batches_;
  std::set<int> replicas_;
  absl::Notification entered_;
  absl::Notification gate_;
};

SchedulerOptions Options(int max_batch, int64_t delay_us, int queue = 64) {
  SchedulerOptions o;
  o.name = "toy";
  o.max_batch_size = max_batch;
  o.max_queue_delay_us = delay_us;
  o.max_queue_size = queue;
  return o;
}

std::unique_ptr<Batcher> Make(const SchedulerOptions& o, ToyEngine& engine, Clock* clock) {
  auto b = Batcher::Create(o, engine.Fn(), clock);
  EXPECT_TRUE(b.ok()) << b.status();
  return std::move(*b);
}

TEST(DynamicBatcherTest, RejectsBadOptionsNamingFieldAndRange) {
  FakeClock clock;
  ToyEngine engine;
  SchedulerOptions o = Options(0, 0);
  auto b = Batcher::Create(o, engine.Fn(), &clock);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(b.status().message(), HasSubstr("max_batch_size=0"));
  EXPECT_THAT(b.status().message(), HasSubstr(">= 1"));
  o = Options(4, 0);
  o.priority_levels = 1;
  b = Batcher::Create(o, engine.Fn(), &clock);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("priority_levels=1"));
}

TEST(DynamicBatcherTest, FormsBatchesBySizeAndFlushesRemainderAfterDelay) {
  FakeClock clock;
  ToyEngine engine;
  auto batcher = Make(Options(4, /*delay_us=*/1000000), engine, &clock);
  Results results;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(batcher->Submit(i, {}, results.For(i)).ok());
  results.WaitFor(8);
  // The worker waits for the delay with 2 queued.
  ASSERT_TRUE(clock.WaitForBlockedWaiters(batcher->thread_count()));
  EXPECT_THAT(engine.sizes(), ElementsAre(4, 4));
  EXPECT_EQ(batcher->queue_depth(), 2);
  clock.Advance(absl::Milliseconds(999));
  ASSERT_TRUE(clock.WaitForBlockedWaiters(batcher->thread_count()));
  EXPECT_EQ(results.count(), 8);
  clock.Advance(absl::Milliseconds(1));
  results.WaitFor(10);
  EXPECT_THAT(engine.sizes(), ElementsAre(4, 4, 2));
  EXPECT_THAT(engine.run_order(), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(*results.Get(i), 10 * i);
}

TEST(DynamicBatcherTest, DelayFlushRunsPartialBatchOnlyOnceDelayPassed) {
  FakeClock clock;
  const absl::Time t0 = clock.Now();
  ToyEngine engine;
  auto batcher = Make(Options(8, /*delay_us=*/500), engine, &clock);
  Results results;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(batcher->Submit(i, {}, results.For(i)).ok());
  ASSERT_TRUE(clock.WaitForBlockedWaiters(batcher->thread_count()));
  EXPECT_EQ(clock.NextDeadline(), t0 + absl::Microseconds(500));
  EXPECT_TRUE(engine.batches().empty());
  clock.Advance(absl::Microseconds(499));
  ASSERT_TRUE(clock.WaitForBlockedWaiters(batcher->thread_count()));
  EXPECT_TRUE(engine.batches().empty());
  clock.Advance(absl::Microseconds(1));
  results.WaitFor(3);
  EXPECT_THAT(engine.sizes(), ElementsAre(3));
}

TEST(DynamicBatcherTest, ZeroDelayRunsAtOnce) {
  FakeClock clock;
  ToyEngine engine;
  auto batcher = Make(Options(8, 0), engine, &clock);
  Results results;
  ASSERT_TRUE(batcher->Submit(7, {}, results.For(7)).ok());
  results.WaitFor(1);  // no Advance needed
  EXPECT_EQ(*results.Get(7), 70);
}

TEST(DynamicBatcherTest, QueueFullIsResourceExhaustedAtOnceAndNeverCalledBack) {
  FakeClock clock;
  ToyEngine engine(/*gate_first=*/true);
  auto batcher = Make(Options(1, 0, /*queue=*/2), engine, &clock);
  Results results;
  ASSERT_TRUE(batcher->Submit(0, {}, results.For(0)).ok());
  engine.entered().WaitForNotification();  // the worker is busy with 0
  ASSERT_TRUE(batcher->Submit(1, {}, results.For(1)).ok());
  ASSERT_TRUE(batcher->Submit(2, {}, results.For(2)).ok());
  auto full = batcher->Submit(3, {}, results.For(3));
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.status().message(), HasSubstr("max_queue_size=2"));
  engine.Release();
  results.WaitFor(3);
  ASSERT_TRUE(batcher->WaitIdle(absl::InfiniteFuture()));
  EXPECT_EQ(results.calls(3), 0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*results.Get(i), 10 * i);
}

TEST(DynamicBatcherTest, DeadlinePassedInQueueIsDeadlineExceededWithoutRunning) {
  FakeClock clock;
  ToyEngine engine(/*gate_first=*/true);
  auto batcher = Make(Options(1, 0), engine, &clock);
  Results results;
  ASSERT_TRUE(batcher->Submit(0, {}, results.For(0)).ok());
  engine.entered().WaitForNotification();
  RequestOptions soon;
  soon.deadline = clock.Now() + absl::Milliseconds(10);
  ASSERT_TRUE(batcher->Submit(1, soon, results.For(1)).ok());
  ASSERT_TRUE(batcher->Submit(2, {}, results.For(2)).ok());
  clock.Advance(absl::Milliseconds(10));
  engine.Release();
  results.WaitFor(3);
  EXPECT_EQ(results.Get(1).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(engine.run_order(), ElementsAre(0, 2));
  EXPECT_EQ(*results.Get(2), 20);
}

TEST(DynamicBatcherTest, DeadlineWakesIdleWorkerWaitingForDelay) {
  FakeClock clock;
  ToyEngine engine;
  SchedulerOptions o = Options(8, /*delay_us=*/1000000);
  o.default_deadline = absl::Milliseconds(5);
  auto batcher = Make(o, engine, &clock);
  Results results;
  ASSERT_TRUE(batcher->Submit(1, {}, results.For(1)).ok());
  ASSERT_TRUE(clock.WaitForBlockedWaiters(batcher->thread_count()));
  clock.Advance(absl::Milliseconds(5));
  results.WaitFor(1);
  EXPECT_EQ(results.Get(1).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(engine.batches().empty());
}

TEST(DynamicBatcherTest, CancelQueuedCompletesCancelledWithoutRunningOrTimeMoving) {
  FakeClock clock;
  ToyEngine engine;
  auto batcher = Make(Options(8, /*delay_us=*/1000000), engine, &clock);
  Results results;
  auto id = batcher->Submit(1, {}, results.For(1));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(batcher->Submit(2, {}, results.For(2)).ok());
  ASSERT_TRUE(clock.WaitForBlockedWaiters(batcher->thread_count()));
  EXPECT_TRUE(batcher->Cancel(*id));
  results.WaitFor(1);
  EXPECT_EQ(results.Get(1).status().code(), absl::StatusCode::kCancelled);
  clock.Advance(absl::Seconds(1));
  results.WaitFor(2);
  EXPECT_THAT(engine.run_order(), ElementsAre(2));
  EXPECT_FALSE(batcher->Cancel(*id));  // already completed
}

// While the only worker is busy, a cancelled or expired queued request is ended at once and its
// queue slot is free again.
TEST(DynamicBatcherTest, CancelAndExpiryEndQueuedRequestsWhileWorkerIsBusy) {
  FakeClock clock;
  ToyEngine engine(/*gate_first=*/true);
  auto batcher = Make(Options(1, 0, /*queue=*/1), engine, &clock);
  Results results;
  ASSERT_TRUE(batcher->Submit(0, {}, results.For(0)).ok());
  engine.entered().WaitForNotification();
  auto cancelled = batcher->Submit(1, {}, results.For(1));
  ASSERT_TRUE(cancelled.ok());
  EXPECT_TRUE(batcher->Cancel(*cancelled));
  results.WaitFor(1);  // the worker is still held in run()
  EXPECT_EQ(results.Get(1).status().code(), absl::StatusCode::kCancelled);
  RequestOptions soon;
  soon.deadline = clock.Now() + absl::Milliseconds(3);
  ASSERT_TRUE(batcher->Submit(2, soon, results.For(2)).ok());  // the slot was freed
  EXPECT_EQ(batcher->Submit(3, {}, results.For(3)).status().code(),
            absl::StatusCode::kResourceExhausted);
  clock.Advance(absl::Milliseconds(3));
  results.WaitFor(2);
  EXPECT_EQ(results.Get(2).status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(batcher->Submit(4, {}, results.For(4)).ok());
  EXPECT_EQ(results.count(), 2);  // 0 is still running
  engine.Release();
  results.WaitFor(4);
  EXPECT_THAT(engine.run_order(), ElementsAre(0, 4));
  EXPECT_EQ(results.calls(3), 0);
}

TEST(DynamicBatcherTest, CancelWhileRunningTurnsCheckStopCancelled) {
  FakeClock clock;
  ToyEngine engine(/*gate_first=*/true);
  auto batcher = Make(Options(2, 0), engine, &clock);
  Results results;
  auto id = batcher->Submit(1, {}, results.For(1));
  ASSERT_TRUE(id.ok());
  engine.entered().WaitForNotification();
  EXPECT_TRUE(batcher->Cancel(*id));
  engine.Release();
  results.WaitFor(1);
  EXPECT_EQ(results.Get(1).status().code(), absl::StatusCode::kCancelled);
}

TEST(DynamicBatcherTest, HigherPriorityWaitingIsServedFirst) {
  FakeClock clock;
  ToyEngine engine(/*gate_first=*/true);
  auto batcher = Make(Options(1, 0), engine, &clock);
  Results results;
  ASSERT_TRUE(batcher->Submit(0, {}, results.For(0)).ok());
  engine.entered().WaitForNotification();
  RequestOptions low{kPriorityLow}, normal{kPriorityNormal}, high{kPriorityHigh};
  ASSERT_TRUE(batcher->Submit(1, low, results.For(1)).ok());
  ASSERT_TRUE(batcher->Submit(2, normal, results.For(2)).ok());
  ASSERT_TRUE(batcher->Submit(3, high, results.For(3)).ok());
  ASSERT_TRUE(batcher->Submit(4, low, results.For(4)).ok());
  ASSERT_TRUE(batcher->Submit(5, high, results.For(5)).ok());
  engine.Release();
  results.WaitFor(6);
  EXPECT_THAT(engine.run_order(), ElementsAre(0, 3, 5, 2, 1, 4));
}

TEST(DynamicBatcherTest, PriorityOutOfRangeIsInvalidArgumentNamingRange) {
  FakeClock clock;
  ToyEngine engine;
  auto batcher = Make(Options(1, 0), engine, &clock);
  Results results;
  auto r = batcher->Submit(1, RequestOptions{3}, results.For(1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("priority 3"));
  EXPECT_THAT(r.status().message(), HasSubstr("0..2"));
}

TEST(DynamicBatcherTest, WrongResultCountFailsWholeBatchWithInternal) {
  FakeClock clock;
  auto batcher = Batcher::Create(Options(2, 1000000), [](Batcher::Batch&) {
    return std::vector<absl::StatusOr<int>>{1};
  }, &clock);
  ASSERT_TRUE(batcher.ok());
  Results results;
  ASSERT_TRUE((*batcher)->Submit(1, {}, results.For(1)).ok());
  ASSERT_TRUE((*batcher)->Submit(2, {}, results.For(2)).ok());
  results.WaitFor(2);
  EXPECT_EQ(results.Get(1).status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(results.Get(2).status().message(), HasSubstr("1 results for a batch of 2"));
}

TEST(DynamicBatcherTest, ThrowingRunBecomesInternalAndWorkerSurvives) {
  FakeClock clock;
  int calls = 0;
  auto batcher = Batcher::Create(Options(1, 0), [&](Batcher::Batch& b) {
    if (++calls == 1) throw std::runtime_error("boom");
    return std::vector<absl::StatusOr<int>>{b.request(0)};
  }, &clock);
  ASSERT_TRUE(batcher.ok());
  Results results;
  ASSERT_TRUE((*batcher)->Submit(1, {}, results.For(1)).ok());
  results.WaitFor(1);
  ASSERT_TRUE((*batcher)->Submit(2, {}, results.For(2)).ok());
  results.WaitFor(2);
  EXPECT_EQ(results.Get(1).status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(results.Get(1).status().message(), HasSubstr("boom"));
  EXPECT_EQ(*results.Get(2), 2);
}

TEST(DynamicBatcherTest, ReplicasRunConcurrentlyEachOnItsOwnWorker) {
  FakeClock clock;
  absl::Mutex mu;
  int inside = 0;
  std::set<int> replicas;
  SchedulerOptions o = Options(1, 0);
  o.replicas = 2;
  auto batcher = Batcher::Create(o, [&](Batcher::Batch& b) {
    absl::MutexLock lock(&mu);
    ++inside;
    replicas.insert(b.replica());
    // Both replicas must be inside run() at once: with one worker this never returns.
    mu.Await(absl::Condition(+[](int* n) { return *n >= 2; }, &inside));
    return std::vector<absl::StatusOr<int>>{b.request(0)};
  }, &clock);
  ASSERT_TRUE(batcher.ok());
  Results results;
  ASSERT_TRUE((*batcher)->Submit(1, {}, results.For(1)).ok());
  ASSERT_TRUE((*batcher)->Submit(2, {}, results.For(2)).ok());
  results.WaitFor(2);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(replicas, (std::set<int>{0, 1}));
}

TEST(DynamicBatcherTest, StopAcceptingRefusesNewWorkButFinishesQueued) {
  FakeClock clock;
  ToyEngine engine;
  auto batcher = Make(Options(8, 1000000), engine, &clock);
  Results results;
  ASSERT_TRUE(batcher->Submit(1, {}, results.For(1)).ok());
  batcher->StopAccepting();
  auto refused = batcher->Submit(2, {}, results.For(2));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  results.WaitFor(1);  // draining flushes without waiting for the delay
  EXPECT_EQ(*results.Get(1), 10);
  EXPECT_EQ(results.calls(2), 0);
}

TEST(DynamicBatcherTest, DestroyFailsQueuedWithUnavailableExactlyOnce) {
  FakeClock clock;
  ToyEngine engine;
  Results results;
  {
    auto batcher = Make(Options(8, 1000000), engine, &clock);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(batcher->Submit(i, {}, results.For(i)).ok());
  }
  ASSERT_EQ(results.count(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(results.Get(i).status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(results.calls(i), 1);
  }
  EXPECT_TRUE(engine.batches().empty());
}

}  // namespace
}  // namespace vox
