#include "server/vox_server.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <cstdio>
#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/auth/admission.h"
#include "server/auth/call_quotas.h"
#include "server/auth/daily_characters.h"
#include "server/auth/server_tls.h"
#include "server/auth/token_authenticator.h"
#include "server/auth/token_file.h"
#include "server/auth/admission_interceptor.h"
#include "server/call_log.h"
#include "server/discovery_service.h"
#include "server/idle_streams.h"
#include "server/speech_service.h"
#include "server/speech_translation_service.h"
#include "server/translation_service.h"
#include "server/voice_service.h"
#include "server/voice_store.h"

namespace vox {

// Counts the vox.v1 calls in flight (health and reflection streams are not work), through a
// server interceptor that lives exactly as long as its call.
class CallTracker {
 public:
  // Waits until no call is in flight or `deadline` passes; true when none is left.
  bool WaitIdle(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
    return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
  }

  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> Factory() {
    return std::make_unique<Factory_>(this);
  }

 private:
  class Counter : public grpc::experimental::Interceptor {
   public:
    // Clang's -Wthread-safety does not look inside constructors and destructors, so the
    // locking lives in CallTracker's methods, where it is checked.
    explicit Counter(CallTracker* t) : t_(t) { t_->Add(1); }
    ~Counter() override { t_->Add(-1); }
    void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
      methods->Proceed();
    }

   private:
    CallTracker* const t_;
  };
  class Factory_ : public grpc::experimental::ServerInterceptorFactoryInterface {
   public:
    explicit Factory_(CallTracker* t) : t_(t) {}
    grpc::experimental::Interceptor* CreateServerInterceptor(
        grpc::experimental::ServerRpcInfo* info) override {
      const char* method = info->method();
      if (method == nullptr || !absl::StartsWith(method, "/vox.")) return nullptr;
      return new Counter(t_);
    }

   private:
    CallTracker* const t_;
  };

  void Add(int64_t delta) {
    absl::MutexLock lock(&mu_);
    in_flight_ += delta;
  }

  absl::Mutex mu_;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

VoxServer::VoxServer(ServerConfig config, std::unique_ptr<ModelRegistry> registry,
                     std::unique_ptr<Metrics> metrics)
    : config_(std::move(config)), metrics_(std::move(metrics)), registry_(std::move(registry)) {}

VoxServer::~VoxServer() { Shutdown(absl::ZeroDuration()); }

namespace {

// The listening port's credentials: plaintext, or TLS (mutual when a client CA is set) with the
// token check in front of every call when a token file is given.
std::shared_ptr<grpc::ServerCredentials> Credentials(ServerTls* tls,
                                                     std::shared_ptr<TokenAuthenticator> tokens) {
  if (tls == nullptr) return grpc::InsecureServerCredentials();
  std::shared_ptr<grpc::ServerCredentials> credentials = tls->credentials();
  if (tokens != nullptr) credentials->SetAuthMetadataProcessor(std::move(tokens));
  return credentials;
}

// The token file's quotas that live outside the token check.
void ApplyTokenQuotas(const std::vector<TokenPolicy>& tokens, CallQuotas* quotas,
                      DailyCharacters* characters) {
  std::map<std::string, int> streams;
  std::map<std::string, int64_t> per_day;
  for (const TokenPolicy& t : tokens) {
    streams[t.name] = t.concurrent_streams;
    per_day[t.name] = t.characters_per_day;
  }
  quotas->SetTokenLimits(std::move(streams));
  characters->SetLimits(std::move(per_day));
}

void SetConnectionLimits(const ServerConfig& config, grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(config.max_message_bytes);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                              config.max_streams_per_connection);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                              static_cast<int>(absl::ToInt64Milliseconds(config.keepalive_time)));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  // Keepalive enforcement: a client may ping an idle connection, but not more often than the
  // minimum interval; two pings too soon and the connection is closed with ENHANCE_YOUR_CALM.
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder->AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      static_cast<int>(absl::ToInt64Milliseconds(config.keepalive_min_ping_interval)));
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
}

}  // namespace

