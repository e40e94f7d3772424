#include "server/utterance_queue.h"

#include <utility>

namespace vox {

UtteranceQueue::UtteranceQueue(SpeechModel* model, RequestOptions options, StopCheck stop,
                               Callbacks callbacks)
    : model_(model),
      options_(options),
      stop_(std::move(stop)),
      callbacks_(std::move(callbacks)) {}

absl::Status UtteranceQueue::Add(Utterance u) {
  {
    absl::MutexLock lock(&mu_);
    if (closed_ || ended_) {
      return absl::FailedPreconditionError("no more utterances are taken (closed or ended)");
    }
    if (speaking_) {
      pending_.push_back(std::move(u));
      return absl::OkStatus();
    }
    speaking_ = true;
  }
  Start(std::move(u));
  return absl::OkStatus();
}

void UtteranceQueue::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    if (speaking_ || ended_) return;
    ended_ = true;
  }
  callbacks_.on_done(absl::OkStatus(), EndReason::kFinished);  // last: may destroy this
}

void UtteranceQueue::Cancel() {
  SpeechScheduler* const scheduler = model_->scheduler.get();
  std::optional<TicketId> ticket;
  bool end_now = false;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_ || ended_) return;
    cancelled_ = true;
    cancelling_.store(true);
    pending_.clear();
    if (speaking_) {
      absl::MutexLock flow(&flow_mu_);
      ticket = ticket_;
    } else {
      ended_ = true;
      end_now = true;
    }
  }
  // Outside the lock: cancelling a queued sequence runs its on_done on this thread. Without a
  // ticket, Start (or OnSequenceDone) sees cancelled_ and ends the queue.
  if (ticket.has_value()) scheduler->Cancel(*ticket);
  if (end_now) {
    callbacks_.on_done(absl::CancelledError("the call was cancelled"), EndReason::kCancelled);
  }
}

void UtteranceQueue::Pause() {
  absl::MutexLock flow(&flow_mu_);
  paused_ = true;
  if (ticket_.has_value()) model_->scheduler->Pause(*ticket_);
}

void UtteranceQueue::Resume() {
  absl::MutexLock flow(&flow_mu_);
  paused_ = false;
  if (ticket_.has_value()) model_->scheduler->Resume(*ticket_);
}

int UtteranceQueue::spoken() const {
  absl::MutexLock lock(&mu_);
  return spoken_;
}

bool UtteranceQueue::idle() const {
  absl::MutexLock lock(&mu_);
  return pending_.empty() && !speaking_;
}

void UtteranceQueue::SetTicket(std::optional<TicketId> ticket) {
  absl::MutexLock flow(&flow_mu_);
  ticket_ = ticket;
  if (ticket_.has_value() && paused_) model_->scheduler->Pause(*ticket_);
}

UtteranceQueue::Next UtteranceQueue::TakeNextLocked(Utterance* u) {
  if (!pending_.empty() && !cancelled_) {
    *u = std::move(pending_.front());
    pending_.pop_front();
    return Next::kSpeak;
  }
  speaking_ = false;
  if (closed_ || cancelled_) {
    ended_ = true;
    return Next::kDone;
  }
  return Next::kIdle;
}

void UtteranceQueue::Start(Utterance u) {
  while (true) {
    if (u.silence_before_samples > 0) {
      callbacks_.on_audio(std::vector<float>(static_cast<size_t>(u.silence_before_samples), 0.0f));
    }
    absl::Status failed;
    EndReason why = EndReason::kFailed;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) {
        speaking_ = false;
        ended_ = true;
        failed = absl::CancelledError("the call was cancelled");
        why = EndReason::kCancelled;
      } else if (u.request.text.empty()) {
        // A pause alone: go on with the next.
        switch (TakeNextLocked(&u)) {
          case Next::kSpeak: continue;
          case Next::kIdle: return;
          case Next::kDone: break;
        }
      } else {
        current_ = std::move(u);
        current_has_audio_ = false;
        SpeechSequence seq;
        seq.request = current_.request;
        // Whole-request engines poll this: Cancel() stops them as the owner's stop would.
        seq.stop = [this]() -> absl::Status {
          if (cancelling_.load()) return absl::CancelledError("the call was cancelled");
          return stop_ ? stop_() : absl::OkStatus();
        };
        seq.on_join = callbacks_.on_join;
        SpeechScheduler::Callbacks callbacks;
        callbacks.on_output = [this](SpeechChunk chunk) { OnOutput(std::move(chunk)); };
        callbacks.on_done = [this](absl::Status s, EndReason w) { OnSequenceDone(std::move(s), w); };
        // Under mu_: the sequence's on_done waits until its ticket is recorded.
        absl::StatusOr<TicketId> ticket =
            model_->scheduler->Submit(std::move(seq), options_, std::move(callbacks));
        if (ticket.ok()) {
          ++spoken_;
          SetTicket(*ticket);
          return;
        }
        speaking_ = false;
        ended_ = true;
        failed = ticket.status();
      }
    }
    // Ended: OK after Close (a trailing pause), or the failure above.
    callbacks_.on_done(std::move(failed), failed.ok() ? EndReason::kFinished : why);
    return;  // on_done may have destroyed this
  }
}

void UtteranceQueue::OnOutput(SpeechChunk chunk) {
  if (chunk.stats.has_value() && callbacks_.on_stats) callbacks_.on_stats(*chunk.stats);
  if (!chunk.samples.empty() && !current_has_audio_) {
    current_has_audio_ = true;
    if (callbacks_.on_first_audio) callbacks_.on_first_audio(current_);
  }
  callbacks_.on_audio(std::move(chunk.samples));  // empty ones too (see SynthesisCall::OnAudio)
}

void UtteranceQueue::OnSequenceDone(absl::Status status, EndReason why) {
  Utterance next;
  bool speak = false;
  {
    absl::MutexLock lock(&mu_);  // after Start recorded this sequence's ticket
    SetTicket(std::nullopt);
    if (!status.ok()) {
      speaking_ = false;
      ended_ = true;
      pending_.clear();
      if (cancelled_) {  // however the engine reported it
        status = absl::CancelledError("the call was cancelled");
        why = EndReason::kCancelled;
      }
    } else {
      switch (TakeNextLocked(&next)) {
        case Next::kSpeak:
          speak = true;
          break;
        case Next::kIdle:
          return;
        case Next::kDone:
          if (cancelled_) {
            status = absl::CancelledError("the call was cancelled");
            why = EndReason::kCancelled;
          }
          break;
      }
    }
  }
  if (speak) return Start(std::move(next));
  callbacks_.on_done(std::move(status), why);  // last: may destroy this
}

}  // namespace vox
