// XttsTokenizer: HF tokenizers' BPE semantics on hand-built vocabularies (expected ids derived by
// hand from the algorithm in shared/XTTS_FACTS.md §5, each noted beside the case), the tiny XTTS
// model's golden text ids (made by tools/xtts_reference.py), Unicode handling, sentence splitting.
#include "engines/text/xtts_tokenizer.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engines/text/text_cleaner.h"
#include "engines/text/unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// vocab: token → id in order of `tokens`; added: these are added tokens (normalized false).
std::string MakeVocab(const std::vector<std::string>& tokens,
                      const std::vector<std::string>& merges,
                      const std::vector<std::string>& added) {
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  nlohmann::json added_json = nlohmann::json::array();
  for (const auto& a : added) {
    added_json.push_back({{"id", vocab[a]},
                          {"content", a},
                          {"single_word", false},
                          {"lstrip", false},
                          {"rstrip", false},
                          {"normalized", false},
                          {"special", true}});
  }
  nlohmann::json j = {{"version", "1.0"},
                      {"truncation", nullptr},
                      {"padding", nullptr},
                      {"added_tokens", added_json},
                      {"normalizer", nullptr},
                      {"pre_tokenizer", {{"type", "Whitespace"}}},
                      {"post_processor", nullptr},
                      {"decoder", nullptr},
                      {"model",
                       {{"type", "BPE"},
                        {"dropout", nullptr},
                        {"unk_token", "[UNK]"},
                        {"continuing_subword_prefix", nullptr},
                        {"end_of_word_suffix", nullptr},
                        {"fuse_unk", false},
                        {"vocab", vocab},
                        {"merges", merges}}}};
  return j.dump();
}

XttsTokenizer Make(const std::vector<std::string>& tokens, const std::vector<std::string>& merges,
                   const std::vector<std::string>& added = {"[STOP]", "[UNK]", "[SPACE]", "[en]",
                                                            "[es]"}) {
  auto t = XttsTokenizer::FromJson(MakeVocab(tokens, merges, added));
  EXPECT_TRUE(t.ok()) << t.status();
  return *t;
}

std::vector<int64_t> Raw(const XttsTokenizer& t, const std::string& s) {
  auto ids = t.EncodeRaw(s);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int64_t>{};
}

// ids: [STOP]=0 [UNK]=1 [SPACE]=2 [en]=3 [es]=4 a=5 aa=6 aaa=7
const std::vector<std::string> kRunTokens = {"[STOP]", "[UNK]", "[SPACE]", "[en]",
                                             "[es]",   "a",     "aa",      "aaa"};

TEST(XttsBpeTest, RepeatedCharacterFollowsHeapNotMergeAll) {
  // "aa a" has a better rank (0) than "a a" (1): not learned-consistent.
  XttsTokenizer t = Make(kRunTokens, {"aa a", "a a"});
  // aaaa: pairs (a,a)@0,1,2 rank 1. Pop @0 → aa a a; push (aa,a)@0 rank 0 → pop → aaa a.
  // Stale @1 and @2 are skipped. Merge-all-occurrences would give aa aa instead.
  EXPECT_THAT(Raw(t, "aaaa"), ElementsAre(7, 5));
  // aaaaa: as above, then @3 (a,a) is still live → aaa aa. Merge-all would give aa aaa.
  EXPECT_THAT(Raw(t, "aaaaa"), ElementsAre(7, 6));
  // aaa: @0 → aa a → (aa,a) rank 0 → aaa.
  EXPECT_THAT(Raw(t, "aaa"), ElementsAre(7));
  EXPECT_THAT(Raw(t, "a"), ElementsAre(5));
}

