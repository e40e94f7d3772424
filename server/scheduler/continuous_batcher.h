#ifndef VOX_SERVER_SCHEDULER_CONTINUOUS_BATCHER_H_
#define VOX_SERVER_SCHEDULER_CONTINUOUS_BATCHER_H_

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
#include "absl/types/span.h"
#include "engines/core/clock.h"
#include "server/scheduler/request_queue.h"
#include "server/scheduler/scheduler_observer.h"
#include "server/scheduler/scheduler_options.h"

namespace vox {

// What one decode step produced for one sequence.
template <typename Output>
struct StepResult {
  absl::Status status;           // non-OK: the sequence ends with this status
  std::optional<Output> output;  // handed to the sequence's on_output, if present
  bool finished = false;         // the sequence ends (OK) after this step
};

// Why a sequence ended: on_done's second argument, next to the status. Consumers branch on it
// rather than on the status text (a slow reader's stream ends RESOURCE_EXHAUSTED, as does a model
// that runs out of something).
enum class EndReason {
  kFinished,          // the model finished it (status OK)
  kFailed,            // the model's Join or Step returned an error, or threw (its status)
  kCancelled,         // Cancel() (CANCELLED)
  kDeadlineExceeded,  // its deadline passed, queued or between steps (DEADLINE_EXCEEDED)
  kPausedTooLong,     // paused longer than max_pause (RESOURCE_EXHAUSTED)
  kTooManyPaused,     // the longest-paused beyond max_paused_slots (RESOURCE_EXHAUSTED)
  kShutdown,          // the batcher was destroyed (UNAVAILABLE)
};

// "finished", "failed", ... (for logs and test messages).
inline const char* EndReasonName(EndReason reason) {
  switch (reason) {
    case EndReason::kFinished: return "finished";
    case EndReason::kFailed: return "failed";
    case EndReason::kCancelled: return "cancelled";
    case EndReason::kDeadlineExceeded: return "deadline_exceeded";
    case EndReason::kPausedTooLong: return "paused_too_long";
    case EndReason::kTooManyPaused: return "too_many_paused";
    case EndReason::kShutdown: return "shutdown";
  }
  return "unknown";
}

// The model side of a ContinuousBatcher: per-sequence state lives here (for example a KV-cache
// slot), keyed by the scheduler's TicketId. One instance per replica; only that replica's worker
// thread calls it, so implementations need not be thread-safe.
template <typename Request, typename Output>
class StepModel {
 public:
  virtual ~StepModel() = default;
  // A sequence joins the running batch (at a step boundary): take a slot, prefill. Non-OK ends
  // the sequence with that status and Leave() is not called for it.
  virtual absl::Status Join(TicketId id, Request& request) = 0;
  // One decode step over `active` (the joined, unpaused sequences, in join order). Returns
  // exactly one result per id, in the same order; another count ends all of them with INTERNAL.
  virtual std::vector<StepResult<Output>> Step(absl::Span<const TicketId> active) = 0;
  // The sequence left (finished, failed, cancelled, expired, paused too long): free its slot.
  // Called exactly once for every sequence whose Join succeeded.
  virtual void Leave(TicketId id) = 0;
};

// Continuous batching for autoregressive decoders (NLLB decoder steps, XTTS GPT steps): each
// replica's worker thread runs one Step() at a time over its active sequences; a sequence leaves
// the batch at the step it finishes, new ones join at the next step boundary (highest priority
// first), up to max_batch_size active per replica. Deadlines, cancellation and pause limits are
// checked between steps, so work stops at the next step boundary. While no sequence is active
// the worker waits up to max_queue_delay_us for a fuller first batch.
//
// A consumer that cannot keep up (a slow gRPC reader) calls Pause(): its sequence keeps its slot
// but sits out steps until Resume(). At most max_paused_slots sequences per replica may be
// paused (counting those paused for at least paused_slot_grace); beyond that the longest-paused
// one ends with RESOURCE_EXHAUSTED, as does one paused longer than max_pause.
//
// Callbacks run on the worker thread with no scheduler lock held: on_output for each step's
// output, in order, then on_done exactly once with the status and the EndReason (OK and
// kFinished when the model finished it). They must be
// quick and may call Cancel/Pause/Resume/Submit. A sequence rejected by Submit (non-OK return)
// gets no callback at all.
//
// Thread-safe: every public method may be called from any thread.
template <typename Request, typename Output>
class ContinuousBatcher {
 public:
  struct Callbacks {
    std::function<void(Output)> on_output;     // may be empty
    std::function<void(absl::Status, EndReason)> on_done;  // required
  };

