#ifndef VOX_ENGINES_TORCH_OPS_X86_SIMD_H_
#define VOX_ENGINES_TORCH_OPS_X86_SIMD_H_

// Small x86 helpers shared by vox's CPU kernels (weight_gemv.cc, attend.cc). Internal to
// vox_cpu_kernels; defines VOX_X86_SIMD where they exist. Stateless and thread-safe.

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define VOX_X86_SIMD 1

namespace vox {

// Whether this CPU has AVX2 and FMA (asked once).
inline bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

// The sum of v's eight lanes.
__attribute__((target("avx2,fma"))) inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace vox
#endif

#endif  // VOX_ENGINES_TORCH_OPS_X86_SIMD_H_
