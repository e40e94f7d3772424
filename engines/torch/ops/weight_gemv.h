#ifndef VOX_ENGINES_TORCH_OPS_WEIGHT_GEMV_H_
#define VOX_ENGINES_TORCH_OPS_WEIGHT_GEMV_H_

// Matrix-vector products with compressed weights, the CPU kernels of vox's `vox::linear`
// operator (linear_op.cc). No LibTorch here. For every output o in [begin, end) and every input
// row r < rows they write y[r * out + o] = scale[o] * dot(w[o, :], x[r, :]) + bias[o].
//
// int8 weights take activations quantized per row to int16, int8's range or 7 bits (QuantizeRows):
// the dot product is then an exact integer sum, so every kernel (AMX, AVX-512 VNNI, AVX2 or
// portable) and every split of the work gives bit-identical results. With AMX-INT8, tiles of
// 32 weight rows x 16 rows sum the activations' high and low bytes separately, or in one byte
// two groups of 16 rows at a time (amx_int8.h). With AVX-512 VNNI,
// groups of 8 rows whose sums provably fit in int32 go through a matrix kernel (tiles of 3
// weight rows x 8 rows, blocked so the weights are read once per call; a single row takes
// tiles of 8 weight rows); the rest fold int32 lanes into int64. With AVX2, tiles of 4 weight
// rows x 3 rows (from 5 rows with the weights widened to int16 once per tile; one row meets 4
// weight rows a quarter of the range apart, four streams of weights) fold int32 lanes into int64
// every 2048 elements; from 2 rows with activations in int8's range, tiles of 4
// weight rows x 2 rows multiply bytes (vpmaddubsw on |w| and x with w's sign; from 8 rows with
// 7-bit activations, on x + 64 and w, less 64 * sum(w) per weight row). float32 and
// bfloat16 weights
// take float32 activations and accumulate in float32 (with AVX-512 one row by prefetching the
// weights ahead, several in tiles of 4 weight rows x 6 rows that sum each dot in the same order;
// with AVX2 one row against 3 weight rows a third of the range apart, 2 rows per weight row
// read, from 3 rows in tiles of 3 weight rows x 4 rows);
// their results depend on the kernel in the last bits. Either way a row's result does not depend on
// the other rows nor on how callers split [begin, end) across threads.
// Stateless and thread-safe: concurrent calls may write disjoint ranges of the same y.

#include <cstdint>

namespace vox {

// Which kernel runs: the fastest this CPU has (for int8: AMX, then AVX-512 VNNI), AVX-512 (for
// int8: with VNNI) or AVX2 (each the next one down where the CPU lacks it), or the portable
// one. Tests compare them.
enum class GemvKernel { kBest, kAvx512, kAvx2, kPortable };

// x [rows, in] float32 -> xq [rows, in] int16 and xscale [rows], with x ~= xq * xscale:
// xscale = max|x[r, :]| / top (1 for an all-zero row; NaN for a row with Inf or NaN, whose xq
// is 0), xq rounded to nearest (even); top is 32767 for bits 16, 127 for bits 8 (CTranslate2's
// int8 activations: half the AMX work, coarser steps) and 63 for bits 7 (a third fewer AVX2
// multiplies for many rows, coarser still). Every kernel gives the same bits.
void QuantizeRows(const float* x, int64_t rows, int64_t in, int bits, int16_t* xq, float* xscale,
                  GemvKernel kernel = GemvKernel::kBest);

// w: [out, in] int8, row-major; wscale: [out]; bias: [out] or nullptr; xq from QuantizeRows
// with x_bits (8: every |xq| <= 127, which the AMX kernel relies on; 7: every |xq| <= 63,
// which the AVX2 kernel relies on; 16: any int16).
// y = float(double(dot_int) * wscale[o] * xscale[r]) + bias[o].
void WeightGemvInt8(const int16_t* xq, const float* xscale, int64_t rows, int64_t in,
                    const int8_t* w, const float* wscale, const float* bias, float* y,
                    int64_t out, int64_t begin, int64_t end, int x_bits = 16,
                    GemvKernel kernel = GemvKernel::kBest);

// w: [out, in] bfloat16 bit patterns, row-major; x float32 [rows, in]; bias: [out] or nullptr.
void WeightGemvBf16(const float* x, int64_t rows, int64_t in, const uint16_t* w,
                    const float* bias, float* y, int64_t out, int64_t begin, int64_t end,
                    GemvKernel kernel = GemvKernel::kBest);

// w: [out, in] float32, row-major; otherwise as WeightGemvBf16.
void WeightGemvFloat(const float* x, int64_t rows, int64_t in, const float* w, const float* bias, float* y,
                     int64_t out, int64_t begin, int64_t end, GemvKernel kernel = GemvKernel::kBest);

// True when GemvKernel::kBest multiplies float32 and bfloat16 weights by several rows with a
// matrix kernel (AVX-512 or AVX2 tiles of weight rows x rows); the portable kernel reads each
// weight row once per group of 2 rows, far from what a BLAS gemm does with many rows.
bool WeightGemvFloatTiles();

// The kernels GemvKernel::kBest runs on this CPU, e.g. "avx2" or "portable".
const char* WeightGemvKernel();

}  // namespace vox

#endif  // VOX_ENGINES_TORCH_OPS_WEIGHT_GEMV_H_
