#include "engines/text/num2words_converter.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vox::num2words::internal {

absl::StatusOr<std::string> Converter::ToCardinal(const PyNum& num) const {
  const Nat& value = num.i;
  if (Cmp(value, maxval_) >= 0) {
    return absl::OutOfRangeError(absl::StrCat(
        "number ", value.size(), " digits long is too large to read out (num2words: abs(n) "
        "must be less than 10^", maxval_.size() - 1, ")"));
  }
  return PostCardinal(Clean(SplitNum(num)).text);
}

void Converter::Finish(std::vector<std::pair<size_t, std::string>> high_pow10,
                       std::vector<std::pair<int, std::string>> mid,
                       std::vector<std::string> low) {
  for (auto& [p, w] : high_pow10) cards_.push_back({Pow10(p), w});
  for (auto& [v, w] : mid) cards_.push_back({FromInt(v), w});
  for (size_t i = 0; i < low.size(); ++i) cards_.push_back({FromInt(low.size() - 1 - i), low[i]});
  maxval_ = Mul(FromInt(1000), cards_.front().value);
  for (const Card& c : cards_) word_of_.emplace(c.value, c.word);
}

Converter::Node Converter::Leaf(std::string t, PyNum n) {
  Node x;
  x.text = std::move(t);
  x.num = std::move(n);
  return x;
}

Converter::Node Converter::List(std::vector<Node> items) {
  Node x;
  x.leaf = false;
  x.items = std::move(items);
  return x;
}

Converter::Node Converter::SplitNum(const PyNum& value) const {
  for (const Card& card : cards_) {
    if (Cmp(card.value, value.i) > 0) continue;
    PyNum div, mod;
    if (value.i == "0") {
      div = PyNum::Int("1"), mod = PyNum::Int("0");
    } else if (value.is_float) {
      // CPython's float divmod (the card converted to the nearest double).
      const double vx = value.f, wx = std::strtod(card.value.c_str(), nullptr);
      const double m = std::fmod(vx, wx);
      double d = (vx - m) / wx;
      if (d != 0) {
        const double fl = std::floor(d);
        d = d - fl > 0.5 ? fl + 1.0 : fl;
      }
      div = PyNum::Float(d), mod = PyNum::Float(m);
    } else if (IsPow10(card.value) && card.value.size() > 1) {
      const size_t k = card.value.size() - 1;
      div = PyNum::Int(Normalize(std::string_view(value.i).substr(0, value.i.size() - k)));
      mod = PyNum::Int(Normalize(std::string_view(value.i).substr(value.i.size() - k)));
    } else {
      const uint64_t v = Small(value.i), e = Small(card.value);
      div = PyNum::Int(FromInt(v / e)), mod = PyNum::Int(FromInt(v % e));
    }
    std::vector<Node> out;
    if (div.i == "1") {
      out.push_back(Leaf(word_of_.at("1"), PyNum::Int("1")));
    } else {
      out.push_back(SplitNum(div));  // (the "tally" case never happens for en/es)
    }
    out.push_back(Leaf(card.word, PyNum::Int(card.value)));
    if (mod.i != "0") out.push_back(SplitNum(mod));
    return List(std::move(out));
  }
  return Leaf("", PyNum::Int("0"));  // unreachable: card 0 always matches
}

Converter::Node Converter::Clean(Node val) const {
  Node out = val;
  while (val.items.size() != 1) {
    std::vector<Node> next;
    const Node& left = val.items[0];
    const Node& right = val.items[1];
    if (left.leaf && right.leaf) {
      auto [t, n] = Merge(left.text, left.num, right.text, right.num);
      next.push_back(Leaf(std::move(t), std::move(n)));
      if (val.items.size() > 2) {
        next.push_back(List(std::vector<Node>(val.items.begin() + 2, val.items.end())));
      }
    } else {
      for (const Node& elem : val.items) {
        if (!elem.leaf) {
          next.push_back(elem.items.size() == 1 ? elem.items[0] : Clean(elem));
        } else {
          next.push_back(elem);
        }
      }
    }
    val = List(std::move(next));
    out = val;
  }
  return out.items[0];
}

namespace {

// Python's shortest repr digits: value = 0.d1d2...dn × 10^point (returns digits and `point`).
// std::to_chars without a precision gives the shortest round-tripping digits, as repr() does.
void ShortestRepr(double v, std::string* digits, int* point) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const std::string s(buf, res.ptr);
  const size_t e = s.find('e');
  digits->clear();
  for (size_t i = 0; i < e; ++i) {
    if (s[i] >= '0' && s[i] <= '9') digits->push_back(s[i]);
  }
  while (digits->size() > 1 && digits->back() == '0') digits->pop_back();
  *point = std::atoi(s.c_str() + e + 1) + 1;
}

double Pow10Double(int p) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "1e%d", p);
  return std::strtod(buf, nullptr);  // correctly rounded, as Python's float(10**p)
}

