#include "engines/torch/ops/spin_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VOX_SPIN_PAUSE() _mm_pause()
#else
#define VOX_SPIN_PAUSE() std::atomic_signal_fence(std::memory_order_seq_cst)
#endif

namespace vox {
namespace {

using Fn = std::function<void(int64_t, int64_t)>;
constexpr int kMaxHelpers = 63;

std::atomic<int64_t> g_poll_us{SpinPoolOptions{}.poll_us};

// One helper thread and its one-job mailbox. A caller claims it (busy), writes the job, posts a
// new generation; the helper runs it and publishes the generation as finished.
struct Helper {
  std::atomic<bool> busy{false};
  std::atomic<uint64_t> posted{0};
  std::atomic<uint64_t> finished{0};
  std::atomic<bool> sleeping{false};
  const Fn* fn = nullptr;  // written by the claiming caller before it posts
  int64_t begin = 0, end = 0;
  std::mutex mu;
  std::condition_variable cv;

  void Loop() {
    uint64_t seen = 0;
    for (;;) {
      const auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::microseconds(g_poll_us.load(std::memory_order_relaxed));
      while (posted.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < deadline) {
        for (int i = 0; i < 32; ++i) VOX_SPIN_PAUSE();
        std::this_thread::yield();  // lets another thread that wants this core run
      }
      if (posted.load(std::memory_order_acquire) == seen) {
        // sleeping and posted are both seq_cst: a caller that posts after our check below sees
        // sleeping and notifies under the mutex, so the wake-up is never lost.
        sleeping.store(true);
        if (posted.load() == seen) {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return posted.load() != seen; });
        }
        sleeping.store(false, std::memory_order_relaxed);
      }
      seen = posted.load(std::memory_order_acquire);
      (*fn)(begin, end);
      finished.store(seen, std::memory_order_release);
    }
  }

  void Post(const Fn* job, int64_t b, int64_t e) {
    fn = job;
    begin = b;
    end = e;
    posted.store(posted.load(std::memory_order_relaxed) + 1);
    if (sleeping.load()) {
      std::lock_guard<std::mutex> lock(mu);
      cv.notify_one();
    }
  }

  void Wait() {
    const uint64_t gen = posted.load(std::memory_order_relaxed);
    while (finished.load(std::memory_order_acquire) != gen) VOX_SPIN_PAUSE();
    busy.store(false, std::memory_order_release);
  }
};

// Helpers are made on first use and live as long as the process (their threads are detached).
std::atomic<Helper*> g_helpers[kMaxHelpers];
std::mutex g_start_mu;

Helper* Claim(int index) {
  Helper* h = g_helpers[index].load(std::memory_order_acquire);
  if (h == nullptr) {
    std::lock_guard<std::mutex> lock(g_start_mu);
    h = g_helpers[index].load(std::memory_order_acquire);
    if (h == nullptr) {
      h = new Helper;
      std::thread([h] { h->Loop(); }).detach();
      g_helpers[index].store(h, std::memory_order_release);
    }
  }
  bool expected = false;
  return h->busy.compare_exchange_strong(expected, true, std::memory_order_acquire) ? h : nullptr;
}

}  // namespace

void SpinParallelFor(int64_t n, int64_t min_part, int threads, const Fn& fn) {
  const int64_t parts = std::min<int64_t>({threads, kMaxHelpers + 1,
                                           n / std::max<int64_t>(1, min_part)});
  if (parts <= 1) {
    if (n > 0) fn(0, n);
    return;
  }
  auto bound = [&](int64_t p) { return n * p / parts; };
  Helper* claimed[kMaxHelpers];
  int64_t mine[kMaxHelpers + 1] = {0};  // parts the caller runs: its own and busy helpers'
  int mine_count = 1;
  for (int64_t p = 1; p < parts; ++p) {
    claimed[p - 1] = Claim(static_cast<int>(p - 1));
    if (claimed[p - 1] != nullptr) {
      claimed[p - 1]->Post(&fn, bound(p), bound(p + 1));
    } else {
      mine[mine_count++] = p;
    }
  }
  for (int i = 0; i < mine_count; ++i) fn(bound(mine[i]), bound(mine[i] + 1));
  for (int64_t p = 1; p < parts; ++p) {
    if (claimed[p - 1] != nullptr) claimed[p - 1]->Wait();
  }
}

void SetSpinPoolOptions(const SpinPoolOptions& options) {
  g_poll_us.store(std::max<int64_t>(0, options.poll_us), std::memory_order_relaxed);
}

}  // namespace vox
