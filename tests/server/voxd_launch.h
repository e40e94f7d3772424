#ifndef VOX_TESTS_SERVER_VOXD_LAUNCH_H_
#define VOX_TESTS_SERVER_VOXD_LAUNCH_H_

// Starting a real voxd for a gtest integration test: a models directory made for the test, and
// the start that waits for voxd's "listening" line. Failures are recorded with gtest's EXPECT.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "gtest/gtest.h"
#include "tests/server/voxd_process.h"

namespace vox::testing {

// A models directory holding only the given model directories (copied, so tests may damage
// them), under the test's temp dir.
inline std::string ModelsDir(const std::string& name, const std::vector<std::string>& models) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(::testing::TempDir()) / ("voxd-models-" + name);
  fs::remove_all(root);
  fs::create_directories(root);
  for (const std::string& m : models) {
    fs::copy(m, root / fs::path(m).filename(), fs::copy_options::recursive);
  }
  return root.string();
}

inline std::string StderrPath(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / ("voxd-" + name + ".stderr")).string();
}

// Starts `binary` (voxd) on 127.0.0.1:0 with `extra` flags and waits for its "listening" line.
// Returns the address ("" on failure).
inline std::string StartVoxd(ChildProcess* voxd, const std::string& binary,
                             const std::vector<std::string>& extra, const std::string& name) {
  std::vector<std::string> argv = {binary, "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  absl::Status started = voxd->Start(argv, StderrPath(name));
  EXPECT_TRUE(started.ok()) << started;
  absl::StatusOr<std::string> line = voxd->ReadLine(absl::Seconds(180));
  EXPECT_TRUE(line.ok()) << line.status() << "\nstderr:\n" << voxd->Stderr();
  if (!line.ok()) return "";
  const std::string prefix = "voxd listening on 127.0.0.1:";
  EXPECT_TRUE(absl::StartsWith(*line, prefix)) << *line;
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(line->substr(prefix.size()), &port)) << *line;
  EXPECT_GT(port, 0);
  return line->substr(std::string("voxd listening on ").size());
}

// The metrics port voxd printed on stderr ("voxd: metrics at http://HOST:PORT/metrics"), or 0.
inline int MetricsPort(const ChildProcess& voxd) {
  const std::string err = voxd.Stderr();
  const std::string marker = "/metrics\n";
  const size_t end = err.find(marker);
  if (end == std::string::npos) return 0;
  const size_t colon = err.rfind(':', end);
  return colon == std::string::npos ? 0 : std::atoi(err.substr(colon + 1, end - colon - 1).c_str());
}

}  // namespace vox::testing

#endif  // VOX_TESTS_SERVER_VOXD_LAUNCH_H_
