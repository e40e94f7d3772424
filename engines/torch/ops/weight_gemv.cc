#include "engines/torch/ops/weight_gemv.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "engines/torch/ops/amx_int8.h"
#include "engines/torch/ops/x86_simd.h"

namespace vox {
namespace {

// Rows of x handled together, each weight row read once per group: the portable kernels and
// AVX2's float32 and bfloat16 one (AVX2's int8 kernel takes tiles, Int16Tiles and ByteTiles;
// the AVX-512 int8 kernel kVnniGroup).
constexpr int kGroup = 2;
constexpr int kVnniGroup = 8;

inline float Bf16ToFloat(uint16_t bits) {
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

// A weight as float32: bfloat16 bit patterns widen exactly, float32 is as it is.
inline float WeightToFloat(uint16_t bits) { return Bf16ToFloat(bits); }
inline float WeightToFloat(float w) { return w; }

// Portable kernel for bfloat16 (W = uint16_t) and float32 weights: 8 partial sums per row, then
// summed pairwise, so compilers can vectorize it without reassociating.
template <typename W>
void DotFloatPortable(const float* x, int64_t n, int64_t in, const W* w, float* dots) {
  for (int64_t r = 0; r < n; ++r) {
    float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const float* xr = x + r * in;
    int64_t i = 0;
    for (; i + 8 <= in; i += 8) {
      for (int k = 0; k < 8; ++k) part[k] += WeightToFloat(w[i + k]) * xr[i + k];
    }
    float tail = 0;
    for (; i < in; ++i) tail += WeightToFloat(w[i]) * xr[i];
    dots[r] = ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7])) + tail;
  }
}

// Int8 dot products are summed exactly. One product is at most 127 * 32767 < 2^22.0 in
// magnitude, so an int32 holds the sum of 512 of them (< 2^31); longer sums go through int64.
// The SIMD kernels fold their int32 lanes into int64 every kInt8Block elements (a lane of their
// two accumulators together has then summed at most 256 products); the portable one every
// kPortableBlock.
constexpr int64_t kInt8Block = 2048;
constexpr int64_t kPortableBlock = 512;

int64_t DotInt8Portable(const int16_t* x, const int8_t* w, int64_t in) {
  int64_t total = 0;
  for (int64_t b = 0; b < in; b += kPortableBlock) {
    const int64_t e = b + kPortableBlock < in ? b + kPortableBlock : in;
    int32_t part = 0;
    for (int64_t i = b; i < e; ++i) part += static_cast<int32_t>(w[i]) * static_cast<int32_t>(x[i]);
    total += part;
  }
  return total;
}

#ifdef VOX_X86_SIMD
// Sum of the eight int32 lanes, in int64.
__attribute__((target("avx2,fma"))) inline int64_t HorizontalSumInt64(__m256i v) {
  const __m256i wide = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
  alignas(32) int64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), wide);
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

// The AVX2 int8 kernel: exact int8 x int16 dots through vpmaddwd, which multiplies int16 pairs
// and sums each pair into an int32 lane. A tile of W weight rows against R rows keeps its W * R
// accumulators in registers, so each x vector loaded feeds W products and each weight vector R.
// One lane sums one pair per 16 elements, at most 2 * 128 * 32768 = 2^23, so 128 steps
// (kInt8Block elements) fit in int32 before they are folded into int64.
// Int32x8 is a GCC/clang vector: `acc += product` keeps the accumulators in registers, where
// _mm256_add_epi32 had GCC copy each one every step.
typedef int32_t Int32x8 __attribute__((vector_size(32)));

// 16 weights as int16: widened from int8 here, or already widened (WidenRows).
__attribute__((target("avx2,fma"))) inline __m256i LoadWeights16(const int8_t* w) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
}
__attribute__((target("avx2,fma"))) inline __m256i LoadWeights16(const int16_t* w) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
}

// A tile's int32 lanes, summed into its int64 totals at the end of a block.
template <int W, int R>
__attribute__((target("avx2,fma"))) inline void FoldTile(const Int32x8 (&acc)[W][R], int64_t* total) {
  for (int k = 0; k < W; ++k) {
    for (int r = 0; r < R; ++r) total[k * R + r] += HorizontalSumInt64(reinterpret_cast<__m256i>(acc[k][r]));
  }
}

// The lane sums of a[0..7] as one vector, lane t holding a[t]'s (int32, wrapping).
__attribute__((target("avx2,fma"))) inline __m256i LaneSums8(const __m256i* a) {
  const __m256i t0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
  const __m256i t1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(t0, t1, 0x20), _mm256_permute2x128_si256(t0, t1, 0x31));
}

// FoldTile for at most 8 accumulators whose lanes and every sum of them fit in int32: one tree
// of vphaddd rather than an int64 sum each.
template <int W, int R>
__attribute__((target("avx2,fma"))) inline void FoldTileInt32(const Int32x8 (&acc)[W][R], int64_t* total) {
  static_assert(W * R <= 8, "one tree of eight");
  __m256i v[8];
  for (int j = 0; j < 8; ++j) v[j] = j < W * R ? reinterpret_cast<__m256i>(acc[j / R][j % R]) : _mm256_setzero_si256();
  alignas(32) int32_t sums[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(sums), LaneSums8(v));
  for (int j = 0; j < W * R; ++j) total[j] += sums[j];
}

// A tile's dots: its totals plus the elements from i on, past its last whole step.
template <int W, int R, typename X, typename T>
inline void FinishTile(const X* const* x, const T* const* w, int64_t i, int64_t in, const int64_t* total,
                       int64_t* dots) {
  for (int k = 0; k < W; ++k) {
    for (int r = 0; r < R; ++r) {
      int64_t tail = 0;
      for (int64_t j = i; j < in; ++j) tail += static_cast<int32_t>(w[k][j]) * static_cast<int32_t>(x[r][j]);
      dots[k * R + r] = total[k * R + r] + tail;
    }
  }
}

// dots[k * R + r] = dot(w[k][0, in), x[r][0, in)) for W weight rows (int8, or int16 from
// WidenRows) and R rows of x. With `ahead` (the next tile's W int8 weight rows, contiguous) not
// null, a cache line of it is prefetched per step, in order, as RowTileInt8Vnni does: W short
// streams reach the hardware prefetcher late (128 MiB of weights against 1 row read at 9.5 GB/s
// without, where 1 weight row at a time read 17).
template <int W, int R, typename T>
__attribute__((target("avx2,fma"))) void TileInt8Avx2(const int16_t* const* x, const T* const* w, int64_t in,
                                                      const int8_t* ahead, int64_t* dots) {
  static_assert(W * 16 == 64, "a step prefetches one cache line of the next tile");
  int64_t total[W * R] = {};
  int64_t i = 0;
  while (i + 16 <= in) {
    const int64_t block_end = i + kInt8Block < in ? i + kInt8Block : in;
    Int32x8 acc[W][R] = {};
    for (; i + 16 <= block_end; i += 16) {
      if (ahead != nullptr) _mm_prefetch(reinterpret_cast<const char*>(ahead + W * i), _MM_HINT_T0);
      __m256i wv[W];
      for (int k = 0; k < W; ++k) wv[k] = LoadWeights16(w[k] + i);
      for (int r = 0; r < R; ++r) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[r] + i));
        for (int k = 0; k < W; ++k) acc[k][r] += reinterpret_cast<Int32x8>(_mm256_madd_epi16(wv[k], xv));
      }
    }
    FoldTile<W, R>(acc, total);
  }
  FinishTile<W, R>(x, w, i, in, total, dots);
}

// n weight rows of in int8 -> int16.
__attribute__((target("avx2,fma"))) void WidenRows(const int8_t* w, int64_t n, int64_t in, int16_t* wide) {
  int64_t i = 0;
  for (; i + 16 <= n * in; i += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(wide + i), LoadWeights16(w + i));
  for (; i < n * in; ++i) wide[i] = w[i];
}

// With activations in int8's range (x_bits 8) both operands fit in a byte, and vpmaddubsw
// multiplies 32 byte pairs at once (on a Zen 3 core 0-10 % faster than the int16 tiles from 4
// rows, docs/benchmarks.md, "vox::linear's AVX2 int8 kernel"): it takes |w| unsigned and x with
// w's sign (vpsignb), so a pair sums to at most 2 * 128 * 127
// = 32512 and never saturates; vpmaddwd with ones then sums two pairs into an int32 lane, at
// most 65024 a step, kInt8x8Block elements (1024 steps) before they are folded.
constexpr int64_t kInt8x8Block = 32768;

// Activations of 7 bits (|x| <= 63) shifted by this are in [1, 127]: a dot with them is the
// dot with x plus kShift7 * sum(w).
constexpr int kShift7 = 64;

