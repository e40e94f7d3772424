// Server glossaries (server/glossaries.h): the file format and the directory rules.
#include "server/glossaries.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(Glossaries, ParsesTermsDoNotTranslateLinesAndComments) {
  absl::StatusOr<std::vector<ProtectedTerm>> terms =
      Glossaries::Parse("# comment\n\nhouse\tvivienda\r\nVoxCorp\nBig Cat\tGran Gato\n", "g.tsv");
  ASSERT_TRUE(terms.ok()) << terms.status();
  ASSERT_EQ(terms->size(), 3u);
  EXPECT_EQ((*terms)[0].source, "house");
  EXPECT_EQ((*terms)[0].target, "vivienda");
  EXPECT_EQ((*terms)[1].source, "VoxCorp");
  EXPECT_EQ((*terms)[1].target, "VoxCorp");
  EXPECT_EQ((*terms)[2].target, "Gran Gato");
}

TEST(Glossaries, BadLinesNameTheFileAndLine) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"a\tb\nc\td\te\n", "g.tsv:2: more than two"},
      {"a\tb\na\tc\n", "g.tsv:2: source term 'a' is listed twice"},
      {"\tb\n", "g.tsv:1: empty source or target"},
      {"a\t\n", "g.tsv:1: empty source or target"},
      {"ok\n\xFF\n", "g.tsv:2: not valid UTF-8"},
      {"house \tcasa\n", "g.tsv:1: source term 'house ' starts or ends with whitespace"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<ProtectedTerm>> terms = Glossaries::Parse(c.text, "g.tsv");
    ASSERT_FALSE(terms.ok()) << c.text;
    EXPECT_EQ(terms.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(terms.status().message(), HasSubstr(c.message));
  }
}

TEST(Glossaries, LoadsOneFilePerPairAndRefusesOtherNames) {
  const fs::path dir = fs::path(::testing::TempDir()) / "glossaries-test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "eng_Latn-fra_Latn.tsv") << "cat\tchat\n";
  absl::StatusOr<Glossaries> g = Glossaries::LoadDirectory(dir.string());
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->Terms("eng_Latn", "fra_Latn").size(), 1u);
  EXPECT_TRUE(g->Terms("fra_Latn", "eng_Latn").empty());
  std::ofstream(dir / "notes.txt") << "x\n";
  g = Glossaries::LoadDirectory(dir.string());
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("SRC-TGT.tsv"));
  EXPECT_EQ(Glossaries::LoadDirectory((dir / "missing").string()).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace vox
