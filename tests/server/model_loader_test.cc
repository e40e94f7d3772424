#include "server/model_loader.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "nlohmann/json.hpp"
#include "gtest/gtest.h"
#include "tests/server/fake_engines.h"

namespace vox {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ModelLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    fs::create_directories(root_);
    config_.models_dir = root_.string();
    loaders_.translation["fake-arch"] = [this](const std::string& name, Manifest manifest,
                                               const EngineOptions& options)
        -> absl::StatusOr<std::unique_ptr<TranslationEngine>> {
      seen_options_ = options;
      const std::string dir = manifest.model_dir;
      seen_dirs_.push_back(dir);
      seen_manifest_name_ = manifest.name;
      if (fs::exists(fs::path(dir) / "broken")) {
        return absl::FailedPreconditionError(dir + "/model.ts: size 3 != manifest 10");
      }
      return std::unique_ptr<TranslationEngine>(new testing::FakeTranslationEngine(
          name, {"eng_Latn", "fra_Latn"}, {{"eng_Latn", "fra_Latn"}}));
    };
  }

  // Writes `manifest` as the model's manifest.json; a JSON object gets the common header's other
  // fields (schema_version, dtype, files with one real file) where it lacks them.
  void Model(const std::string& dir, const std::string& manifest) {
    fs::create_directories(root_ / dir);
    nlohmann::json j = nlohmann::json::parse(manifest, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      std::ofstream(root_ / dir / "manifest.json") << manifest;
      return;
    }
    std::ofstream(root_ / dir / "weights.bin") << "0123456789";
    const nlohmann::json common = {{"schema_version", 1}, {"dtype", "float32"},
                                   {"files", {{"weights.bin", {{"size", 10}}}}}};
    for (const auto& [key, value] : common.items()) {
      if (!j.contains(key)) j[key] = value;
    }
    std::ofstream(root_ / dir / "manifest.json") << j.dump();
  }

  fs::path root_;
  ServerConfig config_;
  ModelLoaders loaders_;
  EngineOptions seen_options_;
  std::vector<std::string> seen_dirs_;
  std::string seen_manifest_name_;
};

TEST_F(ModelLoaderTest, LoadsEveryModelDirectoryInNameOrderAndSkipsOthers) {
  Model("b-model", R"({"kind": "translation", "architecture": "fake-arch"})");
  Model("a-model", R"({"kind": "translation", "architecture": "fake-arch"})");
  fs::create_directories(root_ / "not-a-model");
  std::ofstream(root_ / "stray-file.txt") << "x";
  config_.translation.options.device = "cpu";
  config_.translation.options.intra_op_threads = 3;
  config_.verify_checksums = false;
  ModelRegistry registry;
  ASSERT_TRUE(LoadModels(config_, loaders_, &registry).ok());
  ASSERT_EQ(registry.translation().size(), 2u);
  EXPECT_EQ(registry.translation()[0]->engine->info().name, "a-model");
  EXPECT_EQ(registry.translation()[1]->engine->info().name, "b-model");
  EXPECT_EQ(seen_dirs_[0], (root_ / "a-model").string());
  EXPECT_EQ(seen_options_.device, "cpu");
  EXPECT_EQ(seen_options_.intra_op_threads, 3);
  EXPECT_FALSE(seen_options_.verify_checksums);
  EXPECT_NE(registry.FindTranslation("eng_Latn", "fra_Latn"), nullptr);
}

TEST_F(ModelLoaderTest, EmptyDirectoryLoadsNothing) {
  ModelRegistry registry;
  ASSERT_TRUE(LoadModels(config_, loaders_, &registry).ok());
  EXPECT_TRUE(registry.empty());
}

TEST_F(ModelLoaderTest, MissingDirectoryIsAnErrorNamingIt) {
  config_.models_dir = (root_ / "nope").string();
  ModelRegistry registry;
  absl::Status s = LoadModels(config_, loaders_, &registry);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(config_.models_dir));
}