// dots[k * R + r] = dot(w[k][0, in), x[r][0, in)) for W int8 weight rows and R rows of int8 x
// (|x| <= 127); prefetches `ahead` as TileInt8Avx2 does. kUnsigned: every x is in [0, 127]
// (activations of 7 bits shifted by kShift7, ByteTiles<true>) and vpmaddubsw takes it as the
// unsigned operand and w as it is, a pair at most 2 * 127 * 128 = 32512: two instructions of
// the multiply pipes per 32 pairs instead of three (docs/benchmarks.md, "7-bit activations").
template <int W, int R, bool kUnsigned>
__attribute__((target("avx2,fma"))) void TileInt8x8Avx2(const int8_t* const* x, const int8_t* const* w, int64_t in,
                                                        const int8_t* ahead, int64_t* dots) {
  const __m256i ones = _mm256_set1_epi16(1);
  int64_t total[W * R] = {};
  int64_t i = 0;
  while (i + 32 <= in) {
    const int64_t block_end = i + kInt8x8Block < in ? i + kInt8x8Block : in;
    Int32x8 acc[W][R] = {};
    for (; i + 32 <= block_end; i += 32) {
      if (ahead != nullptr) {
        for (int line = 0; line < W / 2; ++line) {
          _mm_prefetch(reinterpret_cast<const char*>(ahead + W * i + 64 * line), _MM_HINT_T0);
        }
      }
      // The next tile's rows of x (the chunk's next R rows), a cache line a step: a tile starts
      // with them in L1 rather than waiting on L2 (2-4 % from 4 rows, docs/benchmarks.md,
      // "7-bit activations").
      _mm_prefetch(reinterpret_cast<const char*>(x[0] + R * in + R * i), _MM_HINT_T0);
      if constexpr (kUnsigned) {
        __m256i wv[W];
        for (int k = 0; k < W; ++k) wv[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[k] + i));
        for (int r = 0; r < R; ++r) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[r] + i));
          for (int k = 0; k < W; ++k) {
            acc[k][r] += reinterpret_cast<Int32x8>(_mm256_madd_epi16(_mm256_maddubs_epi16(xv, wv[k]), ones));
          }
        }
      } else {
        __m256i magnitude[W];
        for (int k = 0; k < W; ++k) {
          magnitude[k] = _mm256_abs_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[k] + i)));
        }
        for (int r = 0; r < R; ++r) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[r] + i));
          for (int k = 0; k < W; ++k) {
            const __m256i signed_x =
                _mm256_sign_epi8(xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[k] + i)));
            acc[k][r] += reinterpret_cast<Int32x8>(_mm256_madd_epi16(_mm256_maddubs_epi16(magnitude[k], signed_x), ones));
          }
        }
      }
    }
    // A block's partial dots are within 32768 * 128 * 127 < 2^29: its lanes fold in int32, one
    // tree for the tile (docs/benchmarks.md, "Aligned scratch and int32 folds").
    FoldTileInt32<W, R>(acc, total);
  }
  FinishTile<W, R>(x, w, i, in, total, dots);
}

// n rows of int16 in int8's range -> int8, plus shift (0, or kShift7 for 7-bit activations).
__attribute__((target("avx2,fma"))) void NarrowRows(const int16_t* x, int64_t n, int64_t in, int8_t shift,
                                                    int8_t* narrow) {
  const __m256i offset = _mm256_set1_epi8(shift);
  int64_t i = 0;
  for (; i + 32 <= n * in; i += 32) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 16));
    // packs interleaves 128-bit halves (a0-7 b0-7 a8-15 b8-15); the permute restores the order.
    const __m256i bytes = _mm256_permute4x64_epi64(_mm256_packs_epi16(a, b), 0xd8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(narrow + i), _mm256_add_epi8(bytes, offset));
  }
  for (; i < n * in; ++i) narrow[i] = static_cast<int8_t>(x[i] + shift);
}

// sum(w[0, in)) for int8 w: vpsadbw sums w + 128 (w with its top bit flipped) 8 bytes a lane.
__attribute__((target("avx2,fma"))) int64_t SumInt8(const int8_t* w, int64_t in) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80)), zero = _mm256_setzero_si256();
  __m256i sums = zero;
  int64_t i = 0;
  for (; i + 32 <= in; i += 32) {
    const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)), flip);
    sums = _mm256_add_epi64(sums, _mm256_sad_epu8(v, zero));
  }
  alignas(32) int64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sums);
  int64_t total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) - 128 * i;
  for (; i < in; ++i) total += w[i];
  return total;
}

// The same with AVX-512 VNNI (vpdpwssd multiplies and accumulates in one instruction): 64
// weights per step. Exact integer sums, so its results equal the other kernels' bit for bit.
#define VOX_AVX512_VNNI "avx512f,avx512bw,avx512vnni,avx2,fma"
__attribute__((target(VOX_AVX512_VNNI))) inline int64_t HorizontalSumInt64(__m512i v) {
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, v);
  int64_t sum = 0;
  for (int32_t lane : lanes) sum += lane;
  return sum;
}

template <int N>
__attribute__((target(VOX_AVX512_VNNI))) inline void DotInt8Vnni(const int16_t* x, const int8_t* w,
                                                                  int64_t in, int64_t* dots) {
  int64_t total[N];
  for (int r = 0; r < N; ++r) total[r] = 0;
  int64_t i = 0;
  while (i + 64 <= in) {
    const int64_t block_end = i + kInt8Block < in ? i + kInt8Block : in;
    __m512i acc[N][2];
    for (int r = 0; r < N; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (; i + 64 <= block_end; i += 64) {
      const __m512i w0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
      const __m512i w1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 32)));
      for (int r = 0; r < N; ++r) {
        const int16_t* xr = x + r * in + i;
        acc[r][0] = _mm512_dpwssd_epi32(acc[r][0], w0, _mm512_loadu_si512(xr));
        acc[r][1] = _mm512_dpwssd_epi32(acc[r][1], w1, _mm512_loadu_si512(xr + 32));
      }
    }
    // Each lane of either accumulator holds at most 64 products, so their sum fits in int32.
    for (int r = 0; r < N; ++r) total[r] += HorizontalSumInt64(_mm512_add_epi32(acc[r][0], acc[r][1]));
  }
  for (int r = 0; r < N; ++r) {
    for (int64_t j = i; j < in; ++j) total[r] += static_cast<int32_t>(w[j]) * static_cast<int32_t>(x[r * in + j]);
    dots[r] = total[r];
  }
}

// n (1..kVnniGroup) rows at once.
__attribute__((target(VOX_AVX512_VNNI))) void DotInt8VnniRows(const int16_t* x, const int8_t* w, int64_t in,
                                                               int64_t n, int64_t* dots) {
  switch (n) {
    case 1: return DotInt8Vnni<1>(x, w, in, dots);
    case 2: return DotInt8Vnni<2>(x, w, in, dots);
    case 3: return DotInt8Vnni<3>(x, w, in, dots);
    case 4: return DotInt8Vnni<4>(x, w, in, dots);
    case 5: return DotInt8Vnni<5>(x, w, in, dots);
    case 6: return DotInt8Vnni<6>(x, w, in, dots);
    case 7: return DotInt8Vnni<7>(x, w, in, dots);
    default: return DotInt8Vnni<8>(x, w, in, dots);
  }
}

// The matrix kernel: a tile of WR weight rows against N rows of x, with one int32 accumulator
// per pair and no folding, for rows whose every partial dot fits in int32 (Int32Safe). 32
// weights of each weight row are widened once per step and used N times; each x vector is
// loaded once and used WR times. WR * N + WR + 1 <= 32 registers.
constexpr int kTileWeights = 3;
// Weights are prefetched this many bytes ahead of the tile's loads: a step of 1 row is bound by
// how fast the weights arrive, and the hardware prefetcher alone brought them slower (a batch-1
// token 38.2-38.8 against 34.8-36.0 ms; docs/benchmarks.md, "AMX and a fused attention").
constexpr int64_t kPrefetchAhead = 1024;

// The lanes lo picks from (a, b) plus those hi picks.
__attribute__((target(VOX_AVX512_VNNI))) inline __m512i FoldLanes(__m512i a, __m512i b, const int32_t* lo,
                                                                 const int32_t* hi) {
  return _mm512_add_epi32(_mm512_permutex2var_epi32(a, _mm512_load_si512(lo), b),
                          _mm512_permutex2var_epi32(a, _mm512_load_si512(hi), b));
}

// out[r] = the sum of v_r's sixteen int32 lanes, for r < N (wrapping; callers keep it in
// range). A transposing tree: each level adds the two halves of pairs of vectors picked with
// vpermt2d (24 instructions for 8 sums, against 8 each one by one). g++ 12's extract, cast and
// shuffle intrinsics would trip -Wuninitialized.
template <int N>
__attribute__((target(VOX_AVX512_VNNI))) inline void SumLanes(__m512i v0, __m512i v1, __m512i v2, __m512i v3,
                                                              __m512i v4, __m512i v5, __m512i v6, __m512i v7,
                                                              int32_t* out) {
  alignas(64) static constexpr int32_t kLo[4][16] = {
      {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},       // halves of 2 vectors
      {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27},     // quarters of 4
      {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29},     // eighths of 8
      {0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14}};        // pairs of lanes
  alignas(64) static constexpr int32_t kHi[4][16] = {
      {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31},
      {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31},
      {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31},
      {1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15}};
  const __m512i quarters0 = FoldLanes(FoldLanes(v0, v1, kLo[0], kHi[0]), FoldLanes(v2, v3, kLo[0], kHi[0]), kLo[1], kHi[1]);
  const __m512i quarters1 = N > 4 ? FoldLanes(FoldLanes(v4, v5, kLo[0], kHi[0]), FoldLanes(v6, v7, kLo[0], kHi[0]), kLo[1], kHi[1])
                                  : _mm512_setzero_si512();
  const __m512i pairs = FoldLanes(quarters0, quarters1, kLo[2], kHi[2]);
  _mm512_mask_storeu_epi32(out, static_cast<__mmask16>((1u << N) - 1), FoldLanes(pairs, pairs, kLo[3], kHi[3]));
}

// acc += pairwise products of a and b. g++ 12 compiles the intrinsic as if acc were not
// overwritten, with a register copy before and after each one; the asm ties it.
__attribute__((target(VOX_AVX512_VNNI))) inline void Dpwssd(__m512i& acc, __m512i a, __m512i b) {
#if defined(__GNUC__) && !defined(__clang__)
  asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "vm"(b));
#else
  acc = _mm512_dpwssd_epi32(acc, a, b);
#endif
}

