#include "engines/text/number_expansion.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "engines/text/num2words_converter.h"
#include "engines/text/num2words_czech.h"
#include "engines/text/num2words_hungarian.h"
#include "engines/text/num2words_italian.h"
#include "engines/text/num2words_languages.h"
#include "engines/text/num2words_number.h"

// The entry points: argument checks, then the language's Converter (num2words_languages.h) does
// the reading. Currency forms live here, as in num2words' per-language CURRENCY_FORMS tables.

namespace vox::num2words {
namespace {

using internal::Add;
using internal::CardinalOfDouble;
using internal::Converter;
using internal::ConverterFor;
using internal::Eq;
using internal::FromInt;
using internal::Nat;
using internal::Normalize;

absl::Status BadLang(std::string_view lang) {
  return absl::InvalidArgumentError(
      absl::StrCat("number expansion: unsupported language '", std::string(lang),
                   "' (supported: cs, en, es, fr, de, hu, it, ko, nl, pt)"));
}

absl::StatusOr<Nat> ParseDigits(std::string_view digits) {
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a decimal integer: '", std::string(digits), "'"));
  }
  return Normalize(digits);
}

// decimal's Decimal(value).quantize(Decimal('.01'), ROUND_HALF_UP) then divmod(., 1):
// (integer, cents); OutOfRange where the 28-digit context would raise InvalidOperation.
absl::StatusOr<std::pair<Nat, int>> QuantizeCents(double value) {
  if (!std::isfinite(value)) return absl::OutOfRangeError("amount is not finite");
  // 60 decimals are exact for every double with a fractional part >= 2^-8 and, for smaller ones,
  // printf's rounding at the 60th decimal cannot reach the 3rd (that would need 57 nines).
  std::vector<char> buf(400);
  std::snprintf(buf.data(), buf.size(), "%.60f", std::fabs(value));
  const std::string s(buf.data());
  const size_t dot = s.find('.');
  Nat integer = Normalize(s.substr(0, dot));
  int cents = (s[dot + 1] - '0') * 10 + (s[dot + 2] - '0');
  if (s[dot + 3] >= '5') ++cents;
  if (cents == 100) {
    cents = 0;
    integer = Add(integer, "1");
  }
  const Nat coefficient = Normalize(integer + (cents < 10 ? "0" : "") + std::to_string(cents));
  if (coefficient.size() > 28) {
    return absl::OutOfRangeError("amount has more than 28 significant digits");
  }
  return std::make_pair(integer, cents);
}

}  // namespace

absl::StatusOr<std::string> Cardinal(std::string_view digits, std::string_view lang) {
  if (lang == "it" || lang == "hu" || lang == "cs") {
    auto n = ParseDigits(digits);
    if (!n.ok()) return n.status();
    return lang == "it"   ? internal::ItalianCardinal(*n)
           : lang == "hu" ? internal::HungarianCardinal(*n)
                          : internal::CzechCardinal(*n);
  }
  const Converter* conv = ConverterFor(lang);
  if (conv == nullptr) return BadLang(lang);
  auto n = ParseDigits(digits);
  if (!n.ok()) return n.status();
  return conv->ToCardinal(*n);
}

absl::StatusOr<std::string> Ordinal(std::string_view digits, std::string_view lang) {
  if (lang == "cs") {  // Num2Word_CS.to_ordinal raises NotImplementedError
    return absl::UnimplementedError("num2words has no Czech ordinals");
  }
  if (lang == "it" || lang == "hu") {
    auto n = ParseDigits(digits);
    if (!n.ok()) return n.status();
    return lang == "it" ? internal::ItalianOrdinal(*n) : internal::HungarianOrdinal(*n);
  }
  const Converter* conv = ConverterFor(lang);
  if (conv == nullptr) return BadLang(lang);
  auto n = ParseDigits(digits);
  if (!n.ok()) return n.status();
  return conv->ToOrdinal(*n);
}

absl::StatusOr<std::string> Float(double value, std::string_view lang) {
  if (lang == "it" || lang == "hu" || lang == "cs") {
    if (value < 0) return absl::InvalidArgumentError("negative numbers are not expanded");
    return lang == "it"   ? internal::ItalianFloat(value)
           : lang == "hu" ? internal::HungarianFloat(value)
                          : internal::CzechFloat(value);
  }
  const Converter* conv = ConverterFor(lang);
  if (conv == nullptr) return BadLang(lang);
  if (value < 0) return absl::InvalidArgumentError("negative numbers are not expanded");
  return CardinalOfDouble(*conv, value);
}

