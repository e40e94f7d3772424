#ifndef VOX_SERVER_VOX_SERVER_H_
#define VOX_SERVER_VOX_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/config.h"
#include "server/metrics/metrics.h"
#include "server/model_registry.h"

namespace vox {

class TranslationServiceImpl;
class DiscoveryServiceImpl;
class SpeechServiceImpl;
class SpeechTranslationServiceImpl;
class VoiceServiceImpl;
class VoiceStore;
class Admission;
class CallQuotas;
class DailyCharacters;
class IdleStreams;
class CallTracker;
class ServerTls;
class TokenAuthenticator;

// The gRPC side of voxd: the vox.v1 services over an already loaded ModelRegistry, plus
// grpc.health.v1 and server reflection. Used by voxd's main, the tests and the benchmarks.
// Start() and Shutdown() are called from one thread; the services run on gRPC's threads.
class VoxServer {
 public:
  // Takes ownership of the registry (loaded and warmed up by the caller) and of `metrics` when
  // given (voxd creates it before loading so engines can report into it from the start, e.g.
  // Apertium restarts); otherwise Start() creates it from config.metrics_listen.
  VoxServer(ServerConfig config, std::unique_ptr<ModelRegistry> registry,
            std::unique_ptr<Metrics> metrics = nullptr);
  ~VoxServer();  // Shutdown(0) if still running

  // Opens the voice store (config.voices_dir, when set: damaged voice files are skipped, logged
  // and counted; a directory that cannot be created or read fails the start with UNAVAILABLE),
  // binds config.listen (and config.metrics_listen when set), registers the services and marks
  // health SERVING for "" and every vox.v1 service. UNAVAILABLE when an address cannot be bound.
  absl::Status Start();

  // SIGHUP: reads the TLS files and the token file again. Each is swapped in only when it is
  // good; otherwise the one serving stays and the error says why. New connections get new TLS
  // files within about a second; open streams are untouched. Thread-safe with the calls.
  absl::Status Reload();

  // The bound port (the real one when config.listen asked for port 0); 0 before Start().
  int port() const { return port_; }
  // config.listen with the bound port, e.g. "127.0.0.1:43121".
  std::string address() const;

  // Drains: health NOT_SERVING (Check still answers), new calls get UNAVAILABLE from the
  // services, SpeechTranslate sessions end once their admitted segments are answered, and the
  // vox.v1 calls in flight get up to `grace` to finish; then gRPC stops (what still runs is
  // cancelled and its engine stops at the next step) and the engine workers are joined.
  // Idempotent. Blocks for at most about `grace` plus one step.
  void Shutdown(absl::Duration grace);

  // The Synthesize service (tests read its counters); null before Start().
  SpeechServiceImpl* speech_service() const { return speech_.get(); }
  // The SpeechTranslate service (tests read its counters); null before Start().
  SpeechTranslationServiceImpl* speech_translation_service() const {
    return speech_translation_.get();
  }

  // The service names health reports on (besides ""). SpeechService is SERVING only when a
  // speech model is loaded.
  static std::vector<std::string> ServiceNames();

  const ModelRegistry& registry() const { return *registry_; }
  // Every metric the services record (after Start(); HTTP endpoint only with metrics_listen).
  Metrics* metrics() const { return metrics_.get(); }
  // True once Shutdown() has begun: new calls get UNAVAILABLE.
  bool draining() const;

 private:
  const ServerConfig config_;
  // Before the registry: engines and their schedulers report into it until they are destroyed.
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<VoiceStore> voices_;  // config.voices_dir's store; null without one
  std::unique_ptr<CallTracker> calls_;  // vox.v1 calls in flight; outlives server_
  std::unique_ptr<ServerTls> tls_;      // null without TLS; outlives server_
  std::shared_ptr<TokenAuthenticator> tokens_;  // null without a token file
  std::unique_ptr<CallQuotas> quotas_;  // calls open, per token and in all; outlives server_
  std::unique_ptr<DailyCharacters> characters_;  // per token; outlives server_
  std::unique_ptr<IdleStreams> idle_;            // the idle-stream timeout; outlives server_
  std::unique_ptr<Admission> admission_;         // every handler's first check; outlives server_
  std::unique_ptr<TranslationServiceImpl> translation_;
  std::unique_ptr<DiscoveryServiceImpl> discovery_;
  std::unique_ptr<SpeechServiceImpl> speech_;
  std::unique_ptr<SpeechTranslationServiceImpl> speech_translation_;
  std::unique_ptr<VoiceServiceImpl> voice_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace vox

#endif  // VOX_SERVER_VOX_SERVER_H_
