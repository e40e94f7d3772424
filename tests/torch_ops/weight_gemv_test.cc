// vox::linear's kernels: int8 results are exact (the same bits from every kernel, every row
// grouping and every split of the outputs), bfloat16 results are float32 sums within rounding.
#include "engines/torch/ops/weight_gemv.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace vox {
namespace {

struct Int8Case {
  int64_t rows, in, out;
  std::vector<float> x;
  std::vector<int8_t> w;
  std::vector<float> wscale, bias;
};

Int8Case MakeInt8Case(int64_t rows, int64_t in, int64_t out, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> q(-127, 127);
  Int8Case c{rows, in, out, {}, {}, {}, {}};
  for (int64_t i = 0; i < rows * in; ++i) c.x.push_back(normal(rng) * 3.0f);
  for (int64_t i = 0; i < out * in; ++i) c.w.push_back(static_cast<int8_t>(q(rng)));
  for (int64_t o = 0; o < out; ++o) {
    c.wscale.push_back(std::fabs(normal(rng)) * 0.01f + 1e-4f);
    c.bias.push_back(normal(rng));
  }
  return c;
}

std::vector<float> RunInt8(const Int8Case& c, GemvKernel kernel, const float* bias, int bits = 16) {
  std::vector<int16_t> xq(c.rows * c.in);
  std::vector<float> xscale(c.rows);
  QuantizeRows(c.x.data(), c.rows, c.in, bits, xq.data(), xscale.data());
  std::vector<float> y(c.rows * c.out, -1.0f);
  WeightGemvInt8(xq.data(), xscale.data(), c.rows, c.in, c.w.data(), c.wscale.data(), bias, y.data(),
                 c.out, 0, c.out, bits, kernel);
  return y;
}

// The documented result, from an int64 dot product computed here.
std::vector<float> ExpectedInt8(const Int8Case& c, const float* bias, int bits = 16) {
  std::vector<int16_t> xq(c.rows * c.in);
  std::vector<float> xscale(c.rows);
  QuantizeRows(c.x.data(), c.rows, c.in, bits, xq.data(), xscale.data());
  std::vector<float> y(c.rows * c.out);
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t o = 0; o < c.out; ++o) {
      int64_t dot = 0;
      for (int64_t i = 0; i < c.in; ++i) dot += int64_t{c.w[o * c.in + i]} * xq[r * c.in + i];
      y[r * c.out + o] = static_cast<float>(static_cast<double>(dot) * static_cast<double>(c.wscale[o]) *
                                            static_cast<double>(xscale[r])) +
                         (bias != nullptr ? bias[o] : 0.0f);
    }
  }
  return y;
}

bool SameBits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Every int8 kernel; those this CPU lacks run the next one down.
constexpr GemvKernel kInt8Kernels[] = {GemvKernel::kBest, GemvKernel::kAvx512, GemvKernel::kAvx2,
                                       GemvKernel::kPortable};

// Every kernel against the int64 reference, for activations quantized to `bits`.
void ExpectEveryKernelExact(int bits) {
  // Lengths around the kernels' steps (16, 32, 64) and their 2048-element blocks; rows around
  // the groups of 8 (AVX-512) and 16 (AMX; with 8-bit activations one call takes two groups,
  // so 17, 33 and 100 leave one alone), and 100, which at 4161 columns the AMX kernel packs in
  // three chunks and the AVX2 kernel in chunks of 30 rows at 4096 columns (63 at 2048); 53
  // outputs: AMX tiles of 32 and 16, then AVX-512 tiles of 3 and a remainder, or AVX2 tiles of 4
  // and a remainder (with 8-bit activations, from 2 rows, AVX2 tiles of 4 x 2 rows).
  const int64_t lengths[] = {1, 7, 16, 31, 32, 33, 63, 64, 65, 100, 1024, 2047, 2048, 2049, 4096, 4161};
  uint32_t seed = 1;
  for (int64_t in : lengths) {
    for (int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 32, 33, 100}) {
      const Int8Case c = MakeInt8Case(rows, in, 53, seed++);
      for (const float* bias : {static_cast<const float*>(nullptr), c.bias.data()}) {
        const std::vector<float> want = ExpectedInt8(c, bias, bits);
        for (GemvKernel kernel : kInt8Kernels) {
          const std::vector<float> got = RunInt8(c, kernel, bias, bits);
          for (size_t k = 0; k < want.size(); ++k) {
            ASSERT_TRUE(SameBits(got[k], want[k]))
                << "kernel " << static_cast<int>(kernel) << " (best: " << WeightGemvKernel() << ") bits=" << bits
                << " in=" << in << " rows=" << rows << " k=" << k << ": " << got[k] << " vs " << want[k];
          }
        }
      }
    }
  }
}

