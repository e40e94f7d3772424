// Manifest validation (engines/core/manifest.h) and the engine's refusal of broken model
// directories: each test breaks a copy of the tiny model in one way and checks the message names
// the file and the field.
#include "engines/core/manifest.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "engines/core/engine_options.h"
#include "engines/translate/nllb_engine.h"
#include "engines/translate/nllb_manifest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/translate/test_util.h"

namespace vox {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using vox::testing::ScopedModelCopy;
using vox::testing::ReadJson;
using vox::testing::TinyModelDir;
using vox::testing::WriteJson;

EngineOptions CpuOptions(bool verify = true) {
  EngineOptions o;
  o.device = "cpu";
  o.verify_checksums = verify;
  return o;
}

// FIPS 180-2 test vectors.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(Sha256Hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, FileStreamsAcrossBufferBoundaries) {
  // One million 'a' (FIPS vector) is under the 1 MiB buffer; make it cross several buffers.
  const std::string path = ::testing::TempDir() + "/sha_a.bin";
  {
    std::ofstream out(path, std::ios::binary);
    const std::string chunk(1000, 'a');
    for (int i = 0; i < 1000; ++i) out << chunk;
  }
  auto digest = Sha256File(path);
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(*digest, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  {
    std::ofstream out(path, std::ios::binary);
    const std::string chunk(1000, 'a');
    for (int i = 0; i < 3000; ++i) out << chunk;  // 3,000,000 bytes: three buffer refills
  }
  std::ifstream in(path, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(Sha256File(path).value(), Sha256Hex(all.data(), all.size()));
  EXPECT_EQ(Sha256File(path + ".missing").status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove(path);
}

TEST(ManifestTest, TinyModelLoads) {
  auto m = LoadManifest(TinyModelDir(), /*verify_checksums=*/true);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->schema_version, 1);
  EXPECT_EQ(m->kind, "translation");
  EXPECT_EQ(m->architecture, "nllb-m2m100");
  EXPECT_EQ(m->dtype, "float32");
  ASSERT_EQ(m->files.count("model.ts"), 1u);
  EXPECT_EQ(m->files.at("model.ts").size,
            std::filesystem::file_size(TinyModelDir() + "/model.ts"));
  EXPECT_EQ(m->files.at("model.ts").sha256, Sha256File(TinyModelDir() + "/model.ts").value());
}

TEST(ManifestTest, MissingManifest) {
  const std::string dir = ::testing::TempDir() + "/no_manifest_here";
  std::filesystem::create_directories(dir);
  auto m = LoadNllbManifest(dir, true);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(m.status().message(), HasSubstr(dir + "/manifest.json"));
  std::filesystem::remove(dir);
}

TEST(ManifestTest, InvalidJson) {
  ScopedModelCopy copy("badjson");
  const std::string& dir = copy.path();
  std::ofstream(dir + "/manifest.json") << "{\"schema_version\": 1,";
  auto m = LoadNllbManifest(dir, true);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(m.status().message(), AllOf(HasSubstr("manifest.json"), HasSubstr("not valid JSON")));
}

TEST(ManifestTest, MissingFieldIsNamed) {
  for (const std::string field : {"languages", "schema_version", "files", "max_source_tokens"}) {
    ScopedModelCopy copy("missing_" + field);
    const std::string& dir = copy.path();
    auto j = ReadJson(dir + "/manifest.json");
    j.erase(field);
    WriteJson(dir + "/manifest.json", j);
    auto m = LoadNllbManifest(dir, true);
    EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition) << field;
    EXPECT_THAT(m.status().message(),
                AllOf(HasSubstr(dir + "/manifest.json"),
                      HasSubstr("field '" + field + "' missing")));
  }
}

TEST(ManifestTest, MissingNestedFieldIsNamed) {
  ScopedModelCopy copy("missing_nested");
  const std::string& dir = copy.path();
  auto j = ReadJson(dir + "/manifest.json");
  j["config"].erase("d_model");
  WriteJson(dir + "/manifest.json", j);
  auto m = LoadNllbManifest(dir, true);
  EXPECT_THAT(m.status().message(), HasSubstr("field 'config.d_model' missing"));
}

TEST(ManifestTest, WrongTypeIsNamed) {
  ScopedModelCopy copy("wrong_type");
  const std::string& dir = copy.path();
  auto j = ReadJson(dir + "/manifest.json");
  j["special_ids"]["eos"] = "two";
  WriteJson(dir + "/manifest.json", j);
  auto m = LoadNllbManifest(dir, true);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(m.status().message(),
              AllOf(HasSubstr("special_ids.eos"), HasSubstr("an integer"), HasSubstr("\"two\"")));
}

// weights: absent means "as dtype"; int8 and bfloat16 only with dtype float32.
TEST(ManifestTest, WeightsDefaultToTheDtypeAndCompressedNeedFloat32) {
  {
    auto m = LoadNllbManifest(TinyModelDir(), true);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->common.weights, "float32");
  }
  ScopedModelCopy copy("weights");
  const std::string& dir = copy.path();
  auto j = ReadJson(dir + "/manifest.json");
  j.erase("weights");
  WriteJson(dir + "/manifest.json", j);
  auto absent = LoadNllbManifest(dir, true);
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_EQ(absent->common.weights, "float32");
  for (const char* bad : {"int4", "float16"}) {
    j["weights"] = bad;
    WriteJson(dir + "/manifest.json", j);
    auto m = LoadNllbManifest(dir, true);
    EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition) << bad;
    EXPECT_THAT(m.status().message(), AllOf(HasSubstr("field 'weights'"), HasSubstr(bad),
                                            HasSubstr("int8 or bfloat16 with dtype float32")));
  }
  j["weights"] = 8;
  WriteJson(dir + "/manifest.json", j);
  EXPECT_THAT(LoadNllbManifest(dir, true).status().message(), HasSubstr("'weights' must be a string"));
}

