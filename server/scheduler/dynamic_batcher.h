#ifndef VOX_SERVER_SCHEDULER_DYNAMIC_BATCHER_H_
#define VOX_SERVER_SCHEDULER_DYNAMIC_BATCHER_H_

#include <algorithm>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engines/core/clock.h"
#include "engines/core/translation_engine.h"  // StopCheck
#include "server/scheduler/request_queue.h"
#include "server/scheduler/scheduler_observer.h"
#include "server/scheduler/scheduler_options.h"

namespace vox {

// Batches one-shot work (encoder batches, whole Translate calls, vocoder chunks) across
// requests and runs each batch on a worker thread through a caller-supplied run function, so the
// batching policy never touches model code.
//
// A batch is formed when max_batch_size requests wait, or when the oldest waiting request has
// waited max_queue_delay_us (measured on the injected Clock), whichever comes first; higher
// priority levels are taken first, FIFO within a level. Each replica has one worker thread that
// is the only caller of run() for that replica (it owns that replica's model).
//
// Every request accepted by Submit() gets its callback called exactly once, on a scheduler thread
// (a worker, or the sweeper that ends cancelled and expired queued requests at once even while
// every worker is busy, so they never hold a queue slot), with no scheduler lock held:
//   - run()'s result for it, or
//   - DEADLINE_EXCEEDED / CANCELLED when it expired or was cancelled while queued (never run),
//   - UNAVAILABLE when the batcher was destroyed before running it.
// Callbacks must be quick (hand the result to a reactor and return); a slow callback delays
// that replica's next batch.
//
// Thread-safe: Submit, Cancel, StopAccepting, WaitIdle and queue_depth may be called from any
// thread. Cost: Submit is O(1) plus a wake-up; each batch formation is O(max_queue_size).
template <typename Request, typename Response>
class DynamicBatcher {
  struct Task;

 public:
  using Callback = std::function<void(absl::StatusOr<Response>)>;

  // The requests of one batch as run() sees them. Valid only during that run() call.
  class Batch {
   public:
    size_t size() const { return tasks_.size(); }
    Request& request(size_t i) { return tasks_[i]->request; }
    int replica() const { return replica_; }
    // OK while request i should go on; CANCELLED, DEADLINE_EXCEEDED or UNAVAILABLE (shutting
    // down) once it should stop. Thread-safe; takes the scheduler's lock briefly.
    absl::Status CheckStop(size_t i) const { return owner_->CheckStop(*tasks_[i]); }
    // CheckStop(i) as an engine StopCheck (valid while this Batch is).
    StopCheck stop(size_t i) const {
      return [this, i] { return CheckStop(i); };
    }

   private:
    friend class DynamicBatcher;
    DynamicBatcher* owner_ = nullptr;
    int replica_ = 0;
    std::vector<Task*> tasks_;
  };

  // Runs one batch on a worker thread; returns one result per request, in batch order. A
  // different count fails the whole batch with INTERNAL. Must not throw.
  using RunFn = std::function<std::vector<absl::StatusOr<Response>>(Batch& batch)>;

  // `clock` and `observer` (may be null) are not owned and must outlive the batcher.
  static absl::StatusOr<std::unique_ptr<DynamicBatcher>> Create(const SchedulerOptions& options,
                                                                RunFn run, Clock* clock,
                                                                SchedulerObserver* observer =
                                                                    nullptr) {
    absl::Status valid = ValidateSchedulerOptions(options);
    if (!valid.ok()) return valid;
    if (!run) return absl::InvalidArgumentError("DynamicBatcher: run function is empty");
    if (clock == nullptr) return absl::InvalidArgumentError("DynamicBatcher: clock is null");
    std::unique_ptr<DynamicBatcher> batcher(
        new DynamicBatcher(options, std::move(run), clock, observer));
    batcher->Start();
    return batcher;
  }