TEST(WeightGemvInt8Test, EveryKernelGivesTheExactIntegerResult) { ExpectEveryKernelExact(16); }

TEST(WeightGemvInt8Test, EveryKernelGivesTheExactIntegerResultWithInt8Activations) { ExpectEveryKernelExact(8); }

// From 8 rows the AVX2 kernel shifts 7-bit activations into [1, 127] and takes the shift out
// with each weight row's sum.
TEST(WeightGemvInt8Test, EveryKernelGivesTheExactIntegerResultWith7BitActivations) { ExpectEveryKernelExact(7); }

TEST(WeightGemvInt8Test, ExtremeValuesDoNotOverflow) {
  // Every product at its largest magnitude, same sign: 4161 * 127 * 32767 needs 35 bits. 19
  // outputs: an AMX tile of 16 and 3 more.
  Int8Case c = MakeInt8Case(2, 4161, 19, 7);
  for (auto& v : c.w) v = 127;
  for (int64_t i = 0; i < c.in; ++i) {
    c.x[i] = 5.0f;            // row 0: all at +max
    c.w[c.in + i] = -127;     // output 1: all negative
    c.x[c.in + i] = i % 2 ? 5.0f : -5.0f;
  }
  const std::vector<float> y = RunInt8(c, GemvKernel::kBest, nullptr);
  EXPECT_TRUE(SameBits(y[0], ExpectedInt8(c, nullptr)[0]));
  EXPECT_NEAR(y[0], 4161.0 * 127 * c.wscale[0] * 5.0, 1e-3 * std::fabs(y[0]));
  EXPECT_NEAR(y[1], -4161.0 * 127 * c.wscale[1] * 5.0, 1e-3 * std::fabs(y[1]));
  for (GemvKernel kernel : kInt8Kernels) EXPECT_EQ(y, RunInt8(c, kernel, nullptr)) << static_cast<int>(kernel);
}

TEST(WeightGemvInt8Test, BytePairsAtTheirLargestDoNotSaturate) {
  // With 8-bit activations the AVX2 kernel multiplies bytes, summing pairs in int16: weights of
  // -128 against activations of -127 make each pair 2 * 16256 = 32512, next to int16's limit,
  // and 33000 columns sum past its int32 blocks. Output 1 mixes -128 and 127, row 1 mixes signs.
  Int8Case c = MakeInt8Case(3, 33000, 5, 13);
  for (int64_t i = 0; i < c.in; ++i) {
    c.w[i] = -128;
    c.w[c.in + i] = i % 3 ? -128 : 127;
    c.x[i] = -2.0f;
    c.x[c.in + i] = i % 2 ? 2.0f : -2.0f;
  }
  const std::vector<float> want = ExpectedInt8(c, c.bias.data(), 8);
  EXPECT_NEAR(want[0], 33000.0 * 128 * 127 * c.wscale[0] * (2.0 / 127) + c.bias[0], 1e-3 * std::fabs(want[0]));
  for (GemvKernel kernel : kInt8Kernels) {
    const std::vector<float> got = RunInt8(c, kernel, c.bias.data(), 8);
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_TRUE(SameBits(got[k], want[k])) << "kernel " << static_cast<int>(kernel) << " k=" << k << ": "
                                             << got[k] << " vs " << want[k];
    }
  }
}