TEST(XttsBpeTest, LaterDuplicateMergeWins) {
  // ids: a=5 b=6 c=7 ab=8 bc=9. "a b" is listed at rank 0 and again at rank 2 (wins).
  XttsTokenizer t = Make({"[STOP]", "[UNK]", "[SPACE]", "[en]", "[es]", "a", "b", "c", "ab", "bc"},
                         {"a b", "b c", "a b"});
  // abc: (a,b) rank 2 @0, (b,c) rank 1 @1 → bc first; (a,bc) is no merge → a bc.
  EXPECT_THAT(Raw(t, "abc"), ElementsAre(5, 9));
  XttsTokenizer first = Make(
      {"[STOP]", "[UNK]", "[SPACE]", "[en]", "[es]", "a", "b", "c", "ab", "bc"}, {"a b", "b c"});
  EXPECT_THAT(Raw(first, "abc"), ElementsAre(8, 7));  // control: rank 0 "a b" → ab c
}

TEST(XttsBpeTest, TiesGoToTheLeftmostPair) {
  // Only "a a" (→ aa): in "aaa" the pairs @0 and @1 tie on rank; the leftmost goes first →
  // aa a (popping @1 first would give a aa).
  XttsTokenizer t = Make(kRunTokens, {"a a"});
  EXPECT_THAT(Raw(t, "aaa"), ElementsAre(6, 5));
  // ids: a=5 b=6 ab=7 ba=8. abab: (a,b)@0 r1, (b,a)@1 r0, (a,b)@2 r1 → (b,a)@1 first → a ba b.
  XttsTokenizer u =
      Make({"[STOP]", "[UNK]", "[SPACE]", "[en]", "[es]", "a", "b", "ab", "ba"}, {"b a", "a b"});
  EXPECT_THAT(Raw(u, "abab"), ElementsAre(5, 8, 6));
}

// ids: 0..4 specials, h=5 e=6 l=7 o=8 w=9 r=10 d=11 '=12 ?=13 !=14 he=15 ll=16 hell=17 hello=18
// ?!=19 n=20 t=21 x=22 y=23 z=24 xyz=25 yz=26
const std::vector<std::string> kWordTokens = {
    "[STOP]", "[UNK]", "[SPACE]", "[en]", "[es]",  "h",  "e", "l", "o", "w", "r", "d",   "'", "?",
    "!",      "he",    "ll",      "hell", "hello", "?!", "n", "t", "x", "y", "z", "xyz", "yz"};
const std::vector<std::string> kWordMerges = {"h e", "l l", "he ll", "hell o", "? !"};

TEST(XttsBpeTest, AddedTokensAreCutFirstLeftmostLongest) {
  XttsTokenizer t =
      Make(kWordTokens, kWordMerges, {"[STOP]", "[UNK]", "[SPACE]", "[en]", "[es]", "xyz", "yz"});
  EXPECT_THAT(Raw(t, "[en]hello[SPACE]hello"), ElementsAre(3, 18, 2, 18));
  // "xyz" and "yz" both added: leftmost wins ("xyz" starts first), longest at the same start.
  EXPECT_THAT(Raw(t, "hxyzh"), ElementsAre(5, 25, 5));
  EXPECT_THAT(Raw(t, "hyzh"), ElementsAre(5, 26, 5));
  // An added token inside a word splits it: "he" + [SPACE] + "llo" → he, [SPACE], ll, o.
  EXPECT_THAT(Raw(t, "he[SPACE]llo"), ElementsAre(15, 2, 16, 8));
  // Case matters: "[EN]" is not the added token; [, ], E, N are unknown → [UNK] each... except
  // "[" and "]" are one punctuation piece "[" then word "EN" then "]": four [UNK]s.
  EXPECT_THAT(Raw(t, "[EN]"), ElementsAre(1, 1, 1, 1));
}

TEST(XttsBpeTest, WhitespacePreTokenizerSplitsWordsAndPunctuationRuns) {
  XttsTokenizer t = Make(kWordTokens, kWordMerges);
  // don't-style: "hell'o" → hell | ' | o (no merge across the apostrophe).
  EXPECT_THAT(Raw(t, "hell'o"), ElementsAre(17, 12, 8));
  // "?!" is one punctuation piece, so the "? !" merge applies; "? !" with a space does not.
  EXPECT_THAT(Raw(t, "hello?!"), ElementsAre(18, 19));
  EXPECT_THAT(Raw(t, "? !"), ElementsAre(13, 14));
  // Whitespace of any kind (tab, newline, NBSP U+00A0, ideographic space U+3000) is dropped.
  EXPECT_THAT(Raw(t,
                  "he\tll\n o\xC2\xA0h\xE3\x80\x80"
                  "e"),
              ElementsAre(15, 16, 8, 5, 6));
}

