#include "bench/voxbench/latency_stats.h"

#include <algorithm>
#include <cmath>

namespace vox::bench {

int64_t NearestRankPercentile(const std::vector<int64_t>& sorted, double percentage) {
  if (sorted.empty()) return 0;
  const double p = std::clamp(percentage, 0.0, 100.0);
  const size_t n = sorted.size();
  if (p <= 0) return sorted.front();
  // ceil(p/100 * n) in exact arithmetic: scale to avoid 99.9 * 1000 / 100 = 999.0000000001.
  const long double exact = static_cast<long double>(p) * static_cast<long double>(n) / 100.0L;
  long double rounded = std::round(exact);
  size_t rank;
  if (std::fabs(exact - rounded) < 1e-9L) {
    rank = static_cast<size_t>(rounded);
  } else {
    rank = static_cast<size_t>(std::ceil(exact));
  }
  rank = std::clamp<size_t>(rank, 1, n);
  return sorted[rank - 1];
}

std::vector<HistogramBucket> MakeHistogram(const std::vector<int64_t>& sorted, int buckets) {
  std::vector<HistogramBucket> out;
  if (sorted.empty()) return out;
  const int64_t lo = sorted.front();
  const int64_t hi = sorted.back();
  const double total = static_cast<double>(sorted.size());
  if (lo == hi || buckets < 2) {
    out.push_back({hi, static_cast<int64_t>(sorted.size()), 1.0});
    return out;
  }
  out.resize(static_cast<size_t>(buckets));
  const long double step = static_cast<long double>(hi - lo) / (buckets - 1);
  for (int i = 0; i < buckets; ++i) {
    out[static_cast<size_t>(i)].mark_nanos =
        i == buckets - 1 ? hi : lo + static_cast<int64_t>(std::floor(step * i));
  }
  size_t b = 0;
  for (int64_t s : sorted) {
    while (s > out[b].mark_nanos) ++b;  // terminates: the last mark is the maximum
    ++out[b].count;
  }
  for (HistogramBucket& h : out) h.frequency = static_cast<double>(h.count) / total;
  return out;
}

DurationSummary Summarize(const DurationSamples& samples, const std::vector<double>& percentages,
                          int histogram_buckets) {
  DurationSummary s;
  if (samples.empty()) return s;
  std::vector<int64_t> sorted = samples.samples();
  std::sort(sorted.begin(), sorted.end());
  s.count = static_cast<int64_t>(sorted.size());
  s.min_nanos = sorted.front();
  s.max_nanos = sorted.back();
  long double sum = 0;
  for (int64_t v : sorted) sum += v;
  s.mean_nanos = static_cast<int64_t>(std::llround(sum / sorted.size()));
  for (double p : percentages) s.percentiles.push_back({p, NearestRankPercentile(sorted, p)});
  s.histogram = MakeHistogram(sorted, histogram_buckets);
  return s;
}

std::vector<int64_t> SegmentIntervals(std::vector<SegmentSpan> spans) {
  std::stable_sort(spans.begin(), spans.end(),
                   [](const SegmentSpan& a, const SegmentSpan& b) { return a.end_nanos < b.end_nanos; });
  std::vector<int64_t> out;
  out.reserve(spans.size());
  bool first = true;
  int64_t previous_end = 0;
  for (const SegmentSpan& s : spans) {
    const int64_t from = first ? s.sent_nanos : std::max(s.sent_nanos, previous_end);
    out.push_back(std::max<int64_t>(0, s.end_nanos - from));
    previous_end = s.end_nanos;
    first = false;
  }
  return out;
}

}  // namespace vox::bench