TEST(WeightGemvInt8Test, RowsWhoseSumsCouldLeaveInt32AreStillExact) {
  // The AVX-512 kernel sums in int32 the groups of 8 rows whose every partial dot fits there
  // (128 * sum|xq| < 2^31) and folds the others into int64. Rows 8-15 here are flat (every
  // |xq| = 32767: 1100 * 127 * 32767 needs 33 bits), the others spiky (one large value): the
  // groups go different ways in one call, and all give the int64 reference's bits. Output 0's
  // weights are all 127, so its dots with the flat rows (4.6e9) do not fit in int32 at all.
  Int8Case c = MakeInt8Case(20, 1100, 7, 13);
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t i = 0; i < c.in; ++i) {
      float& v = c.x[r * c.in + i];
      if (r >= 8 && r < 16) {
        v = 2.0f;
      } else if (i == r) {
        v = 50.0f;
      } else {
        v *= 0.01f;
      }
    }
  }
  for (auto& v : c.w) v = v < 0 ? -127 : 127;
  std::fill(c.w.begin(), c.w.begin() + c.in, int8_t{127});
  const std::vector<float> want = ExpectedInt8(c, c.bias.data());
  for (GemvKernel kernel : kInt8Kernels) {
    const std::vector<float> got = RunInt8(c, kernel, c.bias.data());
    for (size_t k = 0; k < want.size(); ++k) {
      ASSERT_TRUE(SameBits(got[k], want[k])) << "kernel " << static_cast<int>(kernel) << " k=" << k;
    }
  }
}

TEST(WeightGemvInt8Test, WeightsOfMinus128CountInTheInt32Bound) {
  // int8 reaches -128: 513 columns of xq = 32767 against weights of -128 sum to -2151677952,
  // past int32, while 127 * sum|xq| is still below 2^31. The 8 rows make one group of the
  // AVX-512 kernel, which must fold them in int64.
  Int8Case c = MakeInt8Case(8, 513, 3, 17);
  std::fill(c.x.begin(), c.x.end(), 2.0f);
  std::fill(c.w.begin(), c.w.begin() + c.in, int8_t{-128});
  const std::vector<float> want = ExpectedInt8(c, nullptr);
  EXPECT_NEAR(want[0], -128.0 * 513 * 2 * c.wscale[0], 1e-3 * std::fabs(want[0]));
  for (GemvKernel kernel : kInt8Kernels) {
    const std::vector<float> got = RunInt8(c, kernel, nullptr);
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_TRUE(SameBits(got[k], want[k])) << "kernel " << static_cast<int>(kernel) << " k=" << k << ": "
                                             << got[k] << " vs " << want[k];
    }
  }
}

TEST(WeightGemvInt8Test, RowsAndOutputRangesAreIndependent) {
  // 5 rows (AVX-512 kernels) and 40 (AMX where the CPU has it: with 8-bit activations a call of
  // groups 0 and 1, then group 2 alone; on AVX2 shifted 7-bit tiles), for every activation width.
  for (int bits : {16, 8, 7}) {
    for (int64_t rows : {5, 40}) {
      const Int8Case c = MakeInt8Case(rows, 1000, 37, 11);
      const std::vector<float> all = RunInt8(c, GemvKernel::kBest, c.bias.data(), bits);
      std::vector<int16_t> xq(c.rows * c.in);
      std::vector<float> xscale(c.rows);
      QuantizeRows(c.x.data(), c.rows, c.in, bits, xq.data(), xscale.data());
      // Output ranges split as threads would split them (ranges of 20: an AMX tile of 16 and 4 or
      // 1 more), and each row alone.
      std::vector<float> split(c.rows * c.out);
      for (int64_t b = 0; b < c.out; b += 20) {
        WeightGemvInt8(xq.data(), xscale.data(), c.rows, c.in, c.w.data(), c.wscale.data(), c.bias.data(),
                       split.data(), c.out, b, std::min<int64_t>(c.out, b + 20), bits);
      }
      EXPECT_EQ(split, all) << "bits " << bits << " rows " << rows;
      for (int64_t r = 0; r < c.rows; ++r) {
        std::vector<float> one(c.out);
        WeightGemvInt8(xq.data() + r * c.in, xscale.data() + r, 1, c.in, c.w.data(), c.wscale.data(),
                       c.bias.data(), one.data(), c.out, 0, c.out, bits);
        EXPECT_EQ(one, std::vector<float>(all.begin() + r * c.out, all.begin() + (r + 1) * c.out))
            << "bits " << bits << " rows " << rows << " row " << r;
      }
    }
  }
}

