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

// p[0, n) = softmax(p[0, n)) over the row's max.
void Softmax(float* p, int64_t n) {
  const float max_score = *std::max_element(p, p + n);
  float total = 0;
  for (int64_t j = 0; j < n; ++j) total += (p[j] = std::exp(p[j] - max_score));
  for (int64_t j = 0; j < n; ++j) p[j] /= total;
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

// The lane sums of a[0..7] as one vector: lane t holds the sum of a[t]'s lanes.
__attribute__((target("avx2,fma"))) inline __m256 Sums8(const __m256* a) {
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

// scores[j] = q . k[keys[j]] for j < n (dim a multiple of 8): 8 keys at a time, each dot in
// its own accumulator, summed across lanes together.
__attribute__((target("avx2,fma"))) void ScoresAvx2(const float* q, const float* k, int64_t k_stride,
                                                     const int64_t* keys, int64_t n, int64_t dim, float* scores) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 acc[8];
    const float* kj[8];
    for (int t = 0; t < 8; ++t) {
      acc[t] = _mm256_setzero_ps();
      kj[t] = k + keys[j + t] * k_stride;
    }
    for (int64_t d = 0; d < dim; d += 8) {
      const __m256 qd = _mm256_loadu_ps(q + d);
      for (int t = 0; t < 8; ++t) acc[t] = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kj[t] + d), acc[t]);
    }
    _mm256_storeu_ps(scores + j, Sums8(acc));
  }
  for (; j < n; ++j) scores[j] = DotAvx2(q, k + keys[j] * k_stride, dim);
}

// out[i] = sum over j < n of p[i * n + j] * v[keys[j]] for queries i < count (at most 4; dim a
// multiple of 8): 8 columns of every query at a time, summed in registers over the keys.
__attribute__((target("avx2,fma"))) void WeightedValuesAvx2(const float* p, int64_t count, const float* v,
                                                             int64_t v_stride, const int64_t* keys, int64_t n,
                                                             int64_t dim, float* out, int64_t out_stride) {
  for (int64_t d = 0; d < dim; d += 8) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t j = 0; j < n; ++j) {
      const __m256 vj = _mm256_loadu_ps(v + keys[j] * v_stride + d);
      for (int64_t i = 0; i < count; ++i) acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(p[i * n + j]), vj, acc[i]);
    }
    for (int64_t i = 0; i < count; ++i) _mm256_storeu_ps(out + i * out_stride + d, acc[i]);
  }
}
#endif

}  // namespace

void Attend(const float* q, const float* k, const float* v, const int64_t* key_mask, const AttendShape& shape,
            float neg, float* out, int64_t begin, int64_t end) {
#ifdef VOX_X86_SIMD
  const bool avx2 = HasAvx2();
  auto dot = avx2 ? DotAvx2 : DotPortable;
  auto axpy = avx2 ? AxpyAvx2 : AxpyPortable;
  // Whole vectors per key: then keys and queries go in blocks (ScoresAvx2, WeightedValuesAvx2).
  const bool blocks = avx2 && shape.dim % 8 == 0;
#else
  auto dot = DotPortable;
  auto axpy = AxpyPortable;
  const bool blocks = false;
#endif
  const int64_t dim = shape.dim, keys = shape.keys;
  constexpr int64_t kQueryBlock = 4;
  std::vector<float> scores(static_cast<size_t>(keys * (blocks ? kQueryBlock : 1)));
  std::vector<int64_t> seen(static_cast<size_t>(keys));  // the keys a row's mask lets through
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t b = bh / shape.heads, h = bh % shape.heads;
    const float* kb = k + b * shape.k_strides[0] + h * shape.k_strides[1];
    const float* vb = v + b * shape.v_strides[0] + h * shape.v_strides[1];
    const int64_t* mask = key_mask != nullptr ? key_mask + b * keys : nullptr;
    if (blocks) {
#ifdef VOX_X86_SIMD
      // Masked keys weigh exp(neg - max) = 0 and are never read; with every key masked, every
      // score is neg and the softmax is uniform over all of them.
      int64_t n = 0;
      for (int64_t l = 0; l < keys; ++l) {
        if (mask == nullptr || mask[l] != 0) seen[n++] = l;
      }
      const bool none = n == 0;
      if (none) {
        for (int64_t l = 0; l < keys; ++l) seen[l] = l;
        n = keys;
      }
      for (int64_t i0 = 0; i0 < shape.queries; i0 += kQueryBlock) {
        const int64_t count = std::min(kQueryBlock, shape.queries - i0);
        for (int64_t i = 0; i < count; ++i) {
          float* p = scores.data() + i * n;
          if (none) {
            std::fill(p, p + n, neg);
          } else {
            ScoresAvx2(q + (bh * shape.queries + i0 + i) * dim, kb, shape.k_strides[2], seen.data(), n, dim, p);
          }
          Softmax(p, n);
        }
        WeightedValuesAvx2(scores.data(), count, vb, shape.v_strides[2], seen.data(), n, dim,
                           out + (bh * shape.queries + i0) * dim, dim);
      }
#endif
      continue;
    }
    for (int64_t i = 0; i < shape.queries; ++i) {
      const float* qi = q + (bh * shape.queries + i) * dim;
      for (int64_t l = 0; l < keys; ++l) {
        scores[l] = mask == nullptr || mask[l] != 0 ? dot(qi, kb + l * shape.k_strides[2], dim) : neg;
      }
      Softmax(scores.data(), keys);
      float* oi = out + (bh * shape.queries + i) * dim;
      std::fill(oi, oi + dim, 0.0f);
      for (int64_t l = 0; l < keys; ++l) {
        if (scores[l] != 0) axpy(scores[l], vb + l * shape.v_strides[2], oi, dim);
      }
    }
  }
}

}  // namespace vox