TEST(XttsBpeTest, UnknownCharactersBecomeSeparateUnks) {
  XttsTokenizer t = Make(kWordTokens, kWordMerges);
  // é (U+00E9) unknown, inside a word: h, [UNK], l, l → (l,l) merges; no fusing of unks.
  EXPECT_THAT(Raw(t, "h\xC3\xA9\xC3\xA9ll"), ElementsAre(5, 1, 1, 16));
  // Emoji U+1F600 is not \w: its own piece → [UNK]; splits "hello" and "hello".
  EXPECT_THAT(Raw(t, "hello\xF0\x9F\x98\x80hello"), ElementsAre(18, 1, 18));
  // A combining mark (U+0301) is \w: "he" + U+0301 + "llo" stays one word: he, [UNK], ll, o.
  EXPECT_THAT(Raw(t, "he\xCC\x81llo"), ElementsAre(15, 1, 16, 8));
  // CJK ideographs are \w (Lo): one word of unknowns.
  EXPECT_THAT(Raw(t, "\xE4\xBD\xA0\xE5\xA5\xBD"), ElementsAre(1, 1));
}

TEST(XttsBpeTest, InvalidUtf8IsAClearError) {
  XttsTokenizer t = Make(kWordTokens, kWordMerges);
  for (const std::string& bad : {std::string("he\xFFllo"), std::string("\xC3"),
                                 std::string("\xED\xA0\x80"),  // surrogate
                                 std::string("\xC0\xAF")}) {   // overlong
    auto ids = t.EncodeRaw(bad);
    ASSERT_FALSE(ids.ok());
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(ids.status().message()), HasSubstr("invalid UTF-8 at byte"));
    EXPECT_FALSE(t.Encode(bad, "en").ok());
  }
}

TEST(XttsBpeTest, RejectsMalformedVocabularies) {
  EXPECT_FALSE(XttsTokenizer::FromJson("{").ok());
  EXPECT_FALSE(XttsTokenizer::FromJson("{}").ok());
  auto missing = XttsTokenizer::FromJson(MakeVocab(kRunTokens, {"a b"}, {"[UNK]"}));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("'b' is not in model.vocab"));
  nlohmann::json j = nlohmann::json::parse(MakeVocab(kRunTokens, {}, {"[UNK]"}));
  j["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_FALSE(XttsTokenizer::FromJson(j.dump()).ok());
  auto nofile = XttsTokenizer::FromFile("/nonexistent/vocab.json");
  ASSERT_FALSE(nofile.ok());
  EXPECT_THAT(std::string(nofile.status().message()), HasSubstr("/nonexistent/vocab.json"));
}

TEST(XttsBpeTest, TokenLookups) {
  XttsTokenizer t = Make(kRunTokens, {});
  EXPECT_EQ(t.TokenId("[SPACE]"), 2);
  EXPECT_EQ(t.TokenId("aaa"), 7);
  EXPECT_EQ(t.TokenId("zzz"), -1);
  EXPECT_EQ(t.unk_id(), 1);
  EXPECT_EQ(t.space_id(), 2);
  EXPECT_EQ(t.VocabSize(), kRunTokens.size());
  EXPECT_EQ(XttsLanguageToken("zh"), "[zh-cn]");
  EXPECT_EQ(XttsLanguageToken("zh-cn"), "[zh-cn]");
  EXPECT_EQ(XttsLanguageToken("es"), "[es]");
}

// ---- Cleaning: expectations from Coqui's own tests in TTS/tts/layers/xtts/tokenizer.py
// (test_abbreviations_multilingual / test_symbols_multilingual / test_expand_numbers_multilingual),
// lowercased because the full pipeline lowercases first.

