#include "engines/speech/xtts_stream_plan.h"

#include <algorithm>
#include <cmath>

namespace vox {

double InterpolationGeometry::ratio0() const { return static_cast<double>(static_cast<float>(1.0 / scale0)); }
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

// One stretch of `in_len` rows of which the first `in_final` are final: returns how many leading
// output frames are final (both source rows final and not clamped), or -1 when torch copies
// (output length == input length), whose mapping differs from the general one.
int64_t FinalThroughStage(int64_t in_len, int64_t in_final, double scale, double ratio) {
  const int64_t out_len = Scaled(in_len, scale);
  if (out_len == in_len) return -1;
  int64_t lo = 0, hi = out_len;  // SourceIndex is monotonic: binary search the final prefix
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (SourceIndex(mid, ratio) + 1 <= in_final - 1) lo = mid + 1; else hi = mid;
  }
  return lo;
}

}  // namespace

int64_t InterpolatedFrames(const InterpolationGeometry& g, int64_t n) {
  if (n <= 0) return 0;
  const int64_t n0 = g.scale0 != 1.0 ? Scaled(n, g.scale0) : n;
  const int64_t n1 = Scaled(n0, g.scale1);
  return g.resample ? Scaled(n1, g.scale2) : n1;
}

int64_t FinalFrames(const InterpolationGeometry& g, int64_t n) {
  if (n <= 1) return 0;
  int64_t len = n, fin = n;  // rows so far, final rows so far (all latents are final)
  if (g.scale0 != 1.0) {
    const int64_t f = FinalThroughStage(len, fin, g.scale0, g.ratio0());
    if (f < 0) return 0;
    len = Scaled(len, g.scale0);
    fin = f;
  }
  {
    const int64_t f = FinalThroughStage(len, fin, g.scale1, g.ratio1());
    if (f < 0) return 0;
    len = Scaled(len, g.scale1);
    fin = f;
  }
  if (g.resample) {
    const int64_t f = FinalThroughStage(len, fin, g.scale2, g.ratio2());
    if (f < 0) return 0;
    fin = f;
  }
  return fin;
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
