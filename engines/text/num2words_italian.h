#ifndef VOX_ENGINES_TEXT_NUM2WORDS_ITALIAN_H_
#define VOX_ENGINES_TEXT_NUM2WORDS_ITALIAN_H_

// num2words 0.5.14's Italian (lang_IT.py), which does not use Num2Word_Base's card algorithm:
// its own tens/hundreds/thousands/"-ilione"/"-iliardo" rules, phonetic contractions
// ("ventotto") and the accent pass on "tre" ("ventitré", undone when the word grows:
// "ventitremila"), applied at every recursion level as num2words does. Internal to
// number_expansion.cc. Pure functions, thread-safe.

#include <string>

#include "absl/status/statusor.h"
#include "engines/text/num2words_number.h"

namespace vox::num2words::internal {

// Num2Word_IT.to_cardinal(int). Unimplemented for 66 digits or more (NotImplementedError).
absl::StatusOr<std::string> ItalianCardinal(const Nat& value);
// Num2Word_IT.to_ordinal(int).
absl::StatusOr<std::string> ItalianOrdinal(const Nat& value);
// Num2Word_IT.to_cardinal(float): "<int> virgola <digit> ...", the digits of Python's str(value);
// an error where that str is in exponent form (num2words raises IndexError/ValueError there).
absl::StatusOr<std::string> ItalianFloat(double value);

}  // namespace vox::num2words::internal

#endif  // VOX_ENGINES_TEXT_NUM2WORDS_ITALIAN_H_
