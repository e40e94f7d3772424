// vox's TorchScript operators for attention on CPU (docs/model-format.md, "Weight formats"),
// registered with LibTorch when this library is loaded, like vox::linear (linear_op.cc):
// - vox::attend: q float32 [B, H, Q, D] (already scaled), k and v float32 [B, H, L, D] (any
//   strides but the last: a narrowed cache or a transposed view will do), key_mask [B, L]
//   (0 = masked), neg the masked score -> softmax(q k^T masked) v, [B, H, Q, D].
// - vox::cache_attend: a decoder step's whole self-attention between its two products, one new
//   row per sequence. qkv float32 [B, 1, 3 * H * D] (queries, keys, values side by side),
//   caches float32 [S, H, C, D], slots and cache_lens int64 [B] (distinct slots): writes row b's
//   key and value at position cache_lens[b] of slot slots[b], then attends its query times
//   `scale` to that slot's keys 0..cache_lens[b] -> [B, 1, H * D], the heads side by side.

#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "engines/torch/ops/attend.h"
#include "engines/torch/ops/spin_pool.h"

namespace vox {
namespace {

void CheckKeys(const at::Tensor& t, const char* name, const at::Tensor& q, int64_t keys) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.dim() == 4, "vox::attend: ", name,
              " must be float32 [B, H, L, D], got ", t.scalar_type(), " ", t.sizes());
  TORCH_CHECK(t.size(0) == q.size(0) && t.size(1) == q.size(1) && t.size(2) == keys && t.size(3) == q.size(3),
              "vox::attend: ", name, " ", t.sizes(), " does not fit q ", q.sizes(), " and ", keys, " keys");
  TORCH_CHECK(t.stride(3) == 1, "vox::attend: each key of ", name, " must be contiguous, got strides ",
              t.strides());
}

// Parts of at least 32 Ki multiply-adds, on the helpers vox::linear's products keep polling
// (SpinParallelFor): one row's decoder step, 16 heads x 40 keys, splits across 2 threads too.
int64_t AttendGrain(int64_t queries, int64_t keys, int64_t dim) {
  return std::max<int64_t>(1, (int64_t{32} << 10) / std::max<int64_t>(1, 2 * queries * keys * dim));
}

at::Tensor AttendOp(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& key_mask,
                  double neg) {
  TORCH_CHECK(q.scalar_type() == at::kFloat && q.dim() == 4, "vox::attend: q must be float32 [B, H, Q, D], got ",
              q.scalar_type(), " ", q.sizes());
  const int64_t keys = k.dim() == 4 ? k.size(2) : -1;
  CheckKeys(k, "k", q, keys);
  CheckKeys(v, "v", q, keys);
  TORCH_CHECK(key_mask.dim() == 2 && key_mask.size(0) == q.size(0) && key_mask.size(1) == keys,
              "vox::attend: key_mask must be [", q.size(0), ", ", keys, "], got ", key_mask.sizes());
  const at::Tensor qc = q.contiguous();
  const at::Tensor mask = key_mask.to(at::kLong).contiguous();
  at::Tensor out = at::empty(q.sizes(), q.options().memory_format(at::MemoryFormat::Contiguous));
  const AttendShape shape{q.size(0), q.size(1), q.size(2), keys, q.size(3), {k.stride(0), k.stride(1), k.stride(2)},
                          {v.stride(0), v.stride(1), v.stride(2)}};
  const float* qp = qc.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const int64_t* mp = mask.data_ptr<int64_t>();
  float* op = out.data_ptr<float>();
  SpinParallelFor(shape.rows * shape.heads, AttendGrain(shape.queries, keys, shape.dim), at::get_num_threads(),
                  [&](int64_t begin, int64_t end) {
    vox::Attend(qp, kp, vp, mp, shape, static_cast<float>(neg), op, begin, end);
  });
  return out;
}

void CheckCache(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.dim() == 4, "vox::cache_attend: ", name,
              " must be float32 [S, H, C, D], got ", t.scalar_type(), " ", t.sizes());
  TORCH_CHECK(t.stride(3) == 1, "vox::cache_attend: each row of ", name, " must be contiguous, got strides ",
              t.strides());
}

