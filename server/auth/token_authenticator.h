#ifndef VOX_SERVER_AUTH_TOKEN_AUTHENTICATOR_H_
#define VOX_SERVER_AUTH_TOKEN_AUTHENTICATOR_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/security/auth_metadata_processor.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/auth/token_file.h"

namespace vox {

class Metrics;

// Which methods need no token.
struct OpenServices {
  bool health = true;       // grpc.health.v1.Health (load balancers and probes send no token)
  bool reflection = false;  // grpc.reflection.v1alpha.ServerReflection
};

// Bearer-token admission for every call on a TLS port, run by gRPC before the call reaches its
// handler: `authorization: Bearer <token>` is hashed and compared in constant time with every
// token of the file; then expiry, the service and the token's request rate are checked. No or a
// wrong token -> UNAUTHENTICATED, a service the token may not call -> PERMISSION_DENIED, over its
// rate -> RESOURCE_EXHAUSTED. The handler learns the token's name through the interceptor of
// admission_interceptor.h, which also removes the token from the metadata it sees.
// Thread-safe; Replace() swaps the token list (SIGHUP) and keeps the rate state of names kept.
class TokenAuthenticator : public grpc::AuthMetadataProcessor {
 public:
  // `metrics` may be null and must outlive this.
  TokenAuthenticator(std::vector<TokenPolicy> tokens, OpenServices open, Metrics* metrics);

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  void Replace(std::vector<TokenPolicy> tokens);

  // The name of the token in an `authorization` value ("Bearer <token>"), "" when none matches.
  // Checks nothing else (Process did, before the call was admitted).
  std::string NameOf(absl::string_view authorization) const;

  // The decision Process makes for a call to `path` ("/pkg.Service/Method") with this
  // `authorization` value at `now`: the token's name ("" for an open service) or the status.
  absl::StatusOr<std::string> Admit(absl::string_view path, absl::string_view authorization,
                                    absl::Time now);

 private:
  struct Bucket {  // requests_per_second: a token bucket holding up to one second's worth
    double level = 0;
    absl::Time last = absl::InfinitePast();
  };
  const TokenPolicy* Find(absl::string_view token) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool TakeRequest(const TokenPolicy& policy, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Reject(absl::StatusCode code, absl::string_view reason, std::string message);

  const OpenServices open_;
  Metrics* const metrics_;
  mutable absl::Mutex mu_;
  std::vector<TokenPolicy> tokens_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vox

#endif  // VOX_SERVER_AUTH_TOKEN_AUTHENTICATOR_H_
