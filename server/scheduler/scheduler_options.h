#ifndef VOX_SERVER_SCHEDULER_SCHEDULER_OPTIONS_H_
#define VOX_SERVER_SCHEDULER_SCHEDULER_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace vox {

// Priority levels used by voxd (vox.v1.Priority maps onto them). A scheduler has
// `priority_levels` levels numbered 0 (lowest) .. priority_levels-1 (highest); a waiting request
// of a higher level is always taken before any of a lower level.
inline constexpr int kPriorityLow = 0;
inline constexpr int kPriorityNormal = 1;
inline constexpr int kPriorityHigh = 2;

// Settings of one scheduler (one per engine). Plain data; copyable.
struct SchedulerOptions {
  std::string name = "engine";     // engine name, used in status messages
  int max_batch_size = 8;          // sequences per decode step per replica, >= 1
  int64_t max_queue_delay_us = 0;  // how long the oldest waiting request may wait for a fuller
                                   // batch while the worker is idle; 0 = run at once
  int max_queue_size = 64;         // waiting requests (all levels); full -> RESOURCE_EXHAUSTED
  // Admission by waiting time. A new request is refused at once (RESOURCE_EXHAUSTED, reason
  // "overloaded") while the oldest request it would wait behind (same or higher priority) has
  // already waited longer than this, so that under overload the admitted requests keep a bounded
  // wait instead of filling max_queue_size. InfiniteDuration() = off.
  absl::Duration max_queue_wait = absl::InfiniteDuration();
  int priority_levels = 3;         // >= 2
  // Applied to requests without an earlier deadline of their own; InfiniteDuration() = none.
  absl::Duration default_deadline = absl::InfiniteDuration();
  int replicas = 1;                // worker threads, one per model instance, >= 1
  // Slots that paused streams may hold per replica (0 = pausing ends the stream at the next step
  // boundary), and how long one stream may stay paused.
  int max_paused_slots = 2;
  absl::Duration max_pause = absl::Seconds(30);
  // A paused sequence counts toward max_paused_slots only once it has been paused this long, so
  // the short pauses of a stream whose writes are catching up (normal back-pressure) never end
  // anyone; a reader that stays behind does. 0 = every paused one counts.
  absl::Duration paused_slot_grace = absl::ZeroDuration();
};

// INVALID_ARGUMENT naming the field, its value and the allowed range.
absl::Status ValidateSchedulerOptions(const SchedulerOptions& options);

// Per-request settings.
struct RequestOptions {
  int priority = kPriorityNormal;  // 0 .. priority_levels-1; higher is served first
  // Absolute deadline; the earlier of this and submit time + default_deadline applies.
  absl::Time deadline = absl::InfiniteFuture();
};

// Identifies a submitted request for Cancel/Pause/Resume. Never reused by one scheduler.
using TicketId = uint64_t;

}  // namespace vox

#endif  // VOX_SERVER_SCHEDULER_SCHEDULER_OPTIONS_H_
