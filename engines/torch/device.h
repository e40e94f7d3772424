#ifndef VOX_ENGINES_TORCH_DEVICE_H_
#define VOX_ENGINES_TORCH_DEVICE_H_

// vox_torch: device and dtype selection, thread settings and TorchScript loading shared by the
// neural engines. This header does not include LibTorch: torch types appear only as forward
// declarations, so callers that use them (engine .cc files) include LibTorch themselves.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace c10 {
struct Device;
enum class ScalarType : int8_t;
}  // namespace c10
namespace torch {
namespace jit {
struct Module;
}  // namespace jit
}  // namespace torch

namespace vox {

enum class DeviceKind { kCpu, kCuda, kMps };

// A concrete device, resolved from a config string. Plain data.
struct DevicePlacement {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;  // CUDA ordinal; 0 otherwise
  // "cpu", "cuda:N", "mps": what discovery reports.
  std::string name() const;
};

// Resolves "auto" (cuda:0 > mps > cpu), "cpu", "cuda", "cuda:N" or "mps" against what this
// LibTorch build and machine offer. INVALID_ARGUMENT for an unknown string (listing the allowed
// ones); FAILED_PRECONDITION when the device exists in the vocabulary but not here
// ("device 'cuda' requested but this LibTorch has no CUDA"). Thread-safe.
absl::StatusOr<DevicePlacement> ResolveDevice(const std::string& requested);

enum class DType { kFloat32, kFloat16, kBFloat16 };

// "float32" | "float16" | "bfloat16" (also "fp32", "fp16", "bf16"). INVALID_ARGUMENT otherwise.
absl::StatusOr<DType> ParseDType(const std::string& name);
std::string DTypeName(DType dtype);
// Bytes per element.
int DTypeSize(DType dtype);

// FAILED_PRECONDITION when `dtype` cannot run on `device` with this LibTorch (float16 on CPU
// with LibTorch 1.x has no Half matmul or LayerNorm).
absl::Status CheckDTypeSupported(DType dtype, const DevicePlacement& device);

// Why a model whose manifest stores its weights as `weights` ("int8" | "bfloat16" when
// compressed, else the exported dtype's name), exported in `exported`, cannot run in `run` on
// `device`; "" when it can. Compressed weights run through vox::linear, a CPU operator with
// float32 activations: CPU only, in the exported dtype. The text follows "field 'weights' ".
std::string CompressedWeightsProblem(const std::string& weights, DType exported, DType run,
                                     const DevicePlacement& device);

// Whether this CPU computes in bfloat16 natively (AVX512-BF16), where oneDNN's bfloat16
// convolutions run several times faster than float32's. Thread-safe.
bool CpuHasNativeBFloat16();

// Mapping to LibTorch's types (the caller includes LibTorch).
c10::Device ToTorchDevice(const DevicePlacement& device);
c10::ScalarType ToTorchDType(DType dtype);

// What ConfigureThreads actually set.
struct ThreadSettings {
  int intra_op_threads = 0;  // at::get_num_threads() afterwards
  int blas_threads = 0;      // OpenBLAS's pool afterwards; 0 when OpenBLAS is not loaded
  bool openblas_found = false;
  std::string blas_core;           // the kernels OpenBLAS runs (openblas_get_corename), "" without it
  std::string openmp_wait_policy;  // OMP_WAIT_POLICY as this process runs with it ("" = unset)
  std::string weights_kernel;      // the kernel of vox::linear (int8/bfloat16 weights) here
};

// Sets LibTorch's intra-op threads (0 = number of cores) and OpenBLAS's own pool
// (0 = same as intra-op), which at::set_num_threads does not reach (DESIGN.md, build traps).
// OpenBLAS is found with dlsym at run time (no link-time dependency); without it only LibTorch's
// setting applies. OpenBLAS's pool is process-wide; the intra-op count and the graph executor's
// switch (item 4 below, off here) are the calling thread's: every thread that runs models calls
// this before its first.
ThreadSettings ConfigureThreads(int intra_op_threads, int blas_threads);

// Process settings for binaries that run models; call first in main().
// 1. LibTorch's OpenMP threads sleep when idle (OMP_WAIT_POLICY=PASSIVE). By default they spin
//    after every parallel region and starve OpenBLAS's own pool on the same cores, so 2 threads
//    ran barely faster than 1 (docs/benchmarks.md, "Threads"). libgomp reads the variable once,
//    when it is loaded (before main), so when it is unset the process re-executes itself once with
//    it set. Linux only (/proc/self/exe); if the re-execution fails, nothing changes.
// 2. glibc's malloc keeps freed blocks under 64 MiB in its heap, and up to 256 MiB free at its
//    top (fixed M_MMAP_THRESHOLD and M_TRIM_THRESHOLD), so a decoder step reuses the last
//    step's buffers, the logits of up to 64 rows (1 MiB each at NLLB's vocabulary) included,
//    instead of mapping and zeroing new ones: 32 int8 sequences in the stepper ran at 141-144
//    tokens/s against 117-127 with a 4 MiB threshold, for 30 MB more when serving and 30-90 MB
//    more at the peak (docs/benchmarks.md, "The KV cache written in place"). Engines give the
//    free memory back with ReleaseFreeMemory when they go idle. glibc only.
// 3. Blocks that are mapped come in transparent huge pages (GLIBC_TUNABLES glibc.malloc.hugetlb=1,
//    read at start like OMP_WAIT_POLICY): first touching a fresh 33 MB buffer in 4 KiB pages
//    took 11 ms, in 2 MiB pages 3 ms (docs/benchmarks.md, "Batch throughput"). glibc only.
// 4. TorchScript methods run without the graph executor's profiling and optimising passes
//    (torch::jit::setGraphExecutorOptimize(false)): with them the first two calls of each method
//    ran up to twice as slow (profiling, then optimising for the shapes seen), which the first
//    requests met as latency, and later calls were no faster (docs/benchmarks.md, "XTTS with
//    int8 weights"); their plans held 54 MB of a serving voxd (there, "Memory at a join").
//    LibTorch keeps the switch per thread: this sets it for the calling thread, ConfigureThreads
//    for each worker, and a thread of no engine's (voice cloning's) runs its method under
//    torch::jit::GraphOptimizerEnabledGuard.
// 5. OpenBLAS runs kernels for this CPU: OpenBLAS 0.3.21 (Debian 12's) falls back to its
//    Prescott (SSE3) kernels on a CPU it does not know, an Emerald Rapids Xeon among them, where
//    its float32 gemm ran 3-6x slower than with OPENBLAS_CORETYPE=SkylakeX (docs/benchmarks.md,
//    "float32 through vox::linear"). It reads the variable when it is loaded, so when OpenBLAS
//    reports Prescott the process sets it from the CPU's features (OpenBlasCoreFor) and
//    re-executes itself as for item 1, saying so on stderr.
// A value the user set (OMP_WAIT_POLICY, MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_,
// glibc.malloc.hugetlb, OPENBLAS_CORETYPE) is kept.
void PrepareProcessForModels(char** argv);

// The SIMD an x86 CPU offers, as OpenBLAS's kernels need it.
struct CpuSimd {
  bool avx = false;
  bool avx2_fma = false;
  bool avx512 = false;       // F, BW, VL, DQ and CD
  bool avx512_bf16 = false;
};

// The OPENBLAS_CORETYPE for a CPU on which OpenBLAS chose `detected`: "" unless it fell back to
// Prescott; then the newest kernels the CPU runs, as later OpenBLAS releases fall back.
std::string OpenBlasCoreFor(const std::string& detected, const CpuSimd& cpu);

// Hands the free memory malloc keeps (item 2 above) back to the system. Costs a walk of the
// heap: call it when a model's work drains and after loading, not per step. Thread-safe.
void ReleaseFreeMemory();

// Loads a TorchScript file onto `device`, in eval mode. A shared_ptr so that code without
// LibTorch's headers can hold and release it (its deleter is bound here). FAILED_PRECONDITION naming the path
// for a missing or unreadable file; INTERNAL with LibTorch's message otherwise.
absl::StatusOr<std::shared_ptr<torch::jit::Module>> LoadTorchModule(
    const std::string& path, const DevicePlacement& device);

// Runs `fn`, turning c10::Error and std::exception into INTERNAL "<what>: <message>"
// (the first line of LibTorch's message; its C++ backtrace is dropped).
absl::Status CatchTorchErrors(absl::string_view what, absl::FunctionRef<absl::Status()> fn);

}  // namespace vox

#endif  // VOX_ENGINES_TORCH_DEVICE_H_
