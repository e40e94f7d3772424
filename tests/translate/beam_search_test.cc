// NLLB's beam search on plain arrays (engines/translate/beam_search.h), without LibTorch: the
// rules of docs/model-format.md ("Decoding", 4 and 5) on hand-made log-probabilities.
#include "engines/translate/beam_search.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace vox::beam {
namespace {

constexpr int64_t kEos = 2;
constexpr int64_t kVocab = 5;

TEST(BeamSearchTest, ArgmaxTakesTheLowestIdOnTies) {
  const float row[] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
  EXPECT_EQ(Argmax(row, 5), 1);
  const float one[] = {-3.0f};
  EXPECT_EQ(Argmax(one, 1), 0);
}

// Argmax scans in lanes; it must give what one plain scan gives, whatever the length, the ties,
// infinities and NaN.
int64_t PlainArgmax(const std::vector<float>& row) {
  int64_t best = 0;
  for (size_t v = 1; v < row.size(); ++v) {
    if (row[v] > row[best]) best = static_cast<int64_t>(v);
  }
  return best;
}

TEST(BeamSearchTest, ArgmaxIsThePlainScansFirstMaximum) {
  std::mt19937 rng(7);
  const float kInf = std::numeric_limits<float>::infinity(), kNan = std::nanf("");
  for (int64_t vocab : {1, 2, 15, 16, 17, 33, 1000, 256206}) {
    for (int trial = 0; trial < 40; ++trial) {
      // Few distinct values, so that the maximum is often tied across lanes and within one.
      std::uniform_int_distribution<int> level(0, trial % 2 == 0 ? 3 : 1000);
      std::vector<float> row(static_cast<size_t>(vocab));
      for (float& x : row) x = static_cast<float>(level(rng));
      std::uniform_int_distribution<int64_t> at(0, vocab - 1);
      switch (trial % 8) {
        case 1: row[at(rng)] = kNan; row[at(rng)] = kNan; break;
        case 2: row[0] = kNan; break;
        case 3: for (float& x : row) x = -kInf; break;
        case 4: for (float& x : row) x = kNan; break;
        case 5: row[at(rng)] = kInf; row[at(rng)] = kInf; break;
        case 6: for (float& x : row) x = -kInf; row[at(rng)] = kNan; row[at(rng)] = -1.0f; break;
        case 7: row[static_cast<size_t>(vocab - 1)] = 5000.0f; break;
        default: break;
      }
      ASSERT_EQ(Argmax(row.data(), vocab), PlainArgmax(row)) << "vocab " << vocab << ", trial " << trial;
    }
  }
}

TEST(BeamSearchTest, FirstStepKeepsTheKBestAndFinishesAnEosAmongThem) {
  TextBeams tb;
  tb.live.push_back({{}, 0.0f, 0});
  const float lp[kVocab] = {-1.0f, -0.5f, -0.1f, -2.0f, -0.7f};
  BeamUpdate(tb, lp, kVocab, /*step=*/0, /*k=*/2, /*lp=*/1.0, /*max_length=*/10, kEos);
  ASSERT_EQ(tb.live.size(), 2u);
  EXPECT_EQ(tb.live[0].tokens, std::vector<int64_t>{1});
  EXPECT_FLOAT_EQ(tb.live[0].score, -0.5f);
  EXPECT_EQ(tb.live[1].tokens, std::vector<int64_t>{4});
  EXPECT_EQ(tb.live[0].row, 0);  // the parent's row
  // </s> ranked first: finished, its length n = language token + </s> = 2.
  ASSERT_EQ(tb.finished.size(), 1u);
  EXPECT_TRUE(tb.finished[0].tokens.empty());
  EXPECT_FLOAT_EQ(tb.finished[0].final_score, -0.1f / 2.0f);
  EXPECT_FALSE(tb.done);
}

TEST(BeamSearchTest, EosRankedBelowKIsNotOffered) {
  TextBeams tb;
  tb.live.push_back({{}, 0.0f, 0});
  const float lp[kVocab] = {-0.1f, -0.2f, -0.3f, -5.0f, -5.0f};  // </s> third
  BeamUpdate(tb, lp, kVocab, 0, 2, 1.0, 10, kEos);
  EXPECT_TRUE(tb.finished.empty());
  ASSERT_EQ(tb.live.size(), 2u);
  EXPECT_EQ(tb.live[1].tokens, std::vector<int64_t>{1});
}

TEST(BeamSearchTest, CandidatesComeFromEveryLiveBeamAndKeepTheirParentRow) {
  TextBeams tb;
  tb.live.push_back({{7}, -1.0f, 0});
  tb.live.push_back({{8}, -1.2f, 1});
  // Row 0 then row 1 of a [2, vocab] array.
  const float lp[2 * kVocab] = {-3.0f, -3.0f, -9.0f, -3.0f, -3.0f,   // beam 0: all poor
                                -0.1f, -0.2f, -9.0f, -9.0f, -9.0f};  // beam 1: two good ones
  BeamUpdate(tb, lp, kVocab, 1, 2, 1.0, 10, kEos);
  ASSERT_EQ(tb.live.size(), 2u);
  EXPECT_EQ(tb.live[0].tokens, (std::vector<int64_t>{8, 0}));
  EXPECT_EQ(tb.live[0].row, 1);
  EXPECT_FLOAT_EQ(tb.live[0].score, -1.3f);
  EXPECT_EQ(tb.live[1].tokens, (std::vector<int64_t>{8, 1}));
}

TEST(BeamSearchTest, MaxLengthOffersEveryLiveBeamAndEnds) {
  TextBeams tb;
  tb.live.push_back({{5}, -1.0f, 0});
  const float lp[kVocab] = {-0.5f, -0.6f, -7.0f, -8.0f, -9.0f};
  BeamUpdate(tb, lp, kVocab, /*step=*/1, 2, /*lp=*/0.6, /*max_length=*/2, kEos);
  EXPECT_TRUE(tb.done);
  ASSERT_EQ(tb.finished.size(), 2u);
  // n = 1 + max_length for beams cut at the limit.
  EXPECT_FLOAT_EQ(tb.finished[0].final_score, -1.5f / PenaltyDivisor(3, 0.6));
  EXPECT_EQ(BestFinished(tb), (std::vector<int64_t>{5, 0}));
}

TEST(BeamSearchTest, StopsOnceNoLiveBeamCanBeatTheWorstFinished) {
  TextBeams tb;
  tb.live.push_back({{4}, -0.2f, 0});
  AddFinished(tb, {1}, -0.1f, 2);
  AddFinished(tb, {3}, -0.15f, 2);
  const float lp[kVocab] = {-3.0f, -3.5f, -9.0f, -9.0f, -9.0f};
  BeamUpdate(tb, lp, kVocab, 1, 2, 1.0, 10, kEos);
  EXPECT_TRUE(tb.done);  // best live -3.2 / 2 = -1.6 <= worst final -0.15
  TextBeams open;
  open.live.push_back({{4}, -0.2f, 0});
  AddFinished(open, {1}, -5.0f, 2);
  AddFinished(open, {3}, -6.0f, 2);
  BeamUpdate(open, lp, kVocab, 1, 2, 1.0, 10, kEos);
  EXPECT_FALSE(open.done);  // -1.6 beats -6.0
}

TEST(BeamSearchTest, FinishedKeepsTheKBestAndTiesFavourTheEarlier) {
  TextBeams tb;
  AddFinished(tb, {1}, -1.0f, 2);
  AddFinished(tb, {2}, -0.5f, 2);
  AddFinished(tb, {3}, -1.0f, 2);  // ties the first, added later: dropped
  ASSERT_EQ(tb.finished.size(), 2u);
  EXPECT_EQ(tb.finished[0].tokens, std::vector<int64_t>{1});
  EXPECT_EQ(tb.finished[1].tokens, std::vector<int64_t>{2});
  EXPECT_EQ(BestFinished(tb), std::vector<int64_t>{2});
  TextBeams tie;
  AddFinished(tie, {6}, -1.0f, 2);
  AddFinished(tie, {7}, -1.0f, 2);
  EXPECT_EQ(BestFinished(tie), std::vector<int64_t>{6});
  EXPECT_TRUE(BestFinished(TextBeams{}).empty());
}

TEST(BeamSearchTest, PenaltyDivisorIsThePowerRoundedToFloat) {
  EXPECT_FLOAT_EQ(PenaltyDivisor(4, 1.0), 4.0f);
  EXPECT_FLOAT_EQ(PenaltyDivisor(9, 0.5), 3.0f);
  EXPECT_EQ(PenaltyDivisor(7, 0.6), static_cast<float>(std::pow(7.0, 0.6)));
}

}  // namespace
}  // namespace vox::beam