// Named accumulators (aK_R: weight row K, x row R) rather than an array: g++ keeps an array
// of 24 vectors in memory and stores it at every step, at half the speed.
#define VOX_TILE_ACC(r) __m512i a0##r = _mm512_setzero_si512(), a1##r = a0##r, a2##r = a0##r;
#define VOX_TILE_ROW(r)                                                   \
  if constexpr (N > r) {                                                  \
    const __m512i xv = _mm512_loadu_si512(x + r * in + i);                \
    Dpwssd(a0##r, w0, xv);                                                \
    if constexpr (WR > 1) Dpwssd(a1##r, w1, xv);                          \
    if constexpr (WR > 2) Dpwssd(a2##r, w2, xv);                          \
  }

template <int WR, int N>
__attribute__((target(VOX_AVX512_VNNI))) void TileInt8Vnni(const int16_t* x, const int8_t* w, int64_t in,
                                                            int32_t* dots) {
  static_assert(WR >= 1 && WR <= kTileWeights && N >= 1 && N <= kVnniGroup, "tile out of range");
  VOX_TILE_ACC(0) VOX_TILE_ACC(1) VOX_TILE_ACC(2) VOX_TILE_ACC(3)
  VOX_TILE_ACC(4) VOX_TILE_ACC(5) VOX_TILE_ACC(6) VOX_TILE_ACC(7)
  int64_t i = 0;
  for (; i + 32 <= in; i += 32) {
    _mm_prefetch(reinterpret_cast<const char*>(w + i + kPrefetchAhead), _MM_HINT_T0);
    if constexpr (WR > 1) _mm_prefetch(reinterpret_cast<const char*>(w + in + i + kPrefetchAhead), _MM_HINT_T0);
    if constexpr (WR > 2) _mm_prefetch(reinterpret_cast<const char*>(w + 2 * in + i + kPrefetchAhead), _MM_HINT_T0);
    const __m512i w0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
    __m512i w1 = w0, w2 = w0;
    if constexpr (WR > 1) w1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + in + i)));
    if constexpr (WR > 2) w2 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * in + i)));
    VOX_TILE_ROW(0) VOX_TILE_ROW(1) VOX_TILE_ROW(2) VOX_TILE_ROW(3)
    VOX_TILE_ROW(4) VOX_TILE_ROW(5) VOX_TILE_ROW(6) VOX_TILE_ROW(7)
  }
  SumLanes<N>(a00, a01, a02, a03, a04, a05, a06, a07, dots);
  if constexpr (WR > 1) SumLanes<N>(a10, a11, a12, a13, a14, a15, a16, a17, dots + kVnniGroup);
  if constexpr (WR > 2) SumLanes<N>(a20, a21, a22, a23, a24, a25, a26, a27, dots + 2 * kVnniGroup);
  for (; i < in; ++i) {
    for (int k = 0; k < WR; ++k) {
      for (int r = 0; r < N; ++r) dots[k * kVnniGroup + r] += static_cast<int32_t>(w[k * in + i]) * static_cast<int32_t>(x[r * in + i]);
    }
  }
}
#undef VOX_TILE_ACC
#undef VOX_TILE_ROW

// One row of x against kRowTileWeights weight rows, the product of a batch-1 step: one
// accumulator per weight row, all independent. A tile of 3 weight rows against 1 row waits on
// vpdpwssd's latency at every step (27 GMAC/s from L2 on a Zen 4 core, 10 from memory, where a
// read of the same bytes runs at 32 GB/s).
constexpr int kRowTileWeights = 8;
#define VOX_ROW_STEP(k)                                                                               \
  Dpwssd(a##k, _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k * in + i))), xv);

__attribute__((target(VOX_AVX512_VNNI))) void RowTileInt8Vnni(const int16_t* x, const int8_t* w, int64_t in,
                                                               int32_t* dots) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  int64_t i = 0;
  // The next tile's weights, in order, a quarter KiB per step: its eight rows are eight short
  // streams that the hardware prefetcher would pick up late.
  const char* next = reinterpret_cast<const char*>(w + kRowTileWeights * in);
  for (; i + 32 <= in; i += 32) {
    const char* p = next + kRowTileWeights * i;
    _mm_prefetch(p, _MM_HINT_T0);
    _mm_prefetch(p + 64, _MM_HINT_T0);
    _mm_prefetch(p + 128, _MM_HINT_T0);
    _mm_prefetch(p + 192, _MM_HINT_T0);
    const __m512i xv = _mm512_loadu_si512(x + i);
    VOX_ROW_STEP(0) VOX_ROW_STEP(1) VOX_ROW_STEP(2) VOX_ROW_STEP(3)
    VOX_ROW_STEP(4) VOX_ROW_STEP(5) VOX_ROW_STEP(6) VOX_ROW_STEP(7)
  }
  SumLanes<kRowTileWeights>(a0, a1, a2, a3, a4, a5, a6, a7, dots);
  for (; i < in; ++i) {
    for (int k = 0; k < kRowTileWeights; ++k) dots[k] += static_cast<int32_t>(w[k * in + i]) * static_cast<int32_t>(x[i]);
  }
}
#undef VOX_ROW_STEP

template <int WR>
__attribute__((target(VOX_AVX512_VNNI))) void TileInt8VnniRows(const int16_t* x, const int8_t* w, int64_t in,
                                                                int64_t n, int32_t* dots) {
  switch (n) {
    case 1: return TileInt8Vnni<WR, 1>(x, w, in, dots);
    case 2: return TileInt8Vnni<WR, 2>(x, w, in, dots);
    case 3: return TileInt8Vnni<WR, 3>(x, w, in, dots);
    case 4: return TileInt8Vnni<WR, 4>(x, w, in, dots);
    case 5: return TileInt8Vnni<WR, 5>(x, w, in, dots);
    case 6: return TileInt8Vnni<WR, 6>(x, w, in, dots);
    case 7: return TileInt8Vnni<WR, 7>(x, w, in, dots);
    default: return TileInt8Vnni<WR, 8>(x, w, in, dots);
  }
}

// dots[k * kVnniGroup + r] for the wr (1..kTileWeights) weight rows at w and n (1..kVnniGroup)
// rows at x.
__attribute__((target(VOX_AVX512_VNNI))) void TileInt8VnniAny(const int16_t* x, const int8_t* w, int64_t in,
                                                               int64_t wr, int64_t n, int32_t* dots) {
  static_assert(kTileWeights == 3, "TileInt8VnniAny handles 1 to 3 weight rows");
  switch (wr) {
    case 1: return TileInt8VnniRows<1>(x, w, in, n, dots);
    case 2: return TileInt8VnniRows<2>(x, w, in, n, dots);
    default: return TileInt8VnniRows<3>(x, w, in, n, dots);
  }
}

bool HasAvx512Vnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vnni");
  return has;
}

// The 8 weights at w as float32 (bfloat16 widened exactly).
__attribute__((target("avx2,fma"))) inline __m256 Load8(const uint16_t* w) {
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
}
__attribute__((target("avx2,fma"))) inline __m256 Load8(const float* w) { return _mm256_loadu_ps(w); }

// The scalar rest of a dot from i on, in one place so that every AVX2 kernel rounds it alike.
template <typename W>
__attribute__((target("avx2,fma"))) inline float TailDotAvx2(const float* x, const W* w, int64_t i, int64_t in) {
  float tail = 0;
  for (; i < in; ++i) tail += WeightToFloat(w[i]) * x[i];
  return tail;
}

// Dots of n <= kGroup rows against one weight row: 32 weights per step into 4 accumulators per
// row (2 would leave the FMA latency exposed), all in registers (kGroup = 2: 8 accumulators and
// 4 loaded vectors fit AVX2's 16). The order of the sums is the same for every n.
template <int N, typename W>
__attribute__((target("avx2,fma"))) inline void DotFloatAvx2(const float* x, int64_t in, const W* w, float* dots) {
  __m256 acc[N][4];
  for (int r = 0; r < N; ++r) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= in; i += 32) {
    const __m256 w0 = Load8(w + i), w1 = Load8(w + i + 8);
    const __m256 w2 = Load8(w + i + 16), w3 = Load8(w + i + 24);
    for (int r = 0; r < N; ++r) {
      const float* xr = x + r * in + i;
      acc[r][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xr), acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xr + 8), acc[r][1]);
      acc[r][2] = _mm256_fmadd_ps(w2, _mm256_loadu_ps(xr + 16), acc[r][2]);
      acc[r][3] = _mm256_fmadd_ps(w3, _mm256_loadu_ps(xr + 24), acc[r][3]);
    }
  }
  for (int r = 0; r < N; ++r) {
    const __m256 sum = _mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][1]), _mm256_add_ps(acc[r][2], acc[r][3]));
    dots[r] = HorizontalSum(sum) + TailDotAvx2(x + r * in, w, i, in);
  }
}

// One row of x against the S weight rows w[0..S), each dot summed exactly as DotFloatAvx2<1>
// sums it (S = 3: 12 accumulators and 4 vectors of x fill AVX2's 16 registers). Used with the
// weight rows a third of a thread's range apart: three sequential streams of weights keep more
// reads in flight than one (a decoder token's float32 weights 5-30 % faster on an AVX2-only
// EPYC; docs/benchmarks.md, "Weight streams for one row").
template <int S, typename W>
__attribute__((target("avx2,fma"))) inline void DotFloatStreamsAvx2(const float* x, int64_t in, const W* const* w,
                                                                    float* dots) {
  __m256 acc[S][4];
  for (int k = 0; k < S; ++k) acc[k][0] = acc[k][1] = acc[k][2] = acc[k][3] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= in; i += 32) {
    const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
    const __m256 x2 = _mm256_loadu_ps(x + i + 16), x3 = _mm256_loadu_ps(x + i + 24);
    for (int k = 0; k < S; ++k) {
      acc[k][0] = _mm256_fmadd_ps(Load8(w[k] + i), x0, acc[k][0]);
      acc[k][1] = _mm256_fmadd_ps(Load8(w[k] + i + 8), x1, acc[k][1]);
      acc[k][2] = _mm256_fmadd_ps(Load8(w[k] + i + 16), x2, acc[k][2]);
      acc[k][3] = _mm256_fmadd_ps(Load8(w[k] + i + 24), x3, acc[k][3]);
    }
  }
  for (int k = 0; k < S; ++k) {
    const __m256 sum = _mm256_add_ps(_mm256_add_ps(acc[k][0], acc[k][1]), _mm256_add_ps(acc[k][2], acc[k][3]));
    dots[k] = HorizontalSum(sum) + TailDotAvx2(x, w[k], i, in);
  }
}
constexpr int kFloatStreamsAvx2 = 3;

