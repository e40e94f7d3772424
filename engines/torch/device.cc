#include "engines/torch/device.h"

#include <dlfcn.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engines/torch/ops/torch_ops.h"

namespace vox {
namespace {

std::string FirstLine(const std::string& message) {
  const size_t nl = message.find('\n');
  return nl == std::string::npos ? message : message.substr(0, nl);
}

// The line of a LibTorch message worth showing. c10::Error::what() carries a C++ backtrace;
// errors raised inside TorchScript start with "The following operation failed in the
// TorchScript interpreter." and a TorchScript traceback, and end with the actual error
// ("RuntimeError: ...") on the last line.
std::string UsefulLine(const std::string& message) {
  if (message.rfind("The following operation failed", 0) == 0) {
    size_t end = message.find_last_not_of(" \n");
    if (end != std::string::npos) {
      const size_t start = message.rfind('\n', end);
      return message.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
    }
  }
  return FirstLine(message);
}

std::string TorchMessage(const c10::Error& e) {
  const std::string msg = e.msg();
  return UsefulLine(msg.empty() ? std::string(e.what()) : msg);
}

constexpr char kAllowedDevices[] = "auto, cpu, cuda, cuda:N, mps";

}  // namespace

std::string DevicePlacement::name() const {
  switch (kind) {
    case DeviceKind::kCpu: return "cpu";
    case DeviceKind::kCuda: return absl::StrCat("cuda:", index);
    case DeviceKind::kMps: return "mps";
  }
  return "cpu";
}

absl::StatusOr<DevicePlacement> ResolveDevice(const std::string& requested) {
  const std::string s = absl::AsciiStrToLower(requested);
  DevicePlacement p;
  if (s == "auto" || s.empty()) {
    if (torch::cuda::is_available()) {
      p.kind = DeviceKind::kCuda;
    } else if (at::hasMPS()) {
      p.kind = DeviceKind::kMps;
    }
    return p;
  }
  if (s == "cpu") return p;
  if (s == "mps") {
    if (!at::hasMPS()) {
      return absl::FailedPreconditionError(
          "device 'mps' requested but this LibTorch build or machine has no MPS "
          "(Apple silicon with a LibTorch 2.x build); use 'cpu' or 'auto'");
    }
    p.kind = DeviceKind::kMps;
    return p;
  }
  if (s == "cuda" || absl::StartsWith(s, "cuda:")) {
    int index = 0;
    if (s.size() > 4 && !absl::SimpleAtoi(s.substr(5), &index)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown device '", requested,
                                                     "'; allowed: ", kAllowedDevices));
    }
    if (index < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("device '", requested, "': CUDA index must be >= 0"));
    }
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device '", requested,
          "' requested but this LibTorch build has no CUDA or no GPU is visible; use 'cpu' or "
          "'auto'"));
    }
    const int count = static_cast<int>(torch::cuda::device_count());
    if (index >= count) {
      return absl::FailedPreconditionError(absl::StrCat("device '", requested, "': only ",
                                                        count, " CUDA device(s) visible"));
    }
    p.kind = DeviceKind::kCuda;
    p.index = index;
    return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown device '", requested, "'; allowed: ", kAllowedDevices));
}

absl::StatusOr<DType> ParseDType(const std::string& name) {
  const std::string s = absl::AsciiStrToLower(name);
  if (s == "float32" || s == "fp32" || s == "float") return DType::kFloat32;
  if (s == "float16" || s == "fp16" || s == "half") return DType::kFloat16;
  if (s == "bfloat16" || s == "bf16") return DType::kBFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", name, "'; allowed: float32, float16, bfloat16"));
}

std::string DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
  }
  return "float32";
}

int DTypeSize(DType dtype) { return dtype == DType::kFloat32 ? 4 : 2; }

absl::Status CheckDTypeSupported(DType dtype, const DevicePlacement& device) {
#if TORCH_VERSION_MAJOR < 2
  if (dtype == DType::kFloat16 && device.kind == DeviceKind::kCpu) {
    return absl::FailedPreconditionError(
        "dtype 'float16' cannot run on cpu with LibTorch 1.x (no Half matmul or LayerNorm); "
        "use float32 or bfloat16 on cpu");
  }
#endif
  return absl::OkStatus();
}

std::string CompressedWeightsProblem(const std::string& weights, DType exported, DType run,
                                     const DevicePlacement& device) {
  if (weights == DTypeName(exported)) return "";
  if (device.kind != DeviceKind::kCpu) {
    return absl::StrCat("is '", weights, "': vox runs compressed weights on the CPU only, not on ", device.name(),
                        " (export without --weights for an accelerator)");
  }
  if (run != exported) {
    return absl::StrCat("is '", weights, "': the model cannot be converted to ", DTypeName(run),
                        " at load (leave dtype unset)");
  }
  return "";
}

bool CpuHasNativeBFloat16() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

c10::Device ToTorchDevice(const DevicePlacement& device) {
  switch (device.kind) {
    case DeviceKind::kCpu: return c10::Device(c10::DeviceType::CPU);
    case DeviceKind::kCuda:
      return c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device.index));
    case DeviceKind::kMps: return c10::Device(c10::DeviceType::MPS);
  }
  return c10::Device(c10::DeviceType::CPU);
}

