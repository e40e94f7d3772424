#include "engines/text/num2words_czech.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engines/text/num2words_converter.h"

namespace vox::num2words::internal {
namespace {

const char* const kOnes[] = {"", "jedna", "dva", "tři", "čtyři", "pět", "šest", "sedm", "osm",
                             "devět"};
const char* const kTeens[] = {"deset",    "jedenáct", "dvanáct",  "třináct",   "čtrnáct",
                              "patnáct",  "šestnáct", "sedmnáct", "osmnáct",   "devatenáct"};
const char* const kTens[] = {"",         "",         "dvacet",    "třicet",   "čtyřicet",
                             "padesát",  "šedesát",  "sedmdesát", "osmdesát", "devadesát"};
const char* const kHundreds[] = {"",       "sto",    "dvěstě",  "třista",  "čtyřista",
                                 "pětset", "šestset", "sedmset", "osmset", "devětset"};
const char* const kThousands[][3] = {
    {"", "", ""},
    {"tisíc", "tisíce", "tisíc"},
    {"milion", "miliony", "milionů"},
    {"miliarda", "miliardy", "miliard"},
    {"bilion", "biliony", "bilionů"},
    {"biliarda", "biliardy", "biliard"},
    {"trilion", "triliony", "trilionů"},
    {"triliarda", "triliardy", "triliard"},
    {"kvadrilion", "kvadriliony", "kvadrilionů"},
    {"kvadriliarda", "kvadriliardy", "kvadriliard"},
    {"quintillion", "quintilliony", "quintillionů"}};

// Num2Word_CS.pluralize: 0 for 1, 1 for 2-4 (not 12-14), else 2; `n` as decimal digits.
int PluralForm(const Nat& n) {
  if (n == "1") return 0;
  const int last2 = n.size() >= 2 ? (n[n.size() - 2] - '0') * 10 + (n.back() - '0')
                                  : n.back() - '0';
  const int last = last2 % 10;
  if (last > 1 && last < 5 && (last2 < 10 || last2 > 20)) return 1;
  return 2;
}

absl::StatusOr<std::string> IntToWords(const Nat& n) {
  if (n == "0") return std::string("nula");
  // splitbyx(str(n), 3): a short leading chunk, then chunks of three.
  std::vector<Nat> chunks;
  const size_t start = n.size() > 3 ? n.size() % 3 : n.size();
  if (start > 0) chunks.push_back(n.substr(0, start));
  for (size_t i = start; i < n.size(); i += 3) chunks.push_back(n.substr(i, 3));
  std::vector<std::string> words;
  size_t i = chunks.size();
  for (const Nat& chunk : chunks) {
    --i;
    const Nat x = Normalize(chunk);
    if (x == "0") continue;
    const int v = static_cast<int>(Small(x));
    const int n1 = v % 10, n2 = v / 10 % 10, n3 = v / 100;
    if (n3 > 0) words.push_back(kHundreds[n3]);
    if (n2 > 1) words.push_back(kTens[n2]);
    if (n2 == 1) {
      words.push_back(kTeens[n1]);
    } else if (n1 > 0 && !(i > 0 && v == 1)) {
      words.push_back(kOnes[n1]);
    }
    if (i > 0) {
      if (i > 10) {
        return absl::OutOfRangeError("num2words (cs) has no word for numbers from 10^33");
      }
      words.push_back(kThousands[i][PluralForm(x)]);
    }
  }
  return absl::StrJoin(words, " ");
}

}  // namespace

absl::StatusOr<std::string> CzechCardinal(const Nat& value) { return IntToWords(value); }

absl::StatusOr<std::string> CzechFloat(double value) {
  const std::string n = PyFloatRepr(value);
  if (n.find('e') != std::string::npos || n.find("inf") != std::string::npos ||
      n.find("nan") != std::string::npos) {
    return absl::OutOfRangeError(absl::StrCat("num2words (cs) cannot read ", n));
  }
  const size_t dot = n.find('.');
  const std::string left = n.substr(0, dot), right = n.substr(dot + 1);
  const size_t zeros = right.find_first_not_of('0') == std::string::npos
                           ? right.size()
                           : right.find_first_not_of('0');
  auto l = IntToWords(Normalize(left));
  if (!l.ok()) return l.status();
  auto r = IntToWords(Normalize(right));
  if (!r.ok()) return r.status();
  std::string decimal;
  for (size_t k = 0; k < zeros; ++k) decimal += "nula ";
  return absl::StrCat(*l, " celá ", decimal, *r);
}

absl::StatusOr<std::string> CzechCurrency(const Nat& units, int cents,
                                          const std::string& currency) {
  if (currency != "EUR") {
    return absl::UnimplementedError(
        absl::StrCat("num2words (cs) has no currency ", currency, " (EUR only here)"));
  }
  static const char* const kCent[] = {"cent", "centy", "centů"};
  auto u = IntToWords(units);
  if (!u.ok()) return u.status();
  const Nat c = FromInt(static_cast<uint64_t>(cents));
  auto cw = IntToWords(c);
  if (!cw.ok()) return cw.status();
  return absl::StrCat(*u, " euro, ", *cw, " ", kCent[PluralForm(c)]);
}

}  // namespace vox::num2words::internal
