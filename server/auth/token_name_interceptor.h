#ifndef VOX_SERVER_AUTH_TOKEN_NAME_INTERCEPTOR_H_
#define VOX_SERVER_AUTH_TOKEN_NAME_INTERCEPTOR_H_

#include <memory>

#include <grpcpp/support/server_interceptor.h>

namespace vox {

class TokenAuthenticator;

// Metadata key carrying, to voxd's handlers only, the name of the token a call was admitted with.
inline constexpr char kTokenNameKey[] = "vox-token-name";

// Rewrites every call's received metadata before its handler runs: the bearer token is removed
// (handlers never see it) and replaced by kTokenNameKey with the token's name; a kTokenNameKey
// the client sent is dropped, so the name cannot be forged. gRPC's AuthContext cannot carry the
// name (it is shared by every call of a connection). `tokens` may be null (no token file: only the
// scrubbing) and must outlive the server. Thread-safe.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewTokenNameInterceptorFactory(const TokenAuthenticator* tokens);

}  // namespace vox

#endif  // VOX_SERVER_AUTH_TOKEN_NAME_INTERCEPTOR_H_
