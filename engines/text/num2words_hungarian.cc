#include "engines/text/num2words_hungarian.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engines/text/num2words_converter.h"

namespace vox::num2words::internal {
namespace {

// cards[0..29] (lang_HU.setup's low_numwords, reversed), then the tens.
const char* const kLow[] = {
    "nulla",       "egy",          "kettő",        "három",       "négy",
    "öt",          "hat",          "hét",          "nyolc",       "kilenc",
    "tíz",         "tizenegy",     "tizenkettő",   "tizenhárom",  "tizennégy",
    "tizenöt",     "tizenhat",     "tizenhét",     "tizennyolc",  "tizenkilenc",
    "húsz",        "huszonegy",    "huszonkettő",  "huszonhárom", "huszonnégy",
    "huszonöt",    "huszonhat",    "huszonhét",    "huszonnyolc", "huszonkilenc"};
const char* const kTens[] = {"", "", "", "harminc", "negyven", "ötven",
                             "hatvan", "hetven", "nyolcvan", "kilencven"};

// 10^exponent → scale word ("millió", "milliárd", ...), Num2Word_EU.set_high_numwords.
const std::map<size_t, std::string>& Scales() {
  static const auto* scales = [] {
    auto* m = new std::map<size_t, std::string>();
    for (auto& [e, w] : ScaleCards(LatinScalePrefixes(), "illiárd", "illió")) m->emplace(e, w);
    return m;
  }();
  return *scales;
}

absl::Status KeyError(const std::string& what) {
  return absl::OutOfRangeError(absl::StrCat("num2words (hu) has no word for ", what));
}
absl::Status Recursion() {
  return absl::OutOfRangeError("num2words (hu) recurses without end on this number");
}

// Python float // and % for non-negative finite operands (CPython float_divmod).
std::pair<double, double> FloatDivMod(double v, double w) {
  const double mod = std::fmod(v, w);
  const double div = (v - mod) / w;
  double floordiv = 0.0;
  if (div != 0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  }
  return {floordiv, mod};
}

// to_cardinal for an int (digits).
absl::StatusOr<std::string> CardInt(const Nat& v, bool zero_empty) {
  if (v == "0") return std::string(zero_empty ? "" : "nulla");
  if (zero_empty && v == "2") return std::string("két");
  if (Lt(v, 30)) return std::string(kLow[Small(v)]);
  if (Lt(v, 100)) {
    const uint64_t x = Small(v);
    if (x % 10 == 0) return std::string(kTens[x / 10]);
    auto u = CardInt(FromInt(x % 10), false);
    if (!u.ok()) return u.status();
    return kTens[x / 10] + *u;
  }
  if (Lt(v, 1000)) {
    const uint64_t x = Small(v), h = x / 100;
    std::string prefix = "száz";
    if (h != 1) {
      auto p = CardInt(FromInt(h), true);
      if (!p.ok()) return p.status();
      prefix = *p + prefix;
    }
    auto post = CardInt(FromInt(x % 100), true);
    if (!post.ok()) return post.status();
    return prefix + *post;
  }
  if (Lt(v, 1000000)) {
    const uint64_t x = Small(v), t = x / 1000;
    std::string prefix = "ezer";
    if (t != 1) {
      auto p = CardInt(FromInt(t), true);
      if (!p.ok()) return p.status();
      prefix = *p + prefix;
    }
    auto post = CardInt(FromInt(x % 1000), true);
    if (!post.ok()) return post.status();
    return prefix + (x <= 2000 || post->empty() ? "" : "-") + *post;
  }
  size_t digits = v.size();
  if (digits % 3 == 0) digits -= 2;
  const size_t e = digits / 3 * 3;
  auto scale = Scales().find(e);
  if (scale == Scales().end()) return KeyError(absl::StrCat("10^", e));
  auto rest = CardInt(Normalize(v.substr(v.size() - e)), true);
  if (!rest.ok()) return rest.status();
  auto head = CardInt(Normalize(v.substr(0, v.size() - e)), true);
  if (!head.ok()) return head.status();
  return *head + scale->second + (rest->empty() ? "" : "-" + *rest);
}

// to_cardinal for an integral float: the same recursion in doubles, except that the big-number
// branch counts the characters of str(value).
absl::StatusOr<std::string> CardIntegralFloat(double v, bool zero_empty, int depth) {
  if (depth > 200) return Recursion();
  if (v < 1000000) return CardInt(IntegralDoubleToNat(v), zero_empty);  // exact below 2^53
  size_t digits = PyFloatRepr(v).size();
  if (digits % 3 == 0) digits -= 2;
  const size_t e = digits / 3 * 3;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "1e%zu", e);
  const double exp = std::strtod(buf, nullptr);  // float(10 ** e), correctly rounded
  const auto [div, mod] = FloatDivMod(v, exp);
  auto rest = CardIntegralFloat(mod, true, depth + 1);
  if (!rest.ok()) return rest.status();
  auto head = CardIntegralFloat(div, true, depth + 1);
  if (!head.ok()) return head.status();
  // cards[exp]: str(value) of an exponent-form float can be short enough to make exp 1000.
  if (e == 3) return *head + "ezer" + (rest->empty() ? "" : "-" + *rest);
  auto scale = Scales().find(e);
  if (scale == Scales().end()) return KeyError(absl::StrCat("10^", e));
  return *head + scale->second + (rest->empty() ? "" : "-" + *rest);
}

}  // namespace

