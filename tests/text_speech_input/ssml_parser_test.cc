#include "engines/text/ssml_parser.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::HasSubstr;
using Kind = SsmlSegment::Kind;

std::vector<SsmlSegment> Parse(const std::string& doc) {
  absl::StatusOr<std::vector<SsmlSegment>> segments = ParseSsml(doc);
  EXPECT_TRUE(segments.ok()) << segments.status() << " for " << doc;
  return segments.ok() ? *segments : std::vector<SsmlSegment>{};
}

std::string ErrorOf(const std::string& doc) {
  absl::StatusOr<std::vector<SsmlSegment>> segments = ParseSsml(doc);
  EXPECT_FALSE(segments.ok()) << "parsed: " << doc;
  if (segments.ok()) return "";
  EXPECT_EQ(segments.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(segments.status().message());
}

TEST(SsmlParser, LooksLikeSsml) {
  EXPECT_TRUE(LooksLikeSsml("  <speak>hi</speak>"));
  EXPECT_TRUE(LooksLikeSsml("<?xml version=\"1.0\"?><speak/>"));
  EXPECT_FALSE(LooksLikeSsml("Say <speak> aloud."));
  EXPECT_FALSE(LooksLikeSsml("hello"));
}

TEST(SsmlParser, PlainTextCollapsesWhitespaceAndDecodesEntities) {
  auto s = Parse("<speak>\n  Fish &amp; chips,\n\t&lt;now&gt; &#65;&#x42; &quot;x&apos;\n</speak>");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].kind, Kind::kText);
  EXPECT_EQ(s[0].text, "Fish & chips, <now> AB \"x'");
  EXPECT_EQ(s[0].rate, 1.0);
  EXPECT_EQ(s[0].language, "");
}

TEST(SsmlParser, BreaksByTimeAndStrength) {
  auto s = Parse(
      "<speak>One<break time=\"250ms\"/>two<break time='1.5s'></break>three"
      "<break strength=\"x-strong\"/>four<break/>five<break strength=\"none\"/>six</speak>");
  ASSERT_EQ(s.size(), 10u);
  EXPECT_EQ(s[0].text, "One");
  EXPECT_EQ(s[1].kind, Kind::kBreak);
  EXPECT_EQ(s[1].pause_ms, 250);
  EXPECT_EQ(s[2].text, "two");
  EXPECT_EQ(s[3].pause_ms, 1500);
  EXPECT_EQ(s[4].text, "three");
  EXPECT_EQ(s[5].pause_ms, 1000);
  EXPECT_EQ(s[6].text, "four");
  EXPECT_EQ(s[7].pause_ms, 400);  // a bare break is medium
  EXPECT_EQ(s[8].text, "five");
  // strength none: no pause segment, but still a boundary
  EXPECT_EQ(s[9].text, "six");
}

TEST(SsmlParser, ProsodyRatesMultiplyAndEnd) {
  auto s = Parse(
      "<speak>a<prosody rate=\"slow\">b<prosody rate=\"200%\">c</prosody></prosody>"
      "<prosody rate=\"+60%\">d</prosody><prosody rate=\"-25%\">e</prosody>"
      "<prosody rate=\"1.2\" pitch=\"high\">f</prosody>g</speak>");
  ASSERT_EQ(s.size(), 7u);
  EXPECT_EQ(s[0].text, "a");
  EXPECT_DOUBLE_EQ(s[0].rate, 1.0);
  EXPECT_DOUBLE_EQ(s[1].rate, 0.75);
  EXPECT_DOUBLE_EQ(s[2].rate, 1.5);
  EXPECT_DOUBLE_EQ(s[3].rate, 1.6);
  EXPECT_DOUBLE_EQ(s[4].rate, 0.75);
  EXPECT_DOUBLE_EQ(s[5].rate, 1.2);
  EXPECT_EQ(s[6].text, "g");
  EXPECT_DOUBLE_EQ(s[6].rate, 1.0);
}

TEST(SsmlParser, SayAsSubLangAndStructure) {
  auto s = Parse(
      "<speak xml:lang=\"en-US\"><p><s>Call <say-as interpret-as=\"telephone\">555-1234</say-as>"
      " today.</s><s>The <sub alias=\"World Wide Web Consortium\">W3C</sub> says"
      " <lang xml:lang=\"es\">hola</lang>.</s></p><p>On <say-as interpret-as=\"date\" "
      "format=\"dmy\">03/12/2026</say-as></p></speak>");
  ASSERT_EQ(s.size(), 8u);
  EXPECT_EQ(s[0].text, "Call");
  EXPECT_EQ(s[0].language, "en-US");
  EXPECT_EQ(s[1].text, "555-1234");
  EXPECT_EQ(s[1].say_as, "telephone");
  EXPECT_EQ(s[2].text, "today.");
  EXPECT_EQ(s[3].text, "The World Wide Web Consortium says");  // <sub> text replaced
  EXPECT_EQ(s[4].text, "hola");
  EXPECT_EQ(s[4].language, "es");
  EXPECT_EQ(s[5].text, ".");
  EXPECT_EQ(s[5].language, "en-US");
  EXPECT_EQ(s[6].text, "On");
  EXPECT_EQ(s[7].text, "03/12/2026");
  EXPECT_EQ(s[7].say_as, "date");
  EXPECT_EQ(s[7].say_as_format, "dmy");
}