at::Tensor CacheAttendOp(const at::Tensor& qkv, const at::Tensor& k_cache, const at::Tensor& v_cache,
                         const at::Tensor& slots, const at::Tensor& cache_lens, double scale) {
  CheckCache(k_cache, "k_cache");
  CheckCache(v_cache, "v_cache");
  TORCH_CHECK(v_cache.sizes() == k_cache.sizes(), "vox::cache_attend: v_cache ", v_cache.sizes(),
              " differs from k_cache ", k_cache.sizes());
  const int64_t heads = k_cache.size(1), capacity = k_cache.size(2), dim = k_cache.size(3), d = heads * dim;
  TORCH_CHECK(qkv.scalar_type() == at::kFloat && qkv.dim() == 3 && qkv.size(1) == 1 && qkv.size(2) == 3 * d,
              "vox::cache_attend: qkv must be float32 [B, 1, ", 3 * d, "] for caches ", k_cache.sizes(), ", got ",
              qkv.scalar_type(), " ", qkv.sizes());
  const int64_t rows = qkv.size(0);
  for (const at::Tensor* t : {&slots, &cache_lens}) {
    TORCH_CHECK(t->scalar_type() == at::kLong && t->dim() == 1 && t->size(0) == rows, "vox::cache_attend: ",
                t == &slots ? "slots" : "cache_lens", " must be int64 [", rows, "], got ", t->scalar_type(), " ",
                t->sizes());
  }
  const at::Tensor sc = slots.contiguous(), lc = cache_lens.contiguous();
  const int64_t* slot = sc.data_ptr<int64_t>();
  const int64_t* len = lc.data_ptr<int64_t>();
  int64_t keys = 0;
  for (int64_t b = 0; b < rows; ++b) {
    TORCH_CHECK(slot[b] >= 0 && slot[b] < k_cache.size(0), "vox::cache_attend: row ", b, "'s slot ", slot[b],
                " is not one of the caches' ", k_cache.size(0));
    TORCH_CHECK(len[b] >= 0 && len[b] < capacity, "vox::cache_attend: row ", b, "'s cache length ", len[b],
                " leaves no room for its new row in a capacity of ", capacity);
    for (int64_t a = 0; a < b; ++a) {
      TORCH_CHECK(slot[a] != slot[b], "vox::cache_attend: rows ", a, " and ", b, " share slot ", slot[b]);
    }
    keys = std::max(keys, len[b] + 1);
  }
  const at::Tensor x = qkv.contiguous();
  const float* xp = x.data_ptr<float>();
  float* kp = k_cache.data_ptr<float>();
  float* vp = v_cache.data_ptr<float>();
  at::Tensor q = at::empty({rows, d}, x.options());
  float* qp = q.data_ptr<float>();
  const float s = static_cast<float>(scale);
  for (int64_t b = 0; b < rows; ++b) {
    const float* row = xp + b * 3 * d;
    for (int64_t i = 0; i < d; ++i) qp[b * d + i] = row[i] * s;
    for (int64_t h = 0; h < heads; ++h) {
      std::copy_n(row + d + h * dim, dim,
                  kp + slot[b] * k_cache.stride(0) + h * k_cache.stride(1) + len[b] * k_cache.stride(2));
      std::copy_n(row + 2 * d + h * dim, dim,
                  vp + slot[b] * v_cache.stride(0) + h * v_cache.stride(1) + len[b] * v_cache.stride(2));
    }
  }
  at::Tensor out = at::empty({rows, 1, d}, x.options());
  float* op = out.data_ptr<float>();
  // (row, head) pairs in parts; each row attends over its own slot and length.
  SpinParallelFor(rows * heads, AttendGrain(1, keys, dim), at::get_num_threads(), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin / heads; b * heads < end; ++b) {
      const AttendShape shape{1, heads, 1, len[b] + 1, dim,
                              {0, k_cache.stride(1), k_cache.stride(2)}, {0, v_cache.stride(1), v_cache.stride(2)}};
      const int64_t first = std::max(begin, b * heads) - b * heads, last = std::min(end, (b + 1) * heads) - b * heads;
      vox::Attend(qp + b * d, kp + slot[b] * k_cache.stride(0), vp + slot[b] * v_cache.stride(0), nullptr,
                  shape, -INFINITY, op + b * d, first, last);
    }
  });
  return out;
}

}  // namespace
}  // namespace vox

TORCH_LIBRARY_FRAGMENT(vox, m) {
  m.def("attend(Tensor q, Tensor k, Tensor v, Tensor key_mask, float neg) -> Tensor");
  m.def("cache_attend(Tensor qkv, Tensor(a!) k_cache, Tensor(b!) v_cache, Tensor slots, Tensor cache_lens, "
        "float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(vox, CPU, m) {
  m.impl("attend", &vox::AttendOp);
  m.impl("cache_attend", &vox::CacheAttendOp);
}
