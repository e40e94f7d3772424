#ifndef VOX_SERVER_SPEECH_TRANSLATION_SERVICE_H_
#define VOX_SERVER_SPEECH_TRANSLATION_SERVICE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/metrics/metrics.h"
#include "server/model_registry.h"
#include "vox/v1/speech_translation.grpc.pb.h"

namespace vox {

// Splits `text` after sentence ends (. ! ? ; … followed by whitespace or the end), keeping the
// punctuation with its sentence and dropping the whitespace between sentences. Empty pieces are
// dropped. Pure; linear in the text.
std::vector<std::string> SplitAtSentenceEnds(const std::string& text);

// vox.v1.SpeechTranslationService on the callback API: one ServerBidiReactor per session.
//
// The first message must be the config; it is checked exactly as Translate and Synthesize check
// theirs (languages, pair, voice, audio, options) and a bad or missing one ends the call with
// INVALID_ARGUMENT before any work is queued. Then the header goes out, and every segment is
// submitted to the translation engine's WorkQueue as soon as it arrives (sessions batch with
// Translate traffic). Syntheses run in segment order, one at a time per session, on the speech
// engine's WorkQueue; the synthesis of segment k overlaps the translation of k+1 (pipelining).
// The speech worker sends, per segment: translation, audio chunks (from ONE AudioStreamEncoder
// per session, EndSegment after each segment: Ogg is one continuous stream), segment_end.
//
// Flow control: each session keeps at most `max_pending_messages` outbound messages queued; the
// speech worker waits for room (a slow reader pauses its own synthesis), and gives up with
// RESOURCE_EXHAUSTED after `slow_reader_timeout`. Reading pauses while `max_open_segments`
// segments are unfinished, so a fast writer cannot queue unbounded work either.
// Cancel, deadline, client gone, or any error: every queued or running job of the session sees
// it through its StopCheck / AudioSink and ends; the call finishes once all its jobs are done.
//
// Thread-safe. `registry`, `draining` and `metrics` (may be null) are not owned and must outlive
// the service; so must the gRPC server's calls (the server is shut down before the service dies).
class SpeechTranslationServiceImpl final
    : public v1::SpeechTranslationService::CallbackService {
 public:
  struct Limits {
    size_t max_pending_messages = 64;
    absl::Duration slow_reader_timeout = absl::Seconds(30);
    size_t max_open_segments = 64;
  };

  // Test-only observation points (called on engine worker threads; must not block forever).
  // after_translation: a segment's translation is done. before_synthesis: a segment's synthesis
  // is about to start. Both get the client's segment id.
  struct Hooks {
    std::function<void(uint64_t segment_id)> after_translation;
    std::function<void(uint64_t segment_id)> before_synthesis;
  };

  SpeechTranslationServiceImpl(const ModelRegistry* registry, const std::atomic<bool>* draining,
                               Metrics* metrics, Limits limits, Hooks hooks = {});

  grpc::ServerBidiReactor<v1::SpeechTranslateRequest, v1::SpeechTranslateResponse>*
  SpeechTranslate(grpc::CallbackServerContext* context) override;

  // Sessions whose reactor still exists (freed in OnDone).
  int64_t sessions_alive() const { return sessions_alive_.load(); }
  // Translation or synthesis jobs that ended early or never started because their session was
  // over (cancelled, deadline, client gone, failed). Tests observe cancellation through it.
  int64_t jobs_stopped() const { return jobs_stopped_.load(); }
  // The most outbound messages any session has had queued at once (<= max_pending_messages).
  int64_t max_pending_seen() const { return max_pending_seen_.load(); }

 private:
  friend class SpeechTranslateReactor;
  const ModelRegistry* const registry_;
  const std::atomic<bool>* const draining_;
  Metrics* const metrics_;
  const Limits limits_;
  const Hooks hooks_;
  std::atomic<int64_t> sessions_alive_{0};
  std::atomic<int64_t> jobs_stopped_{0};
  std::atomic<int64_t> max_pending_seen_{0};
};

}  // namespace vox

#endif  // VOX_SERVER_SPEECH_TRANSLATION_SERVICE_H_