TEST(ManifestTest, TheNllbReaderRefusesAnotherArchitecture) {
  ScopedModelCopy copy("arch");
  const std::string& dir = copy.path();
  auto j = ReadJson(dir + "/manifest.json");
  j["architecture"] = "nllb-moe";
  WriteJson(dir + "/manifest.json", j);
  auto m = LoadNllbManifest(dir, true);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(m.status().message(),
              AllOf(HasSubstr("'architecture'"), HasSubstr("nllb-moe"), HasSubstr("nllb-m2m100")));
}

TEST(ManifestTest, KindMustMatchArchitecture) {
  ScopedModelCopy copy("kind");
  const std::string& dir = copy.path();
  auto j = ReadJson(dir + "/manifest.json");
  j["kind"] = "speech";
  WriteJson(dir + "/manifest.json", j);
  EXPECT_THAT(LoadNllbManifest(dir, true).status().message(), HasSubstr("field 'kind'"));
}

TEST(ManifestTest, NewerSchemaVersionIsRefused) {
  ScopedModelCopy copy("schema");
  const std::string& dir = copy.path();
  auto j = ReadJson(dir + "/manifest.json");
  j["schema_version"] = 2;
  WriteJson(dir + "/manifest.json", j);
  auto m = LoadNllbManifest(dir, true);
  EXPECT_THAT(m.status().message(), AllOf(HasSubstr("schema_version"), HasSubstr("2")));
}

TEST(ManifestTest, TruncatedFileIsRefusedBySize) {
  ScopedModelCopy copy("truncated");
  const std::string& dir = copy.path();
  const auto size = std::filesystem::file_size(dir + "/model.ts");
  std::filesystem::resize_file(dir + "/model.ts", size - 100);
  // Size is checked even when checksums are off.
  auto m = LoadNllbManifest(dir, /*verify_checksums=*/false);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(m.status().message(),
              AllOf(HasSubstr(dir + "/model.ts"), HasSubstr("size " + std::to_string(size - 100)),
                    HasSubstr("manifest " + std::to_string(size)), HasSubstr("truncated")));
}

TEST(ManifestTest, CorruptFileIsRefusedByChecksumUnlessDisabled) {
  ScopedModelCopy copy("corrupt");
  const std::string& dir = copy.path();
  const std::string path = dir + "/sentencepiece.bpe.model";
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    char c;
    f.seekg(100);
    f.get(c);
    f.seekp(100);
    f.put(static_cast<char>(c ^ 0x5a));  // same size, different bytes
  }
  auto m = LoadNllbManifest(dir, /*verify_checksums=*/true);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(m.status().message(), AllOf(HasSubstr(path), HasSubstr("sha256")));
  EXPECT_TRUE(LoadNllbManifest(dir, /*verify_checksums=*/false).ok());
}

TEST(ManifestTest, BadSha256FieldIsRefused) {
  ScopedModelCopy copy("bad_sha_field");
  const std::string& dir = copy.path();
  auto j = ReadJson(dir + "/manifest.json");
  j["files"]["model.ts"]["sha256"] = "xyz";
  WriteJson(dir + "/manifest.json", j);
  EXPECT_THAT(LoadNllbManifest(dir, false).status().message(),
              AllOf(HasSubstr("files.model.ts.sha256"), HasSubstr("64 hex digits")));
}

