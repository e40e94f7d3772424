#ifndef VOX_SERVER_SPEECH_TRANSLATE_SESSION_H_
#define VOX_SERVER_SPEECH_TRANSLATE_SESSION_H_

// The reactor behind SpeechTranslationServiceImpl (one per call); only the service creates it.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engines/audio/audio_stream_encoder.h"
#include "engines/text/live_text_segmenter.h"
#include "server/idle_streams.h"
#include "server/model_registry.h"
#include "server/outbound_stream.h"
#include "server/speech_service.h"
#include "server/speech_translation_service.h"
#include "server/translation_service.h"
#include "vox/v1/speech_translation.grpc.pb.h"

namespace vox {

// One session. Lives until OnDone. Every sequence it submitted holds `this` in its callbacks; the
// outbound stream is told to finish only once none is queued or running, and finishes after its
// last write, so OnDone (delete) happens after all of them.
//
// Threads: reactions (gRPC), the translation scheduler's worker (translation callbacks), the speech
// scheduler's worker (speech callbacks), and the service's write pool (the stream's write path:
// encoding, StartWrite, finish). Session state is guarded by mu_; the encoder belongs to the write
// path. Lock order: mu_, then the stream's, then a scheduler's (Submit/Cancel/Pause/Resume are
// called under mu_; schedulers never hold their lock while calling back).
class SpeechTranslateReactor
    : public grpc::ServerBidiReactor<v1::SpeechTranslateRequest, v1::SpeechTranslateResponse>,
      public IdleStreams::Stream {
 public:
  SpeechTranslateReactor(SpeechTranslationServiceImpl* service,
                         grpc::CallbackServerContext* context)
      : service_(service),
        context_(context),
        stream_(Watermarks(service->limits_), service->write_pool_.AsExecutor(),
                {[this](const v1::SpeechTranslateResponse* m) { StartWrite(m); },
                 [this](absl::Status s) { DoFinish(std::move(s)); }}) {}

  void Start();

  void OnReadDone(bool ok) override;

  void OnWriteDone(bool ok) override;

  void OnCancel() override;

  void OnDone() override;

  // The drain began (BeginDrain, under the service's sessions_mu_, which OnDone also takes, so
  // the session is alive here): a session without a config ends at once (UNAVAILABLE), one with
  // nothing left to answer too; the others end once their admitted segments are answered.
  void Drain();

  // Idle: waiting for the client's next message with no segment open and nothing left to
  // write. A session idle since before `cutoff` is closed (CloseLocked) with DEADLINE_EXCEEDED.
  void EndIfIdleSince(absl::Time cutoff) override;

 private:
  enum class Phase {
    kConfig,   // waiting for the config message
    kRunning,  // configured: segments come in and are answered in order
    kEnded,    // the end of the stream is queued (half-closed, or the drain ended it)
    kFailed,   // cancelled, failed or the client went away: ends with error_
  };
  enum class Reading { kIdle, kInFlight, kClosed };
  // Why the call stopped from the client's side; kCancelled wins over kClientGone.
  enum class Stop { kNone, kClientGone, kCancelled };

  struct Segment {
    uint64_t id = 0;
    std::string text;
    absl::Time received;
    // Translation: one sequence per piece (the whole text, or its sentences when too long).
    std::vector<TicketId> tickets;
    std::vector<std::string> outputs;
    int translating = 0;  // translation sequences not yet ended
    absl::Time translate_start = absl::InfiniteFuture();
    absl::Time translate_end;
    bool translated = false;
    std::string translation;
    // Speech: one sequence per piece, in order, one at a time.
    bool speaking = false;  // its translation message is queued
    std::vector<std::string> speech_pieces;
    size_t next_piece = 0;
    absl::Time synth_start;
    absl::Time first_audio = absl::InfiniteFuture();
    int64_t engine_samples = 0;
  };

  // The outbound queue holds at most max_pending_messages (>= 2): at one below that the speech
  // sequence is paused and no segment starts, so that the two messages a finishing segment
  // adds (the encoder's segment tail and segment_end) still fit.
  static OutboundStream<v1::SpeechTranslateResponse>::Options Watermarks(
      const SpeechTranslationServiceImpl::Limits& limits) {
    const size_t max = std::max<size_t>(limits.max_pending_messages, 2);
    OutboundStream<v1::SpeechTranslateResponse>::Options o;
    o.high_water = max - 2;  // paused while max - 1 or more are queued
    o.low_water = max - 2;
    return o;
  }

  TranslationScheduler* Translation() const { return translation_.model->scheduler.get(); }
  SpeechScheduler* Speech() const { return synthesis_.model->scheduler.get(); }

  // After every change: tells the stream to finish once the session is over and none of its
  // sequences is left, and says whether to StartRead (after unlocking).
  bool SettleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Reading side (reactor threads, under mu_).

  absl::Status ConfigureLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Submits the segment's translation (one sequence per piece) at once: translations of later
  // segments run while earlier ones are spoken.
  absl::Status AcceptSegmentLocked(const v1::TextSegment& in) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A segment message: a whole segment, or a piece of a partial one (TextSegment::partial),
  // whose completed sentences are accepted as segments with its id as they complete.
  absl::Status TakeSegmentLocked(const v1::TextSegment& in) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Accepts what is left of the partial segment (final piece or half-close); an id never
  // answered yet is answered once, even when blank.
  absl::Status EndPartialLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Scheduler callbacks.

  // OK while the session should go on (polled by whole-call engines on worker threads).
  absl::Status StopStatus(Clock* clock, absl::Time deadline);

  // Translation worker thread: one piece of `seg` ended.
  void TranslationDone(const std::shared_ptr<Segment>& seg, absl::Status status, EndReason why);

  // A sequence ended non-OK: counted as stopped when the session was already over, else its
  // status (engine failures as INTERNAL) ends the session.
  void SequenceFailedLocked(const absl::Status& status, EndReason why, const std::string& engine,
                            const char* what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Status EngineError(const absl::Status& s, const std::string& engine, const char* what);

  // Starts the next output of the session when its turn has come: the oldest open segment's
  // translation message, then its speech pieces one sequence at a time, then its segment_end;
  // after the last segment of a half-closed session, the stream's tail.
  void AdvanceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Queues the translation and decides the speech pieces. False when the session failed.
  bool StartSpeakingLocked(Segment* seg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void SubmitSpeechLocked(const std::shared_ptr<Segment>& seg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Speech worker thread: one step's audio of the segment being spoken. Only its PCM is queued;
  // the stream encodes it in the write path.
  void SpeechOutput(Segment* seg, SpeechChunk& chunk);

  // Speech worker thread (or the cancelling thread for a queued sequence): a piece ended.
  void SpeechDone(Segment* seg, absl::Status status, EndReason why);

  // The segment's audio is complete: close it in the stream, then segment_end with its timings.
  // Both are made in the write path, after the segment's audio went through the encoder.
  void FinishSegmentLocked(Segment* seg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The session takes no more segments (a quota, a limit, the idle timeout): what is left of a
  // partial segment is accepted, every segment taken is answered, then the call ends with
  // `status`. Later segments the client sends are read and dropped. The first reason stands.
  void CloseLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Counts a new segment (max_segments_per_session) and its text (the token's characters per
  // day); false when the session closed instead.
  bool AdmitSegmentLocked(const v1::TextSegment& in) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // After the last segment of a half-closed session (status OK), or of a session the drain ends
  // (UNAVAILABLE): the stream's tail (Ogg: the EOS page), then the call ends with `status` once
  // it is written.
  void EndOfStreamLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Writing side.

  // An audio message for segment `id` (none when `encoded` failed or produced nothing).
  static std::optional<v1::SpeechTranslateResponse> AudioMessage(uint64_t id,
                                                                 const absl::Status& encoded,
                                                                 EncodedAudio* out);

  // Write path: the encoder failed; the session ends INTERNAL with `message`.
  void EncodingFailed(const std::string& message);

  // One outbound message (or its producer); each counts 1 toward max_pending_messages.
  void QueueLocked(v1::SpeechTranslateResponse msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stream_.Push(std::move(msg), 1)) NoteQueueSize();
  }
  template <typename F>
  void QueueProducerLocked(F produce) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stream_.PushProducer(std::move(produce), 1)) NoteQueueSize();
  }
  void NoteQueueSize();

  // The client cancelled or went away: the session fails (unless already over) and the stream
  // drops what it has not written.
  void StopLocked(Stop cause, const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Ends the session with `status`: the stream drops what is queued but not being written, and
  // every sequence it still has is cancelled (they stop at their next step; queued ones at once).
  void FailLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The stream's finish, on the write pool: the last thing done with this call. The status is
  // the session's own record (as the stream's, except that a session which ended and was then
  // cancelled, or lost its client, before its last writes went out ends CANCELLED whatever its
  // end status: what was queued never reached the client).
  void DoFinish(absl::Status /*stream_status*/);

  SpeechTranslationServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  absl::Time start_;
  std::string request_id_;
  std::string token_;  // the caller's token name (TokenNameOf), "" without tokens
  v1::SpeechTranslateRequest request_;  // the read buffer; one read in flight at a time

  // Set by the config (under mu_), then read-only.
  v1::SpeechTranslateConfig config_;
  RoutedTranslation translation_;
  RoutedSynthesis synthesis_;
  absl::Time translation_deadline_ = absl::InfiniteFuture();  // on the translation clock
  absl::Time speech_deadline_ = absl::InfiniteFuture();       // on the speech clock

  // The write path's own (the stream's producers run one at a time), once the config set it.
  std::unique_ptr<AudioStreamEncoder> encoder_;
  int64_t samples_at_segment_start_ = 0;  // encoder_->total_samples() when the segment began

  absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kConfig;
  Reading reading_ ABSL_GUARDED_BY(mu_) = Reading::kIdle;
  bool want_read_ ABSL_GUARDED_BY(mu_) = false;
  Stop stop_ ABSL_GUARDED_BY(mu_) = Stop::kNone;
  uint64_t last_segment_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::shared_ptr<Segment>> segments_ ABSL_GUARDED_BY(mu_);  // open, in order
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;  // sequences submitted and not yet ended
  std::optional<TicketId> speech_ticket_ ABSL_GUARDED_BY(mu_);  // the piece being spoken
  absl::Status error_ ABSL_GUARDED_BY(mu_);       // kFailed: the call's status
  absl::Status end_status_ ABSL_GUARDED_BY(mu_);  // kEnded: the call's status
  std::optional<uint64_t> refused_segment_ ABSL_GUARDED_BY(mu_);  // the first one the drain refused
  std::optional<absl::Status> closing_ ABSL_GUARDED_BY(mu_);     // CloseLocked's status
  int segments_taken_ ABSL_GUARDED_BY(mu_) = 0;                  // segment ids accepted
  absl::Time last_active_ ABSL_GUARDED_BY(mu_);  // the last read or write done (idle timeout)
  // The segment arriving in pieces (TextSegment::partial), its text not yet accepted, and
  // whether any of its sentences was.
  std::optional<uint64_t> partial_id_ ABSL_GUARDED_BY(mu_);
  LiveTextSegmenter partial_text_ ABSL_GUARDED_BY(mu_){LiveTextSegmenter::Options{}};
  bool partial_answered_ ABSL_GUARDED_BY(mu_) = false;

  // Last: destroyed first; its callbacks only run while the call is alive.
  OutboundStream<v1::SpeechTranslateResponse> stream_;
};

}  // namespace vox

#endif  // VOX_SERVER_SPEECH_TRANSLATE_SESSION_H_