// One row of x against weight rows [begin, end): rows begin + k, begin + part + k, begin + 2 part
// + k together, then the rows past the last whole part one at a time.
template <typename W, typename Write>
__attribute__((target("avx2,fma"))) void MultiplyOneRowFloatAvx2(const float* x, int64_t in, const W* w,
                                                                  int64_t begin, int64_t end, const Write& write) {
  constexpr int S = kFloatStreamsAvx2;
  const int64_t part = (end - begin) / S;
  for (int64_t o = begin; o < begin + part; ++o) {
    const W* rows[S];
    for (int k = 0; k < S; ++k) rows[k] = w + (o + k * part) * in;
    float dots[S];
    DotFloatStreamsAvx2<S>(x, in, rows, dots);
    for (int k = 0; k < S; ++k) write(dots[k], 0, o + k * part);
  }
  for (int64_t o = begin + S * part; o < end; ++o) {
    float dot;
    DotFloatAvx2<1>(x, in, w + o * in, &dot);
    write(dot, 0, o);
  }
}

template <typename W>
__attribute__((target("avx2,fma"))) void DotFloatGroupAvx2(const float* x, int64_t n, int64_t in, const W* w,
                                                            float* dots) {
  static_assert(kGroup == 2, "DotFloatGroupAvx2 handles groups of 1 or 2 rows");
  if (n == 2) {
    DotFloatAvx2<2>(x, in, w, dots);
  } else {
    DotFloatAvx2<1>(x, in, w, dots);
  }
}

#define VOX_AVX512 "avx512f,avx2,fma"
bool HasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

// The 16 weights at w as float32 (bfloat16 widened exactly). The zero-masked forms: g++ 12
// warns that the plain ones' undefined source may be used uninitialized.
__attribute__((target(VOX_AVX512))) inline __m512 Load16(const uint16_t* w) {
  const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, _mm512_maskz_cvtepu16_epi32(0xffff, bits), 16));
}
__attribute__((target(VOX_AVX512))) inline __m512 Load16(const float* w) { return _mm512_loadu_ps(w); }

// The sum of v's sixteen lanes, in a fixed order: p[k] = lane k + lane k + 8, q[k] = p[k] +
// p[k + 4], then (q[0] + q[1]) + (q[2] + q[3]).
__attribute__((target(VOX_AVX512))) inline float HorizontalSum(__m512 v) {
  // The zero-masked extracts: g++ 12 warns that the plain ones' undefined source may be used.
  const __m512d d = _mm512_castps_pd(v);
  const __m256 p = _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xf, d, 0)),
                                 _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xf, d, 1)));
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(p), _mm256_extractf128_ps(p, 1));
  const __m128 pairs = _mm_add_ps(q, _mm_shuffle_ps(q, q, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehl_ps(pairs, pairs)));
}

// Weights are prefetched this many bytes ahead of the loads of a float32 or bfloat16 product:
// a step of 1 row is bound by how fast they arrive. On a 2-core Xeon VM the hardware
// prefetcher alone brought a decoder token's float32 weights about 13 % slower, at 1 and at 2
// threads, and so did a tile of 8 weight rows with 8 accumulators (docs/benchmarks.md, "float32
// through vox::linear").
constexpr int64_t kFloatPrefetchAhead = 4096;

// The scalar rest of a dot from i on, in one place so that every AVX-512 kernel rounds it alike.
template <typename W>
__attribute__((target(VOX_AVX512))) inline float TailDot(const float* x, const W* w, int64_t i, int64_t in) {
  float tail = 0;
  for (; i < in; ++i) tail += WeightToFloat(w[i]) * x[i];
  return tail;
}

// One row of x against one float32 or bfloat16 weight row: 64 weights per step into 4
// accumulators, then 16 per step into the first, the sum of the lanes in a fixed order, and
// the scalar tail.
template <typename W>
__attribute__((target(VOX_AVX512))) float DotFloatAvx512(const float* x, const W* w, int64_t in) {
  constexpr int kStepBytes = 64 * sizeof(W);
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= in; i += 64) {
    const char* p = reinterpret_cast<const char*>(w + i) + kFloatPrefetchAhead;
    for (int b = 0; b < kStepBytes; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
    a0 = _mm512_fmadd_ps(Load16(w + i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(Load16(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    a2 = _mm512_fmadd_ps(Load16(w + i + 32), _mm512_loadu_ps(x + i + 32), a2);
    a3 = _mm512_fmadd_ps(Load16(w + i + 48), _mm512_loadu_ps(x + i + 48), a3);
  }
  for (; i + 16 <= in; i += 16) a0 = _mm512_fmadd_ps(Load16(w + i), _mm512_loadu_ps(x + i), a0);
  return HorizontalSum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))) + TailDot(x, w, i, in);
}

// The float32 matrix kernel: dots of a tile of WR weight rows against N rows of x, each summed
// exactly as DotFloatAvx512 sums it (so a row's bits do not depend on the tile it falls in).
// Its four accumulators per pair are computed one after the other, in four passes over the
// tile (pass k takes the 16 values at 64 s + 16 k of every 64-value step s; pass 0 then the
// 16-value steps past the last whole one), so a pass holds WR * N accumulators in registers and
// loads WR + N vectors for WR * N products. The N rows of x are packed in the order the passes
// read them (PackTileRows), so that x arrives as one sequential stream.
constexpr int kFloatTileWeights = 4;
constexpr int kFloatTileRows = 6;
// Rows of x per block of the matrix kernel, as bytes of x: a block stays in L2 while every weight
// tile passes over it, so the weights are read from memory once per block.
constexpr int64_t kFloatRowBlockBytes = int64_t{512} << 10;
// Whole steps per pass before the next pass: the four passes over a chunk read neighbouring
// cache lines close together (faster for rows of 4096 values in a one-thread scratch timing).
constexpr int64_t kFloatTileChunkSteps = 8;

// Packs n rows of x (row stride in) block by block, for a matrix kernel whose vectors hold
// kBlock values (16 with AVX-512, 8 with AVX2): the block b = 4 s + k of a whole step s (4 *
// kBlock values) goes to position k * steps + s, a block past the last whole step stays at b,
// and at each position the n rows' blocks follow each other. The scalar rest is not packed.
template <int kBlock>
inline void PackTileRows(const float* x, int64_t n, int64_t in, float* packed) {
  const int64_t steps = in / (4 * kBlock), blocks = in / kBlock;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t pos = b < 4 * steps ? (b % 4) * steps + b / 4 : b;
    for (int64_t j = 0; j < n; ++j) {
      std::memcpy(packed + (pos * n + j) * kBlock, x + j * in + b * kBlock, kBlock * sizeof(float));
    }
  }
}

// Named accumulators (aK_R: weight row K, x row R), as in TileInt8Vnni.
#define VOX_FTILE_ACC(r)                                                                     \
  __m512 a0##r = _mm512_setzero_ps(), a1##r = a0##r, a2##r = a0##r, a3##r = a0##r;         \
  if constexpr (N > r) {                                                                     \
    if (load) {                                                                              \
      a0##r = _mm512_load_ps(part + (0 * N + r) * 16);                                       \
      if constexpr (WR > 1) a1##r = _mm512_load_ps(part + (1 * N + r) * 16);                 \
      if constexpr (WR > 2) a2##r = _mm512_load_ps(part + (2 * N + r) * 16);                 \
      if constexpr (WR > 3) a3##r = _mm512_load_ps(part + (3 * N + r) * 16);                 \
    }                                                                                        \
  }
#define VOX_FTILE_ROW(r)                                                  \
  if constexpr (N > r) {                                                  \
    const __m512 xv = _mm512_loadu_ps(xp + r * 16);                       \
    a0##r = _mm512_fmadd_ps(w0, xv, a0##r);                               \
    if constexpr (WR > 1) a1##r = _mm512_fmadd_ps(w1, xv, a1##r);         \
    if constexpr (WR > 2) a2##r = _mm512_fmadd_ps(w2, xv, a2##r);         \
    if constexpr (WR > 3) a3##r = _mm512_fmadd_ps(w3, xv, a3##r);         \
  }