TEST(XttsCleanerTest, CoquiUpstreamExamples) {
  const struct {
    const char* lang;
    const char* in;
    const char* out;
  } cases[] = {
      {"en", "Hello Mr. Smith.", "hello mister smith."},
      {"en", "Dr. Jones is here.", "doctor jones is here."},
      {"es", "Hola Sr. Garcia.", "hola señor garcia."},
      {"es", "La Dra. Martinez es muy buena.", "la doctora martinez es muy buena."},
      {"fr", "Bonjour Mr. Dupond.", "bonjour monsieur dupond."},
      {"de", "Frau Dr. Müller ist sehr klug.", "frau doktor müller ist sehr klug."},
      {"pt", "Dra. Costa, você está disponível?", "doutora costa, você está disponível?"},
      {"nl", "Mevr. de Vries", "mevrouw de vries"},
      {"ru", "Здравствуйте Г-н Иванов.", "здравствуйте господин иванов."},
      {"en", "I have 14% battery", "i have fourteen percent battery"},
      {"es", "Te veo @ la fiesta", "te veo arroba la fiesta"},
      {"de", "Das macht 20,15€ Herr.", "das macht zwanzig Euro und fünfzehn Cent herr."},
      {"fr", "Cela vous fera 20,15€ monsieur.",
       "cela vous fera vingt euros et quinze centimes monsieur."},
      {"fr", "Ce sera 100.000,5.", "ce sera cent mille virgule cinq."},
      {"it", "linguaggio di programmazione C#", "linguaggio di programmazione c cancelletto"},
      {"en", "In 12.5 seconds.", "in twelve point five seconds."},
      {"en", "This is a 1st test", "this is a first test"},
      {"en", "That will be 20.15€ sir.", "that will be twenty euro, fifteen cents sir."},
      {"en", "That's 100,000.5.", "that's one hundred thousand point five."},
      {"es", "Eso le costará 20,15€ señor.",
       "eso le costará veinte euros con quince céntimos señor."},
      {"es", "Este es un 1er test", "este es un primero test"},
      // num2words 0.5.14 (coqui-tts 0.28.0's pin): accents, "veintiún", feminine pounds, integer
      // ordinals.
      {"es", "Son 16 y 21€.", "son dieciséis y veintiún euros."},
      {"es", "Pagué £201,5.", "pagué doscientas una libras con cincuenta peniques."},
      {"es", "El 1234º.", "el milésimo ducentésimo trigésimo cuarto."},
      // nl: Coqui's own number examples (num2words lang_NL ported).
      {"nl", "In 12,5 seconden.", "in twaalf komma vijf seconden."},
      {"nl", "Dat wordt dan $20 meneer.", "dat wordt dan twintig dollar meneer."},
      {"nl", "Dat wordt dan 20€ meneer.", "dat wordt dan twintig euro meneer."},
      // pt (num2words lang_PT ported), Coqui's quirk included: an integral amount is cut at its
      // last " e ", so 21€ ("vinte e um euros") reads "vinte".
      {"pt", "Em 12,5 segundos.", "em doze vírgula cinco segundos."},
      {"pt", "Isso custará 20,15€ senhor.", "isso custará vinte euros e quinze cêntimos senhor."},
      {"pt", "Custa 21€.", "custa vinte."},
      {"pt", "O 1234º.", "o milésimo ducentésimo trigésimo quarto."},
      {"pt", "São 2.000.000€.", "são dois milhões de euros."},
      // it (num2words lang_IT ported): Coqui's own examples, and the accent on a final "tre".
      {"it", "In 12,5 secondi.", "in dodici virgola cinque secondi."},
      {"it", "Questo è un 1° test", "questo è un primo test"},
      {"it", "Ti costerà 20,15€ signore.", "ti costerà venti euro e quindici centesimi signore."},
      {"it", "Sono 23 e 23.000.", "sono ventitré e ventitremila."},
      // hu (num2words lang_HU ported): Coqui's own examples, "két" inside compounds.
      {"hu", "12,5 másodperc alatt.", "tizenkettő egész öt tized másodperc alatt."},
      {"hu", "Ez az 1. teszt", "ez az első teszt"},
      {"hu", "2002 és 102", "kétezer-két és százkét"},
      // cs (num2words lang_CS ported): Coqui's own examples; an integral decimal reads its zero.
      {"cs", "Za 12,5 vteřiny.", "za dvanáct celá pět vteřiny."},
      {"cs", "To bude 20.15€ pane.", "to bude dvacet euro, patnáct centů pane."},
      {"cs", "Je 12,0 a 1.000.005", "je dvanáct celá nula nula a milion pět"},
      // ko numbers (num2words lang_KO ported), then romanised.
      {"ko", "12.5 초 안에.", "sib-i jeom o cho an-e."},
      {"ko", "이것은 1 번째 테스트입니다", "igeos-eun il beon-jjae teseuteu-ibnida"},
      {"ko", "$20, 23번째", "isibdalleo yeongsenteu, seumulse beon-jjae"},
      // hi: multilingual_cleaners with its symbol table; the separator step runs on any digits.
      {"hi", "A  &  B", "a और b"},
      {"hi", "१,२३४ और १.२३४", "१,२३४ और १२३४"},
      // ko: multilingual_cleaners, then ko_speech_tools.hangul_romanize (its own examples and
      // outputs; "-" before a syllable with no initial or an ambiguous final+initial).
      {"ko", "물엿", "mul-yeos"},
      {"ko", "안녕하세요", "annyeonghase-yo"},
      {"ko", "한국어 입니다", "hangug-eo ibnida"},
      {"ko", "각각 박기", "gaggag baggi"},
      {"ko", "ㄱㅏ 가A가 & %", "ㄱㅏ gaaga geuligo peosenteu"},
  };
  for (const auto& c : cases) {
    auto got = CleanText(c.in, c.lang);
    ASSERT_TRUE(got.ok()) << c.lang << " " << c.in << ": " << got.status();
    EXPECT_EQ(*got, c.out) << c.lang << " " << c.in;
  }
}