std::vector<std::string> VoxServer::ServiceNames() {
  return {"vox.v1.TranslationService", "vox.v1.DiscoveryService", "vox.v1.SpeechService",
          "vox.v1.SpeechTranslationService", "vox.v1.VoiceService"};
}

absl::Status VoxServer::Start() {
  SetAccessLogEnabled(config_.access_log);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  if (metrics_ == nullptr) {
    absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Create(config_.metrics_listen);
    if (!metrics.ok()) return metrics.status();
    metrics_ = std::move(*metrics);
  }
  for (const ModelInfo& info : registry_->Models()) metrics_->SetModelInfo(info);
  characters_ = std::make_unique<DailyCharacters>(metrics_.get());
  idle_ = std::make_unique<IdleStreams>(config_.idle_stream_timeout, metrics_.get());
  admission_ = std::make_unique<Admission>(characters_.get(), idle_.get());
  registry_->AttachMetrics(metrics_.get());
  Glossaries glossaries;
  if (!config_.glossary_dir.empty()) {
    absl::StatusOr<Glossaries> loaded = Glossaries::LoadDirectory(config_.glossary_dir);
    if (!loaded.ok()) return loaded.status();
    glossaries = std::move(*loaded);
  }
  if (!config_.voices_dir.empty()) {
    VoiceStore::Options options;
    options.max_voices = config_.max_voices;
    VoiceStore::LoadReport report;
    absl::StatusOr<std::unique_ptr<VoiceStore>> store =
        VoiceStore::Open(config_.voices_dir, options, &report);
    if (!store.ok()) return store.status();
    voices_ = std::move(*store);
    for (const std::string& skipped : report.skipped) {
      std::fprintf(stderr, "voxd: voice store %s: skipped %s\n", config_.voices_dir.c_str(),
                   skipped.c_str());
      metrics_->VoiceFileSkipped();
    }
    std::fprintf(stderr,
                 "voxd: voice store %s: %d voices loaded, %zu files skipped, %d temporary files "
                 "removed\n",
                 config_.voices_dir.c_str(), report.loaded, report.skipped.size(),
                 report.temp_files_removed);
    metrics_->SetCreatedVoices(voices_->size());
  }
  TranslateLimits limits;
  limits.max_texts_per_call = config_.max_texts_per_call;
  limits.max_text_chars = config_.max_text_chars;
  translation_ = std::make_unique<TranslationServiceImpl>(registry_.get(), limits,
                                                          std::move(glossaries), admission_.get(),
                                                          metrics_.get());
  discovery_ = std::make_unique<DiscoveryServiceImpl>(registry_.get(), admission_.get(),
                                                      metrics_.get(), voices_.get());
  SpeechServiceImpl::Limits speech_limits;
  speech_limits.max_pending_bytes = static_cast<size_t>(config_.stream_buffer_bytes);
  SpeechTranslationServiceImpl::Limits session_limits;
  session_limits.max_segments = config_.max_segments_per_session;
  speech_ = std::make_unique<SpeechServiceImpl>(registry_.get(), admission_.get(), metrics_.get(),
                                                speech_limits, voices_.get());
  speech_translation_ = std::make_unique<SpeechTranslationServiceImpl>(
      registry_.get(), admission_.get(), metrics_.get(), session_limits,
      SpeechTranslationServiceImpl::Hooks(), voices_.get());
  voice_ = std::make_unique<VoiceServiceImpl>(registry_.get(), voices_.get(), admission_.get(),
                                              metrics_.get());

  if (config_.tls.enabled()) {
    absl::StatusOr<std::unique_ptr<ServerTls>> tls = ServerTls::Create(config_.tls);
    if (!tls.ok()) return tls.status();
    tls_ = std::move(*tls);
  }
  quotas_ = std::make_unique<CallQuotas>(config_.max_concurrent_streams, metrics_.get());
  if (!config_.token_file.empty()) {
    absl::StatusOr<std::vector<TokenPolicy>> tokens =
        LoadTokenFile(config_.token_file, ServiceNames());
    if (!tokens.ok()) return tokens.status();
    ApplyTokenQuotas(*tokens, quotas_.get(), characters_.get());
    tokens_ = std::make_shared<TokenAuthenticator>(
        std::move(*tokens), OpenServices{config_.health_open, config_.reflection_open},
        metrics_.get());
  }

  calls_ = std::make_unique<CallTracker>();
  grpc::ServerBuilder builder;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(calls_->Factory());
  interceptors.push_back(NewAdmissionInterceptorFactory(tokens_.get(), quotas_.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  SetConnectionLimits(config_, &builder);
  builder.AddListeningPort(config_.listen, Credentials(tls_.get(), tokens_), &port_);
  builder.RegisterService(translation_.get());
  builder.RegisterService(discovery_.get());
  builder.RegisterService(speech_.get());
  builder.RegisterService(speech_translation_.get());
  builder.RegisterService(voice_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config_.listen,
                     " (address in use, not a local address, or malformed HOST:PORT)"));
  }
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus("vox.v1.TranslationService", !registry_->translation().empty());
  health->SetServingStatus("vox.v1.DiscoveryService", true);
  health->SetServingStatus("vox.v1.SpeechService", !registry_->speech().empty());
  health->SetServingStatus("vox.v1.SpeechTranslationService",
                           !registry_->speech().empty() && !registry_->translation().empty());
  health->SetServingStatus("vox.v1.VoiceService", !registry_->speech().empty());
  return absl::OkStatus();
}

