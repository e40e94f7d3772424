#ifndef VOX_ENGINES_CORE_ENGINE_OPTIONS_H_
#define VOX_ENGINES_CORE_ENGINE_OPTIONS_H_

#include <string>

namespace vox {

// How a neural engine is placed and run. Filled from voxd's config and flags.
struct EngineOptions {
  std::string device = "auto";  // "cpu", "cuda", "cuda:N", "mps", "auto" (cuda > mps > cpu)
  std::string dtype;            // "" = as exported; else "float32", "float16", "bfloat16"
  int intra_op_threads = 0;     // LibTorch intra-op threads; 0 = number of cores
  int blas_threads = 0;         // OpenBLAS's own pool; 0 = same as intra_op_threads
  bool verify_checksums = true; // SHA-256 of every manifest file at load (size is always checked)
  bool fallback = false;        // this engine serves only what no primary engine serves
  // XTTS only: the HiFi-GAN vocoder's convolutions in "float32" or "bfloat16" (CPUs with
  // AVX512-BF16, exports of export_xtts.py version 3 and later).
  std::string vocoder_dtype = "float32";
};

}  // namespace vox

#endif  // VOX_ENGINES_CORE_ENGINE_OPTIONS_H_
