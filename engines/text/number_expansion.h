#ifndef VOX_ENGINES_TEXT_NUMBER_EXPANSION_H_
#define VOX_ENGINES_TEXT_NUMBER_EXPANSION_H_

// A port of the parts of num2words 0.5.14 (the version coqui-tts 0.28.0 is pinned with in
// tools/reference/requirements.txt) that Coqui XTTS's cleaners call, for cs, de, en, es, fr, hu,
// it, ko, nl and pt, output-identical including its quirks (Spanish ordinals split at a float
// logarithm, "veintiún"/"doscientas libras" in currencies, capitalised German scale words, no
// Czech ordinals). tests/text_xtts compares against the real library on thousands of numbers.
// Pure functions, thread-safe. The port's parts: num2words_number.h (arithmetic),
// num2words_converter.h (Num2Word_Base), num2words_languages.h (de, en, es, fr, ko, nl, pt),
// num2words_italian.h, num2words_hungarian.h and num2words_czech.h (their own algorithms).

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vox::num2words {

// num2words(int(digits), lang=lang). `digits`: ASCII decimal digits, leading zeros allowed, any
// length. OutOfRange when the value is beyond the language's largest scale word (en: 10^306,
// es: 10^27, fr, de and nl: 10^606, ...), as num2words raises OverflowError; InvalidArgument for
// other languages or bad digits.
absl::StatusOr<std::string> Cardinal(std::string_view digits, std::string_view lang);

// num2words(int(digits), ordinal=True, lang=lang). OutOfRange where num2words raises besides the
// cardinal's overflow: es ordinals just below 10^18 whose float logarithm reaches 6 (KeyError
// in num2words).
absl::StatusOr<std::string> Ordinal(std::string_view digits, std::string_view lang);

// num2words(value, lang=lang) for a Python float (integral floats read as integers, others as
// "<int> point <digit> <digit> ..." using the shortest repr's decimals). OutOfRange for inf/NaN.
absl::StatusOr<std::string> Float(double value, std::string_view lang);

// num2words(value, to="currency", currency=currency, lang=lang) for a float `value`.
// currency: "USD", "GBP", "EUR". Unimplemented when the language has no such currency,
// OutOfRange when decimal quantization or the cardinal overflows (the reference raises).
absl::StatusOr<std::string> Currency(double value, std::string_view currency,
                                     std::string_view lang);

}  // namespace vox::num2words

#endif  // VOX_ENGINES_TEXT_NUMBER_EXPANSION_H_
