#include "engines/text/ssml_say_as.h"

#include "gtest/gtest.h"

namespace vox {
namespace {

SsmlSegment SayAs(const std::string& as, const std::string& text, const std::string& format = "") {
  SsmlSegment s;
  s.text = text;
  s.say_as = as;
  s.say_as_format = format;
  return s;
}

TEST(SsmlSayAs, Characters) {
  EXPECT_EQ(ExpandSayAs(SayAs("characters", "AB1"), "eng_Latn"), "A B 1");
  EXPECT_EQ(ExpandSayAs(SayAs("characters", "ñé"), "spa_Latn"), "ñ é");
}

TEST(SsmlSayAs, CardinalAndOrdinal) {
  EXPECT_EQ(ExpandSayAs(SayAs("cardinal", "1,234"), "eng_Latn"),
            "one thousand, two hundred and thirty-four");
  EXPECT_EQ(ExpandSayAs(SayAs("cardinal", "21"), "spa_Latn"), "veintiuno");
  EXPECT_EQ(ExpandSayAs(SayAs("ordinal", "3rd"), "eng_Latn"), "third");
  EXPECT_EQ(ExpandSayAs(SayAs("ordinal", "21"), "eng_Latn"), "twenty-first");
  // Not a number: spoken as written.
  EXPECT_EQ(ExpandSayAs(SayAs("cardinal", "many"), "eng_Latn"), "many");
  EXPECT_EQ(ExpandSayAs(SayAs("ordinal", "3x"), "eng_Latn"), "3x");
}

TEST(SsmlSayAs, Date) {
  EXPECT_EQ(ExpandSayAs(SayAs("date", "2026-12-03"), "eng_Latn"),
            "December third, two thousand and twenty-six");
  EXPECT_EQ(ExpandSayAs(SayAs("date", "12/03/2026"), "eng_Latn"),
            "December third, two thousand and twenty-six");
  EXPECT_EQ(ExpandSayAs(SayAs("date", "03/12/2026", "dmy"), "eng_Latn"),
            "December third, two thousand and twenty-six");
  EXPECT_EQ(ExpandSayAs(SayAs("date", "3/12/2026", "dmy"), "spa_Latn"), "tres doce dos mil veintiséis");
  EXPECT_EQ(ExpandSayAs(SayAs("date", "13/13/2026"), "eng_Latn"), "13/13/2026");
}

TEST(SsmlSayAs, Telephone) {
  EXPECT_EQ(ExpandSayAs(SayAs("telephone", "555-1234"), "eng_Latn"),
            "five five five, one two three four");
  EXPECT_EQ(ExpandSayAs(SayAs("telephone", "call me"), "eng_Latn"), "call me");
}

TEST(SsmlSayAs, UnknownInterpretationOrLanguageKeepsTheText) {
  EXPECT_EQ(ExpandSayAs(SayAs("currency", "$5"), "eng_Latn"), "$5");
  EXPECT_EQ(ExpandSayAs(SayAs("cardinal", "12"), "zho_Hans"), "12");
  EXPECT_EQ(ExpandSayAs(SayAs("", "12"), "eng_Latn"), "12");
}

}  // namespace
}  // namespace vox
