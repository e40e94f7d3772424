#ifndef VOX_ENGINES_TEXT_SSML_SAY_AS_H_
#define VOX_ENGINES_TEXT_SSML_SAY_AS_H_

// Spells out <say-as> text as words, for engines that read plain text (XTTS) and for the
// interpretations espeak-ng lacks natively (cardinal, ordinal, date, telephone). Pure functions,
// thread-safe.

#include <string>

#include "engines/text/ssml_parser.h"

namespace vox {

// The words for `segment` (a kText segment) in `nllb_language`:
//   characters  each character apart: "AB1" -> "A B 1"
//   cardinal    the number's digits (separators ',', '.', ' ' and '_' dropped) as num2words reads
//               them: "1,234" -> "one thousand, two hundred and thirty-four"
//   ordinal     the same with ordinal=True, after dropping a suffix ("3rd", "3.") -> "third"
//   date        "Y-M-D" or "M/D/Y" (format ymd, mdy, dmy; default: ymd when the first field
//               has 4 digits, else mdy): English "March third, two thousand and twenty-six";
//               other languages the day, month and year as numbers in words
//   telephone   digits one by one, groups (split at '-', ' ', '.', ')') joined by ", "
// Numbers use the num2words port (engines/text/number_expansion.h): de, en, es, fr, hu, it, ko,
// nl, pt, cs; in any other language, or when the text does not fit the interpretation, the text is
// returned unchanged (the SSML specification lets a processor speak such content as written).
// Any other interpret-as value: the text unchanged.
std::string ExpandSayAs(const SsmlSegment& segment, const std::string& nllb_language);

}  // namespace vox

#endif  // VOX_ENGINES_TEXT_SSML_SAY_AS_H_
