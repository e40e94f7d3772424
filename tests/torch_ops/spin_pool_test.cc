#include "engines/torch/ops/spin_pool.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vox {
namespace {

// Runs SpinParallelFor and returns how many times each index of [0, n) was visited.
std::vector<int> Visits(int64_t n, int64_t min_part, int threads) {
  std::vector<std::atomic<int>> hits(n);
  SpinParallelFor(n, min_part, threads, [&](int64_t begin, int64_t end) {
    EXPECT_LE(0, begin);
    EXPECT_LE(begin, end);
    EXPECT_LE(end, n);
    for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
  });
  std::vector<int> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = hits[i].load();
  return out;
}

TEST(SpinParallelFor, VisitsEveryIndexExactlyOnce) {
  for (int threads : {0, 1, 2, 3, 8}) {
    for (int64_t n : {0, 1, 2, 5, 63, 64, 1000, 4097}) {
      for (int64_t min_part : {0, 1, 7, 100, 5000}) {
        const std::vector<int> visits = Visits(n, min_part, threads);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(visits[i], 1) << "n " << n << " min_part " << min_part << " threads "
                                  << threads << " index " << i;
        }
      }
    }
  }
}

TEST(SpinParallelFor, SplitsIntoPartsOfAtLeastMinPartOnOtherThreads) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  std::vector<std::pair<int64_t, int64_t>> parts;
  SpinParallelFor(100, 30, 8, [&](int64_t begin, int64_t end) {
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
    parts.emplace_back(begin, end);
  });
  ASSERT_EQ(parts.size(), 3u);  // 100 / 30: three parts, not eight
  for (const auto& [begin, end] : parts) EXPECT_GE(end - begin, 30);
  EXPECT_EQ(ids.size(), 3u);  // nobody else uses the helpers: each part ran on its own thread
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 1u);
  parts.clear();
  SpinParallelFor(59, 30, 8, [&](int64_t begin, int64_t end) { parts.emplace_back(begin, end); });
  EXPECT_EQ(parts.size(), 1u);  // too small to split
}

// Helpers that have gone to sleep (no polling) are woken for every job: nothing is lost between
// a helper deciding to sleep and a caller posting.
TEST(SpinParallelFor, SleepingHelpersWake) {
  SetSpinPoolOptions({.poll_us = 0});
  for (int round = 0; round < 200; ++round) {
    const std::vector<int> visits = Visits(64, 1, 4);
    for (int v : visits) ASSERT_EQ(v, 1) << "round " << round;
    if (round % 20 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  SetSpinPoolOptions({});
}

// Callers on several threads share the helpers; a caller that finds one busy runs its part.
TEST(SpinParallelFor, ConcurrentCallersEachGetTheirWholeRange) {
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 300; ++round) {
        const int64_t n = 50 + 13 * c + round % 7;
        std::atomic<int64_t> total{0};
        SpinParallelFor(n, 4, 3, [&](int64_t begin, int64_t end) {
          int64_t s = 0;
          for (int64_t i = begin; i < end; ++i) s += i + 1;
          total.fetch_add(s);
        });
        if (total.load() != n * (n + 1) / 2) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace vox