absl::StatusOr<std::string> HungarianCardinal(const Nat& value) { return CardInt(value, false); }

absl::StatusOr<std::string> HungarianOrdinal(const Nat& value) {
  if (value == "1") return std::string("első");
  if (value == "2") return std::string("második");
  auto c = CardInt(value, false);
  if (!c.ok()) return c.status();
  std::string out = *c;
  static const std::vector<std::pair<std::string, std::string>> partial = {
      {"nulla", "nullad"},       {"egy", "egyed"},         {"kettő", "ketted"},
      {"három", "harmad"},       {"négy", "negyed"},       {"öt", "ötöd"},
      {"hat", "hatod"},          {"hét", "heted"},         {"nyolc", "nyolcad"},
      {"kilenc", "kilenced"},    {"tíz", "tized"},         {"húsz", "huszad"},
      {"harminc", "harmincad"},  {"negyven", "negyvened"}, {"ötven", "ötvened"},
      {"hatvan", "hatvanad"},    {"hetven", "hetvened"},   {"nyolcvan", "nyolcvanad"},
      {"kilencven", "kilencvened"}, {"száz", "század"},    {"ezer", "ezred"},
      {"illió", "milliomod"},    {"illiárd", "milliárdod"}};
  for (const auto& [card, ord] : partial) {
    if (out.size() >= card.size() &&
        out.compare(out.size() - card.size(), card.size(), card) == 0) {
      out = out.substr(0, out.size() - card.size()) + ord;
      break;
    }
  }
  return out + "ik";
}

absl::StatusOr<std::string> HungarianFloat(double value) {
  if (!std::isfinite(value)) return absl::OutOfRangeError("cannot read out an infinite number");
  if (std::trunc(value) == value) {
    // The recursion's first level already compares with 0 and 2 using zero="nulla".
    return CardIntegralFloat(value, false, 0);
  }
  const std::string repr = PyFloatRepr(value);
  const size_t dot = repr.find('.');
  const std::string left = repr.substr(0, dot), right = repr.substr(dot + 1);
  if (repr.find('e') != std::string::npos) {
    return absl::OutOfRangeError(absl::StrCat("num2words (hu) cannot read ", repr));
  }
  static const char* const kFraction[] = {"", "tized", "század", "ezred"};
  if (right.size() > 3) return KeyError(absl::StrCat("10^", right.size()));
  auto l = CardInt(Normalize(left), false);
  if (!l.ok()) return l.status();
  auto r = CardInt(Normalize(right), false);
  if (!r.ok()) return r.status();
  return absl::StrCat(*l, " egész ", *r, " ", kFraction[right.size()]);
}

}  // namespace vox::num2words::internal