c10::ScalarType ToTorchDType(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return c10::ScalarType::Float;
    case DType::kFloat16: return c10::ScalarType::Half;
    case DType::kBFloat16: return c10::ScalarType::BFloat16;
  }
  return c10::ScalarType::Float;
}

namespace {

// The name of the kernels OpenBLAS chose, "" when OpenBLAS is not loaded.
std::string OpenBlasCore() {
  using CoreFn = char* (*)();
  auto core_fn = reinterpret_cast<CoreFn>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* core = core_fn != nullptr ? core_fn() : nullptr;
  return core != nullptr ? core : "";
}

CpuSimd ThisCpu() {
  CpuSimd cpu;
#if defined(__x86_64__) || defined(__i386__)
  cpu.avx = __builtin_cpu_supports("avx") != 0;
  cpu.avx2_fma = __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0;
  cpu.avx512 = __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512bw") != 0 &&
               __builtin_cpu_supports("avx512vl") != 0 && __builtin_cpu_supports("avx512dq") != 0 &&
               __builtin_cpu_supports("avx512cd") != 0;
  cpu.avx512_bf16 = __builtin_cpu_supports("avx512bf16") != 0;
#endif
  return cpu;
}

}  // namespace

ThreadSettings ConfigureThreads(int intra_op_threads, int blas_threads) {
  int intra = intra_op_threads;
  if (intra <= 0) intra = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(intra);
  torch::jit::setGraphExecutorOptimize(false);  // thread_local in LibTorch, as the count is
  ThreadSettings out;
  out.intra_op_threads = at::get_num_threads();
  const int blas = blas_threads > 0 ? blas_threads : intra;
  // Looked up at run time: LibTorch reaches OpenBLAS through libblas.so.3, chosen by the system.
  using SetFn = void (*)(int);
  using GetFn = int (*)();
  auto set_fn = reinterpret_cast<SetFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  auto get_fn = reinterpret_cast<GetFn>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (set_fn != nullptr) {
    set_fn(blas);
    out.openblas_found = true;
    out.blas_threads = get_fn != nullptr ? get_fn() : blas;
  }
  out.blas_core = OpenBlasCore();
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  out.openmp_wait_policy = policy != nullptr ? policy : "";
  out.weights_kernel = TorchOpsKernel();
  return out;
}

namespace {

// Sets what libgomp, glibc and OpenBLAS read only at process start, and re-executes the process once if
// anything changed.
void SetStartupEnvironment(char** argv) {
#ifdef __linux__
  bool changed = false;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    changed = ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0;
  }
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    const std::string detected = OpenBlasCore();
    const std::string core = OpenBlasCoreFor(detected, ThisCpu());
    if (!core.empty() && ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1) == 0) {
      std::fprintf(stderr, "OpenBLAS did not know this CPU and chose its %s kernels; running with OPENBLAS_CORETYPE=%s\n",
                   detected.c_str(), core.c_str());
      changed = true;
    }
  }
#ifdef __GLIBC__
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const std::string given = tunables != nullptr ? tunables : "";
  if (given.find("glibc.malloc.hugetlb") == std::string::npos) {
    const std::string value = given.empty() ? "glibc.malloc.hugetlb=1" : given + ":glibc.malloc.hugetlb=1";
    changed = ::setenv("GLIBC_TUNABLES", value.c_str(), 1) == 0 || changed;
  }
#endif
  if (!changed) return;
  // The binary's own path, not /proc/self/exe: the kernel names the process after the file
  // executed, and ps, pkill and the tests look for "voxd", not "exe".
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0 || n >= static_cast<ssize_t>(sizeof(self)) - 1) return;
  self[n] = '\0';
  ::execv(self, argv);
  std::perror("warning: cannot re-execute with OMP_WAIT_POLICY, GLIBC_TUNABLES and OPENBLAS_CORETYPE set; "
              "OpenMP threads spin");
#else
  (void)argv;
#endif
}

void KeepStepBuffersInHeap() {
#ifdef __GLIBC__
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

}  // namespace

std::string OpenBlasCoreFor(const std::string& detected, const CpuSimd& cpu) {
  if (!absl::EqualsIgnoreCase(detected, "Prescott")) return "";
  if (cpu.avx512_bf16 && cpu.avx512) return "Cooperlake";
  if (cpu.avx512) return "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  if (cpu.avx) return "Sandybridge";
  return "";
}

void PrepareProcessForModels(char** argv) {
  SetStartupEnvironment(argv);
  KeepStepBuffersInHeap();
  torch::jit::setGraphExecutorOptimize(false);
}

void ReleaseFreeMemory() {
#ifdef __GLIBC__
  ::malloc_trim(0);
#endif
}

absl::StatusOr<std::shared_ptr<torch::jit::Module>> LoadTorchModule(
    const std::string& path, const DevicePlacement& device) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": TorchScript file not found"));
  }
  std::shared_ptr<torch::jit::Module> module;
  absl::Status status = CatchTorchErrors(absl::StrCat(path, ": cannot load TorchScript"), [&] {
    module = std::make_shared<torch::jit::Module>(
        torch::jit::load(path, ToTorchDevice(device)));
    module->eval();
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return module;
}

absl::Status CatchTorchErrors(absl::string_view what, absl::FunctionRef<absl::Status()> fn) {
  try {
    return fn();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", TorchMessage(e)));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", UsefulLine(e.what())));
  }
}

}  // namespace vox
