#include "engines/torch/ops/attend.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engines/torch/ops/x86_simd.h"

namespace vox {
namespace {

float DotPortable(const float* a, const float* b, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// out[0, n) += p * v[0, n)
void AxpyPortable(float p, const float* v, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += p * v[i];
}

#ifdef VOX_X86_SIMD
__attribute__((target("avx2,fma"))) float DotAvx2(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  return HorizontalSum(_mm256_add_ps(acc0, acc1)) + DotPortable(a + i, b + i, n - i);
}

__attribute__((target("avx2,fma"))) void AxpyAvx2(float p, const float* v, float* out, int64_t n) {
  const __m256 pv = _mm256_set1_ps(p);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
  AxpyPortable(p, v + i, out + i, n - i);
}
#endif

}  // namespace

void Attend(const float* q, const float* k, const float* v, const int64_t* key_mask, const AttendShape& shape,
            float neg, float* out, int64_t begin, int64_t end) {
#ifdef VOX_X86_SIMD
  const bool avx2 = HasAvx2();
  auto dot = avx2 ? DotAvx2 : DotPortable;
  auto axpy = avx2 ? AxpyAvx2 : AxpyPortable;
#else
  auto dot = DotPortable;
  auto axpy = AxpyPortable;
#endif
  const int64_t dim = shape.dim;
  std::vector<float> scores(static_cast<size_t>(shape.keys));
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t b = bh / shape.heads, h = bh % shape.heads;
    const float* kb = k + b * shape.k_strides[0] + h * shape.k_strides[1];
    const float* vb = v + b * shape.v_strides[0] + h * shape.v_strides[1];
    const int64_t* mask = key_mask + b * shape.keys;
    for (int64_t i = 0; i < shape.queries; ++i) {
      const float* qi = q + (bh * shape.queries + i) * dim;
      float max_score = -INFINITY;
      for (int64_t l = 0; l < shape.keys; ++l) {
        scores[l] = mask[l] != 0 ? dot(qi, kb + l * shape.k_strides[2], dim) : neg;
        max_score = std::max(max_score, scores[l]);
      }
      float total = 0;
      for (int64_t l = 0; l < shape.keys; ++l) {
        scores[l] = std::exp(scores[l] - max_score);
        total += scores[l];
      }
      float* oi = out + (bh * shape.queries + i) * dim;
      std::fill(oi, oi + dim, 0.0f);
      for (int64_t l = 0; l < shape.keys; ++l) {
        if (scores[l] != 0) axpy(scores[l] / total, vb + l * shape.v_strides[2], oi, dim);
      }
    }
  }
}

}  // namespace vox
