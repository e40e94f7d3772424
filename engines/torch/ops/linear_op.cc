// vox::linear, vox's TorchScript operator for weights on CPU (docs/model-format.md, "Weight
// formats"): y = x @ (scale * weight)^T + bias with weight int8 (per-output-row scale; x is
// quantized per row to activation_bits, 16, 8 or 7, and the dot products are exact integer sums),
// bfloat16 or float32 (no scale), x float32 [..., in], y float32 [..., out]. Registered with LibTorch
// when this library is loaded (voxd links it; the exporters load it with torch.ops.load_library).

#include <torch/library.h>

#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "engines/torch/ops/spin_pool.h"
#include "engines/torch/ops/torch_ops.h"
#include "engines/torch/ops/weight_gemv.h"

namespace vox {
namespace {

// float32 products of more rows than this go to at::linear on CPUs without WeightGemvFloatTiles
// (neither AVX-512 nor AVX2).
constexpr int64_t kFloatFewRows = 4;

at::Tensor Linear(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& scale,
                  const c10::optional<at::Tensor>& bias, int64_t activation_bits) {
  TORCH_CHECK(x.scalar_type() == at::kFloat, "vox::linear: x must be float32, got ", x.scalar_type());
  TORCH_CHECK(weight.dim() == 2, "vox::linear: weight must be 2-D [out, in], got ", weight.sizes());
  TORCH_CHECK(x.dim() >= 1, "vox::linear: x must have at least one dimension");
  const int64_t out = weight.size(0);
  const int64_t in = weight.size(1);
  TORCH_CHECK(x.size(-1) == in, "vox::linear: x has ", x.size(-1), " features, weight ", in);
  const bool int8 = weight.scalar_type() == at::kChar;
  TORCH_CHECK(int8 || weight.scalar_type() == at::kBFloat16 || weight.scalar_type() == at::kFloat,
              "vox::linear: weight must be int8, bfloat16 or float32, got ", weight.scalar_type());
  TORCH_CHECK(activation_bits == 16 || (int8 && (activation_bits == 8 || activation_bits == 7)),
              "vox::linear: activation_bits must be 16", int8 ? ", 8 or 7" : " for non-int8 weights", ", got ",
              activation_bits);
  const int x_bits = static_cast<int>(activation_bits);
  at::Tensor s;
  if (int8) {
    TORCH_CHECK(scale.has_value() && scale->defined(), "vox::linear: int8 weights need a scale");
    s = scale->contiguous();
    TORCH_CHECK(s.scalar_type() == at::kFloat && s.dim() == 1 && s.size(0) == out,
                "vox::linear: scale must be float32 [", out, "], got ", s.scalar_type(), " ", s.sizes());
  } else {
    TORCH_CHECK(!scale.has_value() || !scale->defined(), "vox::linear: ",
                weight.scalar_type() == at::kBFloat16 ? "bfloat16" : "float32", " weights take no scale");
  }
  at::Tensor b;
  if (bias.has_value() && bias->defined()) {
    b = bias->contiguous();
    TORCH_CHECK(b.scalar_type() == at::kFloat && b.dim() == 1 && b.size(0) == out,
                "vox::linear: bias must be float32 [", out, "], got ", b.scalar_type(), " ", b.sizes());
  }
  // A strided weight would be copied at every call, reading it twice (a transposed export did).
  TORCH_CHECK(weight.is_contiguous(), "vox::linear: weight must be contiguous [out, in], got strides ",
              weight.strides(), " (export it contiguous)");
  const at::Tensor x2 = x.reshape({-1, in}).contiguous();
  const at::Tensor& w = weight;
  const int64_t rows = x2.size(0);
  // Without the matrix kernel, BLAS's gemm multiplies more than a few float32 rows faster.
  if (w.scalar_type() == at::kFloat && rows > kFloatFewRows && !WeightGemvFloatTiles()) {
    return at::linear(x, w, b.defined() ? c10::optional<at::Tensor>(b) : c10::nullopt);
  }
  at::Tensor y = at::empty({rows, out}, x.options());
  const float* xp = x2.data_ptr<float>();
  const float* sp = s.defined() ? s.data_ptr<float>() : nullptr;
  const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  // Parts of at least the work of 128 KiB of weights against 8 rows. SpinParallelFor's helpers
  // poll for work between the products of a step, so even a 1 MiB weight pays to split (waking
  // LibTorch's sleeping OpenMP threads for each cost as much as reading 1 MiB; see
  // bench/weight_formats.py --small-weights).
  const int threads = at::get_num_threads();
  const int64_t row_groups = (rows + 7) / 8;
  const int64_t min_part = std::max<int64_t>(
      1, (int64_t{128} << 10) / std::max<int64_t>(1, in * w.element_size() * row_groups));
  if (int8) {
    at::Tensor xq = at::empty({rows, in}, x.options().dtype(at::kShort));
    at::Tensor xscale = at::empty({rows}, x.options());
    int16_t* xqp = xq.data_ptr<int16_t>();
    float* xsp = xscale.data_ptr<float>();
    // Rows split across threads once there are at least 256 KiB of them (an encoder's, a batch's).
    SpinParallelFor(rows, std::max<int64_t>(1, (int64_t{64} << 10) / in), threads,
                    [&](int64_t begin, int64_t end) {
                      QuantizeRows(xp + begin * in, end - begin, in, x_bits, xqp + begin * in, xsp + begin);
                    });
    const int8_t* wp = w.data_ptr<int8_t>();
    SpinParallelFor(out, min_part, threads, [&](int64_t begin, int64_t end) {
      WeightGemvInt8(xqp, xsp, rows, in, wp, sp, bp, yp, out, begin, end, x_bits);
    });
  } else if (w.scalar_type() == at::kBFloat16) {
    const uint16_t* wp = reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>());
    SpinParallelFor(out, min_part, threads, [&](int64_t begin, int64_t end) {
      WeightGemvBf16(xp, rows, in, wp, bp, yp, out, begin, end);
    });
  } else {
    const float* wp = w.data_ptr<float>();
    SpinParallelFor(out, min_part, threads, [&](int64_t begin, int64_t end) {
      WeightGemvFloat(xp, rows, in, wp, bp, yp, out, begin, end);
    });
  }
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out;
  return y.view(shape);
}

}  // namespace

const char* TorchOpsKernel() { return WeightGemvKernel(); }

}  // namespace vox

TORCH_LIBRARY(vox, m) {
  m.def("linear(Tensor x, Tensor weight, Tensor? scale, Tensor? bias, int activation_bits=16) -> Tensor");
}

TORCH_LIBRARY_IMPL(vox, CPU, m) { m.impl("linear", &vox::Linear); }
