#ifndef VOX_ENGINES_CORE_LANGUAGES_H_
#define VOX_ENGINES_CORE_LANGUAGES_H_

#include <optional>
#include <string>
#include <vector>

namespace vox {

// The one table that maps the API's language codes (NLLB-200 codes such as "eng_Latn") to each
// engine family's own codes. Adding a language to an engine is a row here. The tables are
// constant: every function here is thread-safe.
enum class CodeFamily {
  kXtts,      // XTTS v2 text-language tags: "en", "es", "zh-cn", ...
  kEspeak,    // espeak-ng voice names: "en-us", "es", ...
  kApertium,  // Apertium ISO 639-3 codes used in pair names: "eng", "spa", "cat", ...
};

// Engine code for `nllb_code`, or nullopt when that family has no such language.
std::optional<std::string> EngineLanguageCode(CodeFamily family, const std::string& nllb_code);

// Inverse of EngineLanguageCode.
std::optional<std::string> NllbFromEngineCode(CodeFamily family, const std::string& engine_code);

// Every NLLB code that `family` has a mapping for, in table order.
std::vector<std::string> LanguagesOf(CodeFamily family);

// True for strings shaped like NLLB codes: three lowercase letters, '_', a four-letter script.
bool LooksLikeNllbCode(const std::string& code);

// Up to `max_results` entries of `candidates` closest to `code` (case-insensitive edit distance,
// ties in candidate order), for "unknown language 'eng_latn'; did you mean eng_Latn?" messages.
std::vector<std::string> ClosestCodes(const std::string& code,
                                      const std::vector<std::string>& candidates,
                                      int max_results = 3);

// "unknown <what> 'x'; did you mean a, b? (N available: a, b, c, ...)". Lists at most 20.
std::string UnknownValueMessage(const std::string& what, const std::string& value,
                                const std::vector<std::string>& allowed);

}  // namespace vox

#endif  // VOX_ENGINES_CORE_LANGUAGES_H_
