#ifndef VOX_SERVER_OUTBOUND_STREAM_H_
#define VOX_SERVER_OUTBOUND_STREAM_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <variant>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace vox {

// Runs a task later on another thread, never inside the call (voxd: ThreadPool::AsExecutor).
using Executor = std::function<void(std::function<void()>)>;

// The outbound half of one streaming call (Synthesize, SpeechTranslate): a queue of messages
// with exactly one write in flight, flow control by watermarks, and exactly one finish.
//
// An entry is a message, or a producer that makes its message in the write path (audio is
// encoded there, not on the engine's worker thread). Producers run in queue order, one at a time,
// on the executor; one may return nothing (no write).
//
// Flow control: an entry's cost (bytes, or 1 per message) counts from its Push until its write
// completes. When the cost queued rises above `high_water`, `pause` runs; when it then falls to
// `low_water` or below, `resume`: once per crossing, in crossing order, with the stream's lock
// held (so they must be quick and must not call into the stream), and only while it is open.
//
// Ending: Finish(status) takes no more entries; the stream writes what is queued, then calls
// `finish` with the first final status given. Cancel(status) drops what is queued but not being
// written and takes no more entries; its status replaces an OK one given before; `finish` runs
// once Finish was called too (the owner's producers, such as scheduler sequences, have ended) and
// the write in flight completed. A failed write cancels with CANCELLED "the client went away".
//
// Thread-safe: any thread may call any method, even under its own lock, since `start_write`,
// producers and `finish` run only on the executor. Owned by the call's reactor, it must outlive
// the tasks it posts; `finish` is its last act, so `finish` may destroy it.
template <typename Message>
class OutboundStream {
 public:
  using Producer = std::function<std::optional<Message>()>;

  struct Options {
    size_t high_water = 0;  // pause when the cost queued exceeds this
    size_t low_water = 0;   // resume when it is back to this or below (<= high_water)
  };
  struct Callbacks {
    std::function<void(const Message*)> start_write;  // StartWrite; OnWriteDone must follow
    std::function<void(absl::Status)> finish;         // runs exactly once
  };

  enum class State {
    kOpen,       // taking entries
    kClosing,    // Finish given: writing what is queued, then finishing
    kCancelled,  // queue dropped, nothing more written; waiting for Finish
    kAborting,   // cancelled and Finish given: finishes once no write is in flight
    kFinished,   // `finish` ran, or is running
  };

  OutboundStream(Options options, Executor executor, Callbacks callbacks)
      : options_(options), executor_(std::move(executor)), callbacks_(std::move(callbacks)) {}

  OutboundStream(const OutboundStream&) = delete;
  OutboundStream& operator=(const OutboundStream&) = delete;

  // Where pause/resume go (for example the scheduler's Pause/Resume of the current ticket);
  // empty functions detach. If the stream is over its high-water mark, `pause` runs at once.
  void SetFlowControl(std::function<void()> pause, std::function<void()> resume) {
    absl::MutexLock lock(&mu_);
    pause_ = std::move(pause);
    resume_ = std::move(resume);
    if (state_ == State::kOpen && flow_ == Flow::kPaused && pause_) pause_();
  }

  // Queue a message, or a producer of one. False (and dropped) unless the stream is open.
  bool Push(Message message, size_t cost) { return Add(Entry{std::move(message), cost}); }
  bool PushProducer(Producer producer, size_t cost) {
    return Add(Entry{std::move(producer), cost});
  }

  // The reactor's OnWriteDone: the write in flight completed (ok = false: the call is broken).
  void OnWriteDone(bool ok) {
    absl::MutexLock lock(&mu_);
    in_flight_.reset();
    writer_ = Writer::kIdle;
    cost_ -= in_flight_cost_;
    in_flight_cost_ = 0;
    if (!ok) CancelLocked(absl::CancelledError("the client went away"));
    UpdateFlowLocked();
    ScheduleLocked();
  }

