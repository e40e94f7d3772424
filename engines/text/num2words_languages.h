#ifndef VOX_ENGINES_TEXT_NUM2WORDS_LANGUAGES_H_
#define VOX_ENGINES_TEXT_NUM2WORDS_LANGUAGES_H_

// The languages of the num2words port (number_expansion.h) built on Num2Word_Base: lang_EN.py,
// lang_ES.py, lang_FR.py, lang_DE.py, lang_NL.py, lang_PT.py and lang_KO.py as Converter
// subclasses, each with its card words, merge rule and ordinals.
// Internal to engines/text's number expansion.

#include <string_view>

#include "engines/text/num2words_converter.h"

namespace vox::num2words::internal {

// The converter for "de", "en", "es", "fr", "ko", "nl" or "pt"; nullptr for any other language.
// Each is built on first use and never freed; it is immutable, so sharing it between threads is
// safe.
const Converter* ConverterFor(std::string_view lang);

}  // namespace vox::num2words::internal

#endif  // VOX_ENGINES_TEXT_NUM2WORDS_LANGUAGES_H_
