#include "engines/torch/ops/amx_int8.h"

#include <cstring>

// AMX intrinsics came with g++ 11 and clang 12 (amxtileintrin.h); older compilers build
// without this kernel.
#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__)) && \
    defined(__has_include)
#if __has_include(<amxtileintrin.h>)
#define VOX_AMX 1
#endif
#endif

#ifdef VOX_AMX
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace vox {

#ifdef VOX_AMX
// g++ 12's AVX-512 intrinsics merge into _mm512_undefined_*() values and then warn that they
// are uninitialised; the results never depend on them.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

#define VOX_AMX_TARGET "amx-tile,amx-int8,avx512f,avx512bw,avx512dq,avx512vl"

// Tiles: 0-3 int32 sums (low and high bytes of the first 16 outputs, then of the next 16),
// 4-5 weight rows, 6-7 the activations' low and high bytes. All 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

bool AskForTiles() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amx_tile = (edx >> 24) & 1, amx_int8 = (edx >> 25) & 1;
  if (!amx_tile || !amx_int8 || !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq") ||
      !__builtin_cpu_supports("avx512vl")) {
    return false;
  }
  // Linux hands out the 8 KiB tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM for
  // XFEATURE_XTILEDATA); without it the first tile instruction would kill the process.
  constexpr int kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
}

// The 16 x 16 transpose of 32-bit lanes: v[i] lane l <- v[l] lane i. Four rounds; the round
// for h swaps lanes l + h of v[i] with lanes l of v[i + h] (bit h clear in i and l). kPick[j]
// holds round h = 8 >> j's lane choices for v[i] (first) and v[i + h] (second).
struct alignas(64) Picks {
  int32_t first[16], second[16];
};
constexpr Picks MakePicks(int h) {
  Picks p{};
  for (int l = 0; l < 16; ++l) {
    p.first[l] = (l & h) ? 16 + l - h : l;
    p.second[l] = (l & h) ? 16 + l : l + h;
  }
  return p;
}
constexpr Picks kPick[4] = {MakePicks(8), MakePicks(4), MakePicks(2), MakePicks(1)};

__attribute__((target(VOX_AMX_TARGET))) void Transpose16(__m512i* v) {
  for (int j = 0; j < 4; ++j) {
    const int h = 8 >> j;
    const __m512i take_first = _mm512_load_si512(kPick[j].first), take_second = _mm512_load_si512(kPick[j].second);
    for (int i = 0; i < 16; ++i) {
      if (i & h) continue;
      const __m512i a = v[i], b = v[i + h];
      v[i] = _mm512_permutex2var_epi32(a, take_first, b);
      v[i + h] = _mm512_permutex2var_epi32(a, take_second, b);
    }
  }
}

// The 64 low (or high) bytes of 64 int16 values, in order.
__attribute__((target(VOX_AMX_TARGET))) inline __m512i Bytes(__m512i a, __m512i b, bool high) {
  if (high) {
    a = _mm512_srai_epi16(a, 8);
    b = _mm512_srai_epi16(b, 8);
  }
  return _mm512_inserti64x4(_mm512_inserti64x4(_mm512_setzero_si512(), _mm512_cvtepi16_epi8(a), 0),
                            _mm512_cvtepi16_epi8(b), 1);
}

// Packs one step of a group: its low bytes, and its high bytes unless high is nullptr (values
// in int8's range, whose low byte is the value).
__attribute__((target(VOX_AMX_TARGET))) void PackBlock(const int16_t* x, int64_t n, int64_t in, uint8_t* low,
                                                       uint8_t* high) {
  __m512i lo[16], hi[16];
  for (int64_t r = 0; r < kAmxRows; ++r) {
    const __m512i a = r < n ? _mm512_loadu_si512(x + r * in) : _mm512_setzero_si512();
    const __m512i b = r < n ? _mm512_loadu_si512(x + r * in + 32) : _mm512_setzero_si512();
    lo[r] = Bytes(a, b, false);
    if (high != nullptr) hi[r] = Bytes(a, b, true);
  }
  Transpose16(lo);
  if (high != nullptr) Transpose16(hi);
  for (int k = 0; k < 16; ++k) {
    _mm512_storeu_si512(low + k * kAmxColumns, lo[k]);
    if (high != nullptr) _mm512_storeu_si512(high + k * kAmxColumns, hi[k]);
  }
}

__attribute__((target(VOX_AMX_TARGET))) void LoadConfig() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = kAmxRows;
    config.colsb[t] = kAmxColumns;
  }
  // g++ 12's _tile_loadconfig does not tell the optimizer that it reads `config`, which then
  // drops the stores above; the asm names the operand.
  asm volatile("ldtilecfg %0" : : "m"(config));
}

__attribute__((target(VOX_AMX_TARGET))) void Release() { _tile_release(); }

