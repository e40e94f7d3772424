// Percentiles (nearest rank) and the histogram, checked against values worked out by hand from
// the definitions in bench/voxbench/latency_stats.h.
#include "bench/voxbench/latency_stats.h"

#include <algorithm>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox::bench {
namespace {

std::vector<int64_t> Range(int64_t from, int64_t to) {  // inclusive
  std::vector<int64_t> v;
  for (int64_t i = from; i <= to; ++i) v.push_back(i);
  return v;
}

TEST(NearestRankPercentileTest, OneToHundred) {
  const std::vector<int64_t> v = Range(1, 100);
  // k = ceil(p/100 * 100) = p for whole p.
  EXPECT_EQ(NearestRankPercentile(v, 50), 50);
  EXPECT_EQ(NearestRankPercentile(v, 90), 90);
  EXPECT_EQ(NearestRankPercentile(v, 99), 99);
  // ceil(99.9) = 100; ceil(0.5) = 1.
  EXPECT_EQ(NearestRankPercentile(v, 99.9), 100);
  EXPECT_EQ(NearestRankPercentile(v, 0.5), 1);
  EXPECT_EQ(NearestRankPercentile(v, 100), 100);
  EXPECT_EQ(NearestRankPercentile(v, 0), 1);
}

TEST(NearestRankPercentileTest, TenSamplesRoundUp) {
  const std::vector<int64_t> v = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
  EXPECT_EQ(NearestRankPercentile(v, 10), 10);   // k = 1 exactly
  EXPECT_EQ(NearestRankPercentile(v, 25), 30);   // k = ceil(2.5) = 3
  EXPECT_EQ(NearestRankPercentile(v, 50), 50);   // k = 5
  EXPECT_EQ(NearestRankPercentile(v, 51), 60);   // k = ceil(5.1) = 6
  EXPECT_EQ(NearestRankPercentile(v, 99.9), 100);
}

// 99.9 * 1000 / 100 is 999.0000000000001 in binary floating point; the rank is exactly 999.
TEST(NearestRankPercentileTest, ExactRanksAreNotPushedUpByRounding) {
  const std::vector<int64_t> v = Range(1, 1000);
  EXPECT_EQ(NearestRankPercentile(v, 99.9), 999);
  EXPECT_EQ(NearestRankPercentile(v, 99.95), 1000);  // ceil(999.5)
  EXPECT_EQ(NearestRankPercentile(v, 0.1), 1);
  const std::vector<int64_t> w = Range(1, 10);
  EXPECT_EQ(NearestRankPercentile(w, 70), 7);  // 0.7 * 10 = 7.000000000000001
}

TEST(NearestRankPercentileTest, OneSampleAndClamping) {
  EXPECT_EQ(NearestRankPercentile({42}, 0), 42);
  EXPECT_EQ(NearestRankPercentile({42}, 50), 42);
  EXPECT_EQ(NearestRankPercentile({42}, 99.9), 42);
  EXPECT_EQ(NearestRankPercentile({1, 2, 3}, 150), 3);
  EXPECT_EQ(NearestRankPercentile({1, 2, 3}, -5), 1);
  EXPECT_EQ(NearestRankPercentile({}, 50), 0);
}

TEST(SummarizeTest, UnsortedInputMinMeanMax) {
  DurationSamples s;
  for (int64_t v : {7, 1, 4, 2}) s.Add(v);
  const DurationSummary sum = Summarize(s, {50, 100});
  EXPECT_EQ(sum.count, 4);
  EXPECT_EQ(sum.min_nanos, 1);
  EXPECT_EQ(sum.max_nanos, 7);
  EXPECT_EQ(sum.mean_nanos, 4);  // 14 / 4 = 3.5, rounded to nearest
  ASSERT_EQ(sum.percentiles.size(), 2u);
  EXPECT_EQ(sum.percentiles[0].percentage, 50);
  EXPECT_EQ(sum.percentiles[0].nanos, 2);  // sorted 1 2 4 7, k = 2
  EXPECT_EQ(sum.percentiles[1].nanos, 7);
}

TEST(SummarizeTest, EmptyIsAllZero) {
  const DurationSummary sum = Summarize(DurationSamples(), {50, 99});
  EXPECT_EQ(sum.count, 0);
  EXPECT_EQ(sum.min_nanos, 0);
  EXPECT_EQ(sum.max_nanos, 0);
  EXPECT_TRUE(sum.percentiles.empty());
  EXPECT_TRUE(sum.histogram.empty());
}

TEST(SummarizeTest, MergeKeepsEverySample) {
  DurationSamples a, b;
  a.Add(5);
  b.Add(1);
  b.Add(9);
  a.Merge(b);
  const DurationSummary sum = Summarize(a, {});
  EXPECT_EQ(sum.count, 3);
  EXPECT_EQ(sum.min_nanos, 1);
  EXPECT_EQ(sum.max_nanos, 9);
}

// On random data every percentile is one of the samples and they never decrease with p.
TEST(SummarizeTest, PercentilesAreOrderedSamples) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(15, 1);
  DurationSamples s;
  for (int i = 0; i < 5000; ++i) s.Add(static_cast<int64_t>(dist(rng)));
  const std::vector<double> ps = {1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100};
  const DurationSummary sum = Summarize(s, ps);
  std::vector<int64_t> sorted = s.samples();
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sum.percentiles.size(); ++i) {
    EXPECT_TRUE(std::binary_search(sorted.begin(), sorted.end(), sum.percentiles[i].nanos));
    // At least p% of the samples are <= the value, and fewer than p% are < it.
    const double p = ps[i];
    const auto le = std::upper_bound(sorted.begin(), sorted.end(), sum.percentiles[i].nanos) -
                    sorted.begin();
    const auto lt = std::lower_bound(sorted.begin(), sorted.end(), sum.percentiles[i].nanos) -
                    sorted.begin();
    EXPECT_GE(le * 100.0, p * sorted.size()) << p;
    EXPECT_LT(lt * 100.0, p * sorted.size()) << p;
    if (i > 0) {
      EXPECT_LE(sum.percentiles[i - 1].nanos, sum.percentiles[i].nanos);
    }
  }
  EXPECT_EQ(sum.percentiles.back().nanos, sum.max_nanos);
}

