#ifndef VOX_SERVER_CALL_LOG_H_
#define VOX_SERVER_CALL_LOG_H_

#include <map>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace vox {

// Metadata key carrying the request id, in both directions.
inline constexpr char kRequestIdKey[] = "x-request-id";

// The request id sent by the client in `x-request-id` when it is 1-128 printable ASCII
// characters, else a new random one (NewRequestId). Thread-safe.
std::string RequestIdFrom(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

// 16 random lowercase hex digits. Thread-safe.
std::string NewRequestId();

// absl::Status -> grpc::Status (the codes are the same numbers).
grpc::Status ToGrpcStatus(const absl::Status& status);

// Codes an engine or scheduler status keeps on its way to the client (INVALID_ARGUMENT,
// CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE); any other code is an engine
// failure and is reported as INTERNAL.
bool ClientVisibleCode(absl::StatusCode code);

// The call's deadline as absl::Time (InfiniteFuture when the client set none).
absl::Time DeadlineOf(const grpc::ServerContextBase& context);

// The name of the bearer token the call was admitted with, "" when none (set by the interceptor
// of server/auth/admission_interceptor.h).
std::string TokenNameOf(const grpc::ServerContextBase& context);

// Writes one access-log line to stderr, as one write(2) so lines from different threads never
// interleave:
//   voxd: rpc=/vox.v1.TranslationService/Translate status=OK duration_ms=1.234 request_id=ab12...
// A token name (TokenNameOf, never the token) adds token=NAME, a non-OK status message="...".
// Disabled globally by SetAccessLogEnabled(false). Thread-safe; costs one formatted write.
void LogCall(const std::string& method, const grpc::Status& status, absl::Duration duration,
             const std::string& request_id, const std::string& token);
void SetAccessLogEnabled(bool enabled);

// Logs a server-side failure with the request id ("voxd: request <id>: <what>").
void LogError(const std::string& request_id, const std::string& what);

}  // namespace vox

#endif  // VOX_SERVER_CALL_LOG_H_