// Sums of 16 or 32 weight rows (kTwo) against one group's low and high bytes, into tiles 0-3:
// [first 16 outputs: low, high; next 16: low, high].
template <bool kTwo>
__attribute__((target(VOX_AMX_TARGET))) void Accumulate(const AmxActivations& x, int64_t group, const int8_t* w,
                                                        int64_t in) {
  _tile_zero(0);
  _tile_zero(1);
  if constexpr (kTwo) {
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t s = 0; s < x.steps(); ++s) {
    _tile_loadd(4, w + s * kAmxColumns, in);
    _tile_loadd(6, x.block(group, s, 0), kAmxColumns);
    _tile_loadd(7, x.block(group, s, 1), kAmxColumns);
    _tile_dpbsud(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    if constexpr (kTwo) {
      _tile_loadd(5, w + 16 * in + s * kAmxColumns, in);
      _tile_dpbsud(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
    }
  }
}

// The same for one-byte activations, 16 or 32 weight rows (kTwo) against one or two groups
// (kTwoGroups), into tiles 0-3: [first 16 outputs: group, next group; next 16: the same].
template <bool kTwo, bool kTwoGroups>
__attribute__((target(VOX_AMX_TARGET))) void AccumulateBytes(const AmxActivations& x, int64_t group,
                                                             const int8_t* w, int64_t in) {
  _tile_zero(0);
  if constexpr (kTwoGroups) _tile_zero(1);
  if constexpr (kTwo) _tile_zero(2);
  if constexpr (kTwo && kTwoGroups) _tile_zero(3);
  for (int64_t s = 0; s < x.steps(); ++s) {
    _tile_loadd(4, w + s * kAmxColumns, in);
    _tile_loadd(6, x.block(group, s, 0), kAmxColumns);
    _tile_dpbssd(0, 4, 6);
    if constexpr (kTwoGroups) {
      _tile_loadd(7, x.block(group + 1, s, 0), kAmxColumns);
      _tile_dpbssd(1, 4, 7);
    }
    if constexpr (kTwo) {
      _tile_loadd(5, w + 16 * in + s * kAmxColumns, in);
      _tile_dpbssd(2, 5, 6);
      if constexpr (kTwoGroups) _tile_dpbssd(3, 5, 7);
    }
  }
}

// Writes 16 outputs of one group from its low- and high-byte sums (int32 [output][row]; high
// nullptr for one-byte activations, whose sums are all in `low`) plus the int64 sums of the
// unpacked columns (tail, or nullptr): the same result, bit for bit, as the other kernels'
// scalar code, 16 rows at a time, then transposed so each row's 16 outputs are stored together.
// The dot is assembled in double, exactly: low + 256 * high + tail is an integer below 2^53,
// so the fused multiply-add and the sum round nothing, as the scalar code's int64 sum does not.
template <bool kHigh>
__attribute__((target(VOX_AMX_TARGET))) void Write16(const int32_t* low, const int32_t* high, const int64_t* tail,
                                                     int64_t n, const float* xscale, const float* wscale,
                                                     const float* bias, float* y, int64_t out) {
  const __mmask8 first = n >= 8 ? 0xff : static_cast<__mmask8>((1u << n) - 1);
  const __mmask8 second = n > 8 ? static_cast<__mmask8>((1u << (n - 8)) - 1) : 0;
  const __m512d xs0 = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(first, xscale));
  const __m512d xs1 = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(second, xscale + 8));
  const __m512d byte = _mm512_set1_pd(256.0);
  __m512i v[16];
  for (int k = 0; k < 16; ++k) {
    const __m512i lo = _mm512_load_si512(low + k * kAmxRows);
    __m512d d0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(lo));
    __m512d d1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(lo, 1));
    if constexpr (kHigh) {
      const __m512i hi = _mm512_load_si512(high + k * kAmxRows);
      d0 = _mm512_fmadd_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(hi)), byte, d0);
      d1 = _mm512_fmadd_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(hi, 1)), byte, d1);
    }
    if (tail != nullptr) {
      d0 = _mm512_add_pd(d0, _mm512_cvtepi64_pd(_mm512_loadu_si512(tail + k * kAmxRows)));
      d1 = _mm512_add_pd(d1, _mm512_cvtepi64_pd(_mm512_loadu_si512(tail + k * kAmxRows + 8)));
    }
    const __m512d ws = _mm512_set1_pd(wscale[k]);
    const __m256 f0 = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_mul_pd(d0, ws), xs0));
    const __m256 f1 = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_mul_pd(d1, ws), xs1));
    const __m512 f = _mm512_insertf32x8(_mm512_castps256_ps512(f0), f1, 1);
    v[k] = _mm512_castps_si512(_mm512_add_ps(f, _mm512_set1_ps(bias != nullptr ? bias[k] : 0.0f)));
  }
  Transpose16(v);
  for (int64_t r = 0; r < n; ++r) _mm512_storeu_si512(y + r * out, v[r]);
}