  // No more entries; finish with `status` (unless an earlier Finish or Cancel chose one) after
  // what is queued is written. Later calls are ignored.
  void Finish(absl::Status status) {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kOpen) {
      final_ = std::move(status);
      state_ = State::kClosing;
    } else if (state_ == State::kCancelled) {
      state_ = State::kAborting;
    } else {
      return;
    }
    ScheduleLocked();
  }

  // Drop what is queued and not yet being written; take no more entries. Ignored once cancelled
  // or finished.
  void Cancel(absl::Status status) {
    absl::MutexLock lock(&mu_);
    CancelLocked(std::move(status));
  }

  State state() {
    absl::MutexLock lock(&mu_);
    return state_;
  }
  // Over the high-water mark (and not yet back to the low-water mark).
  bool paused() {
    absl::MutexLock lock(&mu_);
    return flow_ == Flow::kPaused;
  }
  // Entries queued, the one being produced or written included.
  size_t size() {
    absl::MutexLock lock(&mu_);
    const bool taken = writer_ == Writer::kProducing || writer_ == Writer::kWriting;
    return queue_.size() + (taken ? 1 : 0);
  }

 private:
  struct Entry {
    std::variant<Message, Producer> body;
    size_t cost = 0;
  };
  enum class Writer {
    kIdle,       // nothing in flight, no pump posted
    kScheduled,  // a pump is posted
    kProducing,  // the pump took the front entry and is making its message
    kWriting,    // start_write called; waiting for OnWriteDone
  };
  enum class Flow { kFlowing, kPaused };

  bool Add(Entry entry) {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kOpen) return false;
    cost_ += entry.cost;
    queue_.push_back(std::move(entry));
    UpdateFlowLocked();
    ScheduleLocked();
    return true;
  }

  void CancelLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (state_ == State::kOpen) {
      final_ = std::move(status);
      state_ = State::kCancelled;
    } else if (state_ == State::kClosing) {
      if (final_->ok()) final_ = std::move(status);  // what was queued will not all be written
      state_ = State::kAborting;
    } else {
      return;
    }
    for (const Entry& e : queue_) cost_ -= e.cost;
    queue_.clear();
    UpdateFlowLocked();
    ScheduleLocked();
  }

  void UpdateFlowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool open = state_ == State::kOpen;
    if (flow_ == Flow::kFlowing && cost_ > options_.high_water) {
      flow_ = Flow::kPaused;
      if (open && pause_) pause_();
    } else if (flow_ == Flow::kPaused && cost_ <= options_.low_water) {
      flow_ = Flow::kFlowing;
      if (open && resume_) resume_();
    }
  }

  bool Writable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return state_ == State::kOpen || state_ == State::kClosing;
  }
  bool FinishDueLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return (state_ == State::kClosing && queue_.empty()) || state_ == State::kAborting;
  }

  // Posts the pump when the writer is idle and there is something to write or to finish.
  void ScheduleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writer_ != Writer::kIdle) return;
    if (!(Writable() && !queue_.empty()) && !FinishDueLocked()) return;
    writer_ = Writer::kScheduled;
    executor_([this] { Pump(); });
  }

  // On the executor, the stream's only pump: produces the next message and starts its write,
  // or finishes the call.
  void Pump() {
    while (true) {
      Entry entry;
      std::optional<absl::Status> finish_with;
      {
        absl::MutexLock lock(&mu_);
        if (Writable() && !queue_.empty()) {
          entry = std::move(queue_.front());
          queue_.pop_front();
          in_flight_cost_ = entry.cost;
          writer_ = Writer::kProducing;
        } else if (FinishDueLocked()) {
          state_ = State::kFinished;
          writer_ = Writer::kIdle;
          finish_with = final_.value_or(absl::OkStatus());
        } else {
          writer_ = Writer::kIdle;
          return;
        }
      }
      if (finish_with.has_value()) {
        // `finish` may destroy this stream (and callbacks_): call a copy, touch nothing after.
        std::function<void(absl::Status)> finish = callbacks_.finish;
        finish(std::move(*finish_with));
        return;
      }
      std::optional<Message> message;
      if (auto* ready = std::get_if<Message>(&entry.body)) {
        message = std::move(*ready);
      } else {
        message = std::get<Producer>(entry.body)();
      }
      const Message* start = nullptr;
      {
        absl::MutexLock lock(&mu_);
        if (message.has_value() && Writable()) {
          in_flight_ = std::move(message);
          writer_ = Writer::kWriting;
          start = &*in_flight_;
        } else {
          // Nothing to write (or cancelled meanwhile): its cost is released; look again.
          cost_ -= in_flight_cost_;
          in_flight_cost_ = 0;
          writer_ = Writer::kScheduled;
          UpdateFlowLocked();
        }
      }
      if (start != nullptr) {
        callbacks_.start_write(start);
        return;
      }
    }
  }

  const Options options_;
  const Executor executor_;
  const Callbacks callbacks_;

  absl::Mutex mu_;
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  size_t cost_ ABSL_GUARDED_BY(mu_) = 0;  // queued entries plus the one in flight
  size_t in_flight_cost_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<Message> in_flight_ ABSL_GUARDED_BY(mu_);  // the message being written
  Writer writer_ ABSL_GUARDED_BY(mu_) = Writer::kIdle;
  State state_ ABSL_GUARDED_BY(mu_) = State::kOpen;
  Flow flow_ ABSL_GUARDED_BY(mu_) = Flow::kFlowing;
  std::optional<absl::Status> final_ ABSL_GUARDED_BY(mu_);
  std::function<void()> pause_ ABSL_GUARDED_BY(mu_);
  std::function<void()> resume_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vox

#endif  // VOX_SERVER_OUTBOUND_STREAM_H_