TEST(SsmlParser, SentencesAreNotMerged) {
  auto s = Parse("<speak><s>One.</s><s>Two.</s>Three.</speak>");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].text, "One.");
  EXPECT_EQ(s[1].text, "Two.");
  EXPECT_EQ(s[2].text, "Three.");
}

TEST(SsmlParser, UnknownElementsAreIgnoredWithTheirTextKept) {
  auto s = Parse(
      "<?xml version=\"1.0\"?><!-- c --><speak version=\"1.1\"><emphasis level=\"strong\">Very"
      "</emphasis> <voice name=\"x\"><mark name=\"m\"/>good<![CDATA[ <&> ]]></voice></speak>\n");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].text, "Very good <&>");
}

TEST(SsmlParser, EmptyDocumentHasNoSegments) {
  EXPECT_TRUE(Parse("<speak/>").empty());
  EXPECT_TRUE(Parse("<speak> <break time=\"0ms\"/> </speak>").empty());
}

TEST(SsmlParser, MalformedReportsThePosition) {
  // Mismatched close: the "</b" starts at byte 11.
  EXPECT_THAT(ErrorOf("<speak><a>x</b></speak>"),
              HasSubstr("</b> does not close <a> at byte 11 (character 11, line 1, column 12)"));
  // Characters, not bytes: "é" is two bytes.
  EXPECT_THAT(ErrorOf("<speak>é &nope;</speak>"),
              HasSubstr("&#xH;) at byte 10 (character 9, line 1, column 10)"));
  EXPECT_THAT(ErrorOf("<speak>\nab\n<break time=\"x\"/></speak>"),
              HasSubstr("at most 10s) at byte 18 (character 18, line 3, column 8)"));
  EXPECT_THAT(ErrorOf("<speak>unterminated"), HasSubstr("end of the document inside <speak>"));
  EXPECT_THAT(ErrorOf("hello <speak/>"), HasSubstr("expected the root element <speak> at byte 0"));
  EXPECT_THAT(ErrorOf("<speak></speak>tail"), HasSubstr("content after the closing </speak> at byte 15"));
  EXPECT_THAT(ErrorOf("<speak><p a=\"1\" a=\"2\">x</p></speak>"),
              HasSubstr("duplicate attribute a at byte 16"));
  EXPECT_THAT(ErrorOf("<speak><p a=1>x</p></speak>"), HasSubstr("expected a quoted value"));
  EXPECT_THAT(ErrorOf("<speak>a & b</speak>"), HasSubstr("'&' that starts no reference"));
  EXPECT_THAT(ErrorOf("<speak><break>text</break></speak>"), HasSubstr("text inside <break>"));
  EXPECT_THAT(ErrorOf("<speak><sub alias=\"x\"><b/></sub></speak>"),
              HasSubstr("element inside <sub>"));
  EXPECT_THAT(ErrorOf("<speak><sub>x</sub></speak>"), HasSubstr("<sub> without alias at byte 7"));
  EXPECT_THAT(ErrorOf("<speak><say-as>1</say-as></speak>"), HasSubstr("without interpret-as"));
  EXPECT_THAT(ErrorOf("<speak><lang>x</lang></speak>"), HasSubstr("<lang> without xml:lang"));
  EXPECT_THAT(ErrorOf("<speak><prosody rate=\"warp\">x</prosody></speak>"),
              HasSubstr("bad prosody rate 'warp'"));
  EXPECT_THAT(ErrorOf("<speak><prosody rate=\"-100%\">x</prosody></speak>"),
              HasSubstr("bad prosody rate"));
  EXPECT_THAT(ErrorOf("<speak><break time=\"11s\"/></speak>"), HasSubstr("at most 10s"));
  EXPECT_THAT(ErrorOf("<speak><break strength=\"huge\"/></speak>"), HasSubstr("bad break strength"));
  EXPECT_THAT(ErrorOf("<!DOCTYPE speak><speak/>"), HasSubstr("expected the root element"));
  EXPECT_THAT(ErrorOf("<speak><!DOCTYPE x></speak>"), HasSubstr("DOCTYPE"));
  EXPECT_THAT(ErrorOf("<speak>&#0;</speak>"), HasSubstr("invalid character reference"));
  EXPECT_THAT(ErrorOf("<speak>&#xD800;</speak>"), HasSubstr("invalid character reference"));
  EXPECT_THAT(ErrorOf("<speak><speak/></speak>"), HasSubstr("nested <speak>"));
  EXPECT_THAT(ErrorOf(std::string("<speak>a\0b</speak>", 18)), HasSubstr("NUL character at byte 8"));
  EXPECT_THAT(ErrorOf("<speak>\xC3(</speak>"), HasSubstr("invalid UTF-8 at byte 7"));
  EXPECT_THAT(ErrorOf("<speaker/>"), HasSubstr("expected the root element <speak>"));
  EXPECT_THAT(ErrorOf("<speak><p x=\"<\">a</p></speak>"), HasSubstr("'<' inside an attribute"));
}

TEST(SsmlParser, DeepNestingIsRefusedNotOverflowed) {
  std::string doc = "<speak>";
  for (int i = 0; i < 100; ++i) doc += "<a>";
  doc += "x";
  for (int i = 0; i < 100; ++i) doc += "</a>";
  doc += "</speak>";
  EXPECT_THAT(ErrorOf(doc), HasSubstr("nested deeper than 64"));
}

}  // namespace
}  // namespace vox
