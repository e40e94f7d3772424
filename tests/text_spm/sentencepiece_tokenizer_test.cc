#include "engines/text/sentencepiece_tokenizer.h"

#include <unistd.h>
#ifdef VOX_TEST_WITH_PROTOBUF
#include <google/protobuf/stubs/common.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::HasSubstr;

std::string RunCommand(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), &::pclose);
  if (!pipe) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe.get())) > 0) out.append(buf, n);
  return out;
}

// Trains a small BPE model with the spm_train tool once for the whole suite.
class SentencePieceTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
#ifdef VOX_TEST_WITH_PROTOBUF
    GOOGLE_PROTOBUF_VERIFY_VERSION;  // gRPC's protobuf is loaded into this process
#endif
    dir_ = new std::string(absl::StrCat(::testing::TempDir(), "/spm_test_", ::getpid()));
    ASSERT_EQ(std::system(absl::StrCat("mkdir -p ", *dir_).c_str()), 0);
    std::ofstream corpus(*dir_ + "/corpus.txt");
    const char* lines[] = {"the quick brown fox jumps over the lazy dog",
                           "a translation server keeps models resident",
                           "el zorro marrón salta sobre el perro perezoso",
                           "le renard brun saute par-dessus le chien paresseux",
                           "speech translation with low latency over grpc",
                           "numbers 1234 and punctuation, too!"};
    for (int i = 0; i < 40; ++i) {
      for (const char* line : lines) corpus << line << " " << i << "\n";
    }
    corpus.close();
    const std::string cmd =
        absl::StrCat(VOX_SPM_TRAIN, " --input=", *dir_, "/corpus.txt --model_prefix=", *dir_,
                     "/m --vocab_size=120 --model_type=bpe --character_coverage=1.0 "
                     "--minloglevel=2 > /dev/null 2>&1");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static std::string ModelPath() { return *dir_ + "/m.model"; }

  // Ids from the independent spm_encode tool.
  static std::vector<int32_t> ToolIds(const std::string& text) {
    std::ofstream(*dir_ + "/in.txt") << text << "\n";
    const std::string out = RunCommand(absl::StrCat(VOX_SPM_ENCODE, " --model=", ModelPath(),
                                                    " --output_format=id < ", *dir_, "/in.txt"));
    std::vector<int32_t> ids;
    for (absl::string_view part : absl::StrSplit(out, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
      ids.push_back(std::atoi(std::string(part).c_str()));
    }
    return ids;
  }

  static std::string* dir_;
};
std::string* SentencePieceTokenizerTest::dir_ = nullptr;

TEST_F(SentencePieceTokenizerTest, EncodesLikeTheSpmEncodeTool) {
  auto tok = SentencePieceTokenizer::Load(ModelPath());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->piece_count(), 120);
  for (const std::string text : {"the quick brown fox", "el perro perezoso salta",
                                 "zzz unseen qqq words", "numbers 1234, too!"}) {
    auto ids = (*tok)->Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, ToolIds(text)) << text;
    EXPECT_FALSE(ids->empty());
  }
}

TEST_F(SentencePieceTokenizerTest, LongTextNeedsABiggerBuffer) {
  auto tok = SentencePieceTokenizer::Load(ModelPath());
  ASSERT_TRUE(tok.ok()) << tok.status();
  std::string text;
  for (int i = 0; i < 300; ++i) absl::StrAppend(&text, "qzx ");  // rare chars: many pieces
  auto ids = (*tok)->Encode(text);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, ToolIds(text));
}

TEST_F(SentencePieceTokenizerTest, DecodeRoundTripsAndPiecesHaveMetaSpace) {
  auto tok = SentencePieceTokenizer::Load(ModelPath());
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::string text = "the lazy dog jumps over the fox";
  auto ids = (*tok)->Encode(text);
  ASSERT_TRUE(ids.ok());
  auto back = (*tok)->Decode(*ids);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, text);
  auto piece = (*tok)->IdToPiece((*ids)[0]);
  ASSERT_TRUE(piece.ok());
  EXPECT_EQ(piece->rfind("\xE2\x96\x81", 0), 0u) << *piece;  // starts with U+2581
  EXPECT_EQ((*tok)->IdToPiece(0).value(), "<unk>");
}

TEST_F(SentencePieceTokenizerTest, OutOfRangeIdsAreErrorsNotCrashes) {
  auto tok = SentencePieceTokenizer::Load(ModelPath());
  ASSERT_TRUE(tok.ok());
  auto piece = (*tok)->IdToPiece(120);
  EXPECT_EQ(piece.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(piece.status().message(), HasSubstr("120"));
  auto text = (*tok)->Decode({5, -1});
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SentencePieceTokenizerTest, MissingModelFileNamesThePath) {
  const std::string path = *dir_ + "/does-not-exist.model";
  auto tok = SentencePieceTokenizer::Load(path);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(tok.status().message(), HasSubstr(path));
}

TEST_F(SentencePieceTokenizerTest, CorruptModelFileIsAnError) {
  const std::string path = *dir_ + "/corrupt.model";
  std::ofstream(path) << "this is not a sentencepiece model";
  auto tok = SentencePieceTokenizer::Load(path);
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(tok.status().message(), HasSubstr(path));
}

TEST(SpmShimTest, MissingShimIsAClearError) {
  const std::string path = "/nonexistent/libvox_spm_shim.so";
  absl::Status s = CheckSpmShim(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(path));
}

TEST(SpmShimTest, NonShimLibraryIsRefused) {
  // A real shared library that is not the shim: libm.
  if (access("/lib/x86_64-linux-gnu/libm.so.6", R_OK) != 0) GTEST_SKIP() << "no libm path";
  absl::Status s = CheckSpmShim("/lib/x86_64-linux-gnu/libm.so.6");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("vox_spm_abi_version"));
}

TEST(SpmShimTest, SearchPathHonoursTheEnvironmentFirst) {
  ::setenv("VOX_SPM_SHIM", "/custom/shim.so", 1);
  const auto paths = SpmShimSearchPath();
  ::unsetenv("VOX_SPM_SHIM");
  ASSERT_GE(paths.size(), 2u);
  EXPECT_EQ(paths[0], "/custom/shim.so");
  EXPECT_THAT(paths.back(), HasSubstr("vox_spm_shim"));
}

TEST(SpmShimTest, BuildTreeShimLoads) {
  const auto paths = SpmShimSearchPath();
  ASSERT_FALSE(paths.empty());
  EXPECT_TRUE(CheckSpmShim(paths.back()).ok()) << CheckSpmShim(paths.back());
}

}  // namespace
}  // namespace vox
