#ifndef VOX_SERVER_MODEL_REGISTRY_H_
#define VOX_SERVER_MODEL_REGISTRY_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engines/core/clock.h"
#include "engines/core/model_info.h"
#include "engines/core/speech_engine.h"
#include "engines/core/translation_engine.h"
#include "server/engine_step_models.h"
#include "server/scheduler/scheduler_observer.h"
#include "server/scheduler/scheduler_options.h"

namespace vox {

class Metrics;

// A SchedulerObserver that forwards to another one set later (the Prometheus observer exists
// only once the server starts, after the schedulers were created and warmed up). Thread-safe;
// the target must stay alive while set.
class ForwardingObserver : public SchedulerObserver {
 public:
  void SetTarget(SchedulerObserver* target) { target_.store(target); }
  void QueueDepth(int depth) override {
    if (auto* t = target_.load()) t->QueueDepth(depth);
  }
  void RunningBatch(int running) override {
    if (auto* t = target_.load()) t->RunningBatch(running);
  }
  void PausedStreams(int paused) override {
    if (auto* t = target_.load()) t->PausedStreams(paused);
  }
  void QueueWait(absl::Duration wait) override {
    if (auto* t = target_.load()) t->QueueWait(wait);
  }
  void Batch(int size, absl::Duration compute) override {
    if (auto* t = target_.load()) t->Batch(size, compute);
  }
  void Rejected(RejectReason reason) override {
    if (auto* t = target_.load()) t->Rejected(reason);
  }

 private:
  std::atomic<SchedulerObserver*> target_{nullptr};
};

// A loaded translation model: one engine per replica and the ContinuousBatcher whose replica
// workers own them. After the registry is handed to the server, the engines are called only by
// the scheduler's workers, except for replica 0's thread-safe members (info(), SupportsPair(),
// Validate()), which anyone may call through `engine`.
struct TranslationModel {
  std::unique_ptr<TranslationEngine> engine;                      // replica 0
  std::vector<std::unique_ptr<TranslationEngine>> more_replicas;  // replicas 1..n-1
  SchedulerOptions options;
  Clock* clock = nullptr;  // the scheduler's clock (deadlines are converted onto it)
  std::unique_ptr<ForwardingObserver> observer;
  std::unique_ptr<SchedulerObserver> metrics_observer;
  std::unique_ptr<TranslationScheduler> scheduler;  // declared last: destroyed (joined) first
};

// A loaded speech model (same rules as TranslationModel).
struct SpeechModel {
  std::unique_ptr<SpeechEngine> engine;
  std::vector<std::unique_ptr<SpeechEngine>> more_replicas;
  SchedulerOptions options;
  Clock* clock = nullptr;
  std::unique_ptr<ForwardingObserver> observer;
  std::unique_ptr<SchedulerObserver> metrics_observer;
  std::unique_ptr<SpeechScheduler> scheduler;
};

// Every model voxd serves. Filled once at start-up (not thread-safe while filling), then
// read-only: the lookups below may be called from any thread without locking.
class ModelRegistry {
 public:
  ModelRegistry() = default;
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;
  ~ModelRegistry();  // Shutdown()

  // Takes ownership of the replicas (one loaded engine each, all of the same model) and starts
  // their scheduler: `options` with name = the model's name and replicas = replicas.size().
  // `init` runs once on every replica's worker thread before its first sequence (per-thread
  // LibTorch settings). `clock` is not owned. Names (info().name) must be unique: a duplicate is
  // ALREADY_EXISTS; bad options are INVALID_ARGUMENT naming the field.
  absl::Status AddTranslation(std::vector<std::unique_ptr<TranslationEngine>> replicas,
                              SchedulerOptions options, Clock* clock = Clock::Real(),
                              WorkerInit init = nullptr);
  absl::Status AddTranslation(std::unique_ptr<TranslationEngine> engine,
                              SchedulerOptions options = {}, Clock* clock = Clock::Real());
  absl::Status AddSpeech(std::vector<std::unique_ptr<SpeechEngine>> replicas,
                         SchedulerOptions options, Clock* clock = Clock::Real(),
                         WorkerInit init = nullptr, SpeechStepModelOptions step_options = {});
  absl::Status AddSpeech(std::unique_ptr<SpeechEngine> engine, SchedulerOptions options = {},
                         Clock* clock = Clock::Real());

  // The engine for source -> target: the first primary (non-fallback) engine that supports the
  // pair, else the first fallback that does; nullptr when none does.
  TranslationModel* FindTranslation(const std::string& source, const std::string& target) const;

  // Every NLLB code some translation engine lists, sorted, without duplicates.
  std::vector<std::string> TranslationLanguages() const;

  // The speech engine for `language` (and `voice` when not empty): primary before fallback.
  SpeechModel* FindSpeech(const std::string& language, const std::string& voice) const;
  // Every NLLB code some speech engine lists, sorted, without duplicates.
  std::vector<std::string> SpeechLanguages() const;
  // OK when some speech engine serves `language`; else InvalidArgument naming it, with the reason
  // an engine refuses it (ModelInfo::refused_languages) or the known codes.
  absl::Status CheckSpeechLanguage(const std::string& language) const;

  const std::vector<std::unique_ptr<TranslationModel>>& translation() const { return translation_; }
  const std::vector<std::unique_ptr<SpeechModel>>& speech() const { return speech_; }
  std::vector<ModelInfo> Models() const;
  bool empty() const { return translation_.empty() && speech_.empty(); }

  // Runs every model through its scheduler before SERVING: one full concurrent batch of tiny
  // requests (replicas x max_batch_size sequences submitted at once, as many as the queue takes),
  // so the first real requests pay for neither lazy initialisation nor the first batched steps.
  // Waits (with max_queue_delay_us > 0 and a queue smaller than a batch, that long on the
  // scheduler's clock). Returns the first failure, naming the model.
  absl::Status WarmUp();

  // From now on every scheduler reports to `metrics` (labels {engine, stage}: "translate" or
  // "synthesize"). `metrics` must outlive the schedulers (Shutdown() or the registry).
  void AttachMetrics(Metrics* metrics);

  // Refuses new work, ends what is left (UNAVAILABLE) and joins the workers; afterwards the
  // models have no scheduler. Callers first let admitted work finish (VoxServer::Shutdown drains
  // the gRPC server). Idempotent.
  void Shutdown();

 private:
  std::vector<std::unique_ptr<TranslationModel>> translation_;
  std::vector<std::unique_ptr<SpeechModel>> speech_;
};

// vox.v1.Priority (0 unspecified, 1 low, 2 normal, 3 high) as a scheduler level among `levels`:
// low -> 0, high -> levels-1, normal and unspecified -> (levels-1)/2 (with 2 levels normal
// shares the lower level with low; with 3, the middle one).
int SchedulerPriority(int proto_priority, int levels);

// The gRPC deadline `deadline` (real time) on `clock`: clock->Now() plus the time left.
absl::Time DeadlineOnClock(absl::Time deadline, Clock* clock);

}  // namespace vox

#endif  // VOX_SERVER_MODEL_REGISTRY_H_
