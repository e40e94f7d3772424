#include "server/vox_server.h"

#include <chrono>
#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/call_log.h"
#include "server/discovery_service.h"
#include "server/translation_service.h"

namespace vox {

VoxServer::VoxServer(ServerConfig config, std::unique_ptr<ModelRegistry> registry)
    : config_(std::move(config)), registry_(std::move(registry)) {}

VoxServer::~VoxServer() { Shutdown(absl::ZeroDuration()); }

std::vector<std::string> VoxServer::ServiceNames() {
  return {"vox.v1.TranslationService", "vox.v1.DiscoveryService"};
}

absl::Status VoxServer::Start() {
  SetAccessLogEnabled(config_.access_log);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  translation_ = std::make_unique<TranslationServiceImpl>(
      registry_.get(), config_.max_texts_per_call, &draining_);
  discovery_ = std::make_unique<DiscoveryServiceImpl>(registry_.get());

  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(translation_.get());
  builder.RegisterService(discovery_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config_.listen,
                     " (address in use, not a local address, or malformed HOST:PORT)"));
  }
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus("", true);
  for (const std::string& name : ServiceNames()) health->SetServingStatus(name, true);
  return absl::OkStatus();
}

std::string VoxServer::address() const {
  const size_t colon = config_.listen.rfind(':');
  return absl::StrCat(config_.listen.substr(0, colon), ":", port_);
}

void VoxServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  draining_.store(true);
  if (server_ != nullptr) {
    // NOT_SERVING for "" and every service, and frozen so.
    server_->GetHealthCheckService()->Shutdown();
    const auto deadline = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(grace);
    server_->Shutdown(deadline);
    server_->Wait();
  }
  registry_->Shutdown();
}

}  // namespace vox
