#ifndef VOX_ENGINES_TEXT_HANGUL_ROMANIZE_H_
#define VOX_ENGINES_TEXT_HANGUL_ROMANIZE_H_

// Coqui XTTS's Korean romanisation: ko_speech_tools.hangul_romanize (0.1.0, adapted from
// youknowone/hangul-romanize), the "academic" Revised Romanization it applies to Korean text
// after multilingual_cleaners. Pure function, thread-safe.

#include <string>

namespace vox {

// Each precomposed Hangul syllable (U+AC00..U+D7A3) becomes initial + vowel + final in Revised
// Romanization, preceded by "-" when it follows a syllable and either has no initial consonant
// or the previous final + this initial could be split two ways ("kk" = k|k or kk|""); any other
// code point is kept and resets the "previous syllable".
std::u32string HangulRomanize(const std::u32string& text);

}  // namespace vox

#endif  // VOX_ENGINES_TEXT_HANGUL_ROMANIZE_H_
