#ifndef VOX_ENGINES_TEXT_NUM2WORDS_HUNGARIAN_H_
#define VOX_ENGINES_TEXT_NUM2WORDS_HUNGARIAN_H_

// num2words 0.5.14's Hungarian (lang_HU.py), which has its own cardinal recursion (not
// Num2Word_Base's cards): "két" inside compounds, "-" after "ezer" above 2000 and after the
// scale words, decimals as "<int> egész <int> tized/század/ezred". Integral floats take the same
// recursion in doubles with the length of Python's str(value), which can recurse without end
// (RecursionError in num2words, an error here). Internal to number_expansion.cc. Pure functions,
// thread-safe.

#include <string>

#include "absl/status/statusor.h"
#include "engines/text/num2words_number.h"

namespace vox::num2words::internal {

// Num2Word_HU.to_cardinal(int); OutOfRange beyond its scale words (KeyError in num2words).
absl::StatusOr<std::string> HungarianCardinal(const Nat& value);
// Num2Word_HU.to_ordinal(int).
absl::StatusOr<std::string> HungarianOrdinal(const Nat& value);
// Num2Word_HU.to_cardinal(float).
absl::StatusOr<std::string> HungarianFloat(double value);

}  // namespace vox::num2words::internal

#endif  // VOX_ENGINES_TEXT_NUM2WORDS_HUNGARIAN_H_
