#include "engines/text/language_detector.h"

#include <fstream>
#include <map>
#include <string>

#include "gtest/gtest.h"

namespace vox {
namespace {

// The labelled set (how it was made: its header and docs/text.md): at least 95 % of the
// sentences must be detected as their language, and reliably (voxd refuses the others).
TEST(LanguageDetector, DetectsAtLeast95PercentOfTheLabelledSet) {
  std::ifstream in(VOX_SOURCE_DIR "/tests/text_translate/data/language_id_sentences.tsv");
  ASSERT_TRUE(in.good());
  std::map<std::string, int> per_language;
  int total = 0, correct = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const std::string want = line.substr(0, tab);
    const DetectedLanguage got = DetectLanguage(line.substr(tab + 1));
    ++per_language[want];
    ++total;
    if (got.reliable && got.nllb_code == want) {
      ++correct;
    } else {
      std::cout << "missed " << want << " (got " << got.nllb_code << " / " << got.cld2_code
                << ", " << got.confidence << "): " << line.substr(tab + 1) << "\n";
    }
  }
  EXPECT_EQ(per_language.size(), 20u);
  for (const auto& [code, n] : per_language) EXPECT_EQ(n, 10) << code;
  EXPECT_GE(correct * 100, total * 95) << correct << " of " << total;
  std::cout << correct << " of " << total << " detected correctly\n";
}

TEST(LanguageDetector, TextWithoutLanguageIsNotReliable) {
  for (const char* text : {"", "12345 !!! 678", "\xFF\xFE\xFD hello"}) {
    const DetectedLanguage d = DetectLanguage(text);
    EXPECT_FALSE(d.reliable) << text;
    EXPECT_TRUE(d.nllb_code.empty()) << text;
  }
}

TEST(LanguageDetector, ReportsScriptVariantsAsNllbCodes) {
  EXPECT_EQ(DetectLanguage("我们的邻居上个月买了一辆新车，孩子们正在花园里踢足球。").nllb_code,
            "zho_Hans");
  EXPECT_EQ(DetectLanguage("Ceci est une phrase assez longue pour être reconnue sans aucun "
                           "doute comme du français.")
                .nllb_code,
            "fra_Latn");
}

}  // namespace
}  // namespace vox
