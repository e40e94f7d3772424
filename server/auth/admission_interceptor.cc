#include "server/auth/admission_interceptor.h"

#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "server/auth/call_quotas.h"
#include "server/auth/token_authenticator.h"

namespace vox {
namespace {

class AdmissionInterceptor : public grpc::experimental::Interceptor {
 public:
  AdmissionInterceptor(const TokenAuthenticator* tokens, CallQuotas* quotas)
      : tokens_(tokens), quotas_(quotas) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      Rewrite(methods->GetRecvInitialMetadata());
    }
    methods->Proceed();
  }

 private:
  void Rewrite(std::multimap<grpc::string_ref, grpc::string_ref>* metadata) {
    if (metadata == nullptr) return;
    std::string authorization;
    for (auto it = metadata->begin(); it != metadata->end();) {
      const grpc::string_ref key = it->first;
      if (key == "authorization") {
        authorization.assign(it->second.data(), it->second.size());
        it = metadata->erase(it);
      } else if (key == kTokenNameKey || key == kRefusalKey) {
        it = metadata->erase(it);
      } else {
        ++it;
      }
    }
    if (tokens_ != nullptr && !authorization.empty()) name_ = tokens_->NameOf(authorization);
    if (!name_.empty()) metadata->emplace(grpc::string_ref(kTokenNameKey), grpc::string_ref(name_));
    if (quotas_ == nullptr) return;
    absl::StatusOr<CallQuotas::Slot> slot = quotas_->Enter(name_);
    if (slot.ok()) {
      slot_ = std::move(*slot);
    } else {
      refusal_ = std::string(slot.status().message());
      metadata->emplace(grpc::string_ref(kRefusalKey), grpc::string_ref(refusal_));
    }
  }

  const TokenAuthenticator* const tokens_;
  CallQuotas* const quotas_;
  // The inserted values point into these: they live as long as the call.
  std::string name_;
  std::string refusal_;
  CallQuotas::Slot slot_;
};

class Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  Factory(const TokenAuthenticator* tokens, CallQuotas* quotas)
      : tokens_(tokens), quotas_(quotas) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // Health checks and reflection are not counted among the calls open.
    const char* method = info->method();
    const bool counted = method != nullptr && absl::StartsWith(method, "/vox.");
    return new AdmissionInterceptor(tokens_, counted ? quotas_ : nullptr);
  }

 private:
  const TokenAuthenticator* const tokens_;
  CallQuotas* const quotas_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewAdmissionInterceptorFactory(const TokenAuthenticator* tokens, CallQuotas* quotas) {
  return std::make_unique<Factory>(tokens, quotas);
}

}  // namespace vox
