#ifndef VOX_SERVER_THREAD_POOL_H_
#define VOX_SERVER_THREAD_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace vox {

// A fixed number of threads running posted tasks in the order they were posted (voxd runs the
// streaming calls' write paths on one: audio encoding, StartWrite, Finish). Post never blocks
// and never runs the task inside the call.
//
// Thread-safe. The destructor runs every task already posted, then joins the threads; a task
// must not destroy its pool, and nothing may post once destruction began.
class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // at least one thread
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Post(std::function<void()> task);

  // A function that posts to this pool (OutboundStream's executor).
  std::function<void(std::function<void()>)> AsExecutor() {
    return [this](std::function<void()> task) { Post(std::move(task)); };
  }

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace vox

#endif  // VOX_SERVER_THREAD_POOL_H_