TEST(WeightGemvInt8Test, ShiftedBytePairsAtTheirLargestDoNotSaturate) {
  // 7-bit activations shifted by 64 multiply bytes unsigned: +63 becomes 127, and against -128
  // each pair is 2 * 127 * -128 = -32512, next to int16's limit; -63 becomes 1. 9 rows (the
  // shifted tiles start at 8), 33000 columns (past their int32 blocks), output 1 mixes -128 and
  // 127 and the rows alternate +max, -max and mixed signs.
  Int8Case c = MakeInt8Case(9, 33000, 5, 29);
  for (int64_t i = 0; i < c.in; ++i) {
    c.w[i] = -128;
    c.w[c.in + i] = i % 3 ? -128 : 127;
    for (int64_t r = 0; r < c.rows; ++r) c.x[r * c.in + i] = r % 3 == 0 ? 2.0f : r % 3 == 1 ? -2.0f : (i % 2 ? 2.0f : -2.0f);
  }
  const std::vector<float> want = ExpectedInt8(c, c.bias.data(), 7);
  EXPECT_NEAR(want[0], -33000.0 * 128 * 63 * c.wscale[0] * (2.0 / 63) + c.bias[0], 1e-3 * std::fabs(want[0]));
  for (GemvKernel kernel : kInt8Kernels) {
    const std::vector<float> got = RunInt8(c, kernel, c.bias.data(), 7);
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_TRUE(SameBits(got[k], want[k])) << "kernel " << static_cast<int>(kernel) << " k=" << k << ": "
                                             << got[k] << " vs " << want[k];
    }
  }
}

TEST(WeightGemvInt8Test, CloseToTheFloatProduct) {
  // Quantizing the activations costs at most half a step (max|x| / top / 2) each, top 32767 for
  // 16 bits, 127 for 8 and 63 for 7; the bound for 16 bits is far below the 8-bit error.
  for (int bits : {16, 8, 7}) {
    const double top = bits == 7 ? 63 : bits == 8 ? 127 : 32767;
    const Int8Case c = MakeInt8Case(3, 1024, 16, 5);
    const std::vector<float> y = RunInt8(c, GemvKernel::kBest, c.bias.data(), bits);
    for (int64_t r = 0; r < c.rows; ++r) {
      float max_abs = 0;
      for (int64_t i = 0; i < c.in; ++i) max_abs = std::max(max_abs, std::fabs(c.x[r * c.in + i]));
      for (int64_t o = 0; o < c.out; ++o) {
        double exact = c.bias[o], bound = 0;
        for (int64_t i = 0; i < c.in; ++i) {
          const double w = static_cast<double>(c.w[o * c.in + i]) * c.wscale[o];
          exact += w * c.x[r * c.in + i];
          bound += std::fabs(w) * max_abs / top / 2;
        }
        EXPECT_NEAR(y[r * c.out + o], exact, bound + 1e-5 * std::fabs(exact)) << bits << ": " << r << "," << o;
      }
    }
  }
}

TEST(QuantizeRowsTest, ScalesEachRowToItsLargestValue) {
  const float x[] = {0.5f, -2.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f};
  int16_t q[9];
  float scale[3];
  QuantizeRows(x, 3, 3, 16, q, scale);
  EXPECT_EQ(q[1], -32767);
  EXPECT_FLOAT_EQ(scale[0], 2.0f / 32767);
  EXPECT_EQ(q[0], 8192);  // 0.5 * 32767 / 2 = 8191.75, rounded to nearest
  EXPECT_EQ(q[2], 16384);  // 16383.5, rounded to even
  EXPECT_EQ(scale[1], 1.0f);  // an all-zero row
  EXPECT_EQ(q[3], 0);
  EXPECT_TRUE(std::isnan(scale[2]));  // NaN in, NaN out
}