bool VoxServer::draining() const { return admission_ != nullptr && admission_->draining(); }

std::string VoxServer::address() const {
  const size_t colon = config_.listen.rfind(':');
  return absl::StrCat(config_.listen.substr(0, colon), ":", port_);
}

absl::Status VoxServer::Reload() {
  std::vector<std::string> errors;
  if (tls_ != nullptr) {
    const absl::Status s = tls_->Reload();
    if (metrics_ != nullptr) metrics_->ConfigReloaded("tls", s.ok());
    if (!s.ok()) errors.push_back(std::string(s.message()));
  }
  if (tokens_ != nullptr) {
    absl::StatusOr<std::vector<TokenPolicy>> tokens =
        LoadTokenFile(config_.token_file, ServiceNames());
    if (metrics_ != nullptr) metrics_->ConfigReloaded("tokens", tokens.ok());
    if (tokens.ok()) {
      ApplyTokenQuotas(*tokens, quotas_.get(), characters_.get());
      tokens_->Replace(std::move(*tokens));
    } else {
      errors.push_back(std::string(tokens.status().message()));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(absl::StrJoin(errors, "; "), " (kept the files loaded before)"));
}

void VoxServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  if (admission_ != nullptr) admission_->BeginDrain();
  if (server_ != nullptr) {
    const absl::Time deadline = absl::Now() + grace;
    // NOT_SERVING for "" and every service, and frozen so. gRPC keeps serving while the admitted
    // work finishes: health Check answers NOT_SERVING and new calls reach the services, which
    // refuse them with UNAVAILABLE (a call arriving after Server::Shutdown gets CANCELLED).
    server_->GetHealthCheckService()->Shutdown();
    speech_translation_->BeginDrain();
    const bool idle = calls_->WaitIdle(deadline);
    // Then stop: when nothing is left, after a short notice (at most 100 ms, within the grace)
    // that lets health Watch streams deliver NOT_SERVING before they are cancelled (they are not
    // work: gRPC waits for them only until then, and not at all when there are none); else at the
    // deadline, cancelling what still runs.
    const absl::Duration notice = std::min(grace, absl::Milliseconds(100));
    server_->Shutdown(absl::ToChronoTime(idle ? absl::Now() + notice : deadline));
    server_->Wait();
  }
  registry_->Shutdown();
}

}  // namespace vox
