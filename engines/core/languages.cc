#include "engines/core/languages.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vox {
namespace {

struct LanguageRow {
  const char* nllb;
  const char* xtts;      // nullptr: not an XTTS v2 language
  const char* espeak;    // nullptr: no espeak-ng voice
  const char* apertium;  // nullptr: no Apertium code
};

// XTTS v2 languages: en es fr de it pt pl tr ru nl cs ar zh-cn ja hu ko hi (config.json
// "languages"). espeak-ng voice names from `espeak-ng --voices`. Apertium codes are ISO 639-3.
constexpr LanguageRow kLanguages[] = {
    {"eng_Latn", "en", "en-us", "eng"},
    {"spa_Latn", "es", "es", "spa"},
    {"fra_Latn", "fr", "fr", "fra"},
    {"deu_Latn", "de", "de", "deu"},
    {"ita_Latn", "it", "it", "ita"},
    {"por_Latn", "pt", "pt", "por"},
    {"pol_Latn", "pl", "pl", "pol"},
    {"tur_Latn", "tr", "tr", "tur"},
    {"rus_Cyrl", "ru", "ru", "rus"},
    {"nld_Latn", "nl", "nl", "nld"},
    {"ces_Latn", "cs", "cs", "ces"},
    {"arb_Arab", "ar", "ar", "ara"},
    {"zho_Hans", "zh-cn", "cmn", "zho"},
    {"jpn_Jpan", "ja", "ja", "jpn"},
    {"hun_Latn", "hu", "hu", "hun"},
    {"kor_Hang", "ko", "ko", "kor"},
    {"hin_Deva", "hi", "hi", "hin"},
    {"cat_Latn", nullptr, "ca", "cat"},
    {"glg_Latn", nullptr, "gl", "glg"},
    {"eus_Latn", nullptr, "eu", "eus"},
    {"swe_Latn", nullptr, "sv", "swe"},
    {"dan_Latn", nullptr, "da", "dan"},
    {"nob_Latn", nullptr, "nb", "nob"},
    {"fin_Latn", nullptr, "fi", "fin"},
    {"ell_Grek", nullptr, "el", "ell"},
    {"ron_Latn", nullptr, "ro", "ron"},
    {"ukr_Cyrl", nullptr, "uk", "ukr"},
    {"bul_Cyrl", nullptr, "bg", "bul"},
    {"hrv_Latn", nullptr, "hr", "hrv"},
    {"slk_Latn", nullptr, "sk", "slk"},
    {"slv_Latn", nullptr, "sl", "slv"},
    {"vie_Latn", nullptr, "vi", "vie"},
    {"ind_Latn", nullptr, "id", "ind"},
    {"heb_Hebr", nullptr, "he", "heb"},
    {"cym_Latn", nullptr, "cy", "cym"},
    {"oci_Latn", nullptr, "oc", "oci"},
    {"epo_Latn", nullptr, "eo", "epo"},
};

const char* Field(const LanguageRow& row, CodeFamily family) {
  switch (family) {
    case CodeFamily::kXtts: return row.xtts;
    case CodeFamily::kEspeak: return row.espeak;
    case CodeFamily::kApertium: return row.apertium;
  }
  return nullptr;
}

int EditDistance(const std::string& a, const std::string& b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::optional<std::string> EngineLanguageCode(CodeFamily family, const std::string& nllb_code) {
  for (const auto& row : kLanguages) {
    if (nllb_code == row.nllb) {
      const char* code = Field(row, family);
      if (code != nullptr) return std::string(code);
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<std::string> NllbFromEngineCode(CodeFamily family, const std::string& engine_code) {
  for (const auto& row : kLanguages) {
    const char* code = Field(row, family);
    if (code != nullptr && engine_code == code) return std::string(row.nllb);
  }
  return std::nullopt;
}

std::vector<std::string> LanguagesOf(CodeFamily family) {
  std::vector<std::string> out;
  for (const auto& row : kLanguages) {
    if (Field(row, family) != nullptr) out.emplace_back(row.nllb);
  }
  return out;
}

bool LooksLikeNllbCode(const std::string& code) {
  if (code.size() != 8 || code[3] != '_') return false;
  for (int i = 0; i < 3; ++i) {
    if (!std::islower(static_cast<unsigned char>(code[i]))) return false;
  }
  if (!std::isupper(static_cast<unsigned char>(code[4]))) return false;
  for (int i = 5; i < 8; ++i) {
    if (!std::islower(static_cast<unsigned char>(code[i]))) return false;
  }
  return true;
}

std::vector<std::string> ClosestCodes(const std::string& code,
                                      const std::vector<std::string>& candidates,
                                      int max_results) {
  const std::string lowered = absl::AsciiStrToLower(code);
  std::vector<std::pair<int, size_t>> scored;
  scored.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    scored.emplace_back(EditDistance(lowered, absl::AsciiStrToLower(candidates[i])), i);
  }
  std::stable_sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  // Only suggest reasonably close candidates: at most half the code's length away.
  const int limit = std::max<int>(2, static_cast<int>(code.size()) / 2);
  for (const auto& [distance, index] : scored) {
    if (static_cast<int>(out.size()) >= max_results || distance > limit) break;
    out.push_back(candidates[index]);
  }
  return out;
}

std::string UnknownValueMessage(const std::string& what, const std::string& value,
                                const std::vector<std::string>& allowed) {
  std::string message = absl::StrCat("unknown ", what, " '", value, "'");
  const auto close = ClosestCodes(value, allowed);
  if (!close.empty()) absl::StrAppend(&message, "; did you mean ", absl::StrJoin(close, ", "), "?");
  constexpr size_t kListed = 20;
  std::vector<std::string> listed(allowed.begin(),
                                  allowed.begin() + std::min(kListed, allowed.size()));
  absl::StrAppend(&message, " (", allowed.size(), " available: ", absl::StrJoin(listed, ", "),
                  allowed.size() > kListed ? ", ..." : "", ")");
  return message;
}

}  // namespace vox