TEST_F(ModelLoaderTest, ManifestProblemsNameTheFileAndTheField) {
  struct Case {
    std::string manifest;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"{not json", "not valid JSON"},
      {"[1, 2]", "must be a JSON object"},
      {R"({"architecture": "fake-arch"})", "field 'kind' missing"},
      {R"({"kind": "translation"})", "field 'architecture' missing"},
      {R"({"kind": 7, "architecture": "fake-arch"})", "field 'kind' must be a string"},
      {R"({"kind": "vision", "architecture": "fake-arch"})", "unknown kind 'vision'"},
      {R"({"kind": "translation", "architecture": "fake-arc"})",
       "unknown translation architecture 'fake-arc'; did you mean fake-arch"},
      {R"({"kind": "speech", "architecture": "fake-arch"})", "unknown speech architecture"},
  };
  for (const Case& c : cases) {
    fs::remove_all(root_ / "m");
    Model("m", c.manifest);
    ModelRegistry registry;
    absl::Status s = LoadModels(config_, loaders_, &registry);
    EXPECT_FALSE(s.ok()) << c.manifest;
    EXPECT_THAT(s.message(), HasSubstr((root_ / "m" / "manifest.json").string())) << c.manifest;
    EXPECT_THAT(s.message(), HasSubstr(c.expected)) << c.manifest;
  }
}

TEST_F(ModelLoaderTest, TheManifestIsReadAndItsFilesCheckedBeforeAnEngineLoads) {
  Model("m", R"({"kind": "translation", "architecture": "fake-arch",
                 "files": {"weights.bin": {"size": 11}}})");
  ModelRegistry registry;
  absl::Status s = LoadModels(config_, loaders_, &registry);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr((root_ / "m" / "weights.bin").string()));
  EXPECT_TRUE(seen_dirs_.empty());  // the engine's loader was never called
  // A good one reaches the loader with the manifest already read.
  fs::remove_all(root_ / "m");
  Model("m", R"({"kind": "translation", "architecture": "fake-arch", "name": "from-manifest"})");
  ASSERT_TRUE(LoadModels(config_, loaders_, &registry).ok());
  ASSERT_EQ(seen_dirs_.size(), 1u);
  EXPECT_EQ(seen_manifest_name_, "from-manifest");
}

TEST_F(ModelLoaderTest, LoaderFailureStopsLoadingAndNamesTheModel) {
  Model("a-good", R"({"kind": "translation", "architecture": "fake-arch"})");
  Model("b-broken", R"({"kind": "translation", "architecture": "fake-arch"})");
  std::ofstream(root_ / "b-broken" / "broken") << "";
  Model("c-never", R"({"kind": "translation", "architecture": "fake-arch"})");
  ModelRegistry registry;
  absl::Status s = LoadModels(config_, loaders_, &registry);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("cannot load model 'b-broken'"));
  EXPECT_THAT(s.message(), HasSubstr("model.ts: size 3 != manifest 10"));
  EXPECT_EQ(seen_dirs_.size(), 2u);  // c-never was not attempted
}

TEST_F(ModelLoaderTest, DuplicateModelNamesAreRefused) {
  ModelRegistry registry;
  auto make = [] {
    return std::make_unique<testing::FakeTranslationEngine>(
        "same", std::vector<std::string>{"eng_Latn"},
        std::vector<std::pair<std::string, std::string>>{});
  };
  ASSERT_TRUE(registry.AddTranslation(make()).ok());
  absl::Status s = registry.AddTranslation(make());
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(), HasSubstr("'same'"));
}

TEST_F(ModelLoaderTest, ReplicasShareOneLoadOfTheModelAndEachGetsItsOwnWorker) {
  Model("m", R"({"kind": "translation", "architecture": "fake-arch"})");
  config_.translation.replicas = 3;
  std::atomic<int> configured{0};
  loaders_.configure_worker_thread = [&](const EngineOptions&) { configured.fetch_add(1); };
  ModelRegistry registry;
  ASSERT_TRUE(LoadModels(config_, loaders_, &registry).ok());
  EXPECT_EQ(seen_dirs_.size(), 1u);  // loaded once; the others are NewReplica()s of it
  ASSERT_EQ(registry.translation().size(), 1u);
  const TranslationModel& model = *registry.translation()[0];
  EXPECT_EQ(model.options.replicas, 3);
  ASSERT_EQ(model.more_replicas.size(), 2u);
  EXPECT_NE(model.more_replicas[0].get(), model.more_replicas[1].get());
  EXPECT_EQ(model.more_replicas[0]->info().name, "m");
  // The warm-up's batch reaches every replica's worker, which configures its thread first.
  ASSERT_TRUE(registry.WarmUp().ok());
  EXPECT_GE(configured.load(), 1);
  EXPECT_LE(configured.load(), 3);
}

}  // namespace
}  // namespace vox
