#ifndef VOX_SERVER_TRANSLATION_SERVICE_H_
#define VOX_SERVER_TRANSLATION_SERVICE_H_

#include <atomic>
#include <string>

#include "absl/status/statusor.h"
#include "engines/core/translation_engine.h"
#include "server/metrics/metrics.h"
#include "server/model_registry.h"
#include "vox/v1/translation.grpc.pb.h"

namespace vox {

// A Translate request checked and routed: what the engine will be given.
struct RoutedTranslation {
  TranslationModel* model = nullptr;
  std::vector<std::string> texts;
  TranslationParams params;
};

// Checks `request` against the server's limits and the loaded models, and picks the engine.
// INVALID_ARGUMENT names the bad field or text index and the allowed values (unknown language
// with close matches, empty text, too many texts, bad options, unsupported pair, and whatever
// the engine's own Validate() reports, e.g. a text longer than the model's positions).
// Never runs a model; thread-safe.
absl::StatusOr<RoutedTranslation> RouteTranslateRequest(const v1::TranslateRequest& request,
                                                        const ModelRegistry& registry,
                                                        int max_texts_per_call);

// vox.v1.TranslationService on the gRPC callback API. The reaction validates, then submits each
// text as one sequence to the chosen model's scheduler (priority from the request, deadline from
// the call's, on the scheduler's clock) and returns; the call finishes when every sequence ended,
// with the outputs in input order. Queue full is RESOURCE_EXHAUSTED at once; a deadline that passes
// in the queue or between decode steps is DEADLINE_EXCEEDED; client cancellation cancels every
// ticket, so work stops at the next step (whole-call engines also see it through their StopCheck).
// The first failing text cancels the others.
// Thread-safe; `registry`, `draining` and `metrics` (may be null) are not owned and must outlive
// the service.
class TranslationServiceImpl final : public v1::TranslationService::CallbackService {
 public:
  TranslationServiceImpl(const ModelRegistry* registry, int max_texts_per_call,
                         const std::atomic<bool>* draining, Metrics* metrics = nullptr);

  grpc::ServerUnaryReactor* Translate(grpc::CallbackServerContext* context,
                                      const v1::TranslateRequest* request,
                                      v1::TranslateResponse* response) override;

 private:
  const ModelRegistry* const registry_;
  const int max_texts_per_call_;
  const std::atomic<bool>* const draining_;
  Metrics* const metrics_;
};

}  // namespace vox

#endif  // VOX_SERVER_TRANSLATION_SERVICE_H_
