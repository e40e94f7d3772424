// vox::attend's kernel: softmax(q k^T, masked) v per (row, head), against a double-precision
// reference, on a cache narrowed from a larger capacity as the decoder step passes it and on
// keys projected for many queries at once, as the encoder passes them.
#include "engines/torch/ops/attend.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace vox {
namespace {

constexpr float kNeg = std::numeric_limits<float>::lowest();  // what the exporter masks with

struct Case {
  AttendShape shape;
  std::vector<float> q, k, v;
  std::vector<int64_t> mask;
};

// k and v laid out [rows, heads, capacity, dim] (a decoder's cache) or, `transposed`,
// [rows, capacity, heads, dim] (cross-attention keys as projected), read as their first `keys`
// positions.
Case MakeCase(int64_t rows, int64_t heads, int64_t keys, int64_t capacity, int64_t dim, uint32_t seed,
              bool transposed = false, int64_t queries = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Case c;
  const int64_t head = transposed ? dim : capacity * dim, key = transposed ? heads * dim : dim;
  c.shape = {rows, heads, queries, keys, dim, {heads * capacity * dim, head, key}, {heads * capacity * dim, head, key}};
  for (int64_t i = 0; i < rows * heads * queries * dim; ++i) c.q.push_back(normal(rng) * 0.5f);
  for (int64_t i = 0; i < rows * heads * capacity * dim; ++i) {
    c.k.push_back(normal(rng));
    c.v.push_back(normal(rng));
  }
  for (int64_t b = 0; b < rows; ++b) {
    for (int64_t l = 0; l < keys; ++l) c.mask.push_back(l <= b % keys ? 1 : 0);  // row b sees b % keys + 1 keys
  }
  return c;
}

std::vector<double> Reference(const Case& c) {
  const AttendShape& s = c.shape;
  std::vector<double> out(s.rows * s.heads * s.queries * s.dim, 0.0);
  for (int64_t b = 0; b < s.rows; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t i = 0; i < s.queries; ++i) {
        const int64_t qi = ((b * s.heads + h) * s.queries + i) * s.dim;
        std::vector<double> score(s.keys);
        double max_score = -INFINITY;
        for (int64_t l = 0; l < s.keys; ++l) {
          double dot = 0;
          for (int64_t d = 0; d < s.dim; ++d) {
            dot += double{c.q[qi + d]} * c.k[b * s.k_strides[0] + h * s.k_strides[1] + l * s.k_strides[2] + d];
          }
          score[l] = c.mask[b * s.keys + l] != 0 ? dot : double{kNeg};
          max_score = std::max(max_score, score[l]);
        }
        double total = 0;
        for (double& x : score) total += (x = std::exp(x - max_score));
        for (int64_t l = 0; l < s.keys; ++l) {
          for (int64_t d = 0; d < s.dim; ++d) {
            out[qi + d] += score[l] / total * c.v[b * s.v_strides[0] + h * s.v_strides[1] + l * s.v_strides[2] + d];
          }
        }
      }
    }
  }
  return out;
}

std::vector<float> Attend(const Case& c) {
  std::vector<float> out(c.shape.rows * c.shape.heads * c.shape.queries * c.shape.dim, -7.0f);
  Attend(c.q.data(), c.k.data(), c.v.data(), c.mask.data(), c.shape, kNeg, out.data(), 0,
                 c.shape.rows * c.shape.heads);
  return out;
}

TEST(AttendTest, MatchesTheReferenceForOneOrManyQueriesOnNarrowedOrTransposedKeys) {
  for (bool transposed : {false, true}) {
    for (int64_t queries : {1, 3, 6}) {  // 6: a block of 4 queries and one of 2
      for (int64_t dim : {64, 17, 8}) {
        for (int64_t keys : {1, 5, 40}) {
          const Case c = MakeCase(6, 3, keys, keys + 9, dim, static_cast<uint32_t>(dim * 100 + keys), transposed,
                                  queries);
          const std::vector<double> want = Reference(c);
          const std::vector<float> got = Attend(c);
          for (size_t i = 0; i < want.size(); ++i) {
            ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i])))
                << "transposed " << transposed << " queries " << queries << " dim " << dim << " keys " << keys
                << " i " << i;
          }
        }
      }
    }
  }
}

TEST(AttendTest, MaskedKeysAndPaddingBeyondTheKeysAreNeverRead) {
  // NaN in every masked key and value, and in the capacity past the keys: a kernel that read
  // them (or weighted them by 0 * NaN) would return NaN.
  Case c = MakeCase(4, 2, 7, 12, 64, 3);
  const AttendShape& s = c.shape;
  for (int64_t b = 0; b < s.rows; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t l = 0; l < 12; ++l) {
        if (l < s.keys && c.mask[b * s.keys + l] != 0) continue;
        for (int64_t d = 0; d < s.dim; ++d) {
          c.k[b * s.k_strides[0] + h * s.k_strides[1] + l * s.k_strides[2] + d] = NAN;
          c.v[b * s.v_strides[0] + h * s.v_strides[1] + l * s.v_strides[2] + d] = NAN;
        }
      }
    }
  }
  for (float x : Attend(c)) ASSERT_TRUE(std::isfinite(x));
}

TEST(AttendTest, AFullyMaskedRowAveragesItsValuesAsTheSoftmaxOfNegDoes) {
  Case c = MakeCase(2, 2, 4, 4, 8, 9);
  for (int64_t l = 0; l < 4; ++l) c.mask[4 + l] = 0;  // row 1: every key masked
  const std::vector<float> got = Attend(c);
  const AttendShape& s = c.shape;
  for (int64_t h = 0; h < s.heads; ++h) {
    for (int64_t d = 0; d < s.dim; ++d) {
      double mean = 0;
      for (int64_t l = 0; l < 4; ++l) mean += c.v[s.v_strides[0] + h * s.v_strides[1] + l * s.v_strides[2] + d] / 4.0;
      EXPECT_NEAR(got[(s.heads + h) * s.dim + d], mean, 1e-5) << h << "," << d;
    }
  }
}

TEST(AttendTest, NoMaskCountsEveryKeyAsAMaskOfOnesDoes) {
  // vox::cache_attend passes no mask: each row's keys are its slot's first cache_lens + 1.
  for (int64_t dim : {64, 17}) {  // the blocked path and the one-key-at-a-time path
    Case c = MakeCase(3, 2, 9, 11, dim, 5);
    std::fill(c.mask.begin(), c.mask.end(), int64_t{1});
    const std::vector<float> ones = Attend(c);
    std::vector<float> none(ones.size(), -7.0f);
    Attend(c.q.data(), c.k.data(), c.v.data(), nullptr, c.shape, kNeg, none.data(), 0, c.shape.rows * c.shape.heads);
    EXPECT_EQ(none, ones) << dim;
  }
}

TEST(AttendTest, RangesSplitAsThreadsWouldGiveTheSameResult) {
  const Case c = MakeCase(5, 4, 9, 11, 64, 21);
  const std::vector<float> all = Attend(c);
  std::vector<float> split(all.size(), -7.0f);
  for (int64_t b = 0; b < 20; b += 3) {
    Attend(c.q.data(), c.k.data(), c.v.data(), c.mask.data(), c.shape, kNeg, split.data(), b,
                   std::min<int64_t>(20, b + 3));
  }
  EXPECT_EQ(split, all);
}

}  // namespace
}  // namespace vox