#define VOX_FTILE_STORE(r)                                                \
  if constexpr (N > r) {                                                  \
    _mm512_store_ps(part + (0 * N + r) * 16, a0##r);                      \
    if constexpr (WR > 1) _mm512_store_ps(part + (1 * N + r) * 16, a1##r); \
    if constexpr (WR > 2) _mm512_store_ps(part + (2 * N + r) * 16, a2##r); \
    if constexpr (WR > 3) _mm512_store_ps(part + (3 * N + r) * 16, a3##r); \
  }

// part[(k * N + r) * 16 ...] (taken as zero unless load) += w[k * in + i ...] * x[r, i ...] over
// count blocks of 16 values: the packed x blocks at xp one after the other, the weights at w, w +
// stride, ... One accumulator per pair, loaded and stored once.
template <int WR, int N, typename W>
__attribute__((target(VOX_AVX512))) void AccumulateTileFloatAvx512(const float* xp, const W* w, int64_t in,
                                                                    int64_t count, int64_t stride, bool load,
                                                                    float* part) {
  static_assert(WR >= 1 && WR <= kFloatTileWeights && N >= 1 && N <= kFloatTileRows, "tile out of range");
  VOX_FTILE_ACC(0) VOX_FTILE_ACC(1) VOX_FTILE_ACC(2) VOX_FTILE_ACC(3) VOX_FTILE_ACC(4) VOX_FTILE_ACC(5)
  for (int64_t s = 0; s < count; ++s, xp += N * 16, w += stride) {
    const __m512 w0 = Load16(w);
    __m512 w1 = w0, w2 = w0, w3 = w0;
    if constexpr (WR > 1) w1 = Load16(w + in);
    if constexpr (WR > 2) w2 = Load16(w + 2 * in);
    if constexpr (WR > 3) w3 = Load16(w + 3 * in);
    VOX_FTILE_ROW(0) VOX_FTILE_ROW(1) VOX_FTILE_ROW(2) VOX_FTILE_ROW(3) VOX_FTILE_ROW(4) VOX_FTILE_ROW(5)
  }
  VOX_FTILE_STORE(0) VOX_FTILE_STORE(1) VOX_FTILE_STORE(2) VOX_FTILE_STORE(3) VOX_FTILE_STORE(4) VOX_FTILE_STORE(5)
}
#undef VOX_FTILE_ACC
#undef VOX_FTILE_ROW
#undef VOX_FTILE_STORE

// dots[k * N + r] = DotFloatAvx512(x + r * in, w + k * in, in), bit for bit, from x's N rows
// packed at xp (PackTileRows; x itself for the scalar rest).
template <int WR, int N, typename W>
__attribute__((target(VOX_AVX512))) void TileFloatAvx512(const float* xp, const float* x, const W* w, int64_t in,
                                                         float* dots) {
  constexpr int kPairs = WR * N;
  alignas(64) float part[4][kPairs * 16];
  const int64_t steps = in / 64, blocks = in / 16;
  for (int64_t c = 0; c < std::max<int64_t>(steps, 1); c += kFloatTileChunkSteps) {
    const int64_t count = std::min(kFloatTileChunkSteps, steps - c);
    for (int k = 0; k < 4; ++k) {
      AccumulateTileFloatAvx512<WR, N>(xp + (k * steps + c) * N * 16, w + c * 64 + k * 16, in, count, 64, c > 0,
                                       part[k]);
    }
  }
  AccumulateTileFloatAvx512<WR, N>(xp + 4 * steps * N * 16, w + steps * 64, in, blocks - 4 * steps, 16, true,
                                   part[0]);
  for (int k = 0; k < WR; ++k) {
    for (int r = 0; r < N; ++r) {
      const int p = (k * N + r) * 16;
      const __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_load_ps(part[0] + p), _mm512_load_ps(part[1] + p)),
                                       _mm512_add_ps(_mm512_load_ps(part[2] + p), _mm512_load_ps(part[3] + p)));
      dots[k * N + r] = HorizontalSum(sum) + TailDot(x + r * in, w + k * in, blocks * 16, in);
    }
  }
}

template <int WR, typename W>
__attribute__((target(VOX_AVX512))) void TileFloatAvx512Rows(const float* xp, const float* x, const W* w,
                                                              int64_t in, int64_t n, float* dots) {
  static_assert(kFloatTileRows == 6, "TileFloatAvx512Rows handles 1 to 6 rows");
  switch (n) {
    case 1: return TileFloatAvx512<WR, 1>(xp, x, w, in, dots);
    case 2: return TileFloatAvx512<WR, 2>(xp, x, w, in, dots);
    case 3: return TileFloatAvx512<WR, 3>(xp, x, w, in, dots);
    case 4: return TileFloatAvx512<WR, 4>(xp, x, w, in, dots);
    case 5: return TileFloatAvx512<WR, 5>(xp, x, w, in, dots);
    default: return TileFloatAvx512<WR, 6>(xp, x, w, in, dots);
  }
}

// dots[k * n + r] for wr (1..kFloatTileWeights) weight rows at w and n (1..kFloatTileRows) rows of
// x, packed at xp.
template <typename W>
__attribute__((target(VOX_AVX512))) void TileFloatAvx512Any(const float* xp, const float* x, const W* w,
                                                             int64_t in, int64_t wr, int64_t n, float* dots) {
  static_assert(kFloatTileWeights == 4, "TileFloatAvx512Any handles 1 to 4 weight rows");
  switch (wr) {
    case 1: return TileFloatAvx512Rows<1>(xp, x, w, in, n, dots);
    case 2: return TileFloatAvx512Rows<2>(xp, x, w, in, n, dots);
    case 3: return TileFloatAvx512Rows<3>(xp, x, w, in, n, dots);
    default: return TileFloatAvx512Rows<4>(xp, x, w, in, n, dots);
  }
}

// The AVX2 float32 matrix kernel: as the AVX-512 one with 8-value vectors, each dot summed
// exactly as DotFloatAvx2 sums it (four accumulators over 32-value steps, then the scalar rest),
// so a row's bits do not depend on the tile it falls in. A pass holds WR * N accumulators: tiles
// of 3 weight rows x 4 rows fill AVX2's 16 registers with the 3 weight vectors and one of x.
constexpr int kFloatTileWeightsAvx2 = 3;
constexpr int kFloatTileRowsAvx2 = 4;
// From this many rows AVX2 multiplies in tiles; fewer take DotFloatGroupAvx2 (each weight row read
// once per 2 rows, as fast as the weights arrive).
constexpr int64_t kFloatTileMinRowsAvx2 = 3;

#define VOX_FTILE2_ACC(r)                                                                  \
  __m256 a0##r = _mm256_setzero_ps(), a1##r = a0##r, a2##r = a0##r;                        \
  if constexpr (N > r) {                                                                   \
    if (load) {                                                                            \
      a0##r = _mm256_load_ps(part + (0 * N + r) * 8);                                      \
      if constexpr (WR > 1) a1##r = _mm256_load_ps(part + (1 * N + r) * 8);                \
      if constexpr (WR > 2) a2##r = _mm256_load_ps(part + (2 * N + r) * 8);                \
    }                                                                                      \
  }
#define VOX_FTILE2_ROW(r)                                                 \
  if constexpr (N > r) {                                                  \
    const __m256 xv = _mm256_loadu_ps(xp + r * 8);                        \
    a0##r = _mm256_fmadd_ps(w0, xv, a0##r);                               \
    if constexpr (WR > 1) a1##r = _mm256_fmadd_ps(w1, xv, a1##r);         \
    if constexpr (WR > 2) a2##r = _mm256_fmadd_ps(w2, xv, a2##r);         \
  }
#define VOX_FTILE2_STORE(r)                                                 \
  if constexpr (N > r) {                                                    \
    _mm256_store_ps(part + (0 * N + r) * 8, a0##r);                         \
    if constexpr (WR > 1) _mm256_store_ps(part + (1 * N + r) * 8, a1##r);   \
    if constexpr (WR > 2) _mm256_store_ps(part + (2 * N + r) * 8, a2##r);   \
  }

// AccumulateTileFloatAvx512 with 8-value blocks.
template <int WR, int N, typename W>
__attribute__((target("avx2,fma"))) void AccumulateTileFloatAvx2(const float* xp, const W* w, int64_t in,
                                                                  int64_t count, int64_t stride, bool load,
                                                                  float* part) {
  static_assert(WR >= 1 && WR <= kFloatTileWeightsAvx2 && N >= 1 && N <= kFloatTileRowsAvx2, "tile out of range");
  VOX_FTILE2_ACC(0) VOX_FTILE2_ACC(1) VOX_FTILE2_ACC(2) VOX_FTILE2_ACC(3)
  for (int64_t s = 0; s < count; ++s, xp += N * 8, w += stride) {
    const __m256 w0 = Load8(w);
    __m256 w1 = w0, w2 = w0;
    if constexpr (WR > 1) w1 = Load8(w + in);
    if constexpr (WR > 2) w2 = Load8(w + 2 * in);
    VOX_FTILE2_ROW(0) VOX_FTILE2_ROW(1) VOX_FTILE2_ROW(2) VOX_FTILE2_ROW(3)
  }
  VOX_FTILE2_STORE(0) VOX_FTILE2_STORE(1) VOX_FTILE2_STORE(2) VOX_FTILE2_STORE(3)
}
#undef VOX_FTILE2_ACC
#undef VOX_FTILE2_ROW
#undef VOX_FTILE2_STORE

// dots[k * N + r] = DotFloatAvx2's dot of x's row r and weight row k, bit for bit, from x's N rows
// packed at xp (PackTileRows<8>; x itself for the scalar rest).
template <int WR, int N, typename W>
__attribute__((target("avx2,fma"))) void TileFloatAvx2(const float* xp, const float* x, const W* w, int64_t in,
                                                       float* dots) {
  constexpr int kPairs = WR * N;
  alignas(32) float part[4][kPairs * 8];
  const int64_t steps = in / 32;
  for (int64_t c = 0; c < std::max<int64_t>(steps, 1); c += kFloatTileChunkSteps) {
    const int64_t count = std::min(kFloatTileChunkSteps, steps - c);
    for (int k = 0; k < 4; ++k) {
      AccumulateTileFloatAvx2<WR, N>(xp + (k * steps + c) * N * 8, w + c * 32 + k * 8, in, count, 32, c > 0,
                                     part[k]);
    }
  }
  for (int k = 0; k < WR; ++k) {
    for (int r = 0; r < N; ++r) {
      const int p = (k * N + r) * 8;
      const __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_load_ps(part[0] + p), _mm256_load_ps(part[1] + p)),
                                       _mm256_add_ps(_mm256_load_ps(part[2] + p), _mm256_load_ps(part[3] + p)));
      dots[k * N + r] = vox::HorizontalSum(sum) + TailDotAvx2(x + r * in, w + k * in, steps * 32, in);
    }
  }
}

template <int WR, typename W>
__attribute__((target("avx2,fma"))) void TileFloatAvx2Rows(const float* xp, const float* x, const W* w,
                                                            int64_t in, int64_t n, float* dots) {
  static_assert(kFloatTileRowsAvx2 == 4, "TileFloatAvx2Rows handles 1 to 4 rows");
  switch (n) {
    case 1: return TileFloatAvx2<WR, 1>(xp, x, w, in, dots);
    case 2: return TileFloatAvx2<WR, 2>(xp, x, w, in, dots);
    case 3: return TileFloatAvx2<WR, 3>(xp, x, w, in, dots);
    default: return TileFloatAvx2<WR, 4>(xp, x, w, in, dots);
  }
}

// dots[k * n + r] for wr (1..kFloatTileWeightsAvx2) weight rows at w and n (1..kFloatTileRowsAvx2)
// rows of x, packed at xp.
template <typename W>
__attribute__((target("avx2,fma"))) void TileFloatAvx2Any(const float* xp, const float* x, const W* w,
                                                           int64_t in, int64_t wr, int64_t n, float* dots) {
  static_assert(kFloatTileWeightsAvx2 == 3, "TileFloatAvx2Any handles 1 to 3 weight rows");
  switch (wr) {
    case 1: return TileFloatAvx2Rows<1>(xp, x, w, in, n, dots);
    case 2: return TileFloatAvx2Rows<2>(xp, x, w, in, n, dots);
    default: return TileFloatAvx2Rows<3>(xp, x, w, in, n, dots);
  }
}

// The two matrix kernels' shapes, for MultiplyInTiles.
struct FloatTilesAvx512 {
  static constexpr int kWeights = kFloatTileWeights, kRows = kFloatTileRows, kBlock = 16;
  template <typename W>
  static void Tile(const float* xp, const float* x, const W* w, int64_t in, int64_t wr, int64_t n, float* dots) {
    TileFloatAvx512Any(xp, x, w, in, wr, n, dots);
  }
};
struct FloatTilesAvx2 {
  static constexpr int kWeights = kFloatTileWeightsAvx2, kRows = kFloatTileRowsAvx2, kBlock = 8;
  template <typename W>
  static void Tile(const float* xp, const float* x, const W* w, int64_t in, int64_t wr, int64_t n, float* dots) {
    TileFloatAvx2Any(xp, x, w, in, wr, n, dots);
  }
};

// dots of rows of x against weight rows [begin, end) through Tiles's matrix kernel, passed to
// write(dot, row, output): x packed once, then block by block of rows (kFloatRowBlockBytes of
// x, which stays in L2 while every weight tile passes over it, so the weights are read from
// memory once per block).
template <typename Tiles, typename W, typename Write>
void MultiplyInTiles(const float* x, int64_t rows, int64_t in, const W* w, int64_t begin, int64_t end,
                     const Write& write) {
  const int64_t packed_row = in / Tiles::kBlock * Tiles::kBlock;
  // Aligned to a cache line, so that no vector load of x straddles two.
  const std::unique_ptr<float[]> buffer(new float[rows * packed_row + 16]);
  float* const packed = buffer.get() + (-(reinterpret_cast<uintptr_t>(buffer.get()) / sizeof(float)) & 15);
  for (int64_t r = 0; r < rows; r += Tiles::kRows) {
    PackTileRows<Tiles::kBlock>(x + r * in, std::min<int64_t>(Tiles::kRows, rows - r), in, packed + r * packed_row);
  }
  const int64_t block =
      std::max<int64_t>(1, kFloatRowBlockBytes / (in * int64_t{sizeof(float)}) / Tiles::kRows) * Tiles::kRows;
  float dots[Tiles::kWeights * Tiles::kRows];
  for (int64_t r0 = 0; r0 < rows; r0 += block) {
    const int64_t block_end = std::min(rows, r0 + block);
    for (int64_t o = begin; o < end; o += Tiles::kWeights) {
      const int64_t wr = std::min<int64_t>(Tiles::kWeights, end - o);
      for (int64_t r = r0; r < block_end; r += Tiles::kRows) {
        const int64_t n = std::min<int64_t>(Tiles::kRows, block_end - r);
        Tiles::Tile(packed + r * packed_row, x + r * in, w + o * in, in, wr, n, dots);
        for (int64_t k = 0; k < wr; ++k) {
          for (int64_t j = 0; j < n; ++j) write(dots[k * n + j], r + j, o + k);
        }
      }
    }
  }
}
#endif

}  // namespace

namespace {

// max|x| of a row, and whether every value is finite.
float MaxAbsPortable(const float* x, int64_t n, bool* finite) {
  float max_abs = 0;
  bool all_finite = true;
  for (int64_t i = 0; i < n; ++i) {
    all_finite = all_finite && std::isfinite(x[i]);
    max_abs = std::max(max_abs, std::fabs(x[i]));
  }
  *finite = all_finite;
  return max_abs;
}

// q[i] = x[i] * inv clamped to +-32767, rounded to nearest even.
void ScaleRowPortable(const float* x, int64_t n, float inv, int16_t* q) {
  for (int64_t i = 0; i < n; ++i) {
    q[i] = static_cast<int16_t>(std::nearbyint(std::min(32767.0f, std::max(-32767.0f, x[i] * inv))));
  }
}

#ifdef VOX_X86_SIMD
// The same with AVX2, bit for bit: the maximum is exact in any order, and vcvtps2dq rounds to
// nearest even as nearbyint does (the default rounding mode, which vox never changes).
__attribute__((target("avx2,fma"))) float MaxAbsAvx2(const float* x, int64_t n, bool* finite) {
  const __m256i exponent = _mm256_set1_epi32(0x7f800000);
  const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
  // Four independent maxima: one chain would wait out vmaxps's latency at every step.
  __m256 max_abs[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  __m256i special = _mm256_setzero_si256();  // lanes that met an Inf or NaN
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 8 * k));
      special = _mm256_or_si256(special, _mm256_cmpeq_epi32(_mm256_and_si256(bits, exponent), exponent));
      max_abs[k] = _mm256_max_ps(max_abs[k], _mm256_castsi256_ps(_mm256_and_si256(bits, magnitude)));
    }
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_max_ps(_mm256_max_ps(max_abs[0], max_abs[1]), _mm256_max_ps(max_abs[2], max_abs[3])));
  bool tail_finite = true;
  float result = MaxAbsPortable(x + i, n - i, &tail_finite);
  for (float lane : lanes) result = std::max(result, lane);
  *finite = tail_finite && _mm256_testz_si256(special, special);
  return result;
}

