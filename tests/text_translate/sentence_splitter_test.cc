#include "engines/text/sentence_splitter.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Sentences(std::string_view text, std::string_view lang,
                                   std::vector<ByteSpan> protect = {}) {
  std::vector<std::string> out;
  for (const ByteSpan& s : SplitSentences(text, lang, protect)) {
    out.emplace_back(text.substr(s.begin, s.end - s.begin));
  }
  return out;
}

// The gaps between spans are whitespace only, and gaps + spans give back the text exactly.
void ExpectRejoins(std::string_view text, std::string_view lang) {
  std::vector<ByteSpan> spans = SplitSentences(text, lang);
  std::string rebuilt;
  size_t pos = 0;
  for (const ByteSpan& s : spans) {
    ASSERT_LE(pos, s.begin);
    ASSERT_LT(s.begin, s.end);
    const std::string gap(text.substr(pos, s.begin - pos));
    EXPECT_EQ(gap.find_first_not_of(" \t\r\n"), std::string::npos) << "gap '" << gap << "'";
    rebuilt += gap;
    rebuilt += text.substr(s.begin, s.end - s.begin);
    pos = s.end;
  }
  rebuilt += text.substr(pos);
  EXPECT_EQ(rebuilt, text);
}

TEST(SentenceSplitter, EndsAtTerminatorsFollowedBySpace) {
  EXPECT_THAT(Sentences("Hello there. How are you? I'm fine!", "eng_Latn"),
              ElementsAre("Hello there.", "How are you?", "I'm fine!"));
  EXPECT_THAT(Sentences("One sentence without end", "eng_Latn"),
              ElementsAre("One sentence without end"));
}

TEST(SentenceSplitter, DecimalsAbbreviationsInitialsAndLowercaseDoNotEndASentence) {
  EXPECT_THAT(Sentences("Dr. Smith came at 3.15 p.m. today. J. R. Tolkien wrote it. Yes.",
                        "eng_Latn"),
              ElementsAre("Dr. Smith came at 3.15 p.m. today.", "J. R. Tolkien wrote it.",
                          "Yes."));
  EXPECT_THAT(Sentences("It costs approx. five euros. Good.", "eng_Latn"),
              ElementsAre("It costs approx. five euros.", "Good."));
  // The list is per language: "Sra." is Spanish, and "z.B." and "3." (an ordinal) are German.
  EXPECT_THAT(Sentences("La Sra. García llegó. Bien.", "spa_Latn"),
              ElementsAre("La Sra. García llegó.", "Bien."));
  EXPECT_THAT(Sentences("Wir treffen uns am 3. Mai, z.B. im Park. Gut.", "deu_Latn"),
              ElementsAre("Wir treffen uns am 3. Mai, z.B. im Park.", "Gut."));
  EXPECT_THAT(Sentences("It was 2020. Then it was not.", "eng_Latn"),
              ElementsAre("It was 2020.", "Then it was not."));
}

TEST(SentenceSplitter, QuotesAndBracketsCloseTheSentence) {
  EXPECT_THAT(Sentences("He said \"Stop!\" Then he left. (It was late.) Fine.", "eng_Latn"),
              ElementsAre("He said \"Stop!\"", "Then he left.", "(It was late.)", "Fine."));
  // A lowercase word after the quote continues the sentence.
  EXPECT_THAT(Sentences("\xE2\x80\x9CReally?\xE2\x80\x9D she asked. No.", "eng_Latn"),
              ElementsAre("\xE2\x80\x9CReally?\xE2\x80\x9D she asked.", "No."));
  EXPECT_THAT(Sentences("\xC2\xAB Oui ! \xC2\xBB Il part.", "fra_Latn"),
              ElementsAre("\xC2\xAB Oui ! \xC2\xBB", "Il part."));
}

TEST(SentenceSplitter, Ellipsis) {
  EXPECT_THAT(Sentences("Wait... what is that? I see\xE2\x80\xA6 Then go.", "eng_Latn"),
              ElementsAre("Wait... what is that?", "I see\xE2\x80\xA6", "Then go."));
}

