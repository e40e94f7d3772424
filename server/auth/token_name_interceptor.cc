#include "server/auth/token_name_interceptor.h"

#include <string>

#include "server/auth/token_authenticator.h"

namespace vox {
namespace {

class TokenNameInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit TokenNameInterceptor(const TokenAuthenticator* tokens) : tokens_(tokens) {}

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
      } else if (key == kTokenNameKey) {
        it = metadata->erase(it);
      } else {
        ++it;
      }
    }
    if (tokens_ == nullptr || authorization.empty()) return;
    name_ = tokens_->NameOf(authorization);
    if (!name_.empty()) metadata->emplace(grpc::string_ref(kTokenNameKey), grpc::string_ref(name_));
  }

  const TokenAuthenticator* const tokens_;
  std::string name_;  // the inserted value points here: lives as long as the call
};

class Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(const TokenAuthenticator* tokens) : tokens_(tokens) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo*) override {
    return new TokenNameInterceptor(tokens_);
  }

 private:
  const TokenAuthenticator* const tokens_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewTokenNameInterceptorFactory(const TokenAuthenticator* tokens) {
  return std::make_unique<Factory>(tokens);
}

}  // namespace vox