TEST(XttsCleanerTest, WhitespaceQuotesAndCase) {
  EXPECT_EQ(*CleanText("  \"ÁRBOL\"\t y\n\n  ÑANDÚ  ", "es"), "árbol y ñandú");
  // Python's str.lower(): final sigma, and İ → i + combining dot.
  EXPECT_EQ(*CleanText("ΟΔΟΣ ΟΔΟΣ.", "en"), "οδος οδος.");
  EXPECT_EQ(*CleanText("İ", "tr"), "i\xCC\x87");
}

TEST(XttsCleanerTest, LanguagesAreCheckedWithHelpfulErrors) {
  for (const char* lang : {"zh", "zh-cn", "ja"}) {
    auto r = CleanText("x", lang);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()),
                HasSubstr(std::string("XTTS language '") + lang + "' is not supported"));
  }
  // Languages without a num2words port refuse ASCII digits (Coqui would read them out) and
  // clean the rest exactly.
  for (const char* lang : {"pl", "tr", "ru", "ar", "hi"}) {
    auto d = CleanText("Ti costerà 20€.", lang);
    ASSERT_FALSE(d.ok()) << lang;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(d.status().message()),
                HasSubstr(std::string("XTTS language '") + lang + "': the text has digits"));
    EXPECT_TRUE(CleanText("Ti costerà venti euro.", lang).ok()) << lang;
  }
  auto r = CleanText("x", "xx");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("supported: en, es"));
  // num2words has no Czech ordinals: "3. " raises in Coqui and is an error here.
  EXPECT_FALSE(CleanText("To je 3. den", "cs").ok());
  // Numbers too large for num2words are an error (the reference raises too).
  EXPECT_FALSE(CleanText(std::string(320, '9'), "en").ok());
}

// ---- The tiny XTTS model's goldens (tools/tiny_xtts.py via tools/xtts_reference.py).

nlohmann::json LoadGolden() {
  std::ifstream in(std::string(VOX_TINY_DIR) + "/golden/xtts-tiny.json");
  if (!in) return nullptr;
  return nlohmann::json::parse(in, nullptr, false);
}

