#ifndef VOX_SERVER_SPEECH_SERVICE_H_
#define VOX_SERVER_SPEECH_SERVICE_H_

#include <atomic>
#include <cstddef>

#include "server/auth/admission.h"
#include "absl/status/statusor.h"
#include "engines/audio/audio_stream_encoder.h"
#include "engines/core/speech_engine.h"
#include "server/metrics/metrics.h"
#include "server/model_registry.h"
#include "server/thread_pool.h"
#include "server/voice_store.h"
#include "vox/v1/speech.grpc.pb.h"

namespace vox {

// The vox.v1 audio header of an encoder's stream (the first message of Synthesize and
// SpeechTranslate audio).
void AudioHeaderToProto(const AudioHeaderInfo& h, v1::AudioHeader* out);
// Moves an encoded chunk's bytes and packets into `out` (Synthesize and SpeechTranslate audio).
void AudioChunkToProto(EncodedAudio* audio, v1::AudioChunk* out);

// A Synthesize request checked and routed.
struct RoutedSynthesis {
  SpeechModel* model = nullptr;
  SynthesisRequest request;
  AudioStreamConfig audio;
};

// Checks `request` against the loaded speech models and picks the engine. The voice is a
// built-in one, else a created voice of `voices` (may be null): the request then carries it
// (SynthesisRequest::cloned_voice) to the model with its voice model id (FAILED_PRECONDITION
// when none is loaded). Empty text (when
// `text_required`), unknown language or voice (listing the valid ones), bad audio config, bad
// options, and the engine's own Validate() (e.g. text too long) are INVALID_ARGUMENT. The engine
// does not check SSML text, or any text when !text_required (SynthesizeStream's config): their
// utterances are checked one by one. Never runs a model; thread-safe.
absl::StatusOr<RoutedSynthesis> RouteSynthesizeRequest(const v1::SynthesizeRequest& request,
                                                       const ModelRegistry& registry,
                                                       const VoiceStore* voices,
                                                       bool text_required = true);

// What a stream's client sees when the scheduler ended its sequence for pausing (its reader took
// no output for max_pause, or it was the longest-paused beyond max_paused_slots):
// RESOURCE_EXHAUSTED "the client read too slowly: " and the scheduler's message. Any other
// status is returned unchanged.
absl::Status SlowReaderStatus(const absl::Status& status, EndReason why);

// vox.v1.SpeechService on the callback API. Synthesize is a ServerWriteReactor, SynthesizeStream
// a ServerBidiReactor (synthesize_stream_reactor.h); both speak through a SynthesisCall
// (synthesis_call.h): utterances submitted one sequence at a time to the speech model's scheduler
// (priority from the request, deadline from the call's), audio encoded in the write path on the
// service's write pool into one stream per call, one write in flight, the sequence paused while
// more than `max_pending_bytes` are queued. A stream paused longer than the scheduler's
// max_pause, or the longest-paused one beyond max_paused_slots, ends with RESOURCE_EXHAUSTED
// ("the client read too slowly"). Client cancellation cancels the sequence: the engine stops at
// the next step.
// Thread-safe; `registry`, `admission`, `metrics` and `voices` (both may be null) must outlive
// the service.
class SpeechServiceImpl final : public v1::SpeechService::CallbackService {
 public:
  struct Limits {
    // Bytes queued before the stream is paused: audio not yet encoded counts as the float PCM
    // it is held as (4 bytes a sample at the engine's rate), encoded messages as their size.
    size_t max_pending_bytes = 4 << 20;
    int write_threads = 2;  // the write pool: audio encoding and writes of every call
    // SynthesizeStream: the longest text piece and the most text one call may send (bytes).
    size_t max_piece_bytes = 4096;
    size_t max_stream_text_bytes = 1 << 20;
  };

  SpeechServiceImpl(const ModelRegistry* registry, const Admission* admission,
                    Metrics* metrics, Limits limits, const VoiceStore* voices = nullptr);

  grpc::ServerWriteReactor<v1::SynthesizeResponse>* Synthesize(
      grpc::CallbackServerContext* context, const v1::SynthesizeRequest* request) override;

  grpc::ServerBidiReactor<v1::SynthesizeStreamRequest, v1::SynthesizeResponse>* SynthesizeStream(
      grpc::CallbackServerContext* context) override;

  // Syntheses that stopped early because the client cancelled or went away, or the deadline
  // passed (tests observe cancellation through this instead of sleeping).
  int64_t stopped_early() const { return stopped_early_.load(); }

 private:
  friend class SynthesizeReactor;
  friend class SynthesizeStreamReactor;
  friend class SynthesisCall;
  const ModelRegistry* const registry_;
  const VoiceStore* const voices_;
  const Admission* const admission_;
  Metrics* const metrics_;
  const Limits limits_;
  std::atomic<int64_t> stopped_early_{0};
  ThreadPool write_pool_;  // last: joined before the rest goes
};

}  // namespace vox

#endif  // VOX_SERVER_SPEECH_SERVICE_H_
