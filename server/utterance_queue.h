#ifndef VOX_SERVER_UTTERANCE_QUEUE_H_
#define VOX_SERVER_UTTERANCE_QUEUE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/model_registry.h"

namespace vox {

// One thing to say: text for the engine, after a pause.
struct Utterance {
  SynthesisRequest request;           // validated; empty text = the pause alone
  int64_t silence_before_samples = 0;  // at the engine's sample rate
  // When its text became complete (SynthesizeStream: the piece that completed the sentence);
  // InfinitePast when there is no such moment (Synthesize).
  absl::Time completed = absl::InfinitePast();
};

// Speaks utterances in order on one speech model's scheduler, one sequence at a time, into one
// stream of PCM (Synthesize: one utterance, or one per SSML segment; SynthesizeStream: one per
// sentence). The next sequence is submitted when the previous one ends, so its queue wait and
// the engine's start are the gap between them.
//
// Callbacks run on the scheduler's worker, or on the thread calling Add/Close/Cancel, never under
// the queue's lock, one at a time: on_audio with each step's samples (silence included) in
// speaking order, on_join when each sequence joins the engine, on_first_audio when an utterance's first samples are out, on_stats after each
// sequence, and on_done exactly once, last: OK after Close() once every utterance was spoken, or
// the first failure (a sequence's status and EndReason; a Submit the scheduler refused: its
// status with kFailed), or CANCELLED (kCancelled) after Cancel(). After on_done the queue touches nothing of its
// own, so on_done may destroy it.
//
// Flow control: Pause()/Resume() apply to the sequence running now and to those that follow.
// Thread-safe. Lock order: the queue's mutex, then its flow mutex, then the scheduler's.
class UtteranceQueue {
 public:
  struct Callbacks {
    std::function<void(std::vector<float>)> on_audio;
    std::function<void(const Utterance&)> on_first_audio;  // may be empty
    std::function<void(const SynthesisStats&)> on_stats;   // may be empty
    std::function<void()> on_join;  // a sequence joined the engine (SpeechSequence::on_join)
    std::function<void(absl::Status, EndReason)> on_done;
  };

  // `model` (with its scheduler) must outlive the queue; `options` and `stop` apply to every
  // sequence (stop: see SpeechSequence::stop; may be empty; Cancel() stops them too).
  UtteranceQueue(SpeechModel* model, RequestOptions options, StopCheck stop, Callbacks callbacks);

  UtteranceQueue(const UtteranceQueue&) = delete;
  UtteranceQueue& operator=(const UtteranceQueue&) = delete;

  // Queues `u` (spoken at once when nothing is). FAILED_PRECONDITION after Close or once ended.
  absl::Status Add(Utterance u);
  // No more utterances: on_done(OK) follows the last one.
  void Close();
  // Drops what is queued and cancels the running sequence; on_done(CANCELLED) follows.
  void Cancel();

  void Pause();
  void Resume();

  // Utterances submitted to the scheduler so far.
  int spoken() const;
  // True when no utterance is queued or being spoken.
  bool idle() const;

 private:
  // Speaks `u` and, while the next is only a pause, the ones after it.
  void Start(Utterance u);
  void OnOutput(SpeechChunk chunk);
  void OnSequenceDone(absl::Status status, EndReason why);
  // Under mu_: takes the next utterance (true), or marks the queue idle, or ended when closed.
  enum class Next { kSpeak, kIdle, kDone };
  Next TakeNextLocked(Utterance* u) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetTicket(std::optional<TicketId> ticket);

  SpeechModel* const model_;
  const RequestOptions options_;
  const StopCheck stop_;
  const Callbacks callbacks_;

  mutable absl::Mutex mu_;
  std::deque<Utterance> pending_ ABSL_GUARDED_BY(mu_);
  bool speaking_ ABSL_GUARDED_BY(mu_) = false;  // an utterance is being started or spoken
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;  // on_done is due or done
  int spoken_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> cancelling_{false};  // cancelled_, for the sequences' stop checks
  // The utterance being spoken (worker thread only, between its Submit and its on_done).
  Utterance current_;
  bool current_has_audio_ = false;

  absl::Mutex flow_mu_ ABSL_ACQUIRED_AFTER(mu_);
  bool paused_ ABSL_GUARDED_BY(flow_mu_) = false;
  std::optional<TicketId> ticket_ ABSL_GUARDED_BY(flow_mu_);
};

}  // namespace vox

#endif  // VOX_SERVER_UTTERANCE_QUEUE_H_
