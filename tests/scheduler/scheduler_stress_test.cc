// Many threads submitting, cancelling, pausing and resuming at once (real clock, bounded counts,
// no sleeps): every accepted request completes exactly once, every rejected one never does, and
// every completed sequence's outputs are its reference outputs (or a prefix when it was cut).
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engines/core/clock.h"
#include "gtest/gtest.h"
#include "server/scheduler/continuous_batcher.h"
#include "tests/scheduler/toy_step_model.h"

namespace vox {
namespace {

using testing_toy::Reference;
using testing_toy::ToyLog;
using testing_toy::ToyModel;
using testing_toy::ToySeq;

constexpr int kThreads = 8;
constexpr int kPerThread = 300;

TEST(SchedulerStressTest, ContinuousBatcherEndsEverySequenceExactlyOnce) {
  SchedulerOptions o;
  o.name = "stress-decoder";
  o.max_batch_size = 6;
  o.max_queue_size = 24;
  o.replicas = 2;
  o.max_paused_slots = 1;
  ToyLog log0, log1;
  std::vector<std::unique_ptr<StepModel<ToySeq, uint64_t>>> models;
  models.push_back(std::make_unique<ToyModel>(&log0));
  models.push_back(std::make_unique<ToyModel>(&log1));
  using B = ContinuousBatcher<ToySeq, uint64_t>;
  auto batcher = B::Create(o, std::move(models), Clock::Real());
  ASSERT_TRUE(batcher.ok());

  const int total = kThreads * kPerThread;
  struct Record {
    absl::Mutex mu;
    std::vector<uint64_t> outputs;
    int done_calls = 0;
    absl::Status status;
    bool accepted = false;
  };
  std::vector<Record> records(total);
  std::atomic<int> rejected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int key = t * kPerThread + i;
        ToySeq seq{static_cast<uint64_t>(key) * 31u, 1 + key % 9, key};
        B::Callbacks cb;
        cb.on_output = [&, key](uint64_t v) {
          absl::MutexLock lock(&records[key].mu);
          records[key].outputs.push_back(v);
        };
        cb.on_done = [&, key](absl::Status s, EndReason) {
          absl::MutexLock lock(&records[key].mu);
          ++records[key].done_calls;
          records[key].status = s;
        };
        RequestOptions ro;
        ro.priority = key % 2 == 0 ? kPriorityHigh : kPriorityLow;
        auto id = (*batcher)->Submit(seq, ro, cb);
        if (!id.ok()) {
          EXPECT_EQ(id.status().code(), absl::StatusCode::kResourceExhausted);
          rejected.fetch_add(1);
          continue;
        }
        {
          absl::MutexLock lock(&records[key].mu);
          records[key].accepted = true;
        }
        if (key % 11 == 0) (*batcher)->Cancel(*id);
        if (key % 5 == 0) {
          (*batcher)->Pause(*id);
          (*batcher)->Resume(*id);
        }
        if (key % 13 == 0) (*batcher)->Pause(*id);  // may end as "too many paused"
      }
    });
  }
  for (auto& t : threads) t.join();
  // Paused-forever sequences end when the bound is exceeded or, for the last one, at
  // destruction: destroy the batcher to end them all.
  batcher->reset();
  int completed = 0;
  for (int k = 0; k < total; ++k) {
    Record& r = records[k];
    absl::MutexLock lock(&r.mu);
    EXPECT_EQ(r.done_calls, r.accepted ? 1 : 0) << "sequence " << k;
    if (!r.accepted) continue;
    ++completed;
    const std::vector<uint64_t> ref = Reference(ToySeq{static_cast<uint64_t>(k) * 31u,
                                                       1 + k % 9, k});
    if (r.status.ok()) {
      EXPECT_EQ(r.outputs, ref) << "sequence " << k;
    } else {
      ASSERT_LE(r.outputs.size(), ref.size());
      EXPECT_TRUE(std::equal(r.outputs.begin(), r.outputs.end(), ref.begin()))
          << "sequence " << k;
      const absl::StatusCode c = r.status.code();
      EXPECT_TRUE(c == absl::StatusCode::kCancelled || c == absl::StatusCode::kUnavailable ||
                  c == absl::StatusCode::kResourceExhausted)
          << r.status;
    }
  }
  EXPECT_EQ(completed + rejected.load(), total);
  EXPECT_GT(completed, 0);
  // Every sequence that joined a replica left it.
  for (ToyLog* log : {&log0, &log1}) {
    absl::MutexLock lock(&log->mu);
    std::vector<int> joined = log->joined, left = log->left;
    std::sort(joined.begin(), joined.end());
    std::sort(left.begin(), left.end());
    EXPECT_EQ(joined, left);
  }
}

}  // namespace
}  // namespace vox
