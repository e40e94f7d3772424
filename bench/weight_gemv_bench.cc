// vox::linear's int8 kernels on plain arrays (engines/torch/ops/weight_gemv.h), one thread: time
// and multiply-accumulates per second (median of 7 calls, and the best) for an OUT x 1024 int8
// weight (OUT 4096 unless given: 4 MiB, from L2 or L3; at 1 and 2 rows this reads memory, beyond
// that it is the kernels' compute; 131072 makes 128 MiB, read from memory) against 1 to 256 rows
// of activations. Optional arguments: the kernels to run, e.g. "best,avx512" (default: all);
// "best8" and "best7" are the best kernel with activations of 8 and 7 bits (QuantizeRows's
// bits); then OUT.
//   build/bench/weight_gemv_bench [best,best8,best7,avx512,avx2,portable] [OUT]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "engines/torch/ops/weight_gemv.h"

int main(int argc, char** argv) {
  const std::string only = argc > 1 ? std::string(",") + argv[1] + "," : ",best,best8,best7,avx512,avx2,portable,";
  const int64_t in = 1024, out = argc > 2 ? std::atoll(argv[2]) : 4096;
  if (out < 1) {
    std::fprintf(stderr, "OUT must be a positive number of weight rows\n");
    return 2;
  }
  // 64-byte aligned, as LibTorch allocates a model's weights: the AMX kernel's tile rows then
  // each read one cache line, not two.
  std::unique_ptr<int8_t[], decltype(&std::free)> w(
      static_cast<int8_t*>(std::aligned_alloc(64, static_cast<size_t>(in * out))), &std::free);
  for (int64_t i = 0; i < in * out; ++i) w[i] = static_cast<int8_t>(i * 7);
  std::vector<float> scale(out, 1.0f);
  std::printf("best kernels here: %s\n", vox::WeightGemvKernel());
  for (int64_t rows : {1, 2, 3, 4, 8, 16, 32, 256}) {
    std::vector<int16_t> x(in * rows);
    std::vector<float> xscale(rows, 1.0f), y(out * rows);
    for (auto [kernel, name] : {std::pair{vox::GemvKernel::kBest, "best"}, std::pair{vox::GemvKernel::kBest, "best8"},
                                std::pair{vox::GemvKernel::kBest, "best7"},
                                std::pair{vox::GemvKernel::kAvx512, "avx512"}, std::pair{vox::GemvKernel::kAvx2, "avx2"},
                                std::pair{vox::GemvKernel::kPortable, "portable"}}) {
      if (only.find(std::string(",") + name + ",") == std::string::npos) continue;
      const int bits = std::string(name) == "best8" ? 8 : std::string(name) == "best7" ? 7 : 16;
      // [-127, 127], [-63, 63] or [0, 1000)
      const int64_t range = bits == 8 ? 255 : bits == 7 ? 127 : 1000, offset = bits == 8 ? 127 : bits == 7 ? 63 : 0;
      for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int16_t>(static_cast<int64_t>(i) % range - offset);
      std::vector<double> seconds;
      for (int i = 0; i < 7; ++i) {
        const auto start = std::chrono::steady_clock::now();
        vox::WeightGemvInt8(x.data(), xscale.data(), rows, in, w.get(), scale.data(), nullptr, y.data(), out,
                            0, out, bits, kernel);
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      std::sort(seconds.begin(), seconds.end());
      const double macs = static_cast<double>(rows * in * out);
      std::printf("rows %2lld %-8s %8.3f ms %6.1f GMAC/s (best %6.1f)\n", static_cast<long long>(rows), name,
                  seconds[3] * 1e3, macs / seconds[3] / 1e9, macs / seconds[0] / 1e9);
    }
  }
  return 0;
}
