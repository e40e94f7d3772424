// vox's num2words port and Coqui cleaning vs the real thing: the expectations are produced at
// test time by num2words 0.5.14 and coqui-tts 0.28.0's cleaners in the reference environment,
// through num2words_expectations.py; nothing expected is hard-coded here.
#include "engines/text/number_expansion.h"

#include <cstdio>
#include <string>

#include "engines/text/text_cleaner.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vox {
namespace {

nlohmann::json RunExpectations() {
  const std::string cmd =
      std::string(VOX_PYTHON) + " " + VOX_SOURCE_DIR + "/tests/text_xtts/num2words_expectations.py";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return nullptr;
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) return nullptr;
  return nlohmann::json::parse(out, nullptr, false);
}

const nlohmann::json& Expectations() {
  static const nlohmann::json* j = new nlohmann::json(RunExpectations());
  return *j;
}

TEST(Num2WordsTest, MatchesPythonNum2Words) {
  const nlohmann::json& j = Expectations();
  ASSERT_TRUE(j.is_object())
      << "num2words_expectations.py failed (is the reference environment installed?)";
  const auto& cases = j["cases"];
  ASSERT_GE(cases.size(), 600u);
  int compared = 0, errors_expected = 0;
  for (const auto& c : cases) {
    const std::string kind = c["kind"], lang = c["lang"], input = c["input"];
    absl::StatusOr<std::string> got;
    if (kind == "cardinal") {
      got = num2words::Cardinal(input, lang);
    } else if (kind == "ordinal") {
      got = num2words::Ordinal(input, lang);
    } else if (kind == "float") {
      got = num2words::Float(std::strtod(input.c_str(), nullptr), lang);
    } else {
      got = num2words::Currency(std::strtod(input.c_str(), nullptr),
                                c["currency"].get<std::string>(), lang);
    }
    const std::string what = kind + " " + lang + " " + input +
                             (c.contains("currency") ? " " + c["currency"].get<std::string>() : "");
    if (c.contains("error")) {
      ++errors_expected;
      EXPECT_FALSE(got.ok()) << what << ": num2words raised " << c["error"] << " but vox gave '"
                             << (got.ok() ? *got : "") << "'";
    } else {
      ASSERT_TRUE(got.ok()) << what << ": " << got.status();
      EXPECT_EQ(*got, c["expected"].get<std::string>()) << what;
    }
    ++compared;
  }
  EXPECT_GT(errors_expected, 5);  // the overflow / unsupported-currency paths were exercised
  RecordProperty("compared", compared);
}

TEST(Num2WordsTest, CleaningMatchesCoquiReference) {
  const nlohmann::json& j = Expectations();
  ASSERT_TRUE(j.is_object());
  const auto& clean = j["clean"];
  ASSERT_GE(clean.size(), 30u) << "tools/xtts_reference.py did not provide cleaning cases";
  for (const auto& c : clean) {
    const std::string lang = c["lang"], text = c["text"];
    auto got = CleanText(text, lang);
    if (c.contains("error")) {
      EXPECT_FALSE(got.ok()) << lang << " '" << text << "' should fail like the reference";
    } else {
      ASSERT_TRUE(got.ok()) << lang << " '" << text << "': " << got.status();
      EXPECT_EQ(*got, c["expected"].get<std::string>()) << lang << " '" << text << "'";
    }
  }
}

TEST(Num2WordsTest, RejectsOtherLanguagesAndBadDigits) {
  EXPECT_FALSE(num2words::Cardinal("12", "pl").ok());
  EXPECT_FALSE(num2words::Cardinal("12a", "it").ok());
  EXPECT_FALSE(num2words::Cardinal("12a", "en").ok());
  EXPECT_FALSE(num2words::Cardinal("", "en").ok());
}

}  // namespace
}  // namespace vox