TEST(SentenceSplitter, CjkEndsWithoutSpaces) {
  EXPECT_THAT(Sentences("今天很好。我们去公园！好吗？", "zho_Hans"),
              ElementsAre("今天很好。", "我们去公园！", "好吗？"));
  EXPECT_THAT(Sentences("他说：「好。」然后走了。", "zho_Hans"),
              ElementsAre("他说：「好。」", "然后走了。"));
  EXPECT_THAT(Sentences("東京へ行きます。明日です。", "jpn_Jpan"),
              ElementsAre("東京へ行きます。", "明日です。"));
}

TEST(SentenceSplitter, ThaiEndsAtSpacesButNotAfterPaiyannoiOrNumbers) {
  EXPECT_THAT(Sentences("ฉันชอบกาแฟ เขาชอบชา", "tha_Thai"),
              ElementsAre("ฉันชอบกาแฟ", "เขาชอบชา"));
  EXPECT_THAT(Sentences("กรุงเทพฯ เป็นเมืองหลวง", "tha_Thai"),
              ElementsAre("กรุงเทพฯ เป็นเมืองหลวง"));
  EXPECT_THAT(Sentences("ราคา 100 บาท", "tha_Thai"), ElementsAre("ราคา 100 บาท"));
  // The rule is Thai's: the same text labelled as another language is one sentence.
  EXPECT_THAT(Sentences("ฉันชอบกาแฟ เขาชอบชา", "eng_Latn"), ElementsAre("ฉันชอบกาแฟ เขาชอบชา"));
}

TEST(SentenceSplitter, OtherScripts) {
  EXPECT_THAT(Sentences("नमस्ते। आप कैसे हैं?", "hin_Deva"),
              ElementsAre("नमस्ते।", "आप कैसे हैं?"));
  EXPECT_THAT(Sentences("مرحبا؟ كيف حالك.", "arb_Arab"), ElementsAre("مرحبا؟", "كيف حالك."));
  // Greek writes its question mark as ';', which ends nothing in English.
  EXPECT_THAT(Sentences("Τι κάνεις; Καλά.", "ell_Grek"), ElementsAre("Τι κάνεις;", "Καλά."));
  EXPECT_THAT(Sentences("Fine; thanks.", "eng_Latn"), ElementsAre("Fine; thanks."));
}

TEST(SentenceSplitter, LineBreaksAndParagraphsAreKept) {
  const std::string text = "  Title\n\nFirst one. Second one.\r\nLine two\n\n\n  Last.  \n";
  EXPECT_THAT(Sentences(text, "eng_Latn"),
              ElementsAre("Title", "First one.", "Second one.", "Line two", "Last."));
  ExpectRejoins(text, "eng_Latn");
}

TEST(SentenceSplitter, ProtectedSpansAreNeverCut) {
  const std::string text = "We met Acme Inc. Today we talk. Bye.";
  EXPECT_THAT(Sentences(text, "eng_Latn"),
              ElementsAre("We met Acme Inc.", "Today we talk.", "Bye."));
  const size_t b = text.find("Acme");
  EXPECT_THAT(Sentences(text, "eng_Latn", {{b, b + 15}}),
              ElementsAre("We met Acme Inc. Today we talk.", "Bye."));
  // A span that ends exactly at a boundary does not stop it.
  EXPECT_THAT(Sentences(text, "eng_Latn", {{b, b + 9}}),
              ElementsAre("We met Acme Inc.", "Today we talk.", "Bye."));
}

TEST(SentenceSplitter, BlankAndInvalidTextNeverFail) {
  EXPECT_TRUE(SplitSentences("", "eng_Latn").empty());
  EXPECT_TRUE(SplitSentences(" \n\t ", "eng_Latn").empty());
  EXPECT_TRUE(SplitSentences("x", "").size() == 1);
  const std::string bad = "\xFF\xFE. Next one.\xC3";
  EXPECT_EQ(SplitSentences(bad, "eng_Latn").size(), 2u);
  ExpectRejoins(bad, "eng_Latn");
  ExpectRejoins("a\n \n b. c? \xE3\x80\x82 d", "zho_Hans");
}

}  // namespace
}  // namespace vox
