#ifndef VOX_TESTS_TRANSLATE_TEST_UTIL_H_
#define VOX_TESTS_TRANSLATE_TEST_UTIL_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vox::testing {

// The device the engine tests load models on: $VOX_TEST_DEVICE ("cpu", "cuda", "cuda:N",
// "mps", "auto"), "cpu" when unset (docs/gpu.md).
inline std::string TestDevice() {
  const char* env = std::getenv("VOX_TEST_DEVICE");
  return env != nullptr && env[0] != '\0' ? std::string(env) : std::string("cpu");
}

inline std::string TinyModelDir() { return std::string(VOX_TINY_DIR) + "/models/nllb-tiny"; }
inline std::string TinyBf16Dir() { return std::string(VOX_TINY_DIR) + "/models-bf16/nllb-tiny-bf16"; }
inline std::string GoldenPath() { return std::string(VOX_TINY_DIR) + "/golden/nllb-tiny.json"; }
inline std::string GoldenBf16Path() {
  return std::string(VOX_TINY_DIR) + "/golden/nllb-tiny-bf16.json";
}
inline std::string TinyInt8Dir() { return std::string(VOX_TINY_DIR) + "/models-int8/nllb-tiny-int8"; }
inline std::string GoldenInt8Path() {
  return std::string(VOX_TINY_DIR) + "/golden/nllb-tiny-int8.json";
}

inline nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path << " (build the tiny_nllb target)";
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

inline void WriteJson(const std::string& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump(1);
}

// A fresh copy of the tiny model directory under the test temp dir, removed when it goes out of
// scope (tests break the copy, never the original).
class ScopedModelCopy {
 public:
  explicit ScopedModelCopy(const std::string& label) {
    namespace fs = std::filesystem;
    const fs::path dst = fs::path(::testing::TempDir()) /
                         ("nllb_" + label + "_" + std::to_string(::getpid()));
    fs::remove_all(dst);
    fs::create_directories(dst);
    for (const auto& entry : fs::directory_iterator(TinyModelDir())) {
      fs::copy(entry.path(), dst / entry.path().filename(), fs::copy_options::recursive);
    }
    path_ = dst.string();
  }
  ~ScopedModelCopy() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScopedModelCopy(const ScopedModelCopy&) = delete;
  ScopedModelCopy& operator=(const ScopedModelCopy&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace vox::testing

#endif  // VOX_TESTS_TRANSLATE_TEST_UTIL_H_
