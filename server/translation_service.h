#ifndef VOX_SERVER_TRANSLATION_SERVICE_H_
#define VOX_SERVER_TRANSLATION_SERVICE_H_

#include <atomic>
#include <string>

#include "server/auth/admission.h"
#include "absl/status/statusor.h"
#include "engines/core/translation_engine.h"
#include "server/metrics/metrics.h"
#include "server/glossaries.h"
#include "server/model_registry.h"
#include "server/translate_plan.h"
#include "vox/v1/translation.grpc.pb.h"

namespace vox {

// A Translate request checked and routed: what the engine will be given.
struct RoutedTranslation {
  TranslationModel* model = nullptr;
  std::vector<std::string> texts;
  TranslationParams params;
};

// Checks `request` against the server's limits and the loaded models, and picks the engine,
// for callers that submit each text whole (SpeechTranslate's segments): the checks of
// PlanTranslateCall, plus empty texts refused and the Translate-only features (source_language
// "auto", protected terms) refused. INVALID_ARGUMENT names the bad field or text index and the
// allowed values. Never runs a model; thread-safe.
absl::StatusOr<RoutedTranslation> RouteTranslateRequest(const v1::TranslateRequest& request,
                                                        const ModelRegistry& registry,
                                                        int max_texts_per_call);

// vox.v1.TranslationService on the gRPC callback API. The reaction plans the call
// (PlanTranslateCall: sentences, detection, terms), then submits each sentence as one sequence,
// at most max_texts_per_call outstanding at a time, to the chosen model's scheduler (priority
// from the request, deadline from the call's, on the scheduler's clock) and returns; the call
// finishes when every sequence ended, with the outputs in input order. Queue full is
// RESOURCE_EXHAUSTED at once; a deadline that passes in the queue or between decode steps is
// DEADLINE_EXCEEDED; client cancellation cancels every ticket, so work stops at the next step
// (whole-call engines also see it through their StopCheck).
// The first failing sentence cancels the others. The response rejoins each text's sentences
// (AssembleTranslation).
// Thread-safe; `registry`, `admission` and `metrics` (may be null) are not owned and must outlive
// the service; it owns `glossaries`.
class TranslationServiceImpl final : public v1::TranslationService::CallbackService {
 public:
  TranslationServiceImpl(const ModelRegistry* registry, const TranslateLimits& limits,
                         Glossaries glossaries, const Admission* admission,
                         Metrics* metrics = nullptr);

  grpc::ServerUnaryReactor* Translate(grpc::CallbackServerContext* context,
                                      const v1::TranslateRequest* request,
                                      v1::TranslateResponse* response) override;

 private:
  const ModelRegistry* const registry_;
  const TranslateLimits limits_;
  const Glossaries glossaries_;
  const Admission* const admission_;
  Metrics* const metrics_;
};

}  // namespace vox

#endif  // VOX_SERVER_TRANSLATION_SERVICE_H_
