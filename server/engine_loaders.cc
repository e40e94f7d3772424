// The engines linked into voxd. Kept apart from vox_server so the server library and its
// tests build without LibTorch. XTTS is optional (VOX_VOXD_WITH_XTTS, which defines
// VOX_HAVE_XTTS); NLLB and the built-in engines are always there.
#include "server/model_loader.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "engines/builtin/apertium_engine.h"
#include "engines/builtin/espeak_engine.h"
#include "engines/torch/device.h"
#include "engines/translate/nllb_engine.h"
#if VOX_HAVE_XTTS
#include "engines/speech/xtts_engine.h"
#endif

namespace vox {

ModelLoaders DefaultModelLoaders() {
  ModelLoaders loaders;
  // LibTorch's intra-op count lives in each thread's OpenMP state, so every engine's worker
  // sets it for itself; OpenBLAS's pool is process-wide (the last engine's setting wins).
  loaders.configure_worker_thread = [](const EngineOptions& options) {
    ConfigureThreads(options.intra_op_threads, options.blas_threads);
  };
  loaders.translation["nllb-m2m100"] = [](const std::string& name, Manifest manifest,
                                          const EngineOptions& options)
      -> absl::StatusOr<std::unique_ptr<TranslationEngine>> {
    auto engine = NllbEngine::Load(name, std::move(manifest), options);
    ReleaseFreeMemory();  // what loading freed
    if (!engine.ok()) return engine.status();
    return std::unique_ptr<TranslationEngine>(std::move(*engine));
  };
#if VOX_HAVE_XTTS
  loaders.speech["xtts-v2"] = [](const std::string& name, Manifest manifest,
                                 const EngineOptions& options)
      -> absl::StatusOr<std::unique_ptr<SpeechEngine>> {
    auto engine = XttsEngine::Load(name, std::move(manifest), options);
    ReleaseFreeMemory();
    if (!engine.ok()) return engine.status();
    return std::unique_ptr<SpeechEngine>(std::move(*engine));
  };
#endif
  return loaders;
}

absl::Status AddBuiltinEngines(const ServerConfig& config, ModelRegistry* registry,
                               Metrics* metrics, Clock* clock) {
  const bool want_translation =
      config.builtin.translation == BuiltinMode::kFallback ||
      (config.builtin.translation == BuiltinMode::kAuto && registry->translation().empty());
  const bool want_speech =
      config.builtin.speech == BuiltinMode::kFallback ||
      (config.builtin.speech == BuiltinMode::kAuto && registry->speech().empty());
  if (want_translation) {
    ApertiumOptions options;
    options.pairs = config.builtin.apertium_pairs;
    options.fallback = config.builtin.translation == BuiltinMode::kFallback;
    if (metrics != nullptr) {
      options.on_restart = [metrics, name = options.name](const std::string& mode) {
        metrics->PipelineRestart(name, mode);
      };
    }
    absl::StatusOr<std::unique_ptr<ApertiumEngine>> engine = CreateApertiumEngine(options);
    if (!engine.ok()) {
      const std::string message =
          absl::StrCat("built-in translation engine (Apertium) unavailable: ",
                       engine.status().message());
      if (options.fallback) return absl::Status(engine.status().code(), message);
      std::fprintf(stderr, "voxd: %s\n", message.c_str());
    } else {
      const std::string name = (*engine)->info().name;
      const size_t pairs = (*engine)->pairs().size();
      // One replica: the built-in engines are cheap per call and not meant to be duplicated.
      SchedulerOptions scheduler = SchedulerOptionsFor(config.translation);
      scheduler.replicas = 1;
      if (absl::Status s = registry->AddTranslation(std::move(*engine), scheduler, clock);
          !s.ok()) {
        return s;
      }
      std::fprintf(stderr, "voxd: built-in translation engine '%s' serves %zu Apertium pairs%s\n",
                   name.c_str(), pairs, options.fallback ? " (fallback)" : "");
    }
  }
  if (want_speech) {
    EspeakOptions options;
    options.languages = config.builtin.espeak_languages;
    options.fallback = config.builtin.speech == BuiltinMode::kFallback;
    absl::StatusOr<std::unique_ptr<EspeakEngine>> engine = CreateEspeakEngine(options);
    if (!engine.ok()) {
      const std::string message = absl::StrCat("built-in speech engine (espeak-ng) unavailable: ",
                                               engine.status().message());
      if (options.fallback) return absl::Status(engine.status().code(), message);
      std::fprintf(stderr, "voxd: %s\n", message.c_str());
    } else {
      const std::string name = (*engine)->info().name;
      const size_t voices = (*engine)->voices().size();
      // One replica: espeak-ng keeps process-wide state, so one thread may use it.
      SchedulerOptions scheduler = SchedulerOptionsFor(config.speech);
      scheduler.replicas = 1;
      if (absl::Status s = registry->AddSpeech(std::move(*engine), scheduler, clock); !s.ok()) {
        return s;
      }
      std::fprintf(stderr, "voxd: built-in speech engine '%s' serves %zu voices%s\n",
                   name.c_str(), voices, options.fallback ? " (fallback)" : "");
    }
  }
  return absl::OkStatus();
}

}  // namespace vox
