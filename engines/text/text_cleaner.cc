#include "engines/text/text_cleaner.h"

#include <cstdlib>
#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engines/text/hangul_romanize.h"
#include "engines/text/number_expansion.h"
#include "engines/text/unicode.h"

namespace vox {
namespace {

using unicode::IsPyDigit;
using unicode::IsPySpace;
using unicode::IsPyWord;

std::u32string U32(std::string_view utf8) {
  auto d = unicode::DecodeUtf8(utf8);
  return d.ok() ? *d : std::u32string();  // only used on the literal tables below
}

struct Abbreviation {
  const char* pattern;
  const char* replacement;
  bool trailing_boundary = false;  // `\b` after the pattern instead of `\.` (Russian entries)
};
struct Symbol {
  const char* symbol;
  const char* replacement;
};
struct LanguageTables {
  const char* lang;
  std::vector<Abbreviation> abbreviations;
  std::vector<Symbol> symbols;
};

// Coqui TTS/tts/layers/xtts/tokenizer.py `_abbreviations` and `_symbols_multilingual`, in order.
const std::vector<LanguageTables>& Tables() {
  static const auto* tables = new std::vector<LanguageTables>{
      {"en",
       {{"mrs", "misess"}, {"mr", "mister"}, {"dr", "doctor"}, {"st", "saint"},
        {"co", "company"}, {"jr", "junior"}, {"maj", "major"}, {"gen", "general"},
        {"drs", "doctors"}, {"rev", "reverend"}, {"lt", "lieutenant"}, {"hon", "honorable"},
        {"sgt", "sergeant"}, {"capt", "captain"}, {"esq", "esquire"}, {"ltd", "limited"},
        {"col", "colonel"}, {"ft", "fort"}},
       {{"&", " and "}, {"@", " at "}, {"%", " percent "}, {"#", " hash "}, {"$", " dollar "},
        {"£", " pound "}, {"°", " degree "}}},
      {"es",
       {{"sra", "señora"}, {"sr", "señor"}, {"dr", "doctor"}, {"dra", "doctora"},
        {"st", "santo"}, {"co", "compañía"}, {"jr", "junior"}, {"ltd", "limitada"}},
       {{"&", " y "}, {"@", " arroba "}, {"%", " por ciento "}, {"#", " numeral "},
        {"$", " dolar "}, {"£", " libra "}, {"°", " grados "}}},
      {"fr",
       {{"mme", "madame"}, {"mr", "monsieur"}, {"dr", "docteur"}, {"st", "saint"},
        {"co", "compagnie"}, {"jr", "junior"}, {"ltd", "limitée"}},
       {{"&", " et "}, {"@", " arobase "}, {"%", " pour cent "}, {"#", " dièse "},
        {"$", " dollar "}, {"£", " livre "}, {"°", " degrés "}}},
      {"de",
       {{"fr", "frau"}, {"dr", "doktor"}, {"st", "sankt"}, {"co", "firma"}, {"jr", "junior"}},
       {{"&", " und "}, {"@", " at "}, {"%", " prozent "}, {"#", " raute "}, {"$", " dollar "},
        {"£", " pfund "}, {"°", " grad "}}},
      {"pt",
       {{"sra", "senhora"}, {"sr", "senhor"}, {"dr", "doutor"}, {"dra", "doutora"},
        {"st", "santo"}, {"co", "companhia"}, {"jr", "júnior"}, {"ltd", "limitada"}},
       {{"&", " e "}, {"@", " arroba "}, {"%", " por cento "}, {"#", " cardinal "},
        {"$", " dólar "}, {"£", " libra "}, {"°", " graus "}}},
      {"it",
       {{"sig", "signore"}, {"dr", "dottore"}, {"st", "santo"}, {"co", "compagnia"},
        {"jr", "junior"}, {"ltd", "limitata"}},
       {{"&", " e "}, {"@", " chiocciola "}, {"%", " per cento "}, {"#", " cancelletto "},
        {"$", " dollaro "}, {"£", " sterlina "}, {"°", " gradi "}}},
      {"pl",
       {{"p", "pani"}, {"m", "pan"}, {"dr", "doktor"}, {"sw", "święty"}, {"jr", "junior"}},
       {{"&", " i "}, {"@", " małpa "}, {"%", " procent "}, {"#", " krzyżyk "},
        {"$", " dolar "}, {"£", " funt "}, {"°", " stopnie "}}},
      {"ar",
       {},
       {{"&", " و "}, {"@", " على "}, {"%", " في المئة "}, {"#", " رقم "}, {"$", " دولار "},
        {"£", " جنيه "}, {"°", " درجة "}}},
      {"cs",
       {{"dr", "doktor"}, {"ing", "inženýr"}, {"p", "pan"}},
       {{"&", " a "}, {"@", " na "}, {"%", " procento "}, {"#", " křížek "}, {"$", " dolar "},
        {"£", " libra "}, {"°", " stupně "}}},
      {"ru",
       {{"г-жа", "госпожа", true}, {"г-н", "господин", true}, {"д-р", "доктор", true}},
       {{"&", " и "}, {"@", " собака "}, {"%", " процентов "}, {"#", " номер "},
        {"$", " доллар "}, {"£", " фунт "}, {"°", " градус "}}},
      {"nl",
       {{"dhr", "de heer"}, {"mevr", "mevrouw"}, {"dr", "dokter"}, {"jhr", "jonkheer"}},
       {{"&", " en "}, {"@", " bij "}, {"%", " procent "}, {"#", " hekje "}, {"$", " dollar "},
        {"£", " pond "}, {"°", " graden "}}},
      {"tr",
       {{"b", "bay"}, {"byk", "büyük"}, {"dr", "doktor"}},
       {{"&", " ve "}, {"@", " at "}, {"%", " yüzde "}, {"#", " diyez "}, {"$", " dolar "},
        {"£", " sterlin "}, {"°", " derece "}}},
      {"hu",
       {{"dr", "doktor"}, {"b", "bácsi"}, {"nőv", "nővér"}},
       {{"&", " és "}, {"@", " kukac "}, {"%", " százalék "}, {"#", " kettőskereszt "},
        {"$", " dollár "}, {"£", " font "}, {"°", " fok "}}},
      {"ko",
       {},
       {{"&", " 그리고 "}, {"@", " 에 "}, {"%", " 퍼센트 "}, {"#", " 번호 "}, {"$", " 달러 "},
        {"£", " 파운드 "}, {"°", " 도 "}}},
      {"hi",
       {},
       {{"&", " और "}, {"@", " ऐट दी रेट "}, {"%", " प्रतिशत "}, {"#", " हैश "},
        {"$", " डॉलर "}, {"£", " पाउंड "}, {"°", " डिग्री "}}},
  };
  return *tables;
}

const LanguageTables* TablesFor(std::string_view lang) {
  for (const LanguageTables& t : Tables()) {
    if (lang == t.lang) return &t;
  }
  return nullptr;
}

// ---- Python `re` emulation for the handful of patterns the cleaners use. ----

bool WordAt(const std::u32string& t, long i) {
  return i >= 0 && i < static_cast<long>(t.size()) && IsPyWord(t[i]);
}
bool BoundaryAt(const std::u32string& t, size_t p) {
  return WordAt(t, static_cast<long>(p) - 1) != WordAt(t, static_cast<long>(p));
}
bool Ascii09(char32_t c) { return c >= '0' && c <= '9'; }

// A match finder: returns the end of a match starting at p, or npos.
using Matcher = std::function<size_t(const std::u32string&, size_t)>;
using Replacer = std::function<absl::StatusOr<std::u32string>(std::u32string_view)>;

// re.sub: leftmost matches, non-overlapping, left to right. A failing replacement fails the
// whole substitution (as an exception out of re.sub does).
absl::StatusOr<std::u32string> Sub(const std::u32string& t, const Matcher& match,
                                   const Replacer& replace) {
  std::u32string out;
  size_t copied = 0;
  size_t p = 0;
  while (p < t.size()) {
    const size_t end = match(t, p);
    if (end == std::u32string::npos || end == p) {
      ++p;
      continue;
    }
    out.append(t, copied, p - copied);
    auto r = replace(std::u32string_view(t).substr(p, end - p));
    if (!r.ok()) return r.status();
    out += *r;
    copied = p = end;
  }
  out.append(t, copied, std::u32string::npos);
  return out;
}

// `\b\d{1,3}(S\d{3})*(T\d+)?\b` with S = ',' T = '.' (comma_number_re) or S = any char but
// '\n' and T = ',' (dot_number_re: its '.' is unescaped), with Python's backtracking order.
size_t MatchGroupedNumber(const std::u32string& t, size_t p, bool dot_version) {
  const size_t n = t.size();
  if (!IsPyDigit(t[p]) || !BoundaryAt(t, p)) return std::u32string::npos;
  auto sep_ok = [&](size_t i) {
    return i < n && (dot_version ? t[i] != '\n' : t[i] == ',');
  };
  const char32_t sep2 = dot_version ? ',' : '.';
  auto digits_from = [&](size_t i, size_t at_most) {
    size_t k = 0;
    while (i + k < n && k < at_most && IsPyDigit(t[i + k])) ++k;
    return k;
  };
  const size_t lead = digits_from(p, 3);
  for (size_t k = lead; k >= 1; --k) {
    std::vector<size_t> rep_ends = {p + k};
    while (true) {
      const size_t q = rep_ends.back();
      if (sep_ok(q) && digits_from(q + 1, 3) == 3) {
        rep_ends.push_back(q + 4);
      } else {
        break;
      }
    }
    for (size_t r = rep_ends.size(); r-- > 0;) {
      const size_t q = rep_ends[r];
      if (q < n && t[q] == sep2) {
        const size_t m = digits_from(q + 1, n);
        for (size_t len = m; len >= 1; --len) {
          if (BoundaryAt(t, q + 1 + len)) return q + 1 + len;
        }
      }
      if (BoundaryAt(t, q)) return q;
    }
  }
  return std::u32string::npos;
}

bool CurrencyClass(char32_t c) { return Ascii09(c) || c == '.' || c == ','; }

// ((S[0-9\.\,]*[0-9]+)|([0-9\.\,]*[0-9]+S)) for the currency symbol S.
size_t MatchCurrency(const std::u32string& t, size_t p, char32_t sym) {
  const size_t n = t.size();
  if (t[p] == sym) {
    size_t q = p + 1;
    size_t last_digit_end = std::u32string::npos;
    while (q < n && CurrencyClass(t[q])) {
      if (Ascii09(t[q])) last_digit_end = q + 1;
      ++q;
    }
    return last_digit_end;
  }
  if (!CurrencyClass(t[p])) return std::u32string::npos;
  size_t q = p;
  while (q < n && CurrencyClass(t[q])) ++q;
  if (q < n && t[q] == sym && Ascii09(t[q - 1])) return q + 1;
  return std::u32string::npos;
}

// Python float() of an ASCII decimal string without sign/exponent; nullopt → ValueError.
std::optional<double> PyFloat(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789.") != std::string::npos) return std::nullopt;
  if (std::count(s.begin(), s.end(), '.') > 1 || s == ".") return std::nullopt;
  return std::strtod(s.c_str(), nullptr);
}

absl::Status NumberError(std::u32string_view what, const absl::Status& s) {
  return absl::InvalidArgumentError(absl::StrCat(
      "cannot read out the number '", unicode::EncodeUtf8(what), "': ", s.message()));
}

// Coqui's first number step, for every language: `_comma_number_re` (en, ru: drop ',') or
// `_dot_number_re` (the others: drop '.') over Python `\d` (any Unicode decimal digit).
std::u32string RemoveThousandsSeparators(const std::u32string& t, const std::string& lang) {
  const bool comma_lang = lang == "en" || lang == "ru";
  auto grouped = Sub(
      t, [&](const std::u32string& s, size_t p) { return MatchGroupedNumber(s, p, !comma_lang); },
      [&](std::u32string_view m) -> absl::StatusOr<std::u32string> {
        std::u32string r;
        for (char32_t c : m) {
          if (c != (comma_lang ? U',' : U'.')) r.push_back(c);
        }
        return r;
      });
  return *grouped;  // the replacement cannot fail
}

absl::StatusOr<std::u32string> ExpandNumbers(std::u32string t, const std::string& lang) {
  // 1. Thousands separators.
  t = RemoveThousandsSeparators(t, lang);

  // 2. Currencies, in Coqui's order; any failure (num2words raising) skips the rest silently,
  // like its bare `except: pass`.
  const std::string and_equivalent = lang == "es"   ? " con "
                                     : lang == "fr" ? " et "
                                     : lang == "de" ? " und "
                                     : lang == "pt" ? " e "
                                     : lang == "it" ? " e "
                                                    : ", ";
  for (const auto& [code, sym] : {std::pair<const char*, char32_t>{"GBP", U'£'},
                                  {"USD", U'$'}, {"EUR", U'€'}}) {
    const std::string currency = code;
    auto r = Sub(
        t, [sym = sym](const std::u32string& s, size_t p) { return MatchCurrency(s, p, sym); },
        [&](std::u32string_view m) -> absl::StatusOr<std::u32string> {
          std::string amount;
          for (char32_t c : m) {
            const char32_t d = c == ',' ? U'.' : c;
            if (d == '.' || Ascii09(d)) amount.push_back(static_cast<char>(d));
          }
          const std::optional<double> v = PyFloat(amount);
          if (!v) return absl::InvalidArgumentError("not a float");
          auto words = num2words::Currency(*v, currency, lang);
          if (!words.ok()) return words.status();
          std::string full = *words;
          if (std::trunc(*v) == *v) {
            const size_t last_and = full.rfind(and_equivalent);
            if (last_and != std::string::npos) full.resize(last_and);
          }
          return U32(full);
        });
    if (!r.ok()) break;
    t = std::move(*r);
  }

  // 3. Decimals `([0-9]+[.,][0-9]+)`.
  auto decimals = Sub(
      t,
      [](const std::u32string& s, size_t p) -> size_t {
        size_t q = p;
        while (q < s.size() && Ascii09(s[q])) ++q;
        if (q == p || q + 1 >= s.size() || (s[q] != '.' && s[q] != ',') || !Ascii09(s[q + 1])) {
          return std::u32string::npos;
        }
        q += 1;
        while (q < s.size() && Ascii09(s[q])) ++q;
        return q;
      },
      [&](std::u32string_view m) -> absl::StatusOr<std::u32string> {
        std::string amount;
        for (char32_t c : m) amount.push_back(c == ',' ? '.' : static_cast<char>(c));
        auto words = num2words::Float(std::strtod(amount.c_str(), nullptr), lang);
        if (!words.ok()) return NumberError(m, words.status());
        return U32(*words);
      });
  if (!decimals.ok()) return decimals.status();
  t = std::move(*decimals);

  // 4. Ordinals: en `([0-9]+)(st|nd|rd|th)`, es `([0-9]+)(º|ª|er|o|a|os|as)`,
  // fr `([0-9]+)(º|ª|er|re|e|ème)`, de `([0-9]+)(st|nd|rd|th|º|ª|\.(?=\s|$))`,
  // nl `([0-9]+)(de|ste|e)`, pt `([0-9]+)(º|ª|o|a|os|as)`, it `([0-9]+)(º|°|ª|o|a|i|e)`,
  // hu `([0-9]+)(\.|adik|edik|odik|edik|ödik|ödike|ik)`, cs `([0-9]+)\.(?=\s|$)`,
  // ko `([0-9]+)(번째|번|차|째)` (alternatives
  // tried in this order; de's and cs's "." only before whitespace or the end, hu's anywhere).
  const std::vector<std::u32string> suffixes =
      lang == "en"   ? std::vector<std::u32string>{U"st", U"nd", U"rd", U"th"}
      : lang == "fr" ? std::vector<std::u32string>{U"º", U"ª", U"er", U"re", U"e", U"ème"}
      : lang == "de" ? std::vector<std::u32string>{U"st", U"nd", U"rd", U"th", U"º", U"ª", U"."}
      : lang == "nl" ? std::vector<std::u32string>{U"de", U"ste", U"e"}
      : lang == "pt" ? std::vector<std::u32string>{U"º", U"ª", U"o", U"a", U"os", U"as"}
      : lang == "it" ? std::vector<std::u32string>{U"º", U"°", U"ª", U"o", U"a", U"i", U"e"}
      : lang == "hu"
          ? std::vector<std::u32string>{U".", U"adik", U"edik", U"odik", U"edik", U"ödik", U"ödike",
                                        U"ik"}
      : lang == "cs" ? std::vector<std::u32string>{U"."}
      : lang == "ko" ? std::vector<std::u32string>{U"번째", U"번", U"차", U"째"}
                     : std::vector<std::u32string>{U"º", U"ª", U"er", U"o", U"a", U"os", U"as"};
  auto ordinals = Sub(
      t,
      [&](const std::u32string& s, size_t p) -> size_t {
        size_t q = p;
        while (q < s.size() && Ascii09(s[q])) ++q;
        if (q == p) return std::u32string::npos;
        for (const std::u32string& suf : suffixes) {
          if (s.compare(q, suf.size(), suf) != 0) continue;
          const size_t end = q + suf.size();
          if ((lang == "de" || lang == "cs") && suf == U"." && end < s.size() &&
              !IsPySpace(s[end])) {
            continue;
          }
          return end;
        }
        return std::u32string::npos;
      },
      [&](std::u32string_view m) -> absl::StatusOr<std::u32string> {
        std::string digits;
        for (char32_t c : m) {
          if (!Ascii09(c)) break;
          digits.push_back(static_cast<char>(c));
        }
        auto words = num2words::Ordinal(digits, lang);
        if (!words.ok()) return NumberError(m, words.status());
        return U32(*words);
      });
  if (!ordinals.ok()) return ordinals.status();
  t = std::move(*ordinals);

  // 5. Integers `[0-9]+`.
  return Sub(
      t,
      [](const std::u32string& s, size_t p) -> size_t {
        size_t q = p;
        while (q < s.size() && Ascii09(s[q])) ++q;
        return q == p ? std::u32string::npos : q;
      },
      [&](std::u32string_view m) -> absl::StatusOr<std::u32string> {
        std::string digits;
        for (char32_t c : m) digits.push_back(static_cast<char>(c));
        auto words = num2words::Cardinal(digits, lang);
        if (!words.ok()) return NumberError(m, words.status());
        return U32(*words);
      });
}

std::u32string ExpandAbbreviations(std::u32string t, const LanguageTables& tables) {
  // Characters other than the pattern's own that IGNORECASE could match ('ı', 'ſ'): when the text
  // has none, a pass whose literal pattern does not occur cannot match and is skipped.
  const bool has_case_extras = t.find_first_of(U"\u0131\u017F") != std::u32string::npos;
  for (const Abbreviation& a : tables.abbreviations) {
    const std::u32string pattern = U32(a.pattern);
    if (!has_case_extras && t.find(a.trailing_boundary ? pattern : pattern + U".") ==
                                std::u32string::npos) {
      continue;
    }
    const std::u32string replacement = U32(a.replacement);
    auto r = Sub(
        t,
        [&](const std::u32string& s, size_t p) -> size_t {
          if (p + pattern.size() > s.size()) return std::u32string::npos;
          if (!unicode::PyIgnoreCaseMatches(pattern[0], s[p]) || !BoundaryAt(s, p)) {
            return std::u32string::npos;
          }
          for (size_t i = 0; i < pattern.size(); ++i) {
            if (!unicode::PyIgnoreCaseMatches(pattern[i], s[p + i])) return std::u32string::npos;
          }
          const size_t q = p + pattern.size();
          if (a.trailing_boundary) return BoundaryAt(s, q) ? q : std::u32string::npos;
          return q < s.size() && s[q] == '.' ? q + 1 : std::u32string::npos;
        },
        [&](std::u32string_view) -> absl::StatusOr<std::u32string> { return replacement; });
    t = std::move(*r);  // cannot fail
  }
  return t;
}

// Python str.replace(old, new): non-overlapping, left to right.
std::u32string ReplaceAll(const std::u32string& t, std::u32string_view from,
                          std::u32string_view to) {
  std::u32string out;
  size_t i = 0;
  while (true) {
    const size_t j = t.find(from, i);
    if (j == std::u32string::npos) break;
    out.append(t, i, j - i);
    out += to;
    i = j + from.size();
  }
  out.append(t, i, std::u32string::npos);
  return out;
}

std::u32string ExpandSymbols(std::u32string t, const LanguageTables& tables) {
  for (const Symbol& s : tables.symbols) {
    t = ReplaceAll(t, U32(s.symbol), U32(s.replacement));
    t = ReplaceAll(t, U"  ", U" ");
  }
  return std::u32string(unicode::PyStrip(t));
}

std::u32string CollapseWhitespace(const std::u32string& t) {
  std::u32string out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size();) {
    if (IsPySpace(t[i])) {
      out.push_back(' ');
      while (i < t.size() && IsPySpace(t[i])) ++i;
    } else {
      out.push_back(t[i++]);
    }
  }
  return out;
}

}  // namespace

