#include "engines/text/num2words_italian.h"

#include <charconv>
#include <cmath>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "engines/text/unicode.h"

namespace vox::num2words::internal {
namespace {

const char* const kCardinal[] = {"zero",        "uno",        "due",        "tre",
                                 "quattro",     "cinque",     "sei",        "sette",
                                 "otto",        "nove",       "dieci",      "undici",
                                 "dodici",      "tredici",    "quattordici", "quindici",
                                 "sedici",      "diciassette", "diciotto",  "diciannove"};
const char* const kOrdinal[] = {"zero",          "primo",          "secondo",
                                "terzo",         "quarto",         "quinto",
                                "sesto",         "settimo",        "ottavo",
                                "nono",          "decimo",         "undicesimo",
                                "dodicesimo",    "tredicesimo",    "quattordicesimo",
                                "quindicesimo",  "sedicesimo",     "diciassettesimo",
                                "diciottesimo",  "diciannovesimo"};
const char* const kExponentPrefixes[] = {"zero", "m",    "b",   "tr",  "quadr", "quint",
                                         "sest", "sett", "ott", "nov", "dec"};

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string PhoneticContraction(std::string s) {
  for (const auto& [from, to] : std::vector<std::pair<const char*, const char*>>{
           {"oo", "o"}, {"ao", "o"}, {"io", "o"}, {"au", "u"}, {"iu", "u"}}) {
    s = absl::StrReplaceAll(s, {{from, to}});
  }
  return s;
}

// accentuate: per whitespace-separated word, a final "tre" (word longer than 3) becomes "tré";
// any other "tré" in a word goes back to "tre".
std::string Accentuate(const std::string& s) {
  std::vector<std::string> words;
  const std::vector<std::string> split = absl::StrSplit(s, ' ', absl::SkipEmpty());
  for (const std::string& w : split) {
    std::string word = absl::StrReplaceAll(w, {{"tré", "tre"}});
    if (EndsWith(w, "tre") && w.size() > 3) word = unicode::PyDropLast(word, 3) + "tré";
    words.push_back(std::move(word));
  }
  return absl::StrJoin(words, " ");
}

std::string OmitIfZero(const std::string& s) { return s == "zero" ? "" : s; }

absl::StatusOr<std::string> Cardinal(const Nat& n);

absl::StatusOr<std::string> BigNumber(const Nat& n) {
  const size_t length = n.size();
  if (length >= 66) {
    return absl::UnimplementedError("num2words (it): the given number is too large");
  }
  const size_t predigits = length % 3 ? length % 3 : 3;
  const std::string multiplier = n.substr(0, predigits);
  const std::string exponent = n.substr(predigits);
  const size_t el = exponent.size();
  std::string infix =
      std::string(kExponentPrefixes[el / 6]) + (el % 6 == 0 ? "ilione" : "iliardo");
  std::string prefix;
  if (multiplier == "1") {
    prefix = "un ";
  } else {
    auto p = Cardinal(Normalize(multiplier));
    if (!p.ok()) return p.status();
    prefix = *p;
    infix = " " + unicode::PyDropLast(infix, 1) + "i";
  }
  std::string postfix;
  if (exponent.find_first_not_of('0') != std::string::npos) {
    auto p = Cardinal(Normalize(exponent));
    if (!p.ok()) return p.status();
    postfix = *p;
    infix += postfix.find(" e ") != std::string::npos ? ", " : " e ";
  }
  return prefix + infix + postfix;
}

absl::StatusOr<std::string> Cardinal(const Nat& n) {
  std::string s;
  if (Lt(n, 20)) {
    s = kCardinal[Small(n)];
  } else if (Lt(n, 100)) {
    const uint64_t v = Small(n), tens = v / 10, units = v % 10;
    std::string prefix = tens == 2   ? "venti"
                         : tens == 3 ? "trenta"
                         : tens == 4 ? "quaranta"
                         : tens == 6 ? "sessanta"
                                     : unicode::PyDropLast(kCardinal[tens], 1) + "anta";
    s = PhoneticContraction(prefix + OmitIfZero(kCardinal[units]));
  } else if (Lt(n, 1000)) {
    const uint64_t v = Small(n), h = v / 100;
    std::string prefix = h == 1 ? "cento" : std::string(kCardinal[h]) + "cento";
    auto rest = Cardinal(FromInt(v % 100));
    if (!rest.ok()) return rest.status();
    s = PhoneticContraction(prefix + OmitIfZero(*rest));
  } else if (Lt(n, 1000000)) {
    const uint64_t v = Small(n), t = v / 1000;
    std::string prefix;
    if (t == 1) {
      prefix = "mille";
    } else {
      auto p = Cardinal(FromInt(t));
      if (!p.ok()) return p.status();
      prefix = *p + "mila";
    }
    auto rest = Cardinal(FromInt(v % 1000));
    if (!rest.ok()) return rest.status();
    s = prefix + OmitIfZero(*rest);
  } else {
    auto b = BigNumber(n);
    if (!b.ok()) return b.status();
    s = *b;
  }
  return Accentuate(s);
}

}  // namespace

absl::StatusOr<std::string> ItalianCardinal(const Nat& value) { return Cardinal(value); }

absl::StatusOr<std::string> ItalianOrdinal(const Nat& value) {
  if (Lt(value, 20)) return std::string(kOrdinal[Small(value)]);
  const int tens = (value[value.size() - 2] - '0') * 10 + (value.back() - '0');  // number % 100
  const bool outside_teens = !(10 < tens && tens < 20);
  auto c = Cardinal(value);
  if (!c.ok()) return c.status();
  if (outside_teens && tens % 10 == 3) return unicode::PyDropLast(*c, 1) + "eesimo";
  if (outside_teens && tens % 10 == 6) return *c + "esimo";
  std::string s = unicode::PyDropLast(*c, 1);
  if (EndsWith(s, "mil")) s += "l";
  return s + "esimo";
}

absl::StatusOr<std::string> ItalianFloat(double value) {
  if (!std::isfinite(value)) return absl::OutOfRangeError("cannot read out an infinite number");
  // str(value): shortest repr digits d1..dn with value = 0.d1..dn × 10^point; exponent form when
  // point > 16 or point < -3.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  const std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  std::string digits;
  for (size_t i = 0; i < e; ++i) {
    if (sci[i] >= '0' && sci[i] <= '9') digits.push_back(sci[i]);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int point = std::atoi(sci.c_str() + e + 1) + 1;
  if (value != 0 && (point > 16 || point < -3)) {
    return absl::OutOfRangeError(absl::StrCat(
        "num2words (it) cannot read ", sci, ": Python writes it in exponent form"));
  }
  std::string fraction;
  if (value == 0) {
    fraction = "0";
  } else if (point <= 0) {
    fraction = std::string(-point, '0') + digits;
  } else if (point >= static_cast<int>(digits.size())) {
    fraction = "0";
  } else {
    fraction = digits.substr(point);
  }
  auto head = Cardinal(IntegralDoubleToNat(std::trunc(value)));
  if (!head.ok()) return head.status();
  std::vector<std::string> tail;
  for (char c : fraction) tail.push_back(*Cardinal(FromInt(c - '0')));
  return Accentuate(*head + " virgola " + absl::StrJoin(tail, " "));
}

}  // namespace vox::num2words::internal
