#ifndef VOX_SERVER_MODEL_REGISTRY_H_
#define VOX_SERVER_MODEL_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engines/core/model_info.h"
#include "engines/core/speech_engine.h"
#include "engines/core/translation_engine.h"
#include "server/work_queue.h"

namespace vox {

// A loaded translation engine and the queue whose worker thread owns it. After the registry
// is handed to the server, `engine` is called only from `queue`'s jobs, except for its
// thread-safe members (info(), SupportsPair(), Validate()).
struct TranslationModel {
  std::unique_ptr<TranslationEngine> engine;
  std::unique_ptr<WorkQueue> queue;  // declared last: destroyed (and joined) first
};

// A loaded speech engine and the queue that owns it (same rules as TranslationModel).
struct SpeechModel {
  std::unique_ptr<SpeechEngine> engine;
  std::unique_ptr<WorkQueue> queue;
};

// Every model voxd serves. Filled once at start-up (not thread-safe while filling), then
// read-only: the lookups below may be called from any thread without locking.
class ModelRegistry {
 public:
  ModelRegistry() = default;
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;
  ~ModelRegistry();  // Shutdown()

  // Takes ownership. Names (info().name) must be unique: a duplicate is ALREADY_EXISTS.
  absl::Status AddTranslation(std::unique_ptr<TranslationEngine> engine,
                              std::unique_ptr<WorkQueue> queue);
  absl::Status AddSpeech(std::unique_ptr<SpeechEngine> engine, std::unique_ptr<WorkQueue> queue);

  // The engine for source -> target: the first primary (non-fallback) engine that supports the
  // pair, else the first fallback that does; nullptr when none does.
  TranslationModel* FindTranslation(const std::string& source, const std::string& target) const;

  // Every NLLB code some translation engine lists, sorted, without duplicates.
  std::vector<std::string> TranslationLanguages() const;

  // The speech engine for `language` (and `voice` when not empty): primary before fallback.
  SpeechModel* FindSpeech(const std::string& language, const std::string& voice) const;
  // Every NLLB code some speech engine lists, sorted, without duplicates.
  std::vector<std::string> SpeechLanguages() const;

  const std::vector<std::unique_ptr<TranslationModel>>& translation() const { return translation_; }
  const std::vector<std::unique_ptr<SpeechModel>>& speech() const { return speech_; }
  std::vector<ModelInfo> Models() const;
  bool empty() const { return translation_.empty() && speech_.empty(); }

  // Runs one tiny request through every engine, on its worker thread, and waits. Start-up
  // calls it before reporting SERVING so the first real request does not pay for lazy
  // initialisation. Returns the first failure, naming the model.
  absl::Status WarmUp();

  // Stops every queue (queued jobs still run) and joins the workers. Idempotent.
  void Shutdown();

 private:
  std::vector<std::unique_ptr<TranslationModel>> translation_;
  std::vector<std::unique_ptr<SpeechModel>> speech_;
};

}  // namespace vox

#endif  // VOX_SERVER_MODEL_REGISTRY_H_
