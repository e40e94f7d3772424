#include "engines/text/live_text_segmenter.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Feed(LiveTextSegmenter* s, const std::string& piece) {
  absl::StatusOr<std::vector<std::string>> out = s->Append(piece);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<std::string>{};
}

TEST(LiveTextSegmenter, ASentenceIsCompleteOnceWhitespaceFollowsItsEnd) {
  LiveTextSegmenter s({});
  EXPECT_THAT(Feed(&s, "Hello "), IsEmpty());
  EXPECT_THAT(Feed(&s, "world."), IsEmpty());  // "world.5" or "world.\"" could follow
  EXPECT_THAT(Feed(&s, " How"), ElementsAre("Hello world."));
  EXPECT_THAT(Feed(&s, " are you? I am fine! And"), ElementsAre("How are you?", "I am fine!"));
  EXPECT_EQ(s.Flush(), "And");
  EXPECT_EQ(s.Flush(), std::nullopt);
}

TEST(LiveTextSegmenter, WordByWordGivesOneUtterancePerSentence) {
  LiveTextSegmenter s({80, 300, "eng_Latn"});
  const std::string text = "Dr. Smith paid 3.5 dollars. \"Really?\" she asked. Yes indeed.";
  std::vector<std::string> got;
  for (absl::string_view word : absl::StrSplit(text, ' ')) {
    for (std::string& u : Feed(&s, std::string(word) + " ")) got.push_back(u);
  }
  if (auto rest = s.Flush()) got.push_back(*rest);
  EXPECT_THAT(got, ElementsAre("Dr. Smith paid 3.5 dollars.", "\"Really?\"", "she asked.",
                               "Yes indeed."));
}

TEST(LiveTextSegmenter, LongClausesAreCutAtTheLastClauseMark) {
  LiveTextSegmenter s({/*clause_min_chars=*/20, /*max_chars=*/60});
  EXPECT_THAT(Feed(&s, "one, two "), IsEmpty());  // under 20 characters: waits for more
  EXPECT_THAT(Feed(&s, "three four, five six seven"),
              ElementsAre("one, two three four,"));
  EXPECT_EQ(s.Flush(), "five six seven");
}

TEST(LiveTextSegmenter, UnpunctuatedTextIsCutAtWhitespacePastTheLimit) {
  LiveTextSegmenter s({/*clause_min_chars=*/20, /*max_chars=*/30});
  std::vector<std::string> got;
  for (int i = 0; i < 10; ++i) {
    for (std::string& u : Feed(&s, "word ")) got.push_back(u);
  }
  // 30 characters hold six "word " (the cut is at the last whitespace at or before 30).
  EXPECT_THAT(got, ElementsAre("word word word word word word"));
  EXPECT_EQ(s.Flush(), "word word word word");
  LiveTextSegmenter no_space({20, 30});
  EXPECT_THAT(Feed(&no_space, std::string(45, 'x')), ElementsAre(std::string(30, 'x')));
}

TEST(LiveTextSegmenter, ACjkFullStopEndsASentenceOnceWhitespaceFollows) {
  LiveTextSegmenter s({});
  EXPECT_THAT(Feed(&s, "你好。"), IsEmpty());
  EXPECT_THAT(Feed(&s, " 再见"), ElementsAre("你好。"));
}

// The sentences are Translate's (sentence_splitter.h): CJK needs no space after "。", and the
// text's language chooses the abbreviations.
TEST(LiveTextSegmenter, SentencesFollowTheLanguageOfTheText) {
  LiveTextSegmenter zh({80, 300, "zho_Hans"});
  EXPECT_THAT(Feed(&zh, "今天很好。我们"), ElementsAre("今天很好。"));
  EXPECT_EQ(zh.Flush(), "我们");
  LiveTextSegmenter de({80, 300, "deu_Latn"});
  EXPECT_THAT(Feed(&de, "Rot bzw. "), IsEmpty());
  EXPECT_THAT(Feed(&de, "Blau. Und"), ElementsAre("Rot bzw. Blau."));
  LiveTextSegmenter en({80, 300, "eng_Latn"});
  EXPECT_THAT(Feed(&en, "Rot bzw. "), ElementsAre("Rot bzw."));
  EXPECT_THAT(Feed(&en, "One\nTwo"), ElementsAre("One"));
}

TEST(LiveTextSegmenter, InvalidUtf8IsRefusedAndNotBuffered) {
  LiveTextSegmenter s({});
  Feed(&s, "ok ");
  absl::StatusOr<std::vector<std::string>> bad = s.Append("\xC3");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.buffered_bytes(), 3u);
  EXPECT_EQ(s.Flush(), "ok");
}

TEST(LiveTextSegmenter, BlankInputGivesNothing) {
  LiveTextSegmenter s({});
  EXPECT_THAT(Feed(&s, "   \n "), IsEmpty());
  EXPECT_EQ(s.Flush(), std::nullopt);
}

}  // namespace
}  // namespace vox
