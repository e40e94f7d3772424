// vox_torch: device and dtype parsing, thread settings.
#include "engines/torch/device.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <torch/csrc/jit/python/update_graph_executor_opt.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/resident_memory.h"

namespace vox {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(TorchDeviceTest, CpuAlwaysResolves) {
  auto d = ResolveDevice("cpu");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->kind, DeviceKind::kCpu);
  EXPECT_EQ(d->name(), "cpu");
  EXPECT_EQ(ResolveDevice("CPU")->name(), "cpu");
}

// Tests do not include LibTorch: whether CUDA is there is read from what "auto" picks.
bool HasCuda() { return ResolveDevice("auto").value().kind == DeviceKind::kCuda; }

TEST(TorchDeviceTest, AutoAgreesWithExplicitDevices) {
  auto d = ResolveDevice("auto");
  ASSERT_TRUE(d.ok()) << d.status();
  if (d->kind == DeviceKind::kCuda) {
    EXPECT_EQ(d->name(), "cuda:0");
    EXPECT_TRUE(ResolveDevice("cuda").ok());
  } else {
    EXPECT_FALSE(ResolveDevice("cuda").ok());
  }
  if (d->kind == DeviceKind::kCpu) {
    EXPECT_FALSE(ResolveDevice("mps").ok());
  }
}

TEST(TorchDeviceTest, UnavailableCudaIsAClearError) {
  if (HasCuda()) {
    EXPECT_TRUE(ResolveDevice("cuda").ok());
    auto far = ResolveDevice("cuda:99");
    EXPECT_EQ(far.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(far.status().message(), HasSubstr("cuda:99"));
    return;
  }
  for (const char* name : {"cuda", "cuda:1"}) {
    auto d = ResolveDevice(name);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition) << name;
    EXPECT_THAT(d.status().message(), AllOf(HasSubstr(name), HasSubstr("no CUDA")));
  }
}

TEST(TorchDeviceTest, MalformedDevicesListTheAllowedOnes) {
  for (const char* name : {"tpu", "cuda:x", "gpu", "cuda:-1"}) {
    auto d = ResolveDevice(name);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(d.status().message(), HasSubstr(name));
  }
  EXPECT_THAT(ResolveDevice("tpu").status().message(),
              AllOf(HasSubstr("auto"), HasSubstr("cpu"), HasSubstr("cuda:N"), HasSubstr("mps")));
}

TEST(TorchDeviceTest, DtypesParseAndRoundTrip) {
  EXPECT_EQ(ParseDType("float32").value(), DType::kFloat32);
  EXPECT_EQ(ParseDType("bf16").value(), DType::kBFloat16);
  EXPECT_EQ(ParseDType("float16").value(), DType::kFloat16);
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    EXPECT_EQ(ParseDType(DTypeName(t)).value(), t);
  }
  EXPECT_EQ(DTypeSize(DType::kFloat32), 4);
  EXPECT_EQ(DTypeSize(DType::kBFloat16), 2);
  auto bad = ParseDType("int8");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              AllOf(HasSubstr("int8"), HasSubstr("float32"), HasSubstr("bfloat16")));
}

TEST(TorchDeviceTest, BFloat16RunsOnCpu) {
  EXPECT_TRUE(CheckDTypeSupported(DType::kBFloat16, ResolveDevice("cpu").value()).ok());
  EXPECT_TRUE(CheckDTypeSupported(DType::kFloat32, ResolveDevice("cpu").value()).ok());
}

// The one rule both engines apply to compressed weights (int8 / bfloat16 through vox::linear).
TEST(TorchDeviceTest, CompressedWeightsRunOnTheCpuInTheExportedDtypeOnly) {
  const DevicePlacement cpu{DeviceKind::kCpu, 0};
  const DevicePlacement cuda{DeviceKind::kCuda, 1};
  EXPECT_EQ(CompressedWeightsProblem("float32", DType::kFloat32, DType::kBFloat16, cuda), "");
  EXPECT_EQ(CompressedWeightsProblem("int8", DType::kFloat32, DType::kFloat32, cpu), "");
  EXPECT_EQ(CompressedWeightsProblem("bfloat16", DType::kFloat32, DType::kFloat32, cpu), "");
  EXPECT_THAT(CompressedWeightsProblem("int8", DType::kFloat32, DType::kFloat32, cuda),
              AllOf(HasSubstr("is 'int8'"), HasSubstr("CPU only, not on cuda:1")));
  EXPECT_THAT(CompressedWeightsProblem("bfloat16", DType::kFloat32, DType::kFloat16, cpu),
              AllOf(HasSubstr("is 'bfloat16'"), HasSubstr("cannot be converted to float16")));
}

