#ifndef VOX_SERVER_DISCOVERY_SERVICE_H_
#define VOX_SERVER_DISCOVERY_SERVICE_H_

#include "server/auth/admission.h"
#include "server/metrics/metrics.h"
#include "server/model_registry.h"
#include "server/voice_store.h"
#include "vox/v1/discovery.grpc.pb.h"

namespace vox {

// Fills the discovery responses from the loaded engines (ModelInfo, voices). Pure functions of
// the registry, which is read-only while serving: thread-safe, no engine call, no locking.
v1::ListLanguagesResponse ListLanguages(const ModelRegistry& registry);
// Built-in voices (model by model) then the created voices of `store` (may be null), by name.
// `language` empty = all voices; else only voices that speak it (INVALID_ARGUMENT when the code
// is not an NLLB code any speech engine knows, with close matches).
absl::StatusOr<v1::ListVoicesResponse> ListVoices(const ModelRegistry& registry,
                                                  const VoiceStore* store,
                                                  const std::string& language);
// One voice as ListVoices and VoiceService report it.
void BuiltinVoiceToProto(const VoiceInfo& voice, const SpeechModel& model, v1::Voice* out);
void CreatedVoiceToProto(const StoredVoice& voice, const ModelRegistry& registry, v1::Voice* out);
v1::ListModelsResponse ListModels(const ModelRegistry& registry);

// vox.v1.DiscoveryService on the callback API; every call finishes inside its reaction.
// `registry`, `admission`, `metrics` and `voices` (all but `registry` may be null) are not owned
// and must outlive the service.
class DiscoveryServiceImpl final : public v1::DiscoveryService::CallbackService {
 public:
  explicit DiscoveryServiceImpl(const ModelRegistry* registry,
                                const Admission* admission = nullptr, Metrics* metrics = nullptr,
                                const VoiceStore* voices = nullptr)
      : registry_(registry), admission_(admission), metrics_(metrics), voices_(voices) {}

  grpc::ServerUnaryReactor* ListLanguages(grpc::CallbackServerContext* context,
                                          const v1::ListLanguagesRequest* request,
                                          v1::ListLanguagesResponse* response) override;
  grpc::ServerUnaryReactor* ListVoices(grpc::CallbackServerContext* context,
                                       const v1::ListVoicesRequest* request,
                                       v1::ListVoicesResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;

 private:
  const ModelRegistry* const registry_;
  const Admission* const admission_;
  Metrics* const metrics_;
  const VoiceStore* const voices_;
};

}  // namespace vox

#endif  // VOX_SERVER_DISCOVERY_SERVICE_H_