TEST(XttsGoldenTest, TinyModelTextIdsMatchTheReference) {
  const nlohmann::json golden = LoadGolden();
  ASSERT_TRUE(golden.is_object()) << "missing " << VOX_TINY_DIR
                                  << "/golden/xtts-tiny.json (build target tiny_xtts)";
  auto tok =
      XttsTokenizer::FromFile(std::string(VOX_TINY_DIR) + "/checkpoints/xtts-tiny/vocab.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  ASSERT_GE(golden["texts"].size(), 5u);
  for (const auto& t : golden["texts"]) {
    const std::string text = t["text"], lang = t["lang"];
    auto cleaned = CleanText(text, lang);
    ASSERT_TRUE(cleaned.ok()) << cleaned.status();
    EXPECT_EQ(*cleaned, t["cleaned"].get<std::string>()) << text;
    auto ids = tok->Encode(text, lang);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, t["ids"].get<std::vector<int64_t>>()) << text;
  }
  // The exported model directory carries the same vocabulary.
  auto exported =
      XttsTokenizer::FromFile(std::string(VOX_TINY_DIR) + "/models/xtts-tiny/vocab.json");
  if (exported.ok()) {
    for (const auto& t : golden["texts"]) {
      EXPECT_EQ(*exported->Encode(t["text"].get<std::string>(), t["lang"].get<std::string>()),
                t["ids"].get<std::vector<int64_t>>());
    }
  }
}

// ---- Sentence splitting.