TEST(TorchDeviceTest, ThreadSettingsReachLibTorchAndOpenBlas) {
  ThreadSettings s = ConfigureThreads(2, 1);
  EXPECT_EQ(s.intra_op_threads, 2);
  // Debian's libblas.so.3 is OpenBLAS when libopenblas0-pthread is installed (install-deps).
  ASSERT_TRUE(s.openblas_found) << "OpenBLAS not loaded: LibTorch runs the reference BLAS";
  EXPECT_FALSE(s.blas_core.empty());
  EXPECT_EQ(s.blas_threads, 1);
  s = ConfigureThreads(1, 0);  // 0 = same as intra-op
  EXPECT_EQ(s.intra_op_threads, 1);
  EXPECT_EQ(s.blas_threads, 1);
  s = ConfigureThreads(0, 0);  // 0 = number of cores
  EXPECT_EQ(s.intra_op_threads, static_cast<int>(std::thread::hardware_concurrency()));
}

TEST(TorchDeviceTest, ConfigureThreadsTurnsTheExecutorsPassesOffForItsThread) {
  bool fresh = false, configured = true;
  std::thread([&] {
    fresh = torch::jit::getGraphExecutorOptimize();
    ConfigureThreads(1, 1);
    configured = torch::jit::getGraphExecutorOptimize();
  }).join();
  EXPECT_TRUE(fresh);  // LibTorch's default, per thread: why every worker must turn it off
  EXPECT_FALSE(configured);
}

TEST(TorchDeviceTest, MissingTorchScriptNamesThePath) {
  auto m = LoadTorchModule("/nonexistent/model.ts", ResolveDevice("cpu").value());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(m.status().message(), HasSubstr("/nonexistent/model.ts"));
}

TEST(TorchDeviceTest, ExceptionsBecomeInternalStatusWithoutBacktrace) {
  // (c10::Error itself is covered by the engine tests loading a corrupt model.ts.)
  absl::Status s = CatchTorchErrors("doing a thing", []() -> absl::Status {
    throw std::runtime_error("a LibTorch failure\nbacktrace line 1\nbacktrace line 2");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("doing a thing"), HasSubstr("a LibTorch failure")));
  EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr("\n")));
}

// Only OpenBLAS's fallback for a CPU it does not know is replaced, by the newest kernels the CPU
// runs (device.h, item 5).
TEST(TorchDeviceTest, OpenBlasCoreReplacesOnlyThePrescottFallback) {
  const CpuSimd avx{true, false, false, false}, avx2{true, true, false, false};
  const CpuSimd avx512{true, true, true, false}, bf16{true, true, true, true};
  EXPECT_EQ(OpenBlasCoreFor("Prescott", bf16), "Cooperlake");
  EXPECT_EQ(OpenBlasCoreFor("Prescott", avx512), "SkylakeX");
  EXPECT_EQ(OpenBlasCoreFor("prescott", avx2), "Haswell");
  EXPECT_EQ(OpenBlasCoreFor("Prescott", avx), "Sandybridge");
  EXPECT_EQ(OpenBlasCoreFor("Prescott", CpuSimd{}), "");
  for (const char* known : {"SkylakeX", "Haswell", "Zen", "Cooperlake", "Sandybridge", ""}) {
    EXPECT_EQ(OpenBlasCoreFor(known, bf16), "") << known;
  }
}

// With the start-up variables already set, PrepareProcessForModels does not re-execute; it
// turns the graph executor's optimising passes off (device.h, item 4).
TEST(TorchDeviceTest, PrepareProcessForModelsRunsMethodsUnoptimised) {
  ASSERT_EQ(::setenv("OMP_WAIT_POLICY", "PASSIVE", 0), 0);
  ASSERT_EQ(::setenv("OPENBLAS_CORETYPE", "", 0), 0);  // read at load only: it changes nothing now
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const std::string given = tunables != nullptr ? tunables : "";
  if (given.find("glibc.malloc.hugetlb") == std::string::npos) {
    const std::string value = given.empty() ? "glibc.malloc.hugetlb=0" : given + ":glibc.malloc.hugetlb=0";
    ASSERT_EQ(::setenv("GLIBC_TUNABLES", value.c_str(), 1), 0);
  }
  ASSERT_TRUE(torch::jit::getGraphExecutorOptimize());
  char name[] = "torch_device_test";
  char* argv[] = {name, nullptr};
  PrepareProcessForModels(argv);
  EXPECT_FALSE(torch::jit::getGraphExecutorOptimize());
  torch::jit::setGraphExecutorOptimize(true);
}

#ifdef __GLIBC__
TEST(TorchDeviceTest, ReleaseFreeMemoryHandsWhatMallocKeptBack) {
  // The thresholds PrepareProcessForModels sets: freed 1 MiB blocks stay in the heap.
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  constexpr int kBlocks = 64;
  std::vector<char*> blocks;
  for (int i = 0; i < kBlocks; ++i) {
    blocks.push_back(static_cast<char*>(std::malloc(1 << 20)));
    std::memset(blocks.back(), 1, 1 << 20);
  }
  for (char* block : blocks) std::free(block);
  const int64_t kept = testing::ResidentBytes();
  ASSERT_GT(kept, 0);
  ReleaseFreeMemory();
  EXPECT_GT(kept - testing::ResidentBytes(), int64_t{kBlocks / 2} << 20);
}
#endif

}  // namespace
}  // namespace vox
