#ifndef VOX_ENGINES_TEXT_NUM2WORDS_CZECH_H_
#define VOX_ENGINES_TEXT_NUM2WORDS_CZECH_H_

// num2words 0.5.14's Czech (lang_CS.py): three-digit chunks with three plural forms of the scale
// words, decimals from Python's str(value) ("dvanáct celá pět", leading zeros as "nula"), no
// ordinals (num2words raises NotImplementedError) and, of the currencies Coqui asks for, EUR
// only. Internal to number_expansion.cc. Pure functions, thread-safe.

#include <string>

#include "absl/status/statusor.h"
#include "engines/text/num2words_number.h"

namespace vox::num2words::internal {

// Num2Word_CS.to_cardinal(int); OutOfRange from 10^33 (KeyError in num2words).
absl::StatusOr<std::string> CzechCardinal(const Nat& value);
// Num2Word_CS.to_cardinal(float); an error where str(value) is in exponent form.
absl::StatusOr<std::string> CzechFloat(double value);
// Num2Word_CS.to_currency(value, "EUR"): "<units> euro, <cents> cent|centy|centů"; Unimplemented
// for any other currency (num2words raises NotImplementedError).
absl::StatusOr<std::string> CzechCurrency(const Nat& units, int cents,
                                          const std::string& currency);

}  // namespace vox::num2words::internal

#endif  // VOX_ENGINES_TEXT_NUM2WORDS_CZECH_H_
