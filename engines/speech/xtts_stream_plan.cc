#include "engines/speech/xtts_stream_plan.h"

#include <algorithm>
#include <cmath>

namespace vox {

double InterpolationGeometry::ratio1() const { return static_cast<double>(static_cast<float>(1.0 / scale1)); }
double InterpolationGeometry::ratio2() const { return static_cast<double>(static_cast<float>(1.0 / scale2)); }

namespace {

int64_t Scaled(int64_t n, double scale) {
  return static_cast<int64_t>(std::floor(static_cast<double>(n) * scale));
}

// Unclamped lower source index of output frame `dst` (torch: src = ratio*(dst+0.5)-0.5, >= 0).
int64_t SourceIndex(int64_t dst, double ratio) {
  double src = ratio * (static_cast<double>(dst) + 0.5) - 0.5;
  if (src < 0) src = 0;
  return static_cast<int64_t>(std::floor(src));
}

}  // namespace

int64_t InterpolatedFrames(const InterpolationGeometry& g, int64_t n) {
  if (n <= 0) return 0;
  const int64_t n1 = Scaled(n, g.scale1);
  return g.resample ? Scaled(n1, g.scale2) : n1;
}

int64_t FinalFrames(const InterpolationGeometry& g, int64_t n) {
  if (n <= 1) return 0;
  const int64_t n1 = Scaled(n, g.scale1);
  // Stage 1: frame k reads rows i0 and i0+1; final while i0 + 1 <= n - 1 (no clamping).
  const double r1 = g.ratio1();
  int64_t k1 = 0, k_hi = n1;  // k1 = number of final stage-1 frames (a prefix; binary search)
  while (k1 < k_hi) {
    const int64_t mid = (k1 + k_hi) / 2;
    if (SourceIndex(mid, r1) + 1 <= n - 1) k1 = mid + 1; else k_hi = mid;
  }
  if (!g.resample) return k1;
  const int64_t m = Scaled(n1, g.scale2);
  if (m == n1) return 0;  // torch copies instead of interpolating: not the general mapping
  const double r2 = g.ratio2();
  // Stage 2: frame j reads stage-1 frames a and a+1; both must be final and unclamped.
  int64_t lo = 0, hi = m;  // SourceIndex is monotonic: binary search the prefix
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (SourceIndex(mid, r2) + 1 <= k1 - 1) lo = mid + 1; else hi = mid;
  }
  return lo;
}

ChunkWindow NextChunkWindow(const InterpolationGeometry& g, int64_t n, int64_t emitted,
                            int64_t context, bool final) {
  ChunkWindow w;
  w.emit_begin = emitted;
  if (final) {
    w.emit_end = InterpolatedFrames(g, n);
    w.window_end = w.emit_end;
  } else {
    const int64_t f = FinalFrames(g, n);
    w.emit_end = f - context;
    w.window_end = f;
  }
  if (w.emit_end < w.emit_begin) w.emit_end = w.emit_begin;
  w.window_begin = std::max<int64_t>(0, emitted - context);
  return w;
}

}  // namespace vox