__attribute__((target("avx2,fma"))) void ScaleRowAvx2(const float* x, int64_t n, float inv, int16_t* q) {
  const __m256 scale = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-32767.0f), hi = _mm256_set1_ps(32767.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i a = _mm256_cvtps_epi32(_mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(x + i), scale))));
    const __m256i b = _mm256_cvtps_epi32(_mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(x + i + 8), scale))));
    // packs interleaves 128-bit halves (a0-3 b0-3 a4-7 b4-7); the permute restores the order.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8));
  }
  ScaleRowPortable(x + i, n - i, inv, q + i);
}
#endif

}  // namespace

void QuantizeRows(const float* x, int64_t rows, int64_t in, int bits, int16_t* xq, float* xscale,
                  GemvKernel kernel) {
  const float top = bits == 7 ? 63.0f : bits == 8 ? 127.0f : 32767.0f;
#ifdef VOX_X86_SIMD
  const bool avx2 = kernel != GemvKernel::kPortable && HasAvx2();
#else
  (void)kernel;
  const bool avx2 = false;
#endif
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * in;
    bool finite = true;
#ifdef VOX_X86_SIMD
    const float max_abs = avx2 ? MaxAbsAvx2(xr, in, &finite) : MaxAbsPortable(xr, in, &finite);
#else
    const float max_abs = MaxAbsPortable(xr, in, &finite);
#endif
    if (!finite || max_abs == 0) {
      // All zero: any scale. Inf or NaN: the row's outputs are NaN.
      xscale[r] = finite ? 1.0f : std::numeric_limits<float>::quiet_NaN();
      std::fill(xq + r * in, xq + (r + 1) * in, int16_t{0});
      continue;
    }
    const float inv = top / max_abs;
    xscale[r] = max_abs / top;
#ifdef VOX_X86_SIMD
    if (avx2) {
      ScaleRowAvx2(xr, in, inv, xq + r * in);
      continue;
    }
#endif
    ScaleRowPortable(xr, in, inv, xq + r * in);
  }
}

