#ifndef VOX_SERVER_AUTH_ADMISSION_INTERCEPTOR_H_
#define VOX_SERVER_AUTH_ADMISSION_INTERCEPTOR_H_

#include <memory>

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_interceptor.h>

namespace vox {

class CallQuotas;
class TokenAuthenticator;

// Metadata keys voxd sets for its own handlers (a client's are dropped, so neither can be forged):
// the name of the token a call was admitted with, and why a call over a quota is refused.
inline constexpr char kTokenNameKey[] = "vox-token-name";
inline constexpr char kRefusalKey[] = "vox-refusal";

// Runs for every call before its handler, and lives exactly as long as the call. It removes the
// bearer token from the metadata handlers see and puts the token's name in its place (gRPC's
// AuthContext cannot carry it: a connection's calls share one). For vox.v1 calls it also takes a
// place among the calls open (CallQuotas), held until the call ends; over a limit, kRefusalKey
// says why, and the handler refuses the call (Admission::Admit). `tokens` and `quotas` may be
// null and must outlive the server. Thread-safe.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewAdmissionInterceptorFactory(const TokenAuthenticator* tokens, CallQuotas* quotas);

}  // namespace vox

#endif  // VOX_SERVER_AUTH_ADMISSION_INTERCEPTOR_H_
