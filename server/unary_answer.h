#ifndef VOX_SERVER_UNARY_ANSWER_H_
#define VOX_SERVER_UNARY_ANSWER_H_

// Unary calls answered inside their reaction (DiscoveryService, VoiceService's GetVoice and
// DeleteVoice): request id, access-log line and metrics in one place.

#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "server/auth/admission.h"
#include "server/call_log.h"
#include "server/metrics/metrics.h"

namespace vox {

// Runs `fill` (returns absl::Status, fills the response) once `admission` (may be null) admits
// the call, and finishes the call with its status, echoing the request id; `method` is the full
// name ("/vox.v1.DiscoveryService/ListModels"), counted in `metrics` (may be null) under its last
// part. Thread-safe.
template <typename Fill>
grpc::ServerUnaryReactor* AnswerUnary(grpc::CallbackServerContext* context,
                                      const Admission* admission, Metrics* metrics,
                                      const char* method, Fill fill) {
  const absl::Time start = absl::Now();
  const std::string request_id = RequestIdFrom(context->client_metadata());
  context->AddInitialMetadata(kRequestIdKey, request_id);
  absl::Status admitted = admission == nullptr ? absl::OkStatus() : admission->Admit(*context);
  const grpc::Status status = ToGrpcStatus(admitted.ok() ? fill() : std::move(admitted));
  const absl::Duration duration = absl::Now() - start;
  LogCall(method, status, duration, request_id, TokenNameOf(*context));
  if (metrics != nullptr) {
    const std::string name(method);
    metrics->RequestFinished(name.substr(name.rfind('/') + 1),
                             static_cast<absl::StatusCode>(status.error_code()), duration);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace vox

#endif  // VOX_SERVER_UNARY_ANSWER_H_
