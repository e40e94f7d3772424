#ifndef VOX_SERVER_VOICE_SERVICE_H_
#define VOX_SERVER_VOICE_SERVICE_H_

#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

#include "server/auth/admission.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engines/core/speech_engine.h"
#include "server/metrics/metrics.h"
#include "server/model_registry.h"
#include "server/thread_pool.h"
#include "server/voice_store.h"
#include "vox/v1/voice.grpc.pb.h"

namespace vox {

// What CreateVoice accepts as reference audio.
struct ReferenceAudioLimits {
  double min_seconds = 3;
  double max_seconds = 30;
  size_t max_bytes = 32 << 20;  // encoded bytes of all clips together
  int max_clips = 16;
  // A clip whose RMS level is below this (-60 dBFS) is silent.
  float silence_rms = 1e-3f;
};

// 1-64 characters from [A-Za-z0-9 _.-], not starting or ending with a space; INVALID_ARGUMENT
// saying what is wrong otherwise. Thread-safe.
absl::Status CheckVoiceName(const std::string& name);

// Decoded clips checked together: INVALID_ARGUMENT for a silent clip (naming it) or a total
// outside [min_seconds, max_seconds]. Sets `*seconds` to the total. Thread-safe.
absl::Status CheckReferenceClips(const std::vector<ReferenceClip>& clips,
                                 const ReferenceAudioLimits& limits, double* seconds);

// The speech model that speaks `voice` in `language`: the loaded model whose voice_model_id()
// equals the voice's model id. INVALID_ARGUMENT when the voice is not for `language`;
// FAILED_PRECONDITION when no loaded model has that id (made by other weights). Thread-safe.
absl::StatusOr<SpeechModel*> ModelForCreatedVoice(const StoredVoice& voice,
                                                  const std::string& language,
                                                  const ModelRegistry& registry);

// vox.v1.VoiceService. CreateVoice reads the config and the clips in its reactor (checks that
// need no audio fail the call at once), then decodes, clones (SpeechEngine::CloneVoice, which
// may take a second) and stores the voice on the service's own clone thread, never on gRPC's
// threads; GetVoice and DeleteVoice answer inside their reaction.
// Thread-safe. `registry`, `store` (null: no voice store, CreateVoice/DeleteVoice are
// UNAVAILABLE), `admission` and `metrics` (may be null) are not owned and must outlive the service.
class VoiceServiceImpl final : public v1::VoiceService::CallbackService {
 public:
  VoiceServiceImpl(const ModelRegistry* registry, VoiceStore* store,
                   const Admission* admission, Metrics* metrics,
                   ReferenceAudioLimits limits = {});

  grpc::ServerReadReactor<v1::CreateVoiceRequest>* CreateVoice(
      grpc::CallbackServerContext* context, v1::Voice* response) override;
  grpc::ServerUnaryReactor* GetVoice(grpc::CallbackServerContext* context,
                                     const v1::GetVoiceRequest* request,
                                     v1::Voice* response) override;
  grpc::ServerUnaryReactor* DeleteVoice(grpc::CallbackServerContext* context,
                                        const v1::DeleteVoiceRequest* request,
                                        v1::DeleteVoiceResponse* response) override;

 private:
  friend class CreateVoiceReactor;
  const ModelRegistry* const registry_;
  VoiceStore* const store_;
  const Admission* const admission_;
  Metrics* const metrics_;
  const ReferenceAudioLimits limits_;
  ThreadPool clone_pool_{1};  // last: joined (its tasks run) before the rest goes
};

}  // namespace vox

#endif  // VOX_SERVER_VOICE_SERVICE_H_
