// Unit tests of the code sampler and the streaming frame arithmetic (no model needed).
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "engines/speech/xtts_sampler.h"
#include "engines/speech/xtts_stream_plan.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(SplitMix64Test, MatchesPublishedSequenceForSeedZero) {
  SplitMix64 r(0);
  EXPECT_EQ(r.NextU64(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(r.NextU64(), 0x6E789E6AA1B965F4ULL);
  SplitMix64 u(0);
  EXPECT_DOUBLE_EQ(u.Uniform(), static_cast<double>(0xE220A8397B1DCDAFULL >> 11) / 9007199254740992.0);
}

TEST(PickInverseCdfTest, FirstIndexWhoseRunningSumExceedsU) {
  const std::vector<float> p = {0.25f, 0.25f, 0.5f};
  EXPECT_EQ(PickInverseCdf(p, 0.0), 0);
  EXPECT_EQ(PickInverseCdf(p, 0.2), 0);
  EXPECT_EQ(PickInverseCdf(p, 0.25), 1);  // 0.25 is not > 0.25
  EXPECT_EQ(PickInverseCdf(p, 0.75), 2);
  const std::vector<float> q = {0.f, 0.5f, 0.5f, 0.f};
  EXPECT_EQ(PickInverseCdf(q, 0.0), 1);
  EXPECT_EQ(PickInverseCdf(q, 0.9999999), 2);
  // Unnormalised input: the target scales with the total.
  const std::vector<float> r = {1.f, 3.f};
  EXPECT_EQ(PickInverseCdf(r, 0.24), 0);
  EXPECT_EQ(PickInverseCdf(r, 0.26), 1);
}

TEST(CodeSamplerTest, RepetitionPenaltyCountsPrefixAsTokenOneAndStartCode) {
  SamplingSettings s;
  s.greedy = true;
  s.repetition_penalty = 5.0;
  CodeSampler sampler(s, 1, /*start_audio=*/2);
  // Seen at start: {1, 2}. logits {2, -2, 3, 1} -> {2, -10, 0.6, 1}: argmax 0 (not 2).
  const std::vector<float> logits = {2.f, -2.f, 3.f, 1.f};
  const std::vector<float> warped = sampler.Warp(logits);
  EXPECT_FLOAT_EQ(warped[0], 2.f);
  EXPECT_FLOAT_EQ(warped[1], -10.f);
  EXPECT_FLOAT_EQ(warped[2], 0.6f);
  EXPECT_FLOAT_EQ(warped[3], 1.f);
  EXPECT_EQ(sampler.Next(logits), 0);
  // Now 0 is seen too: {0.4, -10, 0.6, 1} -> 3.
  EXPECT_EQ(sampler.Next(logits), 3);
  // And 3: {0.4, -10, 0.6, 0.2} -> 2.
  EXPECT_EQ(sampler.Next(logits), 2);
}

TEST(CodeSamplerTest, BannedCodeIsNeverChosen) {
  SamplingSettings s;
  s.greedy = true;
  s.repetition_penalty = 1.0;
  CodeSampler sampler(s, 1, 9);
  EXPECT_EQ(sampler.Next(std::vector<float>{0.f, 5.f, 4.f}, /*banned=*/1), 2);
}

TEST(CodeSamplerTest, TopKKeepsTheKLargest) {
  SamplingSettings s;
  s.temperature = 1.0;
  s.top_k = 2;
  s.top_p = 1.0;
  s.repetition_penalty = 1.0;
  CodeSampler sampler(s, 1, 9);
  const std::vector<float> w = sampler.Warp(std::vector<float>{1.f, 3.f, 2.f, 0.f});
  EXPECT_EQ(w[0], -kInf);
  EXPECT_FLOAT_EQ(w[1], 3.f);
  EXPECT_FLOAT_EQ(w[2], 2.f);
  EXPECT_EQ(w[3], -kInf);
}

TEST(CodeSamplerTest, TopPDropsTheSmallestMassAndTemperatureDivides) {
  SamplingSettings s;
  s.temperature = 2.0;
  s.top_k = 0;
  s.top_p = 0.5;
  s.repetition_penalty = 1.0;
  CodeSampler sampler(s, 1, 9);
  // After /2 the logits are log(p) for p = {0.1, 0.2, 0.3, 0.4}: cumulative ascending
  // 0.1, 0.3, 0.6, 1.0; those <= 1 - 0.5 go.
  std::vector<float> l;
  for (float p : {0.1f, 0.2f, 0.3f, 0.4f}) l.push_back(2.f * std::log(p));
  const std::vector<float> w = sampler.Warp(l);
  EXPECT_EQ(w[0], -kInf);
  EXPECT_EQ(w[1], -kInf);
  EXPECT_NEAR(w[2], std::log(0.3f), 1e-6);
  EXPECT_NEAR(w[3], std::log(0.4f), 1e-6);
}

TEST(CodeSamplerTest, SameSeedSameCodesDifferentSeedDifferentCodes) {
  SamplingSettings s;
  s.temperature = 1.0;
  s.top_k = 0;
  s.top_p = 1.0;
  s.repetition_penalty = 1.0;
  std::vector<float> flat(64, 0.f);
  auto run = [&](uint64_t seed) {
    CodeSampler c(s, seed, 63);
    std::vector<int64_t> out;
    for (int i = 0; i < 32; ++i) out.push_back(c.Next(flat));
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
  // With uniform logits the pick is floor(u * 64): check the first one by hand.
  SplitMix64 r(7);
  const int64_t expected = static_cast<int64_t>(std::floor(r.Uniform() * 64));
  EXPECT_EQ(run(7)[0], expected);
}

TEST(CodeSamplerTest, NextBatchEqualsNextPerSampler) {
  // Mixed settings (two rows share each), a banned code on some rows, logits that make the
  // penalty, top-k and top-p all matter; codes must agree at every step.
  std::vector<SamplingSettings> kinds(4);
  kinds[0].greedy = true;
  kinds[2].top_k = 0;
  kinds[2].temperature = 1.0;
  kinds[3].top_p = 1.0;
  kinds[3].repetition_penalty = 1.0;
  kinds[3].top_k = 7;
  constexpr int64_t kWidth = 300;
  std::vector<std::unique_ptr<CodeSampler>> one, many;
  std::vector<int64_t> banned;
  for (int i = 0; i < 8; ++i) {
    one.push_back(std::make_unique<CodeSampler>(kinds[i % 4], 100 + i, kWidth - 2));
    many.push_back(std::make_unique<CodeSampler>(kinds[i % 4], 100 + i, kWidth - 2));
    banned.push_back(i % 3 == 0 ? kWidth - 1 : -1);
  }
  std::vector<CodeSampler*> batch;
  for (auto& c : many) batch.push_back(c.get());
  SplitMix64 noise(5);
  int distinct_steps = 0;
  for (int step = 0; step < 200; ++step) {
    std::vector<float> logits(8 * kWidth);
    for (auto& x : logits) x = static_cast<float>(4.0 * noise.Uniform() - 2.0);
    const std::vector<int64_t> got = CodeSampler::NextBatch(batch, logits, kWidth, banned);
    ASSERT_EQ(got.size(), 8u);
    for (int i = 0; i < 8; ++i) {
      const int64_t want = one[i]->Next(absl::MakeConstSpan(logits.data() + i * kWidth, kWidth), banned[i]);
      ASSERT_EQ(got[i], want) << "step " << step << " row " << i;
      if (banned[i] >= 0) ASSERT_NE(got[i], banned[i]);
    }
    distinct_steps += got[1] != got[5];  // same settings, different seeds: mostly different picks
  }
  EXPECT_GT(distinct_steps, 100);
}

TEST(DecimalDoubleTest, UsesTheShortestDecimal) {
  EXPECT_EQ(DecimalDouble(0.85f), 0.85);
  EXPECT_EQ(DecimalDouble(0.75f), 0.75);
  EXPECT_EQ(DecimalDouble(5.0f), 5.0);
  EXPECT_EQ(DecimalDouble(0.1f), 0.1);
}

TEST(StreamPlanTest, InterpolatedFramesFollowTorchsSizeRule) {
  InterpolationGeometry g;
  for (int64_t n = 1; n <= 700; ++n) {
    EXPECT_EQ(InterpolatedFrames(g, n), (4 * n * 160) / 147) << n;  // 24000/22050 = 160/147
  }
  g.resample = false;
  EXPECT_EQ(InterpolatedFrames(g, 10), 40);
}

TEST(StreamPlanTest, SpeedStageChangesTheFrameCount) {
  InterpolationGeometry g;
  g.scale0 = 1.0 / 0.8;
  for (int64_t n = 1; n <= 300; ++n) {
    const int64_t n0 = static_cast<int64_t>(std::floor(static_cast<double>(n) * g.scale0));
    EXPECT_EQ(InterpolatedFrames(g, n), (4 * n0 * 160) / 147) << n;
    EXPECT_LE(FinalFrames(g, n), InterpolatedFrames(g, n));
    if (n > 5) EXPECT_GE(FinalFrames(g, n), InterpolatedFrames(g, n) - 14) << n;
  }
}

TEST(StreamPlanTest, FinalFramesAreAMonotonicPrefixCloseToTheEnd) {
  InterpolationGeometry g;
  EXPECT_EQ(FinalFrames(g, 1), 0);
  EXPECT_EQ(FinalFrames(g, 2), 0);  // torch copies instead of stretching: nothing final yet
  int64_t prev = 0;
  for (int64_t n = 3; n <= 700; ++n) {
    const int64_t f = FinalFrames(g, n);
    const int64_t m = InterpolatedFrames(g, n);
    EXPECT_GE(f, prev) << n;
    EXPECT_LE(f, m) << n;
    EXPECT_GE(f, m - 8) << n;  // only the last ~1.5 codes' frames wait for more latents
    prev = f;
  }
}

TEST(StreamPlanTest, WindowsCoverEveryFrameOnceWithContext) {
  InterpolationGeometry g;
  const int64_t context = 17;
  int64_t emitted = 0;
  int64_t last_window = -1;
  for (int64_t n = 10; n < 200; n += 16) {
    ChunkWindow w = NextChunkWindow(g, n, emitted, context, false);
    EXPECT_EQ(w.emit_begin, emitted);
    if (w.empty()) continue;
    EXPECT_EQ(w.window_begin, std::max<int64_t>(0, emitted - context));
    EXPECT_EQ(w.window_end, FinalFrames(g, n));
    EXPECT_EQ(w.window_end - w.emit_end, context);
    if (emitted > context && last_window >= 0) {
      // Same number of new codes -> same window size (+-1 frame of stretch jitter).
      EXPECT_NEAR(w.window_end - w.window_begin, last_window, 2);
    }
    if (emitted > context) last_window = w.window_end - w.window_begin;
    emitted = w.emit_end;
  }
  ChunkWindow last = NextChunkWindow(g, 200, emitted, context, true);
  EXPECT_EQ(last.emit_end, InterpolatedFrames(g, 200));
  EXPECT_EQ(last.window_end, InterpolatedFrames(g, 200));
}

}  // namespace
}  // namespace vox
