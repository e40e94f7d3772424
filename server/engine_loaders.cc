// The engines linked into voxd. Kept apart from vox_server so the server library and its
// tests build without LibTorch; server.cmake defines VOX_HAVE_<ENGINE> for each engine
// library present in this build.
#include "server/model_loader.h"

#if VOX_HAVE_TORCH
#include "engines/torch/device.h"
#endif
#if VOX_HAVE_NLLB
#include "engines/translate/nllb_engine.h"
#endif
#if VOX_HAVE_XTTS
#include "engines/speech/xtts_engine.h"
#endif

namespace vox {

ModelLoaders DefaultModelLoaders() {
  ModelLoaders loaders;
#if VOX_HAVE_TORCH
  // LibTorch's intra-op count lives in each thread's OpenMP state, so every engine's worker
  // sets it for itself; OpenBLAS's pool is process-wide (the last engine's setting wins).
  loaders.configure_worker_thread = [](const EngineOptions& options) {
    ConfigureThreads(options.intra_op_threads, options.blas_threads);
  };
#endif
#if VOX_HAVE_NLLB
  loaders.translation["nllb-m2m100"] = [](const std::string& name, const std::string& dir,
                                          const EngineOptions& options)
      -> absl::StatusOr<std::unique_ptr<TranslationEngine>> {
    auto engine = LoadNllbEngine(name, dir, options);
    if (!engine.ok()) return engine.status();
    return std::unique_ptr<TranslationEngine>(std::move(*engine));
  };
#endif
#if VOX_HAVE_XTTS
  loaders.speech["xtts-v2"] = [](const std::string& name, const std::string& dir,
                                 const EngineOptions& options)
      -> absl::StatusOr<std::unique_ptr<SpeechEngine>> {
    auto engine = LoadXttsEngine(name, dir, options);
    if (!engine.ok()) return engine.status();
    return std::unique_ptr<SpeechEngine>(std::move(*engine));
  };
#endif
  return loaders;
}

}  // namespace vox
