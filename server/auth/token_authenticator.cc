#include "server/auth/token_authenticator.h"

#include <algorithm>
#include <utility>

#include <openssl/crypto.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/metrics/metrics.h"

namespace vox {
namespace {

constexpr absl::string_view kHealthService = "grpc.health.v1.Health";
constexpr absl::string_view kReflectionPrefix = "grpc.reflection.";

// "/vox.v1.TranslationService/Translate" -> "vox.v1.TranslationService".
absl::string_view ServiceOf(absl::string_view path) {
  if (absl::StartsWith(path, "/")) path.remove_prefix(1);
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(0, slash);
}

// "Bearer <token>" -> "<token>"; "" when the scheme is not Bearer.
absl::string_view BearerToken(absl::string_view authorization) {
  if (authorization.size() < 7 || !absl::EqualsIgnoreCase(authorization.substr(0, 7), "bearer ")) {
    return "";
  }
  return absl::StripAsciiWhitespace(authorization.substr(7));
}

}  // namespace

TokenAuthenticator::TokenAuthenticator(std::vector<TokenPolicy> tokens, OpenServices open,
                                       Metrics* metrics)
    : open_(open), metrics_(metrics), tokens_(std::move(tokens)) {}

void TokenAuthenticator::Replace(std::vector<TokenPolicy> tokens) {
  absl::MutexLock lock(&mu_);
  tokens_ = std::move(tokens);
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const bool kept = std::any_of(tokens_.begin(), tokens_.end(),
                                  [&](const TokenPolicy& p) { return p.name == it->first; });
    it = kept ? std::next(it) : buckets_.erase(it);
  }
}

// Compares the hash with every token's, without stopping at a match, so the time taken says
// nothing about which token (or how much of a hash) matched.
const TokenPolicy* TokenAuthenticator::Find(absl::string_view token) const {
  const Sha256 hash = Sha256Of(token);
  const TokenPolicy* found = nullptr;
  for (const TokenPolicy& p : tokens_) {
    const bool equal = CRYPTO_memcmp(hash.data(), p.sha256.data(), hash.size()) == 0;
    found = equal ? &p : found;
  }
  return found;
}

bool TokenAuthenticator::TakeRequest(const TokenPolicy& policy, absl::Time now) {
  if (policy.requests_per_second <= 0) return true;
  Bucket& b = buckets_[policy.name];
  const double capacity = std::max(1.0, policy.requests_per_second);
  if (b.last == absl::InfinitePast()) {
    b.level = capacity;
  } else {
    b.level = std::min(capacity, b.level + absl::ToDoubleSeconds(now - b.last) *
                                               policy.requests_per_second);
  }
  b.last = now;
  if (b.level < 1) return false;
  b.level -= 1;
  return true;
}

std::string TokenAuthenticator::NameOf(absl::string_view authorization) const {
  const absl::string_view token = BearerToken(authorization);
  if (token.empty()) return "";
  absl::ReaderMutexLock lock(&mu_);
  const TokenPolicy* policy = Find(token);
  return policy == nullptr ? "" : policy->name;
}

absl::Status TokenAuthenticator::Reject(absl::StatusCode code, absl::string_view reason,
                                        std::string message) {
  if (metrics_ != nullptr) metrics_->AuthRejected(reason);
  return absl::Status(code, message);
}

absl::StatusOr<std::string> TokenAuthenticator::Admit(absl::string_view path,
                                                      absl::string_view authorization,
                                                      absl::Time now) {
  const absl::string_view service = ServiceOf(path);
  if ((open_.health && service == kHealthService) ||
      (open_.reflection && absl::StartsWith(service, kReflectionPrefix))) {
    return std::string();
  }
  absl::string_view token = authorization;
  if (token.empty()) {
    return Reject(absl::StatusCode::kUnauthenticated, "missing_token",
                  "no bearer token: send metadata 'authorization: Bearer <token>'");
  }
  token = BearerToken(authorization);
  if (token.empty()) {
    return Reject(absl::StatusCode::kUnauthenticated, "invalid_token",
                  "the 'authorization' metadata must be 'Bearer <token>'");
  }
  absl::MutexLock lock(&mu_);
  const TokenPolicy* policy = Find(token);
  if (policy == nullptr) {
    return Reject(absl::StatusCode::kUnauthenticated, "invalid_token", "invalid bearer token");
  }
  if (now >= policy->expires) {
    return Reject(absl::StatusCode::kUnauthenticated, "expired_token",
                  absl::StrCat("token '", policy->name, "' expired at ",
                               absl::FormatTime(absl::RFC3339_sec, policy->expires,
                                                absl::UTCTimeZone())));
  }
  if (!policy->Allows(service)) {
    return Reject(absl::StatusCode::kPermissionDenied, "service_not_allowed",
                  absl::StrCat("token '", policy->name, "' may not call ", service));
  }
  if (!TakeRequest(*policy, now)) {
    if (metrics_ != nullptr) metrics_->QuotaRejected(policy->name, "requests_per_second");
    return absl::ResourceExhaustedError(
        absl::StrCat("token '", policy->name, "' is over its quota of ",
                     policy->requests_per_second, " requests per second"));
  }
  if (metrics_ != nullptr) metrics_->TokenAdmitted(policy->name);
  return policy->name;
}

grpc::Status TokenAuthenticator::Process(const InputMetadata& auth_metadata,
                                         grpc::AuthContext* /*context*/,
                                         OutputMetadata* /*consumed_auth_metadata*/,
                                         OutputMetadata* /*response_metadata*/) {
  absl::string_view path;
  absl::string_view authorization;
  for (const auto& [key, value] : auth_metadata) {
    const absl::string_view k(key.data(), key.size());
    const absl::string_view v(value.data(), value.size());
    if (k == ":path") path = v;
    if (k == "authorization") authorization = v;
  }
  // The token stays in the metadata for the interceptor that names the call's caller and then
  // removes it (admission_interceptor.h).
  absl::StatusOr<std::string> name = Admit(path, authorization, absl::Now());
  if (!name.ok()) {
    return grpc::Status(static_cast<grpc::StatusCode>(name.status().code()),
                        std::string(name.status().message()));
  }
  return grpc::Status::OK;
}

}  // namespace vox