// Num2Word_Base.to_cardinal_float (value not integral).
absl::StatusOr<std::string> CardinalFloat(const Converter& conv, double value) {
  const double pre_d = std::trunc(value);
  const Nat pre = IntegralDoubleToNat(pre_d);
  std::string digits;
  int point = 0;
  ShortestRepr(value, &digits, &point);
  // Decimal(repr).as_tuple().exponent = point - len(digits) (repr never has trailing zeros).
  const int exponent = point - static_cast<int>(digits.size());
  const int precision = std::abs(exponent);
  double post = std::fabs(value - pre_d) * Pow10Double(precision);
  if (!std::isfinite(post)) return absl::OutOfRangeError("number too small to read out");
  const double rounded = std::nearbyint(post);
  post = std::fabs(rounded - post) < 0.01 ? rounded : std::floor(post);
  std::string post_s = IntegralDoubleToNat(post);
  if (static_cast<int>(post_s.size()) < precision) {
    post_s = std::string(precision - post_s.size(), '0') + post_s;
  }
  auto head = conv.ToCardinal(pre);
  if (!head.ok()) return head.status();
  std::vector<std::string> out = {*head};
  if (precision) out.push_back(conv.pointword);
  for (int i = 0; i < precision; ++i) {
    auto d = conv.ToCardinal(Nat(1, post_s[i]));
    if (!d.ok()) return d.status();
    out.push_back(*d);
  }
  return conv.PostCardinal(absl::StrJoin(out, " "));
}

}  // namespace

absl::StatusOr<std::string> CardinalOfDouble(const Converter& conv, double value) {
  if (!std::isfinite(value)) {
    return absl::OutOfRangeError("cannot read out an infinite or NaN number");
  }
  if (std::trunc(value) == value) return conv.ToCardinal(PyNum::Float(value));
  return CardinalFloat(conv, value);
}

// The Latin prefixes of the scale words above a million, largest first: Num2Word_EU.setup's
// `high` = [hundred] + reversed(unit + ten for ten in tens for unit in units) + lows.
std::vector<std::string> ScalePrefixes(const std::string& hundred,
                                       const std::vector<std::string>& units,
                                       const std::vector<std::string>& tens,
                                       const std::vector<std::string>& lows) {
  std::vector<std::string> combined;
  for (const auto& t : tens) {
    for (const auto& u : units) combined.push_back(u + t);
  }
  std::vector<std::string> high = {hundred};
  high.insert(high.end(), combined.rbegin(), combined.rend());
  high.insert(high.end(), lows.begin(), lows.end());
  return high;
}

// Num2Word_EU.setup's own spelling (en and fr use it unchanged).
const std::vector<std::string>& LatinScalePrefixes() {
  static const auto* high = new std::vector<std::string>(ScalePrefixes(
      "cent", {"", "un", "duo", "tre", "quattuor", "quin", "sex", "sept", "octo", "novem"},
      {"dec", "vigint", "trigint", "quadragint", "quinquagint", "sexagint", "septuagint",
       "octogint", "nonagint"},
      {"non", "oct", "sept", "sext", "quint", "quadr", "tr", "b", "m"}));
  return *high;
}

// The scale cards (power of ten, word), largest first, down to 10^6.
// Long scale (`milliard_suffix` set; Num2Word_EU.set_high_numwords, fr and de): 10^n is
// prefix + milliard_suffix and 10^(n-3) prefix + million_suffix, n = 3 + 6 * len(prefixes) down
// by 6. Short scale (`milliard_suffix` empty; Num2Word_EN.set_high_numwords): 10^n is
// prefix + million_suffix, n = 3 + 3 * len(prefixes) down by 3.
std::vector<std::pair<size_t, std::string>> ScaleCards(const std::vector<std::string>& prefixes,
                                                       const std::string& milliard_suffix,
                                                       const std::string& million_suffix) {
  const bool long_scale = !milliard_suffix.empty();
  const size_t step = long_scale ? 6 : 3;
  std::vector<std::pair<size_t, std::string>> cards;
  size_t n = 3 + step * prefixes.size();
  for (const auto& prefix : prefixes) {
    if (n <= 3) break;
    if (long_scale) cards.push_back({n, prefix + milliard_suffix});
    cards.push_back({n - (step - 3), prefix + million_suffix});
    n -= step;
  }
  return cards;
}

std::string PyFloatRepr(double v) {
  if (v == 0) return "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  std::string d;
  for (size_t i = 0; i < e; ++i) {
    if (sci[i] >= '0' && sci[i] <= '9') d.push_back(sci[i]);
  }
  while (d.size() > 1 && d.back() == '0') d.pop_back();
  const int point = std::atoi(sci.c_str() + e + 1) + 1;
  const int n = static_cast<int>(d.size());
  if (point > 16 || point < -3) {
    const int x = point - 1;
    std::string exp = std::to_string(std::abs(x));
    if (exp.size() < 2) exp = "0" + exp;
    return d.substr(0, 1) + (n > 1 ? "." + d.substr(1) : "") + "e" + (x < 0 ? "-" : "+") + exp;
  }
  if (point <= 0) return "0." + std::string(-point, '0') + d;
  if (point >= n) return d + std::string(point - n, '0') + ".0";
  return d.substr(0, point) + "." + d.substr(point);
}

}  // namespace vox::num2words::internal
