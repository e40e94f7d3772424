#ifndef VOX_SERVER_SCHEDULER_SCHEDULER_OBSERVER_H_
#define VOX_SERVER_SCHEDULER_SCHEDULER_OBSERVER_H_

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vox {

// Why a scheduler ended a request without (fully) running it. Stable strings for metric labels.
enum class RejectReason {
  kQueueFull,        // RESOURCE_EXHAUSTED at submit
  kDeadlineInQueue,  // DEADLINE_EXCEEDED before it ran
  kDeadlineRunning,  // DEADLINE_EXCEEDED between decode steps
  kCancelled,        // CANCELLED (queued or between steps)
  kPausedTooLong,    // RESOURCE_EXHAUSTED: a paused stream held its slot too long
  kTooManyPaused,    // RESOURCE_EXHAUSTED: more paused streams than max_paused_slots
  kShutdown,         // UNAVAILABLE: the scheduler stopped accepting or was destroyed
  kInvalid,          // INVALID_ARGUMENT at submit (bad priority)
  kOverloaded,       // RESOURCE_EXHAUSTED at submit: the queue ahead waited past max_queue_wait
  // Add new reasons above this line.
};
// How many reasons there are (for arrays indexed by reason).
inline constexpr int kRejectReasonCount = static_cast<int>(RejectReason::kOverloaded) + 1;

// "queue_full", "deadline_in_queue", ... (the metric label value).
absl::string_view RejectReasonName(RejectReason reason);

// What a scheduler reports as it works, so the scheduler library does not depend on a metrics
// library (server/metrics implements it with Prometheus). One observer per scheduler (it knows
// the engine and stage it stands for). Implementations must be thread-safe and cheap: methods
// are called from submitting threads and worker threads, some with the scheduler's lock held, so
// they must not block and must never call back into the scheduler.
class SchedulerObserver {
 public:
  virtual ~SchedulerObserver() = default;
  // Requests waiting in the queue (not yet running), after every change.
  virtual void QueueDepth(int depth) {}
  // Sequences/requests currently running, summed over replicas, after every change.
  virtual void RunningBatch(int running) {}
  // Streams paused by their consumer while holding a slot, after every change.
  virtual void PausedStreams(int paused) {}
  // Time a request spent queued before it ran (or joined the running batch).
  virtual void QueueWait(absl::Duration wait) {}
  // One decode step: how many sequences it covered and how long it took.
  virtual void Batch(int size, absl::Duration compute) {}
  // A request ended by the scheduler itself, not by the model.
  virtual void Rejected(RejectReason reason) {}
};

}  // namespace vox

#endif  // VOX_SERVER_SCHEDULER_SCHEDULER_OBSERVER_H_
