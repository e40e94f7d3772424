// vox::attend, vox's TorchScript operator for attention on CPU (docs/model-format.md, "Weight
// formats"): q float32 [B, H, Q, D] (already scaled), k and v float32 [B, H, L, D] (any strides
// but the last: a narrowed cache or a transposed view will do), key_mask [B, L] (0 = masked),
// neg the masked score -> softmax(q k^T masked) v, [B, H, Q, D].
// Registered with LibTorch when this library is loaded, like vox::linear (linear_op.cc).

#include <torch/library.h>

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
  // Parts of at least 32 Ki multiply-adds, on the helpers vox::linear's products keep polling
  // (SpinParallelFor): one row's decoder step, 16 heads x 40 keys, splits across 2 threads too.
  const int64_t grain =
      std::max<int64_t>(1, (int64_t{32} << 10) / std::max<int64_t>(1, 2 * shape.queries * keys * shape.dim));
  SpinParallelFor(shape.rows * shape.heads, grain, at::get_num_threads(), [&](int64_t begin, int64_t end) {
    vox::Attend(qp, kp, vp, mp, shape, static_cast<float>(neg), op, begin, end);
  });
  return out;
}

}  // namespace
}  // namespace vox

TORCH_LIBRARY_FRAGMENT(vox, m) { m.def("attend(Tensor q, Tensor k, Tensor v, Tensor key_mask, float neg) -> Tensor"); }

TORCH_LIBRARY_IMPL(vox, CPU, m) { m.impl("attend", &vox::AttendOp); }