  // Fails every request still queued with UNAVAILABLE, lets running batches finish (their
  // CheckStop turns UNAVAILABLE), and joins the workers and the sweeper.
  // Blocks until running work returns; never destroy a batcher from its own callbacks or model.
  ~DynamicBatcher() {
    {
      absl::MutexLock lock(&mu_);
      accepting_ = false;
      stopping_ = true;
      ++version_;
    }
    for (std::thread& t : workers_) t.join();
    if (sweeper_.joinable()) sweeper_.join();
  }

  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Queues `request`. Never blocks on the queue. On a non-OK return the callback is never
  // called: RESOURCE_EXHAUSTED (queue full), INVALID_ARGUMENT (priority out of range),
  // UNAVAILABLE (StopAccepting was called).
  absl::StatusOr<TicketId> Submit(Request request, const RequestOptions& request_options,
                                  Callback done) {
    if (request_options.priority < 0 || request_options.priority >= options_.priority_levels) {
      if (observer_) observer_->Rejected(RejectReason::kInvalid);
      return absl::InvalidArgumentError(
          absl::StrCat("priority ", request_options.priority, " is out of range (allowed: 0..",
                       options_.priority_levels - 1, ")"));
    }
    auto task = std::make_shared<Task>();
    task->request = std::move(request);
    task->done = std::move(done);
    task->priority = request_options.priority;
    absl::MutexLock lock(&mu_);
    if (!accepting_) {
      if (observer_) observer_->Rejected(RejectReason::kShutdown);
      return absl::UnavailableError(
          absl::StrCat("scheduler '", options_.name, "' is not accepting work (draining)"));
    }
    if (queue_.size() >= options_.max_queue_size) {
      if (observer_) observer_->Rejected(RejectReason::kQueueFull);
      return absl::ResourceExhaustedError(absl::StrCat("queue of '", options_.name,
                                                       "' is full (max_queue_size=",
                                                       options_.max_queue_size, ")"));
    }
    task->id = ++last_id_;
    task->enqueued = clock_->Now();
    task->deadline = request_options.deadline;
    if (options_.default_deadline != absl::InfiniteDuration()) {
      task->deadline = std::min(task->deadline, task->enqueued + options_.default_deadline);
    }
    live_[task->id] = task;
    queue_.Push(task);
    ++version_;
    if (observer_) observer_->QueueDepth(queue_.size());
    return task->id;
  }

  // Cancels a queued or running request: queued, it completes with CANCELLED without running;
  // running, its CheckStop turns CANCELLED. Returns false once its completion is under way.
  bool Cancel(TicketId id) {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(id);
    if (it == live_.end() || it->second->finished) return false;
    it->second->cancelled = true;
    ++version_;
    return true;
  }

  // Refuses new work (UNAVAILABLE) from now on; queued and running work still completes.
  void StopAccepting() {
    absl::MutexLock lock(&mu_);
    accepting_ = false;
    ++version_;
  }

  // Waits (on the clock) until nothing is queued or running. Returns false at `deadline`.
  bool WaitIdle(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    return clock_->AwaitWithDeadline(&mu_, absl::Condition(this, &DynamicBatcher::IdleLocked),
                                     deadline);
  }

  int queue_depth() {
    absl::MutexLock lock(&mu_);
    return queue_.size();
  }

  const SchedulerOptions& options() const { return options_; }

  // Threads that wait on the clock: one worker per replica plus the sweeper. When that many are
  // blocked on a FakeClock (FakeClock::WaitForBlockedWaiters), the batcher is idle until time
  // moves or a request arrives.
  int thread_count() const { return options_.replicas + 1; }

 private:
  struct Task : scheduler_internal::TaskBase {
    Request request;
    Callback done;
  };
  struct Ended {
    std::shared_ptr<Task> task;
    absl::Status status;
    std::optional<RejectReason> reason;  // set when the scheduler (not the model) ended it
  };

  DynamicBatcher(const SchedulerOptions& options, RunFn run, Clock* clock,
                 SchedulerObserver* observer)
      : options_(options),
        run_(std::move(run)),
        clock_(clock),
        observer_(observer),
        queue_(options.priority_levels) {}

  void Start() {
    for (int r = 0; r < options_.replicas; ++r) {
      workers_.emplace_back([this, r] { WorkerLoop(r); });
    }
    sweeper_ = std::thread([this] { SweepLoop(); });
  }

  // Ends cancelled and expired queued requests as soon as that happens, even while every worker
  // is inside run(). Exits at destruction (the workers end what is left with UNAVAILABLE).
  void SweepLoop() {
    while (true) {
      std::vector<Ended> ended;
      {
        absl::MutexLock lock(&mu_);
        while (true) {
          if (stopping_) return;
          queue_.Sweep(clock_->Now(), /*shutting_down=*/false, options_, &ended);
          if (!ended.empty()) break;
          WakeCondition wake{this, version_};
          clock_->AwaitWithDeadline(&mu_, absl::Condition(&wake, &WakeCondition::Eval),
                                    queue_.EarliestDeadline());
        }
      }
      Finish(ended);
    }
  }

  bool IdleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_.empty(); }

  absl::Status CheckStop(const Task& task) {
    absl::MutexLock lock(&mu_);
    RejectReason reason = RejectReason::kCancelled;
    return scheduler_internal::StopStatus(task, clock_->Now(), stopping_, options_, &reason,
                                          true);
  }