// Stores the tiles an Accumulate used: 0-3 with `all`, else 0 and `second` (1; 2 for 32 outputs
// against one group of one-byte activations; 0 for none).
__attribute__((target(VOX_AMX_TARGET))) void Store(bool all, int second, int32_t (*sums)[kAmxRows * kAmxRows]) {
  _tile_stored(0, sums[0], kAmxRows * 4);
  if (all) {
    _tile_stored(1, sums[1], kAmxRows * 4);
    _tile_stored(2, sums[2], kAmxRows * 4);
    _tile_stored(3, sums[3], kAmxRows * 4);
  } else if (second == 1) {
    _tile_stored(1, sums[1], kAmxRows * 4);
  } else if (second == 2) {
    _tile_stored(2, sums[2], kAmxRows * 4);
  }
}

}  // namespace

bool AmxInt8Usable() {
  static const bool usable = AskForTiles();
  return usable;
}

void AmxActivations::Pack(const int16_t* xq, int64_t rows, int64_t in, int bytes) {
  groups_ = (rows + kAmxRows - 1) / kAmxRows;
  steps_ = in / kAmxColumns;
  bytes_ = bytes;
  const int64_t size = groups_ * steps_ * bytes_ * kAmxRows * kAmxColumns;
  if (size > size_) {
    data_.reset(new uint8_t[static_cast<size_t>(size)]);
    size_ = size;
  }
  for (int64_t g = 0; g < groups_; ++g) {
    const int64_t n = rows - g * kAmxRows < kAmxRows ? rows - g * kAmxRows : kAmxRows;
    for (int64_t s = 0; s < steps_; ++s) {
      uint8_t* low = const_cast<uint8_t*>(block(g, s, 0));
      PackBlock(xq + g * kAmxRows * in + s * kAmxColumns, n, in, low,
                bytes_ == 2 ? low + kAmxRows * kAmxColumns : nullptr);
    }
  }
}

AmxTiles::AmxTiles() { LoadConfig(); }
AmxTiles::~AmxTiles() { Release(); }

void AmxLinear(const AmxActivations& x, int64_t group, const int16_t* xq, const float* xscale, int64_t rows,
               int64_t in, const int8_t* w, const float* wscale, const float* bias, float* y, int64_t out,
               int64_t o0, int64_t outputs) {
  const bool two = outputs > 16;
  const int64_t groups = x.groups_at(group);
  const int8_t* wo = w + o0 * in;
  if (x.bytes() == 2) {
    two ? Accumulate<true>(x, group, wo, in) : Accumulate<false>(x, group, wo, in);
  } else if (groups == 2) {
    two ? AccumulateBytes<true, true>(x, group, wo, in) : AccumulateBytes<false, true>(x, group, wo, in);
  } else {
    two ? AccumulateBytes<true, false>(x, group, wo, in) : AccumulateBytes<false, false>(x, group, wo, in);
  }
  // Tile row k, column n: output k (of its half) against row n of its group. sums[t] is tile t:
  // two bytes: [half 0 low, half 0 high, half 1 low, half 1 high]; one byte: [half 0 group 0,
  // half 0 group 1, half 1 group 0, half 1 group 1].
  alignas(64) int32_t sums[4][kAmxRows * kAmxRows];
  Store(two && (x.bytes() == 2 || groups == 2), x.bytes() == 2 || groups == 2 ? 1 : two ? 2 : 0, sums);
  const int64_t packed = x.steps() * kAmxColumns;
  for (int64_t gi = 0; gi < groups; ++gi) {
    const int64_t r0 = (group + gi) * kAmxRows;
    const int64_t n = rows - r0 < kAmxRows ? rows - r0 : kAmxRows;
    alignas(64) int64_t tail[kAmxOutputs * kAmxRows];
    if (packed < in) {
      std::memset(tail, 0, sizeof tail);
      for (int64_t k = 0; k < outputs; ++k) {
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t i = packed; i < in; ++i) {
            tail[k * kAmxRows + r] += int32_t{wo[k * in + i]} * int32_t{xq[(r0 + r) * in + i]};
          }
        }
      }
    }
    for (int64_t half = 0; half < (two ? 2 : 1); ++half) {
      const int64_t o = o0 + half * 16;
      const int64_t* t = packed < in ? tail + half * 16 * kAmxRows : nullptr;
      const float* b = bias != nullptr ? bias + o : nullptr;
      if (x.bytes() == 2) {
        Write16<true>(sums[2 * half], sums[2 * half + 1], t, n, xscale + r0, wscale + o, b, y + r0 * out + o, out);
      } else {
        Write16<false>(sums[2 * half + gi], nullptr, t, n, xscale + r0, wscale + o, b, y + r0 * out + o, out);
      }
    }
  }
}

#else  // no AMX on this target: AmxInt8Usable() is false and nothing else is called.

bool AmxInt8Usable() { return false; }
void AmxActivations::Pack(const int16_t*, int64_t, int64_t, int) {}
AmxTiles::AmxTiles() {}
AmxTiles::~AmxTiles() {}
void AmxLinear(const AmxActivations&, int64_t, const int16_t*, const float*, int64_t, int64_t, const int8_t*,
               const float*, const float*, float*, int64_t, int64_t, int64_t) {}

#endif

}  // namespace vox