namespace {

// True when every partial sum of the dots of these n rows with any int8 weight row fits in
// int32: |sum over any subset of w[i] * x[i]| <= 128 * sum |x[i]| <= 2^31 - 1 (int8 reaches -128).
bool Int32Safe(const int16_t* x, int64_t n, int64_t in) {
  for (int64_t r = 0; r < n; ++r) {
    int64_t sum = 0;
    for (int64_t i = 0; i < in; ++i) sum += x[r * in + i] < 0 ? -int64_t{x[r * in + i]} : x[r * in + i];
    if (sum * 128 > std::numeric_limits<int32_t>::max()) return false;
  }
  return true;
}

// y for n rows starting at r0 and one output o, from their integer dots.
template <typename Dot>
inline void WriteInt8(const Dot* dots, int64_t n, int64_t r0, int64_t o, const float* xscale, const float* wscale,
                      const float* bias, float* y, int64_t out) {
  const double ws = wscale[o];
  const float b = bias != nullptr ? bias[o] : 0.0f;
  for (int64_t r = 0; r < n; ++r) {
    y[(r0 + r) * out + o] = static_cast<float>(static_cast<double>(dots[r]) * ws * xscale[r0 + r]) + b;
  }
}

#ifdef VOX_X86_SIMD
// n elements from a 64-byte boundary, as LibTorch aligns the tensors the kernels read, so that
// no 32-byte load straddles two cache lines (on a malloc'd buffer half of them could;
// docs/benchmarks.md, "Aligned scratch and int32 folds").
template <typename T>
class Aligned64 {
 public:
  explicit Aligned64(int64_t n) : storage_(static_cast<size_t>(n) + 64 / sizeof(T)) {}
  T* data() {
    return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(storage_.data()) + 63) & ~uintptr_t{63});
  }

 private:
  std::vector<T> storage_;
};

// The AVX2 kernel (WeightGemvInt8Avx2) passes kAvx2ChunkBytes of rows at a time over tiles of
// weight rows, so that a tile's weights stay in L2 while the chunk passes. Its two kinds of tile
// hold what they prepare, once per call and thread:
// - Int16Tiles: 16-bit activations, kWeights weight rows x up to kRows rows (12 accumulators and
//   an x vector in the 16 registers; g++ keeps 2 of the 4 weight vectors there and reads the
//   others from L1 at each use); from kAvx2WidenRows rows each tile's weight rows are widened to
//   int16 once (WidenRows) rather than at each use.
// - ByteTiles: activations in int8's range, from 2 rows (TileInt8x8Avx2); each chunk of rows is
//   narrowed to int8 once (NarrowRows). With kUnsigned, activations of 7 bits, shifted into
//   [1, 127] as they are narrowed; each tile's weight rows are summed once to take the shift
//   out of its dots.
constexpr int64_t kAvx2WidenRows = 5;
// ByteTiles<true> from this many rows: below, summing each tile's weights costs more than the
// third of the multiplies it saves (bench/weight_gemv_bench best7: 2 and 4 rows slower).
constexpr int64_t kAvx2ShiftedRows = 8;
constexpr int64_t kAvx2ChunkBytes = 256 << 10;

struct Int16Tiles {
  static constexpr int kWeights = 4;
  static constexpr int kRows = 3;
  using X = int16_t;

  Int16Tiles(int64_t rows, int64_t in, int64_t /*chunk_rows*/)
      : widen(rows >= kAvx2WidenRows), wide(widen ? kWeights * in : 0) {}
  const int16_t* Chunk(const int16_t* xq, int64_t c0, int64_t /*c1*/, int64_t in) { return xq + c0 * in; }
  // The tile of weight rows [o, o + kWeights), the last of the wr < kWeights there repeated.
  void Weights(const int8_t* w, int64_t o, int64_t wr, int64_t in) {
    if (widen) WidenRows(w + o * in, wr, in, wide.data());
    for (int k = 0; k < kWeights; ++k) {
      const int64_t row = std::min<int64_t>(k, wr - 1);
      w8[k] = w + (o + row) * in;
      w16[k] = widen ? wide.data() + row * in : nullptr;
    }
  }
  template <int R>
  void Tile(const int16_t* const* xs, int64_t in, const int8_t* ahead, int64_t* dots) const {
    if (widen) {
      TileInt8Avx2<kWeights, R>(xs, w16, in, ahead, dots);
    } else {
      TileInt8Avx2<kWeights, R>(xs, w8, in, ahead, dots);
    }
  }

  const bool widen;
  Aligned64<int16_t> wide;
  const int8_t* w8[kWeights];
  const int16_t* w16[kWeights];
};

template <bool kUnsigned>
struct ByteTiles {
  static constexpr int kWeights = 4;
  static constexpr int kRows = 2;
  using X = int8_t;

  ByteTiles(int64_t rows, int64_t in, int64_t chunk_rows) : narrow(std::min(rows, chunk_rows) * in) {}
  const int8_t* Chunk(const int16_t* xq, int64_t c0, int64_t c1, int64_t in) {
    NarrowRows(xq + c0 * in, c1 - c0, in, kUnsigned ? kShift7 : 0, narrow.data());
    return narrow.data();
  }
  void Weights(const int8_t* w, int64_t o, int64_t wr, int64_t in) {
    for (int k = 0; k < kWeights; ++k) {
      ws[k] = w + (o + std::min<int64_t>(k, wr - 1)) * in;
      if (kUnsigned) shift[k] = k < wr ? kShift7 * SumInt8(ws[k], in) : 0;
    }
  }
  template <int R>
  void Tile(const int8_t* const* xs, int64_t in, const int8_t* ahead, int64_t* dots) const {
    TileInt8x8Avx2<kWeights, R, kUnsigned>(xs, ws, in, ahead, dots);
    if (kUnsigned) {
      for (int k = 0; k < kWeights; ++k) {
        for (int r = 0; r < R; ++r) dots[k * R + r] -= shift[k];
      }
    }
  }

  Aligned64<int8_t> narrow;
  const int8_t* ws[kWeights];
  int64_t shift[kWeights] = {};
};

// call(std::integral_constant<int, n>) for n in 1..R: a tile's row count as a template argument.
template <int R, typename Call>
void WithRows(int64_t n, const Call& call) {
  if constexpr (R > 1) {
    if (n < R) return WithRows<R - 1>(n, call);
  }
  call(std::integral_constant<int, R>{});
}

template <typename Tiles>
void WeightGemvInt8Avx2(const int16_t* xq, const float* xscale, int64_t rows, int64_t in, const int8_t* w,
                        const float* wscale, const float* bias, float* y, int64_t out, int64_t begin, int64_t end) {
  constexpr int W = Tiles::kWeights, R = Tiles::kRows;
  using X = typename Tiles::X;
  const int64_t chunk_rows = std::max<int64_t>(1, kAvx2ChunkBytes / (int64_t{sizeof(X)} * in) / R) * R;
  Tiles tiles(rows, in, chunk_rows);
  int64_t dots[W * R];
  for (int64_t c0 = 0; c0 < rows; c0 += chunk_rows) {
    const int64_t c1 = std::min(rows, c0 + chunk_rows);
    const X* chunk = tiles.Chunk(xq, c0, c1, in);
    for (int64_t o = begin; o < end; o += W) {
      // A tile past the range's end repeats its last weight row, whose extra dots are not written.
      const int64_t wr = std::min<int64_t>(W, end - o);
      tiles.Weights(w, o, wr, in);
      // 4 rows left go as 2 + 2: a tile of 1 row does 1 product per weight vector loaded.
      for (int64_t r0 = c0, n = 0; r0 < c1; r0 += n) {
        n = c1 - r0 == 4 ? 2 : std::min<int64_t>(R, c1 - r0);
        const X* xs[R];
        for (int r = 0; r < R; ++r) xs[r] = chunk + (std::min<int64_t>(r0 + r, c1 - 1) - c0) * in;
        // The next tile's weights, prefetched during this tile's first rows.
        const int8_t* ahead = r0 == c0 && o + W < end ? w + (o + W) * in : nullptr;
        WithRows<R>(n, [&](auto r) { tiles.template Tile<r()>(xs, in, ahead, dots); });
        for (int64_t k = 0; k < wr; ++k) WriteInt8(dots + k * n, n, r0, o + k, xscale, wscale, bias, y, out);
      }
    }
  }
}

// Weights per block of the AVX-512 matrix kernel: a block stays in L2 while every group of
// kVnniGroup rows of x passes over it, so the weights are read from memory once per call.
constexpr int64_t kVnniBlockBytes = 128 << 10;

__attribute__((target(VOX_AVX512_VNNI))) void WeightGemvInt8Vnni(const int16_t* xq, const float* xscale,
                                                                  int64_t rows, int64_t in, const int8_t* w,
                                                                  const float* wscale, const float* bias, float* y,
                                                                  int64_t out, int64_t begin, int64_t end) {
  std::vector<uint8_t> safe;
  for (int64_t r0 = 0; r0 < rows; r0 += kVnniGroup) {
    safe.push_back(Int32Safe(xq + r0 * in, std::min<int64_t>(kVnniGroup, rows - r0), in));
  }
  const int64_t block = std::max<int64_t>(1, kVnniBlockBytes / in / kTileWeights) * kTileWeights;
  int32_t tile[kTileWeights * kVnniGroup];
  int64_t dots[kVnniGroup];
  for (int64_t b0 = begin; b0 < end; b0 += block) {
    const int64_t b1 = std::min(end, b0 + block);
    for (int64_t r0 = 0; r0 < rows; r0 += kVnniGroup) {
      const int64_t n = std::min<int64_t>(kVnniGroup, rows - r0);
      const int16_t* xs = xq + r0 * in;
      if (safe[r0 / kVnniGroup]) {
        int64_t o = b0;
        for (; n == 1 && o + kRowTileWeights <= b1; o += kRowTileWeights) {
          RowTileInt8Vnni(xs, w + o * in, in, tile);
          for (int64_t k = 0; k < kRowTileWeights; ++k) WriteInt8(tile + k, 1, r0, o + k, xscale, wscale, bias, y, out);
        }
        for (; o < b1; o += kTileWeights) {
          const int64_t wr = std::min<int64_t>(kTileWeights, b1 - o);
          TileInt8VnniAny(xs, w + o * in, in, wr, n, tile);
          for (int64_t k = 0; k < wr; ++k) {
            WriteInt8(tile + k * kVnniGroup, n, r0, o + k, xscale, wscale, bias, y, out);
          }
        }
      } else {
        for (int64_t o = b0; o < b1; ++o) {
          DotInt8VnniRows(xs, w + o * in, in, n, dots);
          WriteInt8(dots, n, r0, o, xscale, wscale, bias, y, out);
        }
      }
    }
  }
}