TEST(ManifestTest, MissingListedFileIsNamed) {
  ScopedModelCopy copy("missing_file");
  const std::string& dir = copy.path();
  std::filesystem::remove(dir + "/model.ts");
  auto m = LoadNllbManifest(dir, true);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(m.status().message(), AllOf(HasSubstr(dir + "/model.ts"), HasSubstr("missing")));
}

TEST(ManifestTest, PathsOutsideTheModelDirAreRefused) {
  ScopedModelCopy copy("escape");
  const std::string& dir = copy.path();
  auto j = ReadJson(dir + "/manifest.json");
  j["files"]["../etc/passwd"] = {{"size", 1}};
  WriteJson(dir + "/manifest.json", j);
  EXPECT_THAT(LoadNllbManifest(dir, false).status().message(), HasSubstr("relative path"));
}

TEST(ManifestTest, TokenizerFileMustBeListed) {
  ScopedModelCopy copy("tok_unlisted");
  const std::string& dir = copy.path();
  auto j = ReadJson(dir + "/manifest.json");
  j["tokenizer"]["file"] = "other.model";
  WriteJson(dir + "/manifest.json", j);
  EXPECT_THAT(LoadNllbManifest(dir, false).status().message(),
              AllOf(HasSubstr("other.model"), HasSubstr("tokenizer.file")));
}

TEST(EngineLoadTest, BrokenDirectoriesStopTheEngineWithTheManifestError) {
  ScopedModelCopy copy("engine_missing");
  const std::string& dir = copy.path();
  std::filesystem::remove(dir + "/model.ts");
  auto engine = LoadNllbEngine("tiny", dir, CpuOptions());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(engine.status().message(), HasSubstr(dir + "/model.ts"));
}

TEST(EngineLoadTest, MismatchedTokenizerSizeIsRefused) {
  ScopedModelCopy copy("spm_size");
  const std::string& dir = copy.path();
  auto j = ReadJson(dir + "/manifest.json");
  j["tokenizer"]["spm_size"] = j["tokenizer"]["spm_size"].get<int>() + 5;
  WriteJson(dir + "/manifest.json", j);
  auto engine = LoadNllbEngine("tiny", dir, CpuOptions());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(engine.status().message(),
              AllOf(HasSubstr("tokenizer.spm_size"), HasSubstr("pieces")));
}

TEST(EngineLoadTest, LanguageIdOutsideVocabularyIsRefused) {
  ScopedModelCopy copy("lang_id");
  const std::string& dir = copy.path();
  auto j = ReadJson(dir + "/manifest.json");
  j["languages"][3]["id"] = 1000000;
  WriteJson(dir + "/manifest.json", j);
  auto engine = LoadNllbEngine("tiny", dir, CpuOptions());
  EXPECT_THAT(engine.status().message(), AllOf(HasSubstr("languages[3].id"), HasSubstr("1000000")));
}

TEST(EngineLoadTest, CorruptTorchScriptIsAnErrorNotACrash) {
  ScopedModelCopy copy("bad_ts");
  const std::string& dir = copy.path();
  const auto size = std::filesystem::file_size(dir + "/model.ts");
  {
    std::ofstream out(dir + "/model.ts", std::ios::binary | std::ios::trunc);
    out << std::string(size, 'x');
  }
  auto engine = LoadNllbEngine("tiny", dir, CpuOptions(/*verify=*/false));
  EXPECT_FALSE(engine.ok());
  EXPECT_THAT(engine.status().message(), HasSubstr(dir + "/model.ts"));
}

TEST(EngineLoadTest, Float16OnCpuIsRefusedWithAReason) {
  EngineOptions o = CpuOptions();
  o.dtype = "float16";
  auto engine = LoadNllbEngine("tiny", TinyModelDir(), o);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(engine.status().message(), AllOf(HasSubstr("float16"), HasSubstr("bfloat16")));
}

TEST(EngineLoadTest, UnknownDeviceListsTheAllowedOnes) {
  EngineOptions o = CpuOptions();
  o.device = "tpu";
  auto engine = LoadNllbEngine("tiny", TinyModelDir(), o);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(engine.status().message(), AllOf(HasSubstr("tpu"), HasSubstr("cuda"), HasSubstr("mps")));
}

}  // namespace
}  // namespace vox
