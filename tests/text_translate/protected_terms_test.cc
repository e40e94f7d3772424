#include "engines/text/protected_terms.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Found(std::string_view text, const std::vector<ProtectedTerm>& terms) {
  std::vector<std::string> out;
  for (const TermMatch& m : FindTerms(text, terms)) {
    out.emplace_back(text.substr(m.span.begin, m.span.end - m.span.begin));
  }
  return out;
}

TEST(ProtectedTerms, MatchesWholeWordsLongestFirst) {
  const std::vector<ProtectedTerm> terms = {{"cat", "cat"}, {"Acme", "Acme"},
                                            {"Acme Cloud", "Acme Nube"}};
  EXPECT_THAT(Found("The cat and the concatenated cats use Acme Cloud and Acme.", terms),
              ElementsAre("cat", "Acme Cloud", "Acme"));
  EXPECT_THAT(Found("acme is lowercase", terms), IsEmpty());  // case-sensitive
  // Terms that begin or end with punctuation match next to letters.
  EXPECT_THAT(Found("use C++.", {{"C++", "C++"}}), ElementsAre("C++"));
  // No word edges in scripts written without spaces.
  EXPECT_THAT(Found("我喜欢东京塔。", {{"东京", "Tokyo"}}), ElementsAre("东京"));
}

TEST(ProtectedTerms, MaskAndRestoreThroughAModelThatCopiesPlaceholders) {
  const std::string text = "Ask Acme Cloud about Acme. Then rest.";
  const std::vector<ProtectedTerm> terms = {{"Acme", "Acme"}, {"Acme Cloud", "Acme Nube"}};
  const std::vector<TermMatch> matches = FindTerms(text, terms);
  const MaskedText first = MaskTerms(text, {0, 26}, matches);
  EXPECT_EQ(first.text, "Ask [T1] about [T2].");
  EXPECT_THAT(first.placeholders, ElementsAre(1u, 0u));
  const MaskedText second = MaskTerms(text, {27, text.size()}, matches);
  EXPECT_EQ(second.text, "Then rest.");
  // A "translation" that reorders and copies the placeholders.
  const RestoredText restored =
      RestoreTerms("Pregunta sobre [T2] a [T1].", first.placeholders, terms);
  EXPECT_EQ(restored.text, "Pregunta sobre Acme a Acme Nube.");
  EXPECT_THAT(restored.unplaced, IsEmpty());
}

TEST(ProtectedTerms, APlaceholderTheModelDroppedOrMangledIsReported) {
  const std::string text = "Acme and Globex";
  const std::vector<ProtectedTerm> terms = {{"Acme", "Acme"}, {"Globex", "Globex Corp"}};
  const MaskedText masked = MaskTerms(text, {0, text.size()}, FindTerms(text, terms));
  ASSERT_EQ(masked.text, "[T1] and [T2]");
  RestoredText dropped = RestoreTerms("[T1] y algo", masked.placeholders, terms);
  EXPECT_EQ(dropped.text, "Acme y algo");
  EXPECT_THAT(dropped.unplaced, ElementsAre(1u));
  RestoredText mangled = RestoreTerms("[ T1 ] y [T2", masked.placeholders, terms);
  EXPECT_EQ(mangled.text, "[ T1 ] y [T2");
  EXPECT_THAT(mangled.unplaced, ElementsAre(0u, 1u));
  // Placeholders never issued stay as they are; a duplicated one is replaced both times.
  RestoredText extra = RestoreTerms("[T3] [T1] [T1] [T2]", masked.placeholders, terms);
  EXPECT_EQ(extra.text, "[T3] Acme Acme Globex Corp");
  EXPECT_THAT(extra.unplaced, IsEmpty());
}

}  // namespace
}  // namespace vox
