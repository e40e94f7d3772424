// NllbSourceTokenizer's transformers behaviours on the tiny model, without the reference
// environment (tests/upstream_nllb's fidelity tests compare the same with transformers itself):
// added tokens spelled in text, the trailing-space piece, <mask>'s lstrip, jamo refusal.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "engines/core/engine_options.h"
#include "engines/translate/nllb_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using Ids = std::vector<int64_t>;

class NllbSourceTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineOptions options;
    options.device = "cpu";
    auto engine = NllbEngine::Load("nllb-tiny", std::string(VOX_TINY_DIR) + "/models/nllb-tiny", options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = engine->release();
  }
  static void TearDownTestSuite() { delete engine_; }
  static Ids Encode(const std::string& text) {
    auto ids = engine_->EncodeSource(text, "eng_Latn");
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *ids : Ids{};
  }
  static int64_t Lang(const std::string& code) { return engine_->LanguageId(code).value(); }
  static NllbEngine* engine_;
};
NllbEngine* NllbSourceTokenizerTest::engine_ = nullptr;

TEST_F(NllbSourceTokenizerTest, TrailingWhitespaceAddsOneSpacePiece) {
  const Ids plain = Encode("Hello world");
  for (const std::string suffix : {" ", "   ", "\t", " \n ", "\xC2\xA0"}) {
    const Ids spaced = Encode("Hello world" + suffix);
    ASSERT_EQ(spaced.size(), plain.size() + 1) << "suffix of " << suffix.size() << " bytes";
    EXPECT_TRUE(std::equal(plain.begin(), plain.end() - 1, spaced.begin()));
    EXPECT_EQ(spaced.back(), 2);
  }
  // the same piece each time, and leading or inner runs change nothing
  EXPECT_EQ(Encode("Hello world ")[plain.size() - 1], Encode("Hello world\t")[plain.size() - 1]);
  EXPECT_EQ(Encode("   Hello    world"), plain);
  // NLLB's normaliser maps a zero-width space to a space: it ends in a space too (as in transformers)
  EXPECT_EQ(Encode("Hello world\xE2\x80\x8B"), Encode("Hello world "));
}

TEST_F(NllbSourceTokenizerTest, TextSpellingAddedTokensGivesTheirIds) {
  EXPECT_EQ(Encode("</s>"), (Ids{Lang("eng_Latn"), 2, 2}));
  EXPECT_EQ(Encode("<unk>"), (Ids{Lang("eng_Latn"), 3, 2}));
  EXPECT_EQ(Encode("zul_Latn"), (Ids{Lang("eng_Latn"), Lang("zul_Latn"), 2}));
  const Ids x = Encode("x");
  const Ids ids = Encode("deu_Latnx");
  ASSERT_EQ(ids.size(), x.size() + 1);
  EXPECT_EQ(ids[1], Lang("deu_Latn"));
  EXPECT_TRUE(std::equal(x.begin() + 1, x.end(), ids.begin() + 2));
  // <mask> is the id after the last code; the whitespace before it is dropped (lstrip)
  const int64_t mask = Lang("zul_Latn") + 1;
  EXPECT_EQ(Encode("a <mask>"), Encode("a<mask>"));
  EXPECT_THAT(Encode("a <mask>"), ::testing::Contains(mask));
}

TEST_F(NllbSourceTokenizerTest, ComposableJamoIsRefusedClearly) {
  auto ids = engine_->EncodeSource("\xEA\xB0\x80\xE1\x84\x80\xE1\x85\xA1", "eng_Latn");  // 가 + ᄀ + ᅡ
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(ids.status().message(), "U+1161")) << ids.status();
  // precomposed syllables and a lone jamo are fine
  EXPECT_TRUE(engine_->EncodeSource("\xEA\xB0\x80\xEA\xB0\x80", "eng_Latn").ok());
  EXPECT_TRUE(engine_->EncodeSource("\xE1\x84\x80 x", "eng_Latn").ok());
  // voxd's path: Translate refuses it as INVALID_ARGUMENT naming the text
  auto out = engine_->Translate({"ok", "\xE1\x84\x80\xE1\x85\xA1"}, "eng_Latn", "fra_Latn", {}, nullptr);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(out.status().message(), "text 1")) << out.status();
}

}  // namespace
}  // namespace vox