  struct WakeCondition {
    DynamicBatcher* self;
    uint64_t seen;
    bool Eval() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return self->version_ != seen || self->stopping_;
    }
  };

  // Completes `ended` (no lock held) and forgets them.
  void Finish(std::vector<Ended>& ended) {
    if (ended.empty()) return;
    {
      absl::MutexLock lock(&mu_);
      for (Ended& e : ended) e.task->finished = true;
    }
    for (Ended& e : ended) {
      if (observer_ && e.reason) observer_->Rejected(*e.reason);
      e.task->done(std::move(e.status));
    }
    absl::MutexLock lock(&mu_);
    for (Ended& e : ended) live_.erase(e.task->id);
    if (observer_) observer_->QueueDepth(queue_.size());
  }

  void WorkerLoop(int replica) {
    const absl::Duration delay = absl::Microseconds(options_.max_queue_delay_us);
    while (true) {
      std::vector<Ended> ended;
      std::vector<std::shared_ptr<Task>> batch;
      bool exit = false;
      {
        absl::MutexLock lock(&mu_);
        while (true) {
          const absl::Time now = clock_->Now();
          queue_.Sweep(now, stopping_, options_, &ended);
          if (!ended.empty()) break;
          if (stopping_ && queue_.empty()) {
            exit = true;
            break;
          }
          const int waiting = queue_.size();
          const absl::Time flush_at = queue_.Oldest() + delay;
          if (waiting > 0 &&
              (waiting >= options_.max_batch_size || now >= flush_at || !accepting_)) {
            while (static_cast<int>(batch.size()) < options_.max_batch_size && !queue_.empty()) {
              batch.push_back(queue_.Pop());
              if (observer_) observer_->QueueWait(now - batch.back()->enqueued);
            }
            running_ += static_cast<int>(batch.size());
            if (observer_) {
              observer_->QueueDepth(queue_.size());
              observer_->RunningBatch(running_);
            }
            break;
          }
          const absl::Time wake_at =
              waiting > 0 ? std::min(flush_at, queue_.EarliestDeadline()) : absl::InfiniteFuture();
          WakeCondition wake{this, version_};
          clock_->AwaitWithDeadline(&mu_, absl::Condition(&wake, &WakeCondition::Eval), wake_at);
        }
      }
      Finish(ended);
      if (!batch.empty()) RunBatch(replica, batch);
      if (exit) return;
    }
  }

  void RunBatch(int replica, std::vector<std::shared_ptr<Task>>& tasks) {
    Batch batch;
    batch.owner_ = this;
    batch.replica_ = replica;
    for (auto& t : tasks) batch.tasks_.push_back(t.get());
    const absl::Time start = clock_->Now();
    std::vector<absl::StatusOr<Response>> results;
    try {
      results = run_(batch);
    } catch (const std::exception& e) {  // run() must not throw; never let it kill the worker
      results.assign(tasks.size(), absl::InternalError(absl::StrCat(
                                       "engine '", options_.name, "' threw: ", e.what())));
    }
    if (observer_) {
      observer_->Batch(static_cast<int>(tasks.size()), clock_->Now() - start);
    }
    if (results.size() != tasks.size()) {
      absl::Status error = absl::InternalError(
          absl::StrCat("engine '", options_.name, "' returned ", results.size(),
                       " results for a batch of ", tasks.size()));
      results.assign(tasks.size(), error);
    }
    {
      absl::MutexLock lock(&mu_);
      for (auto& t : tasks) t->finished = true;
    }
    for (size_t i = 0; i < tasks.size(); ++i) tasks[i]->done(std::move(results[i]));
    absl::MutexLock lock(&mu_);
    for (auto& t : tasks) live_.erase(t->id);
    running_ -= static_cast<int>(tasks.size());
    if (observer_) observer_->RunningBatch(running_);
  }

  const SchedulerOptions options_;
  const RunFn run_;
  Clock* const clock_;
  SchedulerObserver* const observer_;
  std::vector<std::thread> workers_;
  std::thread sweeper_;

  absl::Mutex mu_;
  scheduler_internal::RequestQueue<Task> queue_ ABSL_GUARDED_BY(mu_);
  // Queued and running requests, for Cancel and WaitIdle.
  absl::flat_hash_map<TicketId, std::shared_ptr<Task>> live_ ABSL_GUARDED_BY(mu_);
  TicketId last_id_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by every change a worker waits on
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vox

#endif  // VOX_SERVER_SCHEDULER_DYNAMIC_BATCHER_H_
