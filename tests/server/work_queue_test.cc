#include "server/work_queue.h"

#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "engines/core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::HasSubstr;

// A job that blocks the worker until `gate` is notified, and says when it started.
WorkItem Blocker(absl::Notification* started, absl::Notification* gate) {
  WorkItem item;
  item.run = [started, gate] {
    started->Notify();
    gate->WaitForNotification();
  };
  return item;
}

TEST(BoundedWorkQueueTest, RunsJobsInOrderOnOneWorkerThread) {
  BoundedWorkQueue queue("engine-a", 8);
  absl::Mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  absl::Notification last;
  for (int i = 0; i < 5; ++i) {
    WorkItem item;
    item.run = [&, i] {
      absl::MutexLock lock(&mu);
      order.push_back(i);
      threads.push_back(std::this_thread::get_id());
      if (i == 4) last.Notify();
    };
    ASSERT_TRUE(queue.Submit(std::move(item)).ok());
  }
  last.WaitForNotification();
  absl::MutexLock lock(&mu);
  EXPECT_THAT(order, ::testing::ElementsAre(0, 1, 2, 3, 4));
  for (const auto& t : threads) {
    EXPECT_EQ(t, threads[0]);
    EXPECT_NE(t, std::this_thread::get_id());
  }
}

TEST(BoundedWorkQueueTest, FullQueueIsResourceExhaustedAtOnce) {
  BoundedWorkQueue queue("engine-a", 2);
  absl::Notification started, gate;
  ASSERT_TRUE(queue.Submit(Blocker(&started, &gate)).ok());
  started.WaitForNotification();  // the worker holds job 1; the queue is empty again
  int ran = 0;
  for (int i = 0; i < 2; ++i) {
    WorkItem item;
    item.run = [&ran] { ++ran; };
    ASSERT_TRUE(queue.Submit(std::move(item)).ok());
  }
  EXPECT_EQ(queue.depth(), 2u);
  bool rejected_called = false;
  WorkItem extra;
  extra.run = [&ran] { ran += 100; };
  extra.reject = [&](const absl::Status&) { rejected_called = true; };
  absl::Status s = queue.Submit(std::move(extra));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("engine-a"));
  EXPECT_THAT(s.message(), HasSubstr("2 requests waiting"));
  gate.Notify();
  queue.Shutdown();
  EXPECT_EQ(ran, 2);  // the refused job never ran, nor was it rejected later
  EXPECT_FALSE(rejected_called);
}

TEST(BoundedWorkQueueTest, JobWhoseDeadlinePassedInTheQueueIsRejectedNotRun) {
  FakeClock clock;
  BoundedWorkQueue queue("engine-a", 4, &clock);
  absl::Notification started, gate;
  ASSERT_TRUE(queue.Submit(Blocker(&started, &gate)).ok());
  started.WaitForNotification();

  bool ran_late = false, ran_ok = false;
  absl::Status late_status;
  WorkItem late;
  late.deadline = clock.Now() + absl::Seconds(1);
  late.run = [&] { ran_late = true; };
  late.reject = [&](const absl::Status& s) { late_status = s; };
  ASSERT_TRUE(queue.Submit(std::move(late)).ok());
  WorkItem patient;
  patient.deadline = clock.Now() + absl::Seconds(10);
  patient.run = [&] { ran_ok = true; };
  ASSERT_TRUE(queue.Submit(std::move(patient)).ok());

  clock.Advance(absl::Seconds(2));
  gate.Notify();
  queue.Shutdown();
  EXPECT_FALSE(ran_late);
  EXPECT_EQ(late_status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(late_status.message(), HasSubstr("engine-a"));
  EXPECT_TRUE(ran_ok);
  EXPECT_EQ(queue.completed(), 3u);
}

TEST(BoundedWorkQueueTest, ShutdownFinishesQueuedJobsThenRefusesNewOnes) {
  BoundedWorkQueue queue("engine-a", 4);
  absl::Notification started, gate;
  ASSERT_TRUE(queue.Submit(Blocker(&started, &gate)).ok());
  started.WaitForNotification();
  bool queued_ran = false;
  WorkItem queued;
  queued.run = [&] { queued_ran = true; };
  ASSERT_TRUE(queue.Submit(std::move(queued)).ok());

  std::thread stopper([&] { queue.Shutdown(); });
  // Shutdown is waiting for the running job; new work is refused meanwhile.
  // Until Shutdown flags the queue, submissions are queued (or refused as full); after, they
  // are UNAVAILABLE. Spin until then.
  absl::Status s;
  while (s.code() != absl::StatusCode::kUnavailable) {
    WorkItem item;
    item.run = [] {};
    s = queue.Submit(std::move(item));
    ASSERT_TRUE(s.ok() || s.code() == absl::StatusCode::kResourceExhausted ||
                s.code() == absl::StatusCode::kUnavailable)
        << s;
  }
  EXPECT_THAT(s.message(), HasSubstr("shutting down"));
  gate.Notify();
  stopper.join();
  EXPECT_TRUE(queued_ran);
  EXPECT_EQ(queue.depth(), 0u);
}

}  // namespace
}  // namespace vox