TEST(QuantizeRowsTest, EightAndSevenBitsScaleTo127And63) {
  const float x[] = {0.5f, -2.0f, 1.0f, 0.3f};
  struct Want {
    int bits;
    float top;
    int16_t q[4];
  };
  // 8 bits: 0.5 * 127 / 2 = 31.75, 63.5 rounded to even, 19.05; 7 bits: 15.75, 31.5, 9.45.
  for (const Want& want : {Want{8, 127.0f, {32, -127, 64, 19}}, Want{7, 63.0f, {16, -63, 32, 9}}}) {
    for (GemvKernel kernel : {GemvKernel::kBest, GemvKernel::kPortable}) {
      int16_t q[4];
      float scale[1];
      QuantizeRows(x, 1, 4, want.bits, q, scale, kernel);
      EXPECT_FLOAT_EQ(scale[0], 2.0f / want.top) << want.bits;
      for (int i = 0; i < 4; ++i) EXPECT_EQ(q[i], want.q[i]) << want.bits << " bits, element " << i;
    }
  }
}

TEST(QuantizeRowsTest, EveryKernelGivesTheDocumentedBits) {
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t in : {1, 7, 8, 15, 16, 17, 31, 100, 1024, 1025}) {
    // Row 0: normal values; row 1: max 32767 so that x * inv = x exactly, with halves (ties
    // round to even); row 2: an Inf where the SIMD loop reads it; row 3: all zero.
    std::vector<float> x(4 * in, 0.0f);
    for (int64_t i = 0; i < in; ++i) {
      x[i] = normal(rng);
      x[in + i] = i == 0 ? 32767.0f : static_cast<float>(i % 64) - 31.5f;
      x[2 * in + i] = normal(rng);
    }
    x[2 * in + in / 2] = std::numeric_limits<float>::infinity();
    std::vector<int16_t> want(x.size());
    std::vector<float> want_scale(4);
    for (int64_t r = 0; r < 4; ++r) {
      float m = 0;
      for (int64_t i = 0; i < in; ++i) m = std::max(m, std::fabs(x[r * in + i]));
      const bool zero = m == 0 || std::isinf(m);
      want_scale[r] = m == 0 ? 1.0f : std::isinf(m) ? std::numeric_limits<float>::quiet_NaN() : m / 32767.0f;
      for (int64_t i = 0; i < in; ++i) {
        want[r * in + i] = zero ? 0 : static_cast<int16_t>(std::nearbyint(
            std::min(32767.0f, std::max(-32767.0f, x[r * in + i] * (32767.0f / m)))));
      }
    }
    for (GemvKernel kernel : {GemvKernel::kBest, GemvKernel::kAvx2, GemvKernel::kPortable}) {
      std::vector<int16_t> q(x.size(), -1);
      std::vector<float> scale(4);
      QuantizeRows(x.data(), 4, in, 16, q.data(), scale.data(), kernel);
      EXPECT_EQ(q, want) << "in=" << in << " kernel " << static_cast<int>(kernel);
      for (int r = 0; r < 4; ++r) {
        EXPECT_TRUE(SameBits(scale[r], want_scale[r]) || (std::isnan(scale[r]) && std::isnan(want_scale[r])))
            << "in=" << in << " row " << r;
      }
    }
  }
}

