#ifndef VOX_ENGINES_TEXT_LANGUAGE_DETECTOR_H_
#define VOX_ENGINES_TEXT_LANGUAGE_DETECTOR_H_

// Source-language detection for Translate's source_language "auto", over Debian's libcld2
// (Compact Language Detector 2, the "full" table of 160+ languages). CLD2's languages are
// mapped to NLLB codes by one table in language_detector.cc; a language CLD2 knows but NLLB
// does not comes back with an empty nllb_code.
//
// Pure function over CLD2's static tables; thread-safe.

#include <string>
#include <string_view>

namespace vox {

struct DetectedLanguage {
  std::string nllb_code;   // e.g. "fra_Latn"; empty when unknown or not an NLLB language
  std::string cld2_code;   // CLD2's own code ("fr", "zh-Hant", "un" for unknown)
  double confidence = 0;   // share of the text's letters CLD2 gives to that language, 0..1
  bool reliable = false;   // CLD2's is_reliable and confidence >= kMinDetectionConfidence
};

// Below this share of the text the detection is not trusted (voxd refuses the text).
inline constexpr double kMinDetectionConfidence = 0.5;

// Detects the language of plain UTF-8 text. Invalid UTF-8 gives an unreliable, unknown result.
DetectedLanguage DetectLanguage(std::string_view text);

}  // namespace vox

#endif  // VOX_ENGINES_TEXT_LANGUAGE_DETECTOR_H_
