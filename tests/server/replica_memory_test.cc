// voxd with `replicas = 2` holds one copy of each model: its peak resident memory is at most
// 1.1 x that of `replicas = 1`. On the tiny models the weights (about 20 MB loaded) are small
// next to the process (about 250 MB), so that test keeps one sequence per step (a second
// worker's batch of activations would otherwise count); NLLB at 600M dimensions cut to two
// layers (1.3 GB of weights, the default batch) is where sharing shows: a second copy would be
// 1.9 x. bench/replica_memory.sh prints the same figures.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/server/voxd_process.h"

namespace vox {
namespace {

namespace fs = std::filesystem;
using testing::ChildProcess;

// VmHWM (peak resident set) of `pid` in bytes, or -1.
int64_t PeakResidentBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (!absl::StartsWith(line, "VmHWM:")) continue;
    int64_t kb = 0;
    std::string digits;
    for (char c : line) {
      if (c >= '0' && c <= '9') digits += c;
    }
    if (absl::SimpleAtoi(digits, &kb)) return kb * 1024;
  }
  return -1;
}

// Starts voxd on `models` with `replicas` per model, waits until it serves (models loaded,
// warm-up done), and returns its peak resident memory.
int64_t PeakWithReplicas(const std::string& models, int replicas,
                         const std::vector<std::string>& extra = {}) {
  ChildProcess voxd;
  std::vector<std::string> argv = {VOXD_BINARY, "--listen", "127.0.0.1:0", "--builtin", "off",
                                   "--models", models, "--replicas", absl::StrCat(replicas),
                                   "--threads", "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const std::string stderr_path =
      (fs::path(::testing::TempDir()) / absl::StrCat("voxd-replicas-", replicas, ".stderr")).string();
  absl::Status started = voxd.Start(argv, stderr_path);
  EXPECT_TRUE(started.ok()) << started;
  if (!started.ok()) return -1;
  absl::StatusOr<std::string> line = voxd.ReadLine(absl::Seconds(180));
  EXPECT_TRUE(line.ok() && absl::StartsWith(*line, "voxd listening on "))
      << (line.ok() ? *line : line.status().ToString()) << "\nstderr:\n" << voxd.Stderr();
  const int64_t peak = PeakResidentBytes(voxd.pid());
  EXPECT_TRUE(voxd.Wait(SIGTERM, absl::Seconds(60)).ok());
  return peak;
}

void ExpectTwoReplicasWithinTenPercent(const std::string& models,
                                       const std::vector<std::string>& extra) {
  const int64_t one = PeakWithReplicas(models, 1, extra);
  const int64_t two = PeakWithReplicas(models, 2, extra);
  ASSERT_GT(one, 0);
  ASSERT_GT(two, 0);
  std::printf("voxd peak resident memory: %lld bytes with 1 replica, %lld with 2 (%.3fx)\n",
              static_cast<long long>(one), static_cast<long long>(two),
              static_cast<double>(two) / static_cast<double>(one));
  EXPECT_LE(static_cast<double>(two), 1.1 * static_cast<double>(one));
}

TEST(ReplicaMemoryTest, TinyModels) {
  ExpectTwoReplicasWithinTenPercent(std::string(VOX_TINY_DIR) + "/models", {"--max-batch-size", "1"});
}

TEST(ReplicaMemoryTest, Nllb600MDimensionsTwoLayers) {
  ExpectTwoReplicasWithinTenPercent(std::string(VOX_SYNTHETIC_DIR) + "/models", {});
}

}  // namespace
}  // namespace vox
