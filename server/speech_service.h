#ifndef VOX_SERVER_SPEECH_SERVICE_H_
#define VOX_SERVER_SPEECH_SERVICE_H_

#include <atomic>
#include <cstddef>

#include "absl/status/statusor.h"
#include "engines/audio/audio_stream_encoder.h"
#include "engines/core/speech_engine.h"
#include "server/metrics/metrics.h"
#include "server/model_registry.h"
#include "vox/v1/speech.grpc.pb.h"

namespace vox {

// A Synthesize request checked and routed.
struct RoutedSynthesis {
  SpeechModel* model = nullptr;
  SynthesisRequest request;
  AudioStreamConfig audio;
};

// Checks `request` against the loaded speech models and picks the engine: empty text, unknown
// language or voice (listing the valid ones), bad audio config, bad options, and the engine's own
// Validate() (e.g. text too long) are INVALID_ARGUMENT. Never runs a model; thread-safe.
absl::StatusOr<RoutedSynthesis> RouteSynthesizeRequest(const v1::SynthesizeRequest& request,
                                                       const ModelRegistry& registry);

// vox.v1.SpeechService on the callback API. Each call is a ServerWriteReactor: the reaction
// validates, sends the header and enqueues the synthesis on the engine's WorkQueue; the engine's
// worker thread encodes audio (engines/audio) as the engine produces it and hands each chunk to
// the reactor, which keeps one write in flight and at most `max_pending_bytes` queued (a reader
// slower than that for `slow_reader_timeout` ends the call with RESOURCE_EXHAUSTED). Client
// cancellation and the deadline reach the engine as its StopCheck and AudioSink result.
// Thread-safe; `registry`, `draining` and `metrics` (may be null) must outlive the service.
class SpeechServiceImpl final : public v1::SpeechService::CallbackService {
 public:
  struct Limits {
    size_t max_pending_bytes = 4 << 20;
    absl::Duration slow_reader_timeout = absl::Seconds(10);
  };

  SpeechServiceImpl(const ModelRegistry* registry, const std::atomic<bool>* draining,
                    Metrics* metrics, Limits limits);

  grpc::ServerWriteReactor<v1::SynthesizeResponse>* Synthesize(
      grpc::CallbackServerContext* context, const v1::SynthesizeRequest* request) override;

  // Syntheses that stopped early because the client cancelled or went away (tests observe
  // cancellation through this instead of sleeping).
  int64_t stopped_early() const { return stopped_early_.load(); }

 private:
  friend class SynthesizeReactor;
  const ModelRegistry* const registry_;
  const std::atomic<bool>* const draining_;
  Metrics* const metrics_;
  const Limits limits_;
  std::atomic<int64_t> stopped_early_{0};
};

}  // namespace vox

#endif  // VOX_SERVER_SPEECH_SERVICE_H_
