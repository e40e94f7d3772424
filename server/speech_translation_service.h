#ifndef VOX_SERVER_SPEECH_TRANSLATION_SERVICE_H_
#define VOX_SERVER_SPEECH_TRANSLATION_SERVICE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "server/auth/admission.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/metrics/metrics.h"
#include "server/model_registry.h"
#include "server/voice_store.h"
#include "server/thread_pool.h"
#include "vox/v1/speech_translation.grpc.pb.h"

namespace vox {

class SpeechTranslateReactor;

// The sentences of `text` by Translate's splitter in `language` (an NLLB code;
// engines/text/sentence_splitter.h), each with its punctuation, without the whitespace between
// them; blank text has none. Pure.
std::vector<std::string> SplitAtSentenceEnds(const std::string& text, const std::string& language);

// vox.v1.SpeechTranslationService on the callback API: one ServerBidiReactor per session.
//
// The first message must be the config; it is checked exactly as Translate and Synthesize check
// theirs (languages, pair, voice, audio, options) and a bad or missing one ends the call with
// INVALID_ARGUMENT before any work is queued. Then the header goes out, and every segment is
// submitted to the translation model's scheduler as soon as it arrives (one sequence per text, or
// per sentence when the text is too long; sessions batch with Translate traffic). Speech runs in
// segment order, one sequence at a time per session, on the speech model's scheduler; segment
// k+1's translation runs while segment k's speech sequence is stepping (pipelining). Per segment
// the session sends: translation, audio chunks (from ONE AudioStreamEncoder per session,
// EndSegment after each segment: Ogg is one continuous stream), segment_end.
//
// Flow control: each session's outbound queue (an OutboundStream) holds at most
// `max_pending_messages` (>= 2) entries: messages, or audio waiting to be encoded into one (the
// speech worker only queues PCM; the write path, on the service's write pool, encodes it). At one
// below that, the session's speech sequence is paused (it keeps its slot and sits out steps; other
// streams on the engine go on) and no further segment starts; when writes drain it is resumed. A stream paused longer than the speech scheduler's max_pause, or the
// longest-paused one beyond max_paused_slots, ends with RESOURCE_EXHAUSTED ("the client read too
// slowly"). Reading pauses while `max_open_segments` segments are unfinished, so a fast writer
// cannot queue unbounded work either.
// Cancel, deadline, client gone, or any error: every ticket of the session is cancelled (work
// stops at the next step; whole-call engines also see it through their StopCheck); the call
// finishes once all its sequences have ended.
//
// Drain (SIGTERM): a session that opens once `admission` drains gets UNAVAILABLE. In an open
// session, the segments received before the drain are answered in full; a segment received after
// it is refused, and once every earlier segment is answered the session ends with UNAVAILABLE
// naming the first refused segment (a half-closed session with nothing refused ends OK as usual;
// one with nothing refused and not half-closed ends UNAVAILABLE saying every segment was
// answered). BeginDrain() ends at once the sessions that have nothing left to answer, and those
// that have not sent their config, so they do not hold the drain.
//
// The session's voice may be a created one (`voices`, may be null), as in Synthesize.
// Thread-safe. `registry`, `admission`, `metrics` and `voices` (both may be null) are not owned
// and must outlive the service; so must the gRPC server's calls (the server is shut down before the service dies).
class SpeechTranslationServiceImpl final
    : public v1::SpeechTranslationService::CallbackService {
 public:
  struct Limits {
    size_t max_pending_messages = 64;  // outbound entries per session (values below 2 act as 2)
    size_t max_open_segments = 64;
    int max_segments = 0;  // segment ids one session may send (0 = no limit); then it closes
    int write_threads = 2;  // the write pool: audio encoding and writes of every session
  };

  // Test-only observation points (called on scheduler worker threads; must not block forever).
  // after_translation: a segment's translation is done (translation worker). before_synthesis: a
  // segment's first speech sequence joins the running batch (speech worker). Both get the
  // client's segment id.
  struct Hooks {
    std::function<void(uint64_t segment_id)> after_translation;
    std::function<void(uint64_t segment_id)> before_synthesis;
  };

  SpeechTranslationServiceImpl(const ModelRegistry* registry, const Admission* admission,
                               Metrics* metrics, Limits limits, Hooks hooks = {},
                               const VoiceStore* voices = nullptr);

  grpc::ServerBidiReactor<v1::SpeechTranslateRequest, v1::SpeechTranslateResponse>*
  SpeechTranslate(grpc::CallbackServerContext* context) override;

  // Call after Admission::BeginDrain: ends every open session that has no segment left to answer or
  // no config yet (UNAVAILABLE); the others end once their last admitted segment is answered.
  void BeginDrain();

  // Sessions whose reactor still exists (freed in OnDone).
  int64_t sessions_alive() const { return sessions_alive_.load(); }
  // Translation or synthesis jobs that ended early or never started because their session was
  // over (cancelled, deadline, client gone, failed). Tests observe cancellation through it.
  int64_t jobs_stopped() const { return jobs_stopped_.load(); }
  // The most outbound entries any session has had queued at once (<= max_pending_messages).
  int64_t max_pending_seen() const { return max_pending_seen_.load(); }

 private:
  friend class SpeechTranslateReactor;
  const ModelRegistry* const registry_;
  const VoiceStore* const voices_;
  const Admission* const admission_;
  Metrics* const metrics_;
  const Limits limits_;
  const Hooks hooks_;
  std::atomic<int64_t> sessions_alive_{0};
  std::atomic<int64_t> jobs_stopped_{0};
  std::atomic<int64_t> max_pending_seen_{0};
  absl::Mutex sessions_mu_;
  std::set<SpeechTranslateReactor*> sessions_ ABSL_GUARDED_BY(sessions_mu_);  // for BeginDrain
  ThreadPool write_pool_;  // last: joined before the rest goes
};

}  // namespace vox

#endif  // VOX_SERVER_SPEECH_TRANSLATION_SERVICE_H_
