#ifndef VOX_ENGINES_TEXT_TEXT_CLEANER_H_
#define VOX_ENGINES_TEXT_TEXT_CLEANER_H_

// Coqui XTTS v2's text cleaning (coqui-tts 0.28.0 TTS/tts/layers/xtts/tokenizer.py
// VoiceBpeTokenizer.preprocess_text, preceded by Xtts.inference's strip().lower()), reproduced
// exactly for the languages listed below.
// Pure functions, thread-safe, no global state. docs/text.md has the per-language table.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vox {

// XTTS codes CleanText accepts, in a fixed order.
const std::vector<std::string>& XttsCleanerLanguages();

// True when `xtts_lang` gets number expansion (num2words-equivalent): "cs", "de", "en", "es",
// "fr", "hu", "it", "ko", "nl", "pt".
// For the other accepted languages CleanText refuses text that has ASCII digits (after Coqui's
// thousands-separator step), since Coqui would read them out with num2words.
bool XttsExpandsNumbers(std::string_view xtts_lang);

// strip → lowercase → remove '"' → numbers (currency £ $ €, thousands separators, decimals,
// ordinals, integers; only where XttsExpandsNumbers) → abbreviations → symbols (& @ % # $ £ °)
// → collapse whitespace (→ HangulRomanize for "ko"). Input must be valid UTF-8. Errors
// (InvalidArgument): invalid UTF-8 (names the byte offset), unsupported language (lists
// XttsCleanerLanguages(); zh and ja are refused because Coqui romanises them with pypinyin /
// cutlet, which vox does not implement), digits in a language without
// number expansion, a number too large for num2words to read out (the reference raises there
// too).
absl::StatusOr<std::string> CleanText(std::string_view text, std::string_view xtts_lang);

}  // namespace vox

#endif  // VOX_ENGINES_TEXT_TEXT_CLEANER_H_
