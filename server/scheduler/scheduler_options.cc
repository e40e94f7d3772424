#include "server/scheduler/scheduler_options.h"

#include "absl/strings/str_cat.h"
#include "server/scheduler/scheduler_observer.h"

namespace vox {

absl::Status ValidateSchedulerOptions(const SchedulerOptions& o) {
  auto bad = [&](absl::string_view field, auto value, absl::string_view allowed) {
    return absl::InvalidArgumentError(absl::StrCat("scheduler '", o.name, "': ", field, "=",
                                                   value, " is invalid (allowed: ", allowed, ")"));
  };
  if (o.max_batch_size < 1) return bad("max_batch_size", o.max_batch_size, ">= 1");
  if (o.max_queue_delay_us < 0) return bad("max_queue_delay_us", o.max_queue_delay_us, ">= 0");
  if (o.max_queue_size < 1) return bad("max_queue_size", o.max_queue_size, ">= 1");
  if (o.priority_levels < 2) return bad("priority_levels", o.priority_levels, ">= 2");
  if (o.default_deadline <= absl::ZeroDuration()) {
    return bad("default_deadline", absl::FormatDuration(o.default_deadline),
               "> 0, or infinite for none");
  }
  if (o.max_queue_wait <= absl::ZeroDuration()) {
    return bad("max_queue_wait", absl::FormatDuration(o.max_queue_wait), "> 0, or infinite for none");
  }
  if (o.replicas < 1) return bad("replicas", o.replicas, ">= 1");
  if (o.max_paused_slots < 0) return bad("max_paused_slots", o.max_paused_slots, ">= 0");
  if (o.max_pause < absl::ZeroDuration()) {
    return bad("max_pause", absl::FormatDuration(o.max_pause), ">= 0");
  }
  if (o.paused_slot_grace < absl::ZeroDuration()) {
    return bad("paused_slot_grace", absl::FormatDuration(o.paused_slot_grace), ">= 0");
  }
  return absl::OkStatus();
}

absl::string_view RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kQueueFull: return "queue_full";
    case RejectReason::kDeadlineInQueue: return "deadline_in_queue";
    case RejectReason::kDeadlineRunning: return "deadline_running";
    case RejectReason::kCancelled: return "cancelled";
    case RejectReason::kPausedTooLong: return "paused_too_long";
    case RejectReason::kTooManyPaused: return "too_many_paused";
    case RejectReason::kOverloaded: return "overloaded";
    case RejectReason::kShutdown: return "shutdown";
    case RejectReason::kInvalid: return "invalid";
  }
  return "unknown";
}

}  // namespace vox