// Fewer rows go through the AVX-512 kernels: a tile computes 16 rows whatever their number, and
// below 8 the AVX-512 kernels are faster (bench/weight_gemv_bench, docs/benchmarks.md "AMX and a
// fused attention": 1, 4 and 8 rows 0.20, 0.28 and 0.38 ms against AMX's 0.35, 0.36 and 0.35).
constexpr int64_t kAmxMinRows = 8;

// Activation rows packed for the AMX kernel at a time: 512 KiB of them (both bytes of each
// int16) stay in L2 while the weights stream past once per chunk.
constexpr int64_t kAmxChunkBytes = 512 << 10;

// Outputs [begin, end) in tiles of 32 (then 16) against every group of 16 rows, chunk by chunk
// of rows (AmxLinear sums the columns past the last whole tile step in int64); the outputs past
// the last whole tile go through the AVX-512 kernels.
__attribute__((target(VOX_AVX512_VNNI))) void WeightGemvInt8Amx(const int16_t* xq, const float* xscale,
                                                                 int64_t rows, int64_t in, const int8_t* w,
                                                                 const float* wscale, const float* bias, float* y,
                                                                 int64_t out, int64_t begin, int64_t end,
                                                                 int x_bits) {
  const int64_t tiled_end = begin + (end - begin) / 16 * 16;
  const int64_t chunk_rows = std::max<int64_t>(1, kAmxChunkBytes / (2 * in * kAmxRows)) * kAmxRows;
  AmxActivations packed;  // every thread packs the rows it needs: O(rows * in) against O(rows * in * out)
  for (int64_t c0 = 0; c0 < rows && begin < tiled_end; c0 += chunk_rows) {
    const int64_t chunk = std::min(chunk_rows, rows - c0);
    packed.Pack(xq + c0 * in, chunk, in, x_bits <= 8 ? 1 : 2);
    const AmxTiles tiles;
    for (int64_t o = begin; o < tiled_end; o += kAmxOutputs) {
      const int64_t outputs = std::min(kAmxOutputs, tiled_end - o);
      for (int64_t g = 0; g < packed.groups(); g += packed.groups_at(g)) {
        AmxLinear(packed, g, xq + c0 * in, xscale + c0, chunk, in, w, wscale, bias, y + c0 * out, out, o, outputs);
      }
    }
  }
  if (tiled_end < end) WeightGemvInt8Vnni(xq, xscale, rows, in, w, wscale, bias, y, out, tiled_end, end);
}

// One row of x against weight rows [begin, end) (one row always takes Int16Tiles): each tile's
// kWeights rows lie a kWeights-th of the range apart, as streams of weights (see
// DotFloatStreamsAvx2; a decoder token's int8 weights 14-40 % faster), then the rows past the
// last whole part in ordinary tiles.
void MultiplyOneRowInt8Avx2(const int16_t* xq, const float* xscale, int64_t in, const int8_t* w,
                            const float* wscale, const float* bias, float* y, int64_t out, int64_t begin,
                            int64_t end) {
  constexpr int W = Int16Tiles::kWeights;
  const int64_t part = (end - begin) / W;
  const int16_t* const xs[1] = {xq};
  for (int64_t o = begin; o < begin + part; ++o) {
    const int8_t* rows[W];
    for (int k = 0; k < W; ++k) rows[k] = w + (o + k * part) * in;
    int64_t dots[W];
    TileInt8Avx2<W, 1>(xs, rows, in, nullptr, dots);
    for (int k = 0; k < W; ++k) WriteInt8(dots + k, 1, 0, o + k * part, xscale, wscale, bias, y, out);
  }
  if (begin + W * part < end) {
    WeightGemvInt8Avx2<Int16Tiles>(xq, xscale, 1, in, w, wscale, bias, y, out, begin + W * part, end);
  }
}
#endif

}  // namespace

void WeightGemvInt8(const int16_t* xq, const float* xscale, int64_t rows, int64_t in,
                    const int8_t* w, const float* wscale, const float* bias, float* y,
                    int64_t out, int64_t begin, int64_t end, int x_bits, GemvKernel kernel) {
#ifdef VOX_X86_SIMD
  if (kernel == GemvKernel::kBest && rows >= kAmxMinRows && in >= kAmxColumns && in <= kAmxMaxIn &&
      AmxInt8Usable()) {
    return WeightGemvInt8Amx(xq, xscale, rows, in, w, wscale, bias, y, out, begin, end, x_bits);
  }
  if ((kernel == GemvKernel::kBest || kernel == GemvKernel::kAvx512) && HasAvx512Vnni()) {
    return WeightGemvInt8Vnni(xq, xscale, rows, in, w, wscale, bias, y, out, begin, end);
  }
  if (kernel != GemvKernel::kPortable && HasAvx2()) {
    if (x_bits == 7 && rows >= kAvx2ShiftedRows) {
      return WeightGemvInt8Avx2<ByteTiles<true>>(xq, xscale, rows, in, w, wscale, bias, y, out, begin, end);
    }
    if (x_bits <= 8 && rows >= 2) {
      return WeightGemvInt8Avx2<ByteTiles<false>>(xq, xscale, rows, in, w, wscale, bias, y, out, begin, end);
    }
    if (rows == 1) return MultiplyOneRowInt8Avx2(xq, xscale, in, w, wscale, bias, y, out, begin, end);
    return WeightGemvInt8Avx2<Int16Tiles>(xq, xscale, rows, in, w, wscale, bias, y, out, begin, end);
  }
#else
  (void)kernel;
  (void)x_bits;
#endif
  int64_t dots[kGroup];
  for (int64_t o = begin; o < end; ++o) {
    const int8_t* wr = w + o * in;
    for (int64_t r0 = 0; r0 < rows; r0 += kGroup) {
      const int64_t n = rows - r0 < kGroup ? rows - r0 : kGroup;
      for (int64_t r = 0; r < n; ++r) dots[r] = DotInt8Portable(xq + (r0 + r) * in, wr, in);
      WriteInt8(dots, n, r0, o, xscale, wscale, bias, y, out);
    }
  }
}

namespace {

// WeightGemvBf16 and WeightGemvFloat.
template <typename W>
void WeightGemvFloatWeights(const float* x, int64_t rows, int64_t in, const W* w, const float* bias, float* y,
                            int64_t out, int64_t begin, int64_t end, GemvKernel kernel) {
  const auto write = [&](float dot, int64_t r, int64_t o) { y[r * out + o] = dot + (bias != nullptr ? bias[o] : 0.0f); };
#ifdef VOX_X86_SIMD
  if ((kernel == GemvKernel::kBest || kernel == GemvKernel::kAvx512) && HasAvx512()) {
    if (rows == 1) {
      for (int64_t o = begin; o < end; ++o) write(DotFloatAvx512(x, w + o * in, in), 0, o);
      return;
    }
    MultiplyInTiles<FloatTilesAvx512>(x, rows, in, w, begin, end, write);
    return;
  }
  const bool avx2 = kernel != GemvKernel::kPortable && HasAvx2();
  if (avx2 && rows == 1) {
    MultiplyOneRowFloatAvx2(x, in, w, begin, end, write);
    return;
  }
  if (avx2 && rows >= kFloatTileMinRowsAvx2) {
    MultiplyInTiles<FloatTilesAvx2>(x, rows, in, w, begin, end, write);
    return;
  }
#else
  (void)kernel;
#endif
  float dots[kGroup];
  for (int64_t o = begin; o < end; ++o) {
    const W* wr = w + o * in;
    for (int64_t r0 = 0; r0 < rows; r0 += kGroup) {
      const int64_t n = rows - r0 < kGroup ? rows - r0 : kGroup;
#ifdef VOX_X86_SIMD
      if (avx2) {
        DotFloatGroupAvx2(x + r0 * in, n, in, wr, dots);
      } else
#endif
      {
        DotFloatPortable(x + r0 * in, n, in, wr, dots);
      }
      for (int64_t r = 0; r < n; ++r) write(dots[r], r0 + r, o);
    }
  }
}

}  // namespace

void WeightGemvBf16(const float* x, int64_t rows, int64_t in, const uint16_t* w,
                    const float* bias, float* y, int64_t out, int64_t begin, int64_t end,
                    GemvKernel kernel) {
  WeightGemvFloatWeights(x, rows, in, w, bias, y, out, begin, end, kernel);
}

void WeightGemvFloat(const float* x, int64_t rows, int64_t in, const float* w, const float* bias, float* y,
                     int64_t out, int64_t begin, int64_t end, GemvKernel kernel) {
  WeightGemvFloatWeights(x, rows, in, w, bias, y, out, begin, end, kernel);
}

bool WeightGemvFloatTiles() {
#ifdef VOX_X86_SIMD
  return HasAvx512() || HasAvx2();
#else
  return false;
#endif
}

const char* WeightGemvKernel() {
#ifdef VOX_X86_SIMD
  if (AmxInt8Usable()) return "amx from 8 rows, avx512-vnni below (int8), avx512 (float32, bfloat16)";
  if (HasAvx512Vnni()) return "avx512-vnni (int8), avx512 (float32, bfloat16)";
  if (HasAvx512()) return "avx2 (int8), avx512 (float32, bfloat16)";
  if (HasAvx2()) return "avx2";
#endif
  return "portable";
}

}  // namespace vox
