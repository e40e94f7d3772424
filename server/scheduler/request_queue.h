#ifndef VOX_SERVER_SCHEDULER_REQUEST_QUEUE_H_
#define VOX_SERVER_SCHEDULER_REQUEST_QUEUE_H_

#include <algorithm>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/scheduler/scheduler_observer.h"
#include "server/scheduler/scheduler_options.h"

namespace vox {
namespace scheduler_internal {

// What every queued item carries. Fields other than the constants are guarded by the owning
// scheduler's mutex.
struct TaskBase {
  TicketId id = 0;
  int priority = 0;
  absl::Time enqueued;
  absl::Time deadline = absl::InfiniteFuture();
  bool cancelled = false;  // Cancel() was called
  bool finished = false;   // its completion is being delivered: Cancel/Pause/Resume say false
};

// Why a task must end now (OK = it may go on), checked at `now`.
inline absl::Status StopStatus(const TaskBase& task, absl::Time now, bool shutting_down,
                               const SchedulerOptions& options, RejectReason* reason,
                               bool running) {
  if (task.cancelled) {
    *reason = RejectReason::kCancelled;
    return absl::CancelledError("request cancelled");
  }
  if (now >= task.deadline) {
    *reason = running ? RejectReason::kDeadlineRunning : RejectReason::kDeadlineInQueue;
    return absl::DeadlineExceededError(
        running ? absl::StrCat("deadline exceeded while running on '", options.name, "'")
                : absl::StrCat("deadline exceeded after waiting ",
                               absl::FormatDuration(now - task.enqueued), " in the queue of '",
                               options.name, "'"));
  }
  if (shutting_down) {
    *reason = RejectReason::kShutdown;
    return absl::UnavailableError(absl::StrCat("scheduler '", options.name, "' shut down"));
  }
  return absl::OkStatus();
}

// A bounded multi-level FIFO: one deque per priority level, each ordered by submit time.
// NOT thread-safe: the owning scheduler guards it with its mutex. Operations are O(size),
// size <= max_queue_size.
template <typename Task>
class RequestQueue {
 public:
  explicit RequestQueue(int levels) : levels_(levels) {}

  int size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void Push(std::shared_ptr<Task> task) {
    levels_[task->priority].push_back(std::move(task));
    ++size_;
  }

  // Removes the highest-priority, oldest task.
  std::shared_ptr<Task> Pop() {
    for (int level = static_cast<int>(levels_.size()) - 1; level >= 0; --level) {
      auto& q = levels_[level];
      if (!q.empty()) {
        std::shared_ptr<Task> task = std::move(q.front());
        q.pop_front();
        --size_;
        return task;
      }
    }
    return nullptr;
  }

  // Submit time of the oldest waiting task (InfiniteFuture when empty).
  absl::Time Oldest() const {
    absl::Time oldest = absl::InfiniteFuture();
    for (const auto& q : levels_) {
      if (!q.empty()) oldest = std::min(oldest, q.front()->enqueued);
    }
    return oldest;
  }

  // Submit time of the oldest waiting task of priority `level` or higher: the ones a new task
  // of that level would wait behind (InfiniteFuture when none).
  absl::Time OldestAtOrAbove(int level) const {
    absl::Time oldest = absl::InfiniteFuture();
    for (int l = std::max(level, 0); l < static_cast<int>(levels_.size()); ++l) {
      if (!levels_[l].empty()) oldest = std::min(oldest, levels_[l].front()->enqueued);
    }
    return oldest;
  }

  // Earliest deadline among waiting tasks (InfiniteFuture when none).
  absl::Time EarliestDeadline() const {
    absl::Time earliest = absl::InfiniteFuture();
    for (const auto& q : levels_) {
      for (const auto& t : q) earliest = std::min(earliest, t->deadline);
    }
    return earliest;
  }

  // Moves every task that must end (cancelled, expired, or all of them when shutting down) to
  // `ended` with its status and reason.
  template <typename Ended>
  void Sweep(absl::Time now, bool shutting_down, const SchedulerOptions& options,
             Ended* ended) {
    for (auto& q : levels_) {
      for (auto it = q.begin(); it != q.end();) {
        RejectReason reason = RejectReason::kCancelled;
        absl::Status status = StopStatus(**it, now, shutting_down, options, &reason, false);
        if (status.ok()) {
          ++it;
          continue;
        }
        ended->push_back({std::move(*it), std::move(status), reason});
        it = q.erase(it);
        --size_;
      }
    }
  }

 private:
  std::vector<std::deque<std::shared_ptr<Task>>> levels_;
  int size_ = 0;
};

}  // namespace scheduler_internal
}  // namespace vox

#endif  // VOX_SERVER_SCHEDULER_REQUEST_QUEUE_H_
