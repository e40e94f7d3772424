#ifndef VOX_SERVER_MODEL_LOADER_H_
#define VOX_SERVER_MODEL_LOADER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engines/core/clock.h"
#include "engines/core/engine_options.h"
#include "engines/core/manifest.h"
#include "engines/core/speech_engine.h"
#include "engines/core/translation_engine.h"
#include "server/config.h"
#include "server/metrics/metrics.h"
#include "server/model_registry.h"

namespace vox {

// Loads one exported model from its manifest (read once by LoadModels, files checked).
// `name` is the directory's base name.
using TranslationLoader = std::function<absl::StatusOr<std::unique_ptr<TranslationEngine>>(
    const std::string& name, Manifest manifest, const EngineOptions& options)>;
using SpeechLoader = std::function<absl::StatusOr<std::unique_ptr<SpeechEngine>>(
    const std::string& name, Manifest manifest, const EngineOptions& options)>;

// The loaders voxd knows, keyed by manifest.json "architecture" ("nllb-m2m100", "xtts-v2").
struct ModelLoaders {
  std::map<std::string, TranslationLoader> translation;
  std::map<std::string, SpeechLoader> speech;
  // When set, runs first on every engine's worker thread, with that engine's options: thread
  // settings that LibTorch/OpenMP keep per thread (intra-op threads) belong there.
  std::function<void(const EngineOptions& options)> configure_worker_thread;
};

// The engines this build of voxd was linked with (server/engine_loaders.cc).
ModelLoaders DefaultModelLoaders();

// Adds the built-in engines (server/engine_loaders.cc) as config.builtin says, after the exported
// models are loaded: kAuto adds Apertium only when no translation model is loaded and espeak-ng
// only when no speech model is, and a built-in engine that cannot start is then logged and
// skipped (the caller reports an empty registry); kFallback always adds them as fallbacks, and a
// failure stops start-up. Returns the first fatal failure. Logs what it added.
// `metrics` (may be null; not owned, must outlive the engines) counts Apertium pipeline restarts
// in vox_pipeline_restarts_total.
absl::Status AddBuiltinEngines(const ServerConfig& config, ModelRegistry* registry,
                               Metrics* metrics = nullptr, Clock* clock = Clock::Real());

// Loads every subdirectory of `config.models_dir` that holds a manifest.json, in name order:
// reads its common header once (LoadManifest, files checked as config.verify_checksums says),
// picks the loader by the manifest's "kind" and "architecture", and adds each engine to
// `registry` with a scheduler configured by `config.<kind>` (SchedulerOptionsFor) on `clock`:
// `config.<kind>.replicas` engines per model: the model is loaded once and the other engines are
// its NewReplica()s, sharing its weights; each engine is owned by its own worker thread
// (configure_worker_thread runs there first). An empty models_dir loads nothing. Directories
// without a manifest.json are skipped (and logged). The first failure stops loading and is
// returned naming the file and the problem, e.g.
//   FAILED_PRECONDITION "models/nllb/manifest.json: unknown architecture 'foo' (...)".
// Logs one line per loaded model to stderr. Cost: whatever the engines' loading costs.
absl::Status LoadModels(const ServerConfig& config, const ModelLoaders& loaders,
                        ModelRegistry* registry, Clock* clock = Clock::Real());

}  // namespace vox

#endif  // VOX_SERVER_MODEL_LOADER_H_
