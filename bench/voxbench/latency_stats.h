#ifndef VOX_BENCH_VOXBENCH_LATENCY_STATS_H_
#define VOX_BENCH_VOXBENCH_LATENCY_STATS_H_

// Summary statistics of a set of durations (latencies, times to first audio, gaps): count,
// min/mean/max, nearest-rank percentiles and a ghz-style histogram. Pure logic, no I/O.
//
// Percentile definition (nearest rank): for N sorted samples x[1] <= ... <= x[N] and
// 0 < p <= 100, the p-th percentile is x[k] with k = ceil(p / 100 * N), clamped to [1, N].
// It is always one of the samples (never interpolated), so p100 = max, and for N = 1 every
// percentile is that sample. p = 0 is defined as the minimum.
//
// Histogram (the shape ghz reports): `buckets` marks spaced evenly from the fastest sample to
// the slowest, mark[i] = min + i * (max - min) / (buckets - 1) (the last mark is exactly max).
// Bucket i counts the samples s with mark[i-1] < s <= mark[i] (bucket 0: s <= mark[0], i.e. the
// samples equal to the minimum). With all samples equal there is one bucket holding them all.
//
// Cost: Summarize sorts a copy of the samples (O(N log N)); everything else is O(N) or less.
// Thread-safety: the functions are pure; a DurationSamples object is not synchronized (guard it
// or give each thread its own and Merge them).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vox::bench {

// Durations in nanoseconds, kept whole (a run of a million calls is 8 MB).
class DurationSamples {
 public:
  void Add(int64_t nanos) { samples_.push_back(nanos); }
  void Merge(const DurationSamples& other) {
    samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
  }
  const std::vector<int64_t>& samples() const { return samples_; }
  size_t size() const { return samples_.size(); }
  bool empty() const { return samples_.empty(); }

 private:
  std::vector<int64_t> samples_;
};

struct HistogramBucket {
  int64_t mark_nanos = 0;  // upper bound of the bucket (inclusive)
  int64_t count = 0;
  double frequency = 0;  // count / total samples, 0..1
};

struct PercentileValue {
  double percentage = 0;  // 0..100
  int64_t nanos = 0;
};

struct DurationSummary {
  int64_t count = 0;
  int64_t min_nanos = 0;
  int64_t max_nanos = 0;
  int64_t mean_nanos = 0;  // rounded to the nearest nanosecond
  std::vector<PercentileValue> percentiles;  // in the order asked for
  std::vector<HistogramBucket> histogram;
};

// Nearest-rank percentile of `sorted` (ascending, non-empty); see the definition above.
// `percentage` is clamped to [0, 100].
int64_t NearestRankPercentile(const std::vector<int64_t>& sorted, double percentage);

// The ghz-style histogram of `sorted` (ascending) with `buckets` >= 2 marks; empty input gives
// an empty histogram, all-equal input a single bucket.
std::vector<HistogramBucket> MakeHistogram(const std::vector<int64_t>& sorted, int buckets);

// Everything at once. An empty sample set gives count 0, zeros and empty lists.
DurationSummary Summarize(const DurationSamples& samples, const std::vector<double>& percentages,
                          int histogram_buckets = 11);

// One segment of a session (speech-translate) or of a sequence (translate-synthesize): when the
// client handed it over and when its end arrived, in nanoseconds since the call started.
struct SegmentSpan {
  int64_t sent_nanos = 0;
  int64_t end_nanos = 0;
};

// What each segment added to its session's wall time ("segment interval"), in the order the
// segments ended: for the k-th segment to end, end[k] - max(sent[k], end[k-1]); for the first,
// end - sent. Segments sent back to back and answered one after the other therefore count only
// the time after the previous one ended (for a pipelined session: its own synthesis, its
// translation having overlapped the previous synthesis), while segments sent only after the
// previous one ended (a client calling Translate then Synthesize) count their whole latency. The
// intervals sum to the time from the first send to the last end less the time when no segment
// was outstanding. An interval is never negative (an end before its send counts 0).
std::vector<int64_t> SegmentIntervals(std::vector<SegmentSpan> spans);

}  // namespace vox::bench

#endif  // VOX_BENCH_VOXBENCH_LATENCY_STATS_H_