absl::StatusOr<std::string> Currency(double value, std::string_view currency,
                                     std::string_view lang) {
  const Converter* conv = ConverterFor(lang);
  if (conv == nullptr && lang != "it" && lang != "hu" && lang != "cs") return BadLang(lang);
  if (value < 0) return absl::InvalidArgumentError("negative amounts are not expanded");
  if (lang == "cs") {
    auto parts = QuantizeCents(value);
    if (!parts.ok()) return parts.status();
    return internal::CzechCurrency(parts->first, parts->second, std::string(currency));
  }
  if (lang == "ko") {
    // Num2Word_KO.to_currency: USD only of Coqui's three (KRW and JPY aside); no separator, the
    // units' spaces removed: "이십달러 십오센트".
    auto parts = QuantizeCents(value);
    if (!parts.ok()) return parts.status();
    if (currency != "USD") {
      return absl::UnimplementedError(
          absl::StrCat("num2words has no Korean currency ", std::string(currency)));
    }
    auto lt = conv->ToCardinal(parts->first);
    if (!lt.ok()) return lt.status();
    auto ct = conv->ToCardinal(FromInt(parts->second));
    if (!ct.ok()) return ct.status();
    return absl::StrCat(absl::StrReplaceAll(*lt, {{" ", ""}}), "달러 ", *ct, "센트");
  }
  auto cardinal = [&](const Nat& n) {
    return lang == "it"   ? internal::ItalianCardinal(n)
           : lang == "hu" ? internal::HungarianCardinal(n)
                          : conv->ToCardinal(n);
  };
  auto parts = QuantizeCents(value);
  if (!parts.ok()) return parts.status();
  const auto& [left, right] = *parts;
  // num2words' CURRENCY_FORMS (the currencies Coqui's cleaners use) and CURRENCY_SEPARATOR.
  struct Forms {
    const char* code;
    const char* one;
    const char* many;
    const char* cent_one;
    const char* cent_many;
  };
  struct LangForms {
    const char* lang;
    const char* separator;
    std::vector<Forms> forms;
  };
  static const auto* table = new std::vector<LangForms>{
      {"en", ",",
       {{"USD", "dollar", "dollars", "cent", "cents"},
        {"EUR", "euro", "euro", "cent", "cents"},
        {"GBP", "pound sterling", "pounds sterling", "penny", "pence"}}},
      {"de", " und",
       {{"USD", "Dollar", "Dollar", "Cent", "Cent"},
        {"EUR", "Euro", "Euro", "Cent", "Cent"},
        {"GBP", "Pfund", "Pfund", "Penny", "Pence"}}},
      {"fr", " et",
       {{"USD", "dollar", "dollars", "cent", "cents"},
        {"EUR", "euro", "euros", "centime", "centimes"},
        {"GBP", "livre", "livres", "penny", "pence"}}},
      {"es", " con",
       {{"USD", "dólar", "dólares", "centavo", "centavos"},
        {"EUR", "euro", "euros", "céntimo", "céntimos"},
        {"GBP", "libra", "libras", "penique", "peniques"}}},
      // Num2Word_NL.pluralize always takes the first form.
      {"nl", ",",
       {{"USD", "dollar", "dollar", "cent", "cent"},
        {"EUR", "euro", "euro", "cent", "cent"},
        {"GBP", "pond", "pond", "penny", "penny"}}},
      {"pt", " e",
       {{"USD", "dólar", "dólares", "cêntimo", "cêntimos"},
        {"EUR", "euro", "euros", "cêntimo", "cêntimos"},
        {"GBP", "libra", "libras", "péni", "pence"}}},
      {"it", " e",
       {{"USD", "dollaro", "dollari", "centesimo", "centesimi"},
        {"EUR", "euro", "euro", "centesimo", "centesimi"},
        {"GBP", "sterlina", "sterline", "penny", "penny"}}},
      // Hungarian has no CURRENCY_FORMS of its own: Num2Word_EU's.
      {"hu", ",",
       {{"USD", "dollar", "dollars", "cent", "cents"},
        {"EUR", "euro", "euro", "cent", "cents"},
        {"GBP", "pound sterling", "pounds sterling", "penny", "pence"}}}};
  const Forms* f = nullptr;
  std::string separator;
  std::vector<std::string> known;
  for (const LangForms& l : *table) {
    if (lang != l.lang) continue;
    separator = l.separator;
    for (const Forms& forms : l.forms) {
      if (currency == forms.code) f = &forms;
      known.push_back(forms.code);
    }
  }
  if (f == nullptr) {
    return absl::UnimplementedError(absl::StrCat("number expansion: no currency ",
                                                 std::string(currency), " for ", std::string(lang),
                                                 " (supported: ", absl::StrJoin(known, ", "), ")"));
  }
  auto lt = cardinal(left);
  if (!lt.ok()) return lt.status();
  auto ct = cardinal(FromInt(right));
  if (!ct.ok()) return ct.status();
  std::string units = absl::StrCat(*lt, " ", Eq(left, 1) ? f->one : f->many);
  std::string cents = absl::StrCat(*ct, " ", right == 1 ? f->cent_one : f->cent_many);
  if (lang == "es") {
    // Num2Word_ES.to_currency (0.5.14): feminine units for GBP ("una libra", "doscientas
    // libras"), "veintiún", then "uno" → "un"; the cents part (peniques, céntimos, centavos) is
    // masculine.
    if (currency == "GBP") {
      units = absl::StrReplaceAll(units, {{"uno", "una"}});
      units = absl::StrReplaceAll(units, {{"cientos", "cientas"}});
    }
    for (std::string* part : {&units, &cents}) {
      *part = absl::StrReplaceAll(*part, {{"veintiuno", "veintiún"}});
      *part = absl::StrReplaceAll(*part, {{"uno", "un"}});
    }
  }
  std::string out = absl::StrCat(units, separator, " ", cents);
  if (lang == "pt") {
    // Num2Word_PT.to_currency: "milhões euros" → "milhões de euros" (the first occurrence of the
    // scale word, when it stands before the plural currency name), and no "e zero cêntimos".
    for (const std::string ext : {"milhão", "milhões", "bilião", "biliões", "trilião",
                                  "triliões"}) {
      if (out.find(ext + " " + f->many) == std::string::npos) continue;
      out.replace(out.find(ext), ext.size(), ext + " de");
    }
    out = absl::StrReplaceAll(out, {{" e zero cêntimos", ""}});
  }
  if (lang == "it") {
    // Num2Word_IT.to_currency: "uno sterline" → "una ..." (first word, GBP), then "uno" → "un".
    if (currency == "GBP" && out.rfind("uno ", 0) == 0) out = "una" + out.substr(3);
    out = absl::StrReplaceAll(out, {{"uno", "un"}});
  }
  if (lang == "de") out = absl::StrReplaceAll(out, {{"eins ", "ein "}});
  return out;
}

}  // namespace vox::num2words