  // One model per replica (models.size() == options.replicas); the batcher owns them and
  // destroys them after its workers stopped. `clock`/`observer` (may be null) are not owned.
  static absl::StatusOr<std::unique_ptr<ContinuousBatcher>> Create(
      const SchedulerOptions& options,
      std::vector<std::unique_ptr<StepModel<Request, Output>>> models, Clock* clock,
      SchedulerObserver* observer = nullptr) {
    absl::Status valid = ValidateSchedulerOptions(options);
    if (!valid.ok()) return valid;
    if (static_cast<int>(models.size()) != options.replicas) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ContinuousBatcher '", options.name, "': ", models.size(),
          " models given for replicas=", options.replicas, " (one model per replica)"));
    }
    for (const auto& m : models) {
      if (m == nullptr) return absl::InvalidArgumentError("ContinuousBatcher: null model");
    }
    if (clock == nullptr) return absl::InvalidArgumentError("ContinuousBatcher: clock is null");
    std::unique_ptr<ContinuousBatcher> batcher(
        new ContinuousBatcher(options, std::move(models), clock, observer));
    batcher->Start();
    return batcher;
  }

  // Ends every sequence (queued: UNAVAILABLE; active: UNAVAILABLE at the next step boundary,
  // after Leave) and joins the workers.
  // Blocks until running work returns; never destroy a batcher from its own callbacks or model.
  ~ContinuousBatcher() {
    {
      absl::MutexLock lock(&mu_);
      accepting_ = false;
      stopping_ = true;
      ++version_;
    }
    for (std::thread& t : workers_) t.join();
  }

  ContinuousBatcher(const ContinuousBatcher&) = delete;
  ContinuousBatcher& operator=(const ContinuousBatcher&) = delete;

  // Queues a sequence. Never blocks on the queue: RESOURCE_EXHAUSTED when full,
  // INVALID_ARGUMENT for a bad priority or an empty on_done, UNAVAILABLE after StopAccepting.
  absl::StatusOr<TicketId> Submit(Request request, const RequestOptions& request_options,
                                  Callbacks callbacks) {
    if (request_options.priority < 0 || request_options.priority >= options_.priority_levels) {
      if (observer_) observer_->Rejected(RejectReason::kInvalid);
      return absl::InvalidArgumentError(
          absl::StrCat("priority ", request_options.priority, " is out of range (allowed: 0..",
                       options_.priority_levels - 1, ")"));
    }
    if (!callbacks.on_done) {
      return absl::InvalidArgumentError("ContinuousBatcher::Submit: on_done is required");
    }
    auto seq = std::make_shared<Seq>();
    seq->request = std::move(request);
    seq->callbacks = std::move(callbacks);
    seq->priority = request_options.priority;
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
    const absl::Time now = clock_->Now();
    if (options_.max_queue_wait != absl::InfiniteDuration()) {
      const absl::Time oldest = queue_.OldestAtOrAbove(seq->priority);
      if (oldest != absl::InfiniteFuture() && now - oldest > options_.max_queue_wait) {
        if (observer_) observer_->Rejected(RejectReason::kOverloaded);
        return absl::ResourceExhaustedError(absl::StrCat(
            "'", options_.name, "' is overloaded: the oldest request ahead has waited ",
            absl::FormatDuration(now - oldest), " (max_queue_wait=",
            absl::FormatDuration(options_.max_queue_wait), "); retry with backoff"));
      }
    }
    seq->id = ++last_id_;
    seq->enqueued = now;
    seq->deadline = request_options.deadline;
    if (options_.default_deadline != absl::InfiniteDuration()) {
      seq->deadline = std::min(seq->deadline, seq->enqueued + options_.default_deadline);
    }
    live_[seq->id] = seq;
    queue_.Push(seq);
    ++version_;
    if (observer_) observer_->QueueDepth(queue_.size());
    return seq->id;
  }

  // Ends the sequence with CANCELLED: at once if queued, at the next step boundary if running.
  // Returns false once it ended (its on_done is under way or done).
  bool Cancel(TicketId id) { return Mark(id, [](Seq& s) { s.cancelled = true; }); }

  // The consumer cannot take more output: the sequence sits out steps, keeping its slot.
  // Returns false when it already ended. Pausing a paused sequence changes nothing.
  bool Pause(TicketId id) {
    return Mark(id, [this](Seq& s) {
      if (!s.paused) {
        s.paused = true;
        s.paused_since = clock_->Now();
      }
    });
  }

  // The consumer caught up: the sequence takes part in steps again.
  bool Resume(TicketId id) { return Mark(id, [](Seq& s) { s.paused = false; }); }

  // Refuses new work (UNAVAILABLE) from now on; queued and active sequences still run.
  void StopAccepting() {
    absl::MutexLock lock(&mu_);
    accepting_ = false;
    ++version_;
  }

  // Waits (on the clock) until no sequence is queued or active. False at `deadline`.
  bool WaitIdle(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    return clock_->AwaitWithDeadline(
        &mu_, absl::Condition(+[](ContinuousBatcher* b) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return b->live_.empty();
        }, this),
        deadline);
  }

  int queue_depth() {
    absl::MutexLock lock(&mu_);
    return queue_.size();
  }

  // Sequences joined and not yet left, over all replicas (paused ones included).
  int active() {
    absl::MutexLock lock(&mu_);
    return active_total_;
  }

  const SchedulerOptions& options() const { return options_; }

 private:
  struct Seq : scheduler_internal::TaskBase {
    Request request;
    Callbacks callbacks;
    bool paused = false;   // guarded by mu_
    absl::Time paused_since;
    bool joined = false;   // worker-thread only
  };
  struct Ended {
    std::shared_ptr<Seq> task;
    absl::Status status;
    std::optional<RejectReason> reason;  // set when the scheduler (not the model) ended it
  };

  static EndReason EndReasonOf(const Ended& e) {
    if (!e.reason.has_value()) return e.status.ok() ? EndReason::kFinished : EndReason::kFailed;
    switch (*e.reason) {
      case RejectReason::kCancelled: return EndReason::kCancelled;
      case RejectReason::kDeadlineInQueue:
      case RejectReason::kDeadlineRunning: return EndReason::kDeadlineExceeded;
      case RejectReason::kPausedTooLong: return EndReason::kPausedTooLong;
      case RejectReason::kTooManyPaused: return EndReason::kTooManyPaused;
      case RejectReason::kShutdown: return EndReason::kShutdown;
      default: return EndReason::kFailed;  // submit-time reasons never reach on_done
    }
  }

  ContinuousBatcher(const SchedulerOptions& options,
                    std::vector<std::unique_ptr<StepModel<Request, Output>>> models, Clock* clock,
                    SchedulerObserver* observer)
      : options_(options),
        models_(std::move(models)),
        clock_(clock),
        observer_(observer),
        queue_(options.priority_levels) {}

  void Start() {
    for (int r = 0; r < options_.replicas; ++r) {
      workers_.emplace_back([this, r] { WorkerLoop(r); });
    }
  }

  template <typename F>
  bool Mark(TicketId id, F f) {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(id);
    if (it == live_.end() || it->second->finished) return false;
    f(*it->second);
    ++version_;
    ReportPausedLocked();
    return true;
  }

  void ReportPausedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (observer_ == nullptr) return;
    int paused = 0;
    for (const auto& [id, seq] : live_) paused += seq->paused ? 1 : 0;
    observer_->PausedStreams(paused);
  }

  struct WakeCondition {
    ContinuousBatcher* self;
    uint64_t seen;
    bool Eval() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return self->version_ != seen || self->stopping_;
    }
  };

  // Under mu_: moves the active sequences that must end now (cancelled, expired, shutting down,
  // paused too long, too many paused) from `active` to `ended`.
  void CheckActiveLocked(absl::Time now, std::vector<std::shared_ptr<Seq>>* active,
                         std::vector<Ended>* ended) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<std::shared_ptr<Seq>> keep;
    std::vector<std::shared_ptr<Seq>> paused;
    for (auto& seq : *active) {
      RejectReason reason = RejectReason::kCancelled;
      absl::Status status =
          scheduler_internal::StopStatus(*seq, now, stopping_, options_, &reason, true);
      if (status.ok() && seq->paused && now - seq->paused_since >= options_.max_pause) {
        reason = RejectReason::kPausedTooLong;
        status = absl::ResourceExhaustedError(absl::StrCat(
            "stream paused too long: its reader took no output for ",
            absl::FormatDuration(now - seq->paused_since), " (max_pause=",
            absl::FormatDuration(options_.max_pause), " on '", options_.name, "')"));
      }
      if (!status.ok()) {
        ended->push_back({std::move(seq), std::move(status), reason});
        continue;
      }
      if (seq->paused && now - seq->paused_since >= options_.paused_slot_grace) {
        paused.push_back(seq);
      }
      keep.push_back(std::move(seq));
    }
    const int excess = static_cast<int>(paused.size()) - options_.max_paused_slots;
    if (excess > 0) {
      // End the longest-paused ones (ties: the earlier submitted).
      std::stable_sort(paused.begin(), paused.end(), [](const auto& a, const auto& b) {
        return a->paused_since < b->paused_since;
      });
      for (int i = 0; i < excess; ++i) {
        ended->push_back(
            {paused[i],
             absl::ResourceExhaustedError(absl::StrCat(
                 "stream paused too long: too many paused streams on '", options_.name, "' (",
                 paused.size(), " > max_paused_slots=", options_.max_paused_slots,
                 "); this one was paused longest")),
             RejectReason::kTooManyPaused});
        keep.erase(std::find(keep.begin(), keep.end(), paused[i]));
      }
    }
    *active = std::move(keep);
  }

  // When the worker must look again without any state change (InfiniteFuture: never).
  absl::Time NextWakeLocked(const std::vector<std::shared_ptr<Seq>>& active,
                            absl::Time flush_at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Time wake = std::min(flush_at, queue_.EarliestDeadline());
    for (const auto& seq : active) {
      wake = std::min(wake, seq->deadline);
      if (seq->paused) {
        wake = std::min(wake, seq->paused_since + options_.max_pause);
        if (seq->paused_since + options_.paused_slot_grace > clock_->Now()) {
          wake = std::min(wake, seq->paused_since + options_.paused_slot_grace);
        }
      }
    }
    return wake;
  }

  // No lock held: the model lets go of the ended sequences, then their consumers are told.
  void Finish(StepModel<Request, Output>& model, std::vector<Ended>& ended) {
    if (ended.empty()) return;
    {
      absl::MutexLock lock(&mu_);
      for (Ended& e : ended) e.task->finished = true;
    }
    int left = 0;
    for (Ended& e : ended) {
      if (e.task->joined) {
        model.Leave(e.task->id);
        ++left;
      }
      if (observer_ && e.reason) observer_->Rejected(*e.reason);
      const EndReason why = EndReasonOf(e);
      e.task->callbacks.on_done(std::move(e.status), why);
    }
    absl::MutexLock lock(&mu_);
    for (Ended& e : ended) live_.erase(e.task->id);
    active_total_ -= left;
    if (observer_) {
      observer_->QueueDepth(queue_.size());
      observer_->RunningBatch(active_total_);
    }
    ReportPausedLocked();
    ended.clear();
  }

  void WorkerLoop(int replica) {
    StepModel<Request, Output>& model = *models_[replica];
    const absl::Duration delay = absl::Microseconds(options_.max_queue_delay_us);
    std::vector<std::shared_ptr<Seq>> active;  // joined, in join order (this thread only)
    while (true) {
      std::vector<Ended> ended;
      std::vector<std::shared_ptr<Seq>> joiners;
      std::vector<std::shared_ptr<Seq>> runnable;
      bool exit = false;
      {
        absl::MutexLock lock(&mu_);
        while (true) {
          const absl::Time now = clock_->Now();
          queue_.Sweep(now, stopping_, options_, &ended);
          CheckActiveLocked(now, &active, &ended);
          if (!ended.empty()) break;
          if (stopping_ && active.empty() && queue_.empty()) {
            exit = true;
            break;
          }
          const int free_slots = options_.max_batch_size - static_cast<int>(active.size());
          absl::Time flush_at = absl::InfiniteFuture();
          if (free_slots > 0 && !queue_.empty()) {
            flush_at = queue_.Oldest() + delay;
            // An idle replica waits up to max_queue_delay for a fuller first batch.
            const bool wait_for_more = active.empty() && queue_.size() < free_slots &&
                                       now < flush_at && accepting_;
            if (!wait_for_more) {
              while (static_cast<int>(joiners.size()) < free_slots && !queue_.empty()) {
                joiners.push_back(queue_.Pop());
                if (observer_) observer_->QueueWait(now - joiners.back()->enqueued);
              }
              if (observer_) observer_->QueueDepth(queue_.size());
              break;
            }
          }
          for (const auto& seq : active) {
            if (!seq->paused) runnable.push_back(seq);
          }
          if (!runnable.empty()) break;
          WakeCondition wake{this, version_};
          clock_->AwaitWithDeadline(&mu_, absl::Condition(&wake, &WakeCondition::Eval),
                                    NextWakeLocked(active, flush_at));
        }
      }
      Finish(model, ended);
      if (exit) return;
      if (!joiners.empty()) {
        Join(model, joiners, &active);
        continue;  // re-check at the boundary, then step with the joiners included
      }
      if (!runnable.empty()) RunStep(model, runnable, &active);
    }
  }

  void Join(StepModel<Request, Output>& model, std::vector<std::shared_ptr<Seq>>& joiners,
            std::vector<std::shared_ptr<Seq>>* active) {
    std::vector<Ended> failed;
    int joined = 0;
    for (auto& seq : joiners) {
      absl::Status status = Guard([&] { return model.Join(seq->id, seq->request); });
      if (status.ok()) {
        seq->joined = true;
        active->push_back(seq);
        ++joined;
      } else {
        failed.push_back({seq, std::move(status), std::nullopt});
      }
    }
    {
      absl::MutexLock lock(&mu_);
      active_total_ += joined;
      if (observer_) observer_->RunningBatch(active_total_);
    }
    Finish(model, failed);
  }

  void RunStep(StepModel<Request, Output>& model, std::vector<std::shared_ptr<Seq>>& runnable,
               std::vector<std::shared_ptr<Seq>>* active) {
    std::vector<TicketId> ids;
    ids.reserve(runnable.size());
    for (const auto& seq : runnable) ids.push_back(seq->id);
    const absl::Time start = clock_->Now();
    std::vector<StepResult<Output>> results;
    absl::Status thrown = Guard([&] {
      results = model.Step(absl::MakeConstSpan(ids));
      return absl::OkStatus();
    });
    if (observer_) observer_->Batch(static_cast<int>(ids.size()), clock_->Now() - start);
    if (thrown.ok() && results.size() != ids.size()) {
      thrown = absl::InternalError(absl::StrCat("engine '", options_.name, "' returned ",
                                                results.size(), " step results for ",
                                                ids.size(), " sequences"));
    }
    std::vector<Ended> ended;
    for (size_t i = 0; i < runnable.size(); ++i) {
      auto& seq = runnable[i];
      if (!thrown.ok()) {
        ended.push_back({seq, thrown, std::nullopt});
        continue;
      }
      StepResult<Output>& r = results[i];
      if (r.output.has_value() && seq->callbacks.on_output) {
        seq->callbacks.on_output(std::move(*r.output));
      }
      if (!r.status.ok()) {
        ended.push_back({seq, std::move(r.status), std::nullopt});
      } else if (r.finished) {
        ended.push_back({seq, absl::OkStatus(), std::nullopt});
      }
    }
    for (const Ended& e : ended) active->erase(std::find(active->begin(), active->end(), e.task));
    Finish(model, ended);
  }

  // Runs f (returning absl::Status), turning an escaping exception into INTERNAL.
  template <typename F>
  absl::Status Guard(F f) {
    try {
      return f();
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("engine '", options_.name, "' threw: ", e.what()));
    }
  }

  const SchedulerOptions options_;
  std::vector<std::unique_ptr<StepModel<Request, Output>>> models_;
  Clock* const clock_;
  SchedulerObserver* const observer_;
  std::vector<std::thread> workers_;

  absl::Mutex mu_;
  scheduler_internal::RequestQueue<Seq> queue_ ABSL_GUARDED_BY(mu_);
  // Queued and active sequences, for Cancel/Pause/Resume and WaitIdle.
  absl::flat_hash_map<TicketId, std::shared_ptr<Seq>> live_ ABSL_GUARDED_BY(mu_);
  TicketId last_id_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by every change a worker waits on
  int active_total_ ABSL_GUARDED_BY(mu_) = 0;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vox

#endif  // VOX_SERVER_SCHEDULER_CONTINUOUS_BATCHER_H_