const std::vector<std::string>& XttsCleanerLanguages() {
  static const auto* langs = new std::vector<std::string>{
      "en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "hu", "ko", "hi"};
  return *langs;
}

bool XttsExpandsNumbers(std::string_view lang) {
  return lang == "en" || lang == "es" || lang == "fr" || lang == "de" || lang == "nl" ||
         lang == "pt" || lang == "it" || lang == "hu" || lang == "cs" || lang == "ko";
}

absl::StatusOr<std::string> CleanText(std::string_view text, std::string_view xtts_lang) {
  const std::string lang(xtts_lang);
  if (lang == "zh" || lang == "zh-cn" || lang == "ja") {
    return absl::InvalidArgumentError(absl::StrCat(
        "XTTS language '", lang, "' is not supported: Coqui romanises it (",
        lang == "ja" ? "cutlet with MeCab/UniDic" : "zh_num2words and pypinyin",
        ") before tokenizing, which vox does not implement; supported: ",
        absl::StrJoin(XttsCleanerLanguages(), ", ")));
  }
  const LanguageTables* tables = TablesFor(lang);
  if (tables == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported XTTS language '", lang,
                                                   "'; supported: ",
                                                   absl::StrJoin(XttsCleanerLanguages(), ", ")));
  }
  auto decoded = unicode::DecodeUtf8(text);
  if (!decoded.ok()) return decoded.status();
  // Xtts.inference: sent.strip().lower().
  std::u32string t = unicode::PyLower(unicode::PyStrip(*decoded));
  // multilingual_cleaners. (Its Turkish İ/Ö/Ü replacements cannot match after the lower() above.)
  t = ReplaceAll(t, U"\"", U"");
  t = unicode::PyLower(t);
  if (XttsExpandsNumbers(lang)) {
    auto expanded = ExpandNumbers(std::move(t), lang);
    if (!expanded.ok()) return expanded.status();
    t = std::move(*expanded);
  } else {
    // Coqui reads out every ASCII digit left after the separator step with num2words (or raises,
    // for hi); vox has no num2words for this language, so such text is refused, never changed.
    t = RemoveThousandsSeparators(t, lang);
    for (char32_t c : t) {
      if (Ascii09(c)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "XTTS language '", lang, "': the text has digits, which Coqui reads out with num2words(",
            lang, "); vox implements that only for cs, de, en, es, fr, hu, it, ko, nl, pt, so write numbers as words"));
      }
    }
  }
  t = ExpandAbbreviations(std::move(t), *tables);
  t = ExpandSymbols(std::move(t), *tables);
  t = CollapseWhitespace(t);
  if (lang == "ko") t = HangulRomanize(t);  // VoiceBpeTokenizer.preprocess_text
  return unicode::EncodeUtf8(t);
}

}  // namespace vox