// bfloat16 and float32 weights: every kernel, one row and several (whole tiles, of 4 weight rows
// x 6 rows with AVX-512 and 3 x 4 with AVX2, and what is left past them), over output ranges
// that start and end anywhere; outputs outside [begin, end) are left alone.
template <typename W>
void ExpectFloatWeightProducts(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t in : {1, 15, 16, 17, 32, 33, 100, 1024, 4100}) {
    for (int64_t rows : {1, 3, 13}) {
      const int64_t out = 27;
      std::vector<float> x(rows * in), bias(out), wf(out * in);
      std::vector<W> w(out * in);
      for (auto& v : x) v = normal(rng);
      for (auto& v : bias) v = normal(rng);
      for (int64_t i = 0; i < out * in; ++i) {
        const float f = normal(rng) * 0.05f;
        if constexpr (std::is_same_v<W, float>) {
          w[i] = wf[i] = f;
        } else {
          uint32_t bits;
          std::memcpy(&bits, &f, sizeof bits);
          w[i] = static_cast<uint16_t>(bits >> 16);
          bits = uint32_t{w[i]} << 16;
          std::memcpy(&wf[i], &bits, sizeof bits);
        }
      }
      for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, out}, {3, 20}, {5, 13}}) {
        for (GemvKernel kernel : {GemvKernel::kBest, GemvKernel::kAvx512, GemvKernel::kAvx2, GemvKernel::kPortable}) {
          std::vector<float> y(rows * out, -7.0f);
          if constexpr (std::is_same_v<W, float>) {
            WeightGemvFloat(x.data(), rows, in, w.data(), bias.data(), y.data(), out, begin, end, kernel);
          } else {
            WeightGemvBf16(x.data(), rows, in, w.data(), bias.data(), y.data(), out, begin, end, kernel);
          }
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t o = 0; o < out; ++o) {
              const std::string where = "kernel " + std::to_string(static_cast<int>(kernel)) + " in=" +
                                        std::to_string(in) + " rows=" + std::to_string(rows) + " [" +
                                        std::to_string(begin) + "," + std::to_string(end) + ") " +
                                        std::to_string(r) + "," + std::to_string(o);
              if (o < begin || o >= end) {
                EXPECT_EQ(y[r * out + o], -7.0f) << where;
                continue;
              }
              double exact = bias[o], magnitude = std::fabs(bias[o]);
              for (int64_t i = 0; i < in; ++i) {
                exact += double{wf[o * in + i]} * x[r * in + i];
                magnitude += std::fabs(double{wf[o * in + i]} * x[r * in + i]);
              }
              EXPECT_NEAR(y[r * out + o], exact, 1e-6 * magnitude + 1e-7) << where;
            }
          }
        }
      }
    }
  }
}

TEST(WeightGemvBf16Test, MatchesTheFloatProductOnEveryKernel) { ExpectFloatWeightProducts<uint16_t>(3); }

TEST(WeightGemvFloatTest, MatchesTheFloatProductOnEveryKernel) { ExpectFloatWeightProducts<float>(4); }

void ExpectRowsComputedAlone(int64_t rows, int64_t in) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t out = 43;
  std::vector<float> x(rows * in), w(out * in), bias(out);
  for (auto& v : x) v = normal(rng);
  for (auto& v : w) v = normal(rng) * 0.05f;
  for (auto& v : bias) v = normal(rng);
  for (GemvKernel kernel : {GemvKernel::kBest, GemvKernel::kAvx512, GemvKernel::kAvx2, GemvKernel::kPortable}) {
    std::vector<float> all(rows * out);
    WeightGemvFloat(x.data(), rows, in, w.data(), bias.data(), all.data(), out, 0, out, kernel);
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<float> alone(out);
      for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 3}, {3, 12}, {12, 29}, {29, out}}) {
        WeightGemvFloat(x.data() + r * in, 1, in, w.data(), bias.data(), alone.data(), out, begin, end, kernel);
      }
      for (int64_t o = 0; o < out; ++o) {
        EXPECT_TRUE(SameBits(alone[o], all[r * out + o]))
            << "kernel " << static_cast<int>(kernel) << " in " << in << " row " << r << " output " << o << ": "
            << alone[o] << " alone, " << all[r * out + o] << " among " << rows;
      }
    }
  }
}

// Whatever the kernel, a row's bits depend neither on the other rows nor on how the outputs are
// split (a decoder row computes the same alone and in a batch, on any thread count). in = 1000
// takes the AVX-512 tile's 64-value steps in two chunks and leaves 16-value steps and a scalar
// tail past them (the AVX2 tile's 32-value steps in four chunks, the last short, and a tail), in =
// 40 has no 64-value step, in = 20 no 32-value one; 3 rows fit in one tile, 13 take two whole
// AVX-512 tiles and one row (three AVX2 tiles and one row), and 1100 rows more than one block of
// rows.
TEST(WeightGemvFloatTest, ARowsBitsDoNotDependOnOtherRowsOrTheSplit) {
  for (int64_t rows : {3, 13, 1100}) ExpectRowsComputedAlone(rows, 1000);
  for (int64_t in : {40, 20}) {
    for (int64_t rows : {3, 13}) ExpectRowsComputedAlone(rows, in);
  }
}

}  // namespace
}  // namespace vox