TEST(HistogramTest, MarksSpanMinToMaxAndBoundsAreInclusive) {
  // Marks 0, 1, ..., 10 (step (10 - 0) / 10 = 1).
  const std::vector<HistogramBucket> h = MakeHistogram({0, 5, 5, 6, 10, 10}, 11);
  ASSERT_EQ(h.size(), 11u);
  for (int i = 0; i < 11; ++i) EXPECT_EQ(h[static_cast<size_t>(i)].mark_nanos, i);
  EXPECT_EQ(h[0].count, 1);   // 0
  EXPECT_EQ(h[5].count, 2);   // 5, 5: a sample equal to a mark belongs to that mark
  EXPECT_EQ(h[6].count, 1);   // 6
  EXPECT_EQ(h[10].count, 2);  // 10, 10
  int64_t total = 0;
  double freq = 0;
  for (const HistogramBucket& b : h) {
    total += b.count;
    freq += b.frequency;
  }
  EXPECT_EQ(total, 6);
  EXPECT_NEAR(freq, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(h[5].frequency, 2.0 / 6);
}

TEST(HistogramTest, UnevenStepLastMarkIsMax) {
  // Step (103 - 100) / 2 = 1.5: marks 100, 101 (floor of 101.5), 103.
  const std::vector<HistogramBucket> h = MakeHistogram({100, 101, 102, 103}, 3);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].mark_nanos, 100);
  EXPECT_EQ(h[1].mark_nanos, 101);
  EXPECT_EQ(h[2].mark_nanos, 103);
  EXPECT_EQ(h[0].count, 1);
  EXPECT_EQ(h[1].count, 1);
  EXPECT_EQ(h[2].count, 2);
}

TEST(HistogramTest, AllEqualIsOneBucketAndEmptyIsNone) {
  const std::vector<HistogramBucket> h = MakeHistogram({3, 3, 3}, 11);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].mark_nanos, 3);
  EXPECT_EQ(h[0].count, 3);
  EXPECT_DOUBLE_EQ(h[0].frequency, 1.0);
  EXPECT_TRUE(MakeHistogram({}, 11).empty());
}

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(SegmentIntervalsTest, PipelinedSegmentsCountOnlyTheirOwnTail) {
  // Three segments sent together at 0, ending at 100, 150, 230: each adds what came after the
  // previous end.
  EXPECT_THAT(SegmentIntervals({{0, 100}, {0, 150}, {0, 230}}), ElementsAre(100, 50, 80));
}

TEST(SegmentIntervalsTest, SequentialSegmentsCountTheirWholeLatency) {
  // Each sent when the previous ended (Translate then Synthesize, one segment after the other).
  EXPECT_THAT(SegmentIntervals({{0, 100}, {100, 180}, {180, 300}}), ElementsAre(100, 80, 120));
}

TEST(SegmentIntervalsTest, IdleTimeBetweenSegmentsIsNotCounted) {
  EXPECT_THAT(SegmentIntervals({{0, 100}, {300, 350}}), ElementsAre(100, 50));
}

TEST(SegmentIntervalsTest, OrderedByEndAndNeverNegative) {
  // Given out of order: sorted by end first.
  EXPECT_THAT(SegmentIntervals({{0, 230}, {0, 100}, {0, 150}}), ElementsAre(100, 50, 80));
  // An end before its own send (clock oddity) counts 0, and the next interval starts at it.
  EXPECT_THAT(SegmentIntervals({{50, 40}, {0, 90}}), ElementsAre(0, 50));
  EXPECT_THAT(SegmentIntervals({}), IsEmpty());
  EXPECT_THAT(SegmentIntervals({{7, 19}}), ElementsAre(12));
}

}  // namespace
}  // namespace vox::bench