TEST(XttsSplitTest, PiecesStayUnderTheLimitAndKeepAllText) {
  auto tok =
      XttsTokenizer::FromFile(std::string(VOX_TINY_DIR) + "/checkpoints/xtts-tiny/vocab.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  std::string text;
  for (int i = 0; i < 40; ++i) {
    text += "Sentence number " + std::to_string(i) + " is here, with a clause. ";
    if (i % 7 == 0) text += "Really?! Yes… ";
  }
  auto whole = tok->Encode(text, "en");
  ASSERT_TRUE(whole.ok());
  for (size_t limit : {402u, 120u, 40u, 12u}) {
    auto pieces = SplitForXtts(*tok, text, "en", "eng_Latn", limit);
    ASSERT_TRUE(pieces.ok()) << pieces.status();
    ASSERT_GT(pieces->size(), 1u) << limit;
    size_t total_words = 0;
    std::string joined;
    for (const std::string& p : *pieces) {
      auto ids = tok->Encode(p, "en");
      ASSERT_TRUE(ids.ok());
      EXPECT_LT(ids->size(), limit) << "'" << p << "'";
      EXPECT_GT(ids->size(), 1u);
      joined += (joined.empty() ? "" : " ") + p;
      total_words += ids->size() - 1;
    }
    // No text lost or duplicated: re-joining the pieces gives the original (modulo whitespace).
    // (At 12 ids even one number word does not fit, so numbers are cut between digits.)
    if (limit >= 40) {
      EXPECT_EQ(*CleanText(joined, "en"), *CleanText(text, "en")) << limit;
    }
    if (limit >= 120) {
      // At sentence granularity, pieces end at sentence ends.
      for (const std::string& p : *pieces) {
        const char last = p.back();
        EXPECT_TRUE(last == '.' || last == '!' || last == '?' ||
                    p.substr(p.size() - 3) == "\xE2\x80\xA6")
            << "'" << p << "'";
      }
    }
  }
}

TEST(XttsSplitTest, AbbreviationsAndInitialsDoNotEndSentences) {
  auto tok =
      XttsTokenizer::FromFile(std::string(VOX_TINY_DIR) + "/checkpoints/xtts-tiny/vocab.json");
  ASSERT_TRUE(tok.ok());
  const std::string first = "A long first sentence is here.";
  const std::string second = "I met Mr. J. Smith today.";
  // A limit at which `first` plus "I met Mr." fits but the whole text does not: a splitter that
  // took "Mr." or "J." for a sentence end would cut there.
  const size_t limit = tok->Encode(first + " I met Mr. J.", "en")->size() + 1;
  ASSERT_GE(tok->Encode(first + " " + second, "en")->size(), limit);
  ASSERT_LT(tok->Encode(second, "en")->size(), limit);
  auto pieces = SplitForXtts(*tok, first + " " + second, "en", "eng_Latn", limit);
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  EXPECT_THAT(*pieces, ElementsAre(first, second));
}

// Pieces follow Translate's sentences in the text's language (sentence_splitter.h): "ggf." is a
// German abbreviation but ends an English sentence, and a line break ends a sentence.
TEST(XttsSplitTest, PiecesFollowTranslatesSentencesInTheTextsLanguage) {
  auto tok =
      XttsTokenizer::FromFile(std::string(VOX_TINY_DIR) + "/checkpoints/xtts-tiny/vocab.json");
  ASSERT_TRUE(tok.ok());
  const std::string first = "Ein langer erster Satz steht hier.";
  const std::string second = "Wir sehen uns ggf. Morgen wieder.";
  const size_t limit = tok->Encode(first + " Wir sehen uns ggf.", "de")->size() + 1;
  ASSERT_GE(tok->Encode(first + " " + second, "de")->size(), limit);
  ASSERT_LT(tok->Encode(second, "de")->size(), limit);
  auto german = SplitForXtts(*tok, first + " " + second, "de", "deu_Latn", limit);
  ASSERT_TRUE(german.ok()) << german.status();
  EXPECT_THAT(*german, ElementsAre(first, second));
  auto english = SplitForXtts(*tok, first + " " + second, "de", "eng_Latn", limit);
  ASSERT_TRUE(english.ok()) << english.status();
  EXPECT_THAT(*english, ElementsAre(first + " Wir sehen uns ggf.", "Morgen wieder."));

  const std::string line = "a heading without a stop";
  const size_t line_limit = tok->Encode(line, "en")->size() + 2;
  auto lines = SplitForXtts(*tok, line + "\nand the next line", "en", "eng_Latn", line_limit);
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_THAT(*lines, ElementsAre(line, "and the next line"));
}

TEST(XttsSplitTest, ShortTextIsOnePieceAndOverlongSentenceIsCut) {
  auto tok =
      XttsTokenizer::FromFile(std::string(VOX_TINY_DIR) + "/checkpoints/xtts-tiny/vocab.json");
  ASSERT_TRUE(tok.ok());
  auto one = SplitForXtts(*tok, "  Hello there. How are you?  ", "en", "eng_Latn", 402);
  ASSERT_TRUE(one.ok());
  EXPECT_THAT(*one, ElementsAre("Hello there. How are you?"));
  // One sentence with commas and semicolons, longer than the limit: cut at them.
  std::string longs;
  for (int i = 0; i < 30; ++i) longs += i % 2 ? "alpha beta gamma, " : "delta epsilon zeta; ";
  longs += "end.";
  auto cut = SplitForXtts(*tok, longs, "en", "eng_Latn", 60);
  ASSERT_TRUE(cut.ok()) << cut.status();
  ASSERT_GT(cut->size(), 2u);
  for (size_t i = 0; i + 1 < cut->size(); ++i) {
    EXPECT_TRUE((*cut)[i].back() == ',' || (*cut)[i].back() == ';') << (*cut)[i];
  }
  // No spaces, no punctuation: cut between characters as a last resort.
  auto chars = SplitForXtts(*tok, std::string(300, 'q'), "en", "eng_Latn", 20);
  ASSERT_TRUE(chars.ok()) << chars.status();
  size_t total = 0;
  for (const auto& p : *chars) {
    EXPECT_LT(tok->Encode(p, "en")->size(), 20u);
    total += p.size();
  }
  EXPECT_EQ(total, 300u);
  // Nothing speakable: no pieces. Too small a limit: an error naming it.
  EXPECT_TRUE(SplitForXtts(*tok, " \" ", "en", "eng_Latn", 402)->empty());
  auto tiny = SplitForXtts(*tok, "hello", "en", "eng_Latn", 1);
  ASSERT_FALSE(tiny.ok());
  EXPECT_THAT(std::string(tiny.status().message()), HasSubstr("max_ids 1"));
  EXPECT_FALSE(SplitForXtts(*tok, "hello", "ja", "jpn_Jpan", 402).ok());
  EXPECT_FALSE(SplitForXtts(*tok, "he\xFFllo", "en", "eng_Latn", 402).ok());
}

}  // namespace
}  // namespace vox
