#ifndef VOX_SERVER_WORK_QUEUE_H_
#define VOX_SERVER_WORK_QUEUE_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engines/core/clock.h"

namespace vox {

// One request's work for an engine. Exactly one of `run` / `reject` is called, once, on the
// queue's worker thread (the thread that owns the engine), unless Submit() refused the job.
struct WorkItem {
  // Does the work (calls the engine) and completes the RPC.
  std::function<void()> run;
  // Completes the RPC with `status` when the job never runs: its deadline passed while it
  // waited (DEADLINE_EXCEEDED).
  std::function<void(const absl::Status& status)> reject;
  absl::Time deadline = absl::InfiniteFuture();
  int priority = 0;  // higher first; equal priorities are FIFO (used by schedulers that batch)
  absl::Time enqueued;  // set by Submit()
};

// Where service reactors hand work to an engine's owner thread. This is the seam the
// scheduler (server/scheduler, DynamicBatcher) replaces: services only Submit(), and never
// block. Implementations are thread-safe.
class WorkQueue {
 public:
  virtual ~WorkQueue() = default;

  // Never blocks. OK: the job will run or be rejected later. RESOURCE_EXHAUSTED: the queue is
  // full. UNAVAILABLE: the queue is shutting down. On error neither callback is called.
  virtual absl::Status Submit(WorkItem item) = 0;

  // Stops accepting, lets the queued and running jobs finish, and joins the worker.
  // Idempotent. Callers bound how long jobs take (their StopChecks see cancellation).
  virtual void Shutdown() = 0;

  // Jobs waiting (not counting the one running). For metrics and tests.
  virtual size_t depth() const = 0;
};

// A FIFO of at most `capacity` waiting jobs served by one worker thread. Costs one thread.
class BoundedWorkQueue : public WorkQueue {
 public:
  // `name` appears in messages ("queue of engine 'nllb-tiny' is full"). `clock` decides when a
  // deadline has passed; not owned, must outlive the queue.
  BoundedWorkQueue(std::string name, size_t capacity, Clock* clock = Clock::Real());
  ~BoundedWorkQueue() override;  // Shutdown()

  absl::Status Submit(WorkItem item) override;
  void Shutdown() override;
  size_t depth() const override;

  // Jobs run so far plus jobs rejected (tests wait on this instead of sleeping).
  size_t completed() const;

 private:
  void Loop();

  const std::string name_;
  const size_t capacity_;
  Clock* const clock_;
  mutable absl::Mutex mu_;
  std::deque<WorkItem> items_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  size_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread worker_;
};

}  // namespace vox

#endif  // VOX_SERVER_WORK_QUEUE_H_
