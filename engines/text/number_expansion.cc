#include "engines/text/number_expansion.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace vox::num2words {
namespace {

// ---- Non-negative integers of any size as decimal strings without leading zeros ("0" = 0). ----
using Nat = std::string;

Nat Normalize(std::string_view d) {
  size_t i = 0;
  while (i + 1 < d.size() && d[i] == '0') ++i;
  return d.empty() ? Nat("0") : Nat(d.substr(i));
}
Nat FromInt(uint64_t v) { return std::to_string(v); }
int Cmp(const Nat& a, const Nat& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
}
bool Lt(const Nat& a, uint64_t b) { return Cmp(a, FromInt(b)) < 0; }
bool Eq(const Nat& a, uint64_t b) { return a == FromInt(b); }
Nat Add(const Nat& a, const Nat& b) {
  std::string r;
  int carry = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()) || carry; ++i) {
    int s = carry;
    if (i < a.size()) s += a[a.size() - 1 - i] - '0';
    if (i < b.size()) s += b[b.size() - 1 - i] - '0';
    r.push_back(static_cast<char>('0' + s % 10));
    carry = s / 10;
  }
  return Normalize(std::string(r.rbegin(), r.rend()));
}
Nat Mul(const Nat& a, const Nat& b) {
  std::vector<int> r(a.size() + b.size(), 0);
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < b.size(); ++j) {
      r[i + j + 1] += (a[i] - '0') * (b[j] - '0');
    }
  }
  for (size_t k = r.size() - 1; k > 0; --k) {
    r[k - 1] += r[k] / 10;
    r[k] %= 10;
  }
  std::string s;
  for (int d : r) s.push_back(static_cast<char>('0' + d));
  return Normalize(s);
}
bool DivisibleByPow10(const Nat& a, size_t k) {
  if (a == "0") return true;
  if (a.size() <= k) return false;
  for (size_t i = a.size() - k; i < a.size(); ++i) {
    if (a[i] != '0') return false;
  }
  return true;
}
Nat Pow10(size_t k) { return "1" + std::string(k, '0'); }
bool IsPow10(const Nat& a) { return a[0] == '1' && a.find_first_not_of('0', 1) == Nat::npos; }
uint64_t Small(const Nat& a) { return std::strtoull(a.c_str(), nullptr, 10); }

// Exact integer value of an integral double, as a decimal string.
Nat IntegralDoubleToNat(double v) {
  char buf[400];
  std::snprintf(buf, sizeof(buf), "%.0f", std::fabs(v));
  return Normalize(buf);
}

// A Python number as num2words sees it: an int, or an (integral) float. Comparisons between the
// two are exact in Python; + and * with a float operand round through doubles. `i` always holds
// the exact value, `f` the double when is_float.
struct PyNum {
  Nat i;
  bool is_float = false;
  double f = 0;
  static PyNum Int(Nat n) { return PyNum{std::move(n), false, 0}; }
  static PyNum Float(double d) { return PyNum{IntegralDoubleToNat(d), true, d}; }
  double AsDouble() const { return is_float ? f : std::strtod(i.c_str(), nullptr); }
};
int Cmp(const PyNum& a, const PyNum& b) { return Cmp(a.i, b.i); }
bool Lt(const PyNum& a, uint64_t b) { return Lt(a.i, b); }
bool Eq(const PyNum& a, uint64_t b) { return Eq(a.i, b); }
PyNum Add(const PyNum& a, const PyNum& b) {
  if (!a.is_float && !b.is_float) return PyNum::Int(Add(a.i, b.i));
  return PyNum::Float(a.AsDouble() + b.AsDouble());
}
PyNum Mul(const PyNum& a, const PyNum& b) {
  if (!a.is_float && !b.is_float) return PyNum::Int(Mul(a.i, b.i));
  return PyNum::Float(a.AsDouble() * b.AsDouble());
}
// `a % 10**k == 0`; exact for floats too (fmod is exact and 10**k <= 10**6 is a double).
bool DivisibleByPow10(const PyNum& a, size_t k) { return DivisibleByPow10(a.i, k); }

// Python str slicing by code points on UTF-8 text: s[:-k].
std::string DropLastCodePoints(const std::string& s, size_t k) {
  size_t end = s.size();
  while (k > 0 && end > 0) {
    --end;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    --k;
  }
  return s.substr(0, end);
}

struct Card {
  Nat value;
  std::string word;
};

// Num2Word_Base's cards/splitnum/clean and each language's merge.
class Converter {
 public:
  virtual ~Converter() = default;
  const std::vector<Card>& cards() const { return cards_; }  // descending
  const Nat& maxval() const { return maxval_; }
  std::string pointword;

  absl::StatusOr<std::string> ToCardinal(const Nat& value) const {
    return ToCardinal(PyNum::Int(value));
  }
  // to_cardinal of an int, or of an integral float (whose divmods run in doubles, as in Python).
  absl::StatusOr<std::string> ToCardinal(const PyNum& num) const {
    const Nat& value = num.i;
    if (Cmp(value, maxval_) >= 0) {
      return absl::OutOfRangeError(absl::StrCat(
          "number ", value.size(), " digits long is too large to read out (num2words: abs(n) "
          "must be less than 10^", maxval_.size() - 1, ")"));
    }
    return Clean(SplitNum(num)).text;
  }
  virtual std::pair<std::string, PyNum> Merge(const std::string& lt, const PyNum& ln,
                                              const std::string& rt, const PyNum& rn) const = 0;

 protected:
  void Finish(std::vector<std::pair<size_t, std::string>> high_pow10,
              std::vector<std::pair<int, std::string>> mid, std::vector<std::string> low) {
    for (auto& [p, w] : high_pow10) cards_.push_back({Pow10(p), w});
    for (auto& [v, w] : mid) cards_.push_back({FromInt(v), w});
    for (size_t i = 0; i < low.size(); ++i) cards_.push_back({FromInt(low.size() - 1 - i), low[i]});
    maxval_ = Mul(FromInt(1000), cards_.front().value);
    for (const Card& c : cards_) word_of_.emplace(c.value, c.word);
  }

 private:
  struct Node {
    bool leaf = true;
    std::string text;
    PyNum num;
    std::vector<Node> items;
  };
  static Node Leaf(std::string t, PyNum n) {
    Node x;
    x.text = std::move(t);
    x.num = std::move(n);
    return x;
  }
  static Node List(std::vector<Node> items) {
    Node x;
    x.leaf = false;
    x.items = std::move(items);
    return x;
  }

  Node SplitNum(const PyNum& value) const {
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

  // Base.clean: `val` is a list node.
  Node Clean(Node val) const {
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

  std::vector<Card> cards_;
  std::map<Nat, std::string> word_of_;
  Nat maxval_;
};

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

class English : public Converter {
 public:
  English() {
    pointword = "point";
    Finish(ScaleCards(LatinScalePrefixes(), "", "illion"),
           {{1000, "thousand"}, {100, "hundred"}, {90, "ninety"}, {80, "eighty"},
            {70, "seventy"}, {60, "sixty"}, {50, "fifty"}, {40, "forty"}, {30, "thirty"}},
           {"twenty", "nineteen", "eighteen", "seventeen", "sixteen", "fifteen", "fourteen",
            "thirteen", "twelve", "eleven", "ten", "nine", "eight", "seven", "six", "five", "four",
            "three", "two", "one", "zero"});
  }
  std::pair<std::string, PyNum> Merge(const std::string& lt, const PyNum& ln,
                                      const std::string& rt, const PyNum& rn) const override {
    if (Eq(ln, 1) && Lt(rn, 100)) return {rt, rn};
    if (Lt(ln, 100) && Cmp(ln, rn) > 0) return {lt + "-" + rt, Add(ln, rn)};
    if (!Lt(ln, 100) && Lt(rn, 100)) return {lt + " and " + rt, Add(ln, rn)};
    if (Cmp(rn, ln) > 0) return {lt + " " + rt, Mul(ln, rn)};
    return {lt + ", " + rt, Add(ln, rn)};
  }
};

class Spanish : public Converter {
 public:
  Spanish() {
    pointword = "punto";
    // Num2Word_EU.set_high_numwords with GIGA_SUFFIX None, MEGA_SUFFIX "illón".
    Finish({{24, "cuatrillón"}, {18, "trillón"}, {12, "billón"}, {6, "millón"}},
           {{1000, "mil"}, {100, "cien"}, {90, "noventa"}, {80, "ochenta"}, {70, "setenta"},
            {60, "sesenta"}, {50, "cincuenta"}, {40, "cuarenta"}, {30, "treinta"}},
           {"veintinueve", "veintiocho", "veintisiete", "veintiséis", "veinticinco",
            "veinticuatro", "veintitrés", "veintidós", "veintiuno", "veinte", "diecinueve",
            "dieciocho", "diecisiete", "dieciseis", "quince", "catorce", "trece", "doce", "once",
            "diez", "nueve", "ocho", "siete", "seis", "cinco", "cuatro", "tres", "dos", "uno",
            "cero"});
  }
  std::pair<std::string, PyNum> Merge(const std::string& lt, const PyNum& ln,
                                      const std::string& rt, const PyNum& rn) const override {
    std::string ctext = lt, ntext = rt;
    if (Eq(ln, 1)) {
      if (Lt(rn, 1000000)) return {rt, rn};
      ctext = "un";
    } else if (Eq(ln, 100) && !DivisibleByPow10(rn, 3)) {
      ctext += "to";
    }
    if (Cmp(rn, ln) < 0) {
      if (Lt(ln, 100)) return {ctext + " y " + ntext, Add(ln, rn)};
      return {ctext + " " + ntext, Add(ln, rn)};
    } else if (DivisibleByPow10(rn, 6) && !Lt(ln, 2)) {
      ntext = DropLastCodePoints(ntext, 3) + "lones";
    }
    if (Eq(rn, 100)) {
      if (Eq(ln, 5)) {
        ctext = "quinien";
        ntext = "";
      } else if (Eq(ln, 7)) {
        ctext = "sete";
      } else if (Eq(ln, 9)) {
        ctext = "nove";
      }
      ntext += "tos";
    } else {
      ntext = " " + ntext;
    }
    return {ctext + ntext, Mul(ln, rn)};
  }
};

// Num2Word_FR (lang_FR.py): EU high numwords with both "illiard" and "illion".
class French : public Converter {
 public:
  French() {
    pointword = "virgule";
    Finish(ScaleCards(LatinScalePrefixes(), "illiard", "illion"),
           {{1000, "mille"}, {100, "cent"}, {80, "quatre-vingts"}, {60, "soixante"},
            {50, "cinquante"}, {40, "quarante"}, {30, "trente"}},
           {"vingt", "dix-neuf", "dix-huit", "dix-sept", "seize", "quinze", "quatorze", "treize",
            "douze", "onze", "dix", "neuf", "huit", "sept", "six", "cinq", "quatre", "trois",
            "deux", "un", "zéro"});
  }
  std::pair<std::string, PyNum> Merge(const std::string& lt, const PyNum& ln,
                                      const std::string& rt, const PyNum& rn) const override {
    std::string ctext = lt, ntext = rt;
    if (Eq(ln, 1)) {
      if (Lt(rn, 1000000)) return {rt, rn};
    } else {
      // not (cnum - 80) % 100: in doubles when cnum is a float (the subtraction may round).
      bool minus80;
      if (ln.is_float) {
        double r = std::fmod(ln.f - 80.0, 100.0);
        if (r != 0 && r < 0) r += 100.0;
        minus80 = r == 0;
      } else {
        minus80 = !Lt(ln, 80) && ln.i.size() >= 2 && ln.i.substr(ln.i.size() - 2) == "80";
      }
      if ((minus80 || (DivisibleByPow10(ln, 2) && Lt(ln, 1000))) && Lt(rn, 1000000) &&
          !ctext.empty() && ctext.back() == 's') {
        ctext.pop_back();
      }
      if (Lt(ln, 1000) && !Eq(rn, 1000) && !ntext.empty() && ntext.back() != 's' &&
          DivisibleByPow10(rn, 2)) {
        ntext += "s";
      }
    }
    if (Cmp(rn, ln) < 0 && Lt(ln, 100)) {
      if (rn.i.back() == '1' && !Eq(ln, 80)) return {ctext + " et " + ntext, Add(ln, rn)};
      return {ctext + "-" + ntext, Add(ln, rn)};
    }
    if (Cmp(rn, ln) > 0) return {ctext + " " + ntext, Mul(ln, rn)};
    return {ctext + " " + ntext, Add(ln, rn)};
  }
};

// Num2Word_DE (lang_DE.py): capitalised scale words ("Million", "Milliarde"), "und" inversion.
class German : public Converter {
 public:
  German() {
    pointword = "Komma";
    Finish(ScaleCards(ScalePrefixes("zent",
                                    {"", "un", "duo", "tre", "quattuor", "quin", "sex", "sept",
                                     "okto", "novem"},
                                    {"dez", "vigint", "trigint", "quadragint", "quinquagint",
                                     "sexagint", "septuagint", "oktogint", "nonagint"},
                                    {"Non", "Okt", "Sept", "Sext", "Quint", "Quadr", "Tr", "B",
                                     "M"}),
                      "illiarde", "illion"),
           {{1000, "tausend"}, {100, "hundert"}, {90, "neunzig"}, {80, "achtzig"},
            {70, "siebzig"}, {60, "sechzig"}, {50, "fünfzig"}, {40, "vierzig"}, {30, "dreißig"}},
           {"zwanzig", "neunzehn", "achtzehn", "siebzehn", "sechzehn", "fünfzehn", "vierzehn",
            "dreizehn", "zwölf", "elf", "zehn", "neun", "acht", "sieben", "sechs", "fünf", "vier",
            "drei", "zwei", "eins", "null"});
  }
  std::pair<std::string, PyNum> Merge(const std::string& lt, const PyNum& ln,
                                      const std::string& rt, const PyNum& rn) const override {
    std::string ctext = lt, ntext = rt;
    if (Eq(ln, 1)) {
      if (Eq(rn, 100) || Eq(rn, 1000)) return {"ein" + ntext, rn};
      if (Lt(rn, 1000000)) return {rt, rn};
      ctext = "eine";
    }
    PyNum val;
    if (Cmp(rn, ln) > 0) {
      if (!Lt(rn, 1000000)) {
        if (!Lt(ln, 2)) ntext += (!ntext.empty() && ntext.back() == 'e') ? "n" : "en";
        ctext += " ";
      }
      val = Mul(ln, rn);
    } else {
      if (Lt(rn, 10) && !Lt(ln, 11) && Lt(ln, 100)) {
        if (Eq(rn, 1)) ntext = "ein";
        std::string c = ctext;
        ctext = ntext + "und";
        ntext = c;
      } else if (!Lt(ln, 1000000)) {
        ctext += " ";
      }
      val = Add(ln, rn);
    }
    return {ctext + ntext, val};
  }
};

const Converter* ConverterFor(std::string_view lang) {
  static const auto* en = new English();
  static const auto* es = new Spanish();
  static const auto* fr = new French();
  static const auto* de = new German();
  if (lang == "de") return de;
  if (lang == "en") return en;
  if (lang == "es") return es;
  if (lang == "fr") return fr;
  return nullptr;
}

absl::Status BadLang(std::string_view lang) {
  return absl::InvalidArgumentError(
      absl::StrCat("number expansion: unsupported language '", std::string(lang),
                   "' (supported: en, es, fr, de)"));
}

absl::StatusOr<Nat> ParseDigits(std::string_view digits) {
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a decimal integer: '", std::string(digits), "'"));
  }
  return Normalize(digits);
}

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
  return absl::StrJoin(out, " ");
}

absl::StatusOr<std::string> CardinalOfDouble(const Converter& conv, double value) {
  if (!std::isfinite(value)) {
    return absl::OutOfRangeError("cannot read out an infinite or NaN number");
  }
  if (std::trunc(value) == value) return conv.ToCardinal(PyNum::Float(value));
  return CardinalFloat(conv, value);
}

std::string EnglishOrdinalFromCardinal(const std::string& cardinal) {
  static const std::map<std::string, std::string> ords = {
      {"one", "first"},  {"two", "second"},  {"three", "third"},   {"four", "fourth"},
      {"five", "fifth"}, {"six", "sixth"},   {"seven", "seventh"}, {"eight", "eighth"},
      {"nine", "ninth"}, {"ten", "tenth"},   {"eleven", "eleventh"}, {"twelve", "twelfth"}};
  std::vector<std::string> outwords = absl::StrSplit(cardinal, ' ');
  std::vector<std::string> lastwords = absl::StrSplit(outwords.back(), '-');
  std::string last = lastwords.back();  // already lowercase
  auto it = ords.find(last);
  if (it != ords.end()) {
    last = it->second;
  } else {
    if (!last.empty() && last.back() == 'y') last = last.substr(0, last.size() - 1) + "ie";
    last += "th";
  }
  lastwords.back() = last;
  outwords.back() = absl::StrJoin(lastwords, "-");
  return absl::StrJoin(outwords, " ");
}

// Num2Word_ES.to_ordinal for value < 10^18 (int64); KeyError paths fall back to the cardinal.
absl::StatusOr<std::string> SpanishOrdinal(const Converter& conv, int64_t value) {
  static const std::map<int64_t, std::string> ords = {
      {1, "primer"},      {2, "segund"},         {3, "tercer"},        {4, "cuart"},
      {5, "quint"},       {6, "sext"},           {7, "séptim"},        {8, "octav"},
      {9, "noven"},       {10, "décim"},         {20, "vigésim"},      {30, "trigésim"},
      {40, "quadragésim"}, {50, "quincuagésim"}, {60, "sexagésim"},    {70, "septuagésim"},
      {80, "octogésim"},  {90, "nonagésim"},     {100, "centésim"},    {200, "ducentésim"},
      {300, "tricentésim"}, {400, "cuadrigentésim"}, {500, "quingentésim"},
      {600, "sexcentésim"}, {700, "septigentésim"}, {800, "octigentésim"},
      {900, "noningentésim"}, {1000, "milésim"}, {1000000, "millonésim"},
      {1000000000, "billonésim"}, {1000000000000, "trillonésim"},
      {1000000000000000, "cuadrillonésim"}};
  auto strip = [](std::string s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    size_t b = 0;
    while (b < s.size() && s[b] == ' ') ++b;
    return s.substr(b);
  };
  if (value < 0) {
    // A remainder below zero (value - int(value / dec * dec) after the float rounded up), where
    // num2words raises TypeError("Cannot treat negative num ... as ordinal").
    return absl::OutOfRangeError(absl::StrCat(
        "num2words cannot read this number as a Spanish ordinal (negative remainder ", value,
        ")"));
  }
  std::string text;
  if (value == 0) {
    text = "";
  } else if (value <= 10) {
    text = ords.at(value) + "o";
  } else if (value <= 12) {
    auto r = SpanishOrdinal(conv, value - 10);
    if (!r.ok()) return r.status();
    text = ords.at(10) + "o" + *r;
  } else if (value <= 100) {
    const int64_t dec = (value / 10) * 10;
    auto r = SpanishOrdinal(conv, value - dec);
    if (!r.ok()) return r.status();
    text = ords.at(dec) + "o " + *r;
  } else if (value <= 1000) {
    const int64_t cen = (value / 100) * 100;
    auto r = SpanishOrdinal(conv, value - cen);
    if (!r.ok()) return r.status();
    text = ords.at(cen) + "o " + *r;
  } else {
    // dec = 10 ** ((((len(str(int(value))) - 1) / 3 - 1) + 1) * 3), in floats.
    const double len = static_cast<double>(std::to_string(value).size());
    const double x = (((len - 1) / 3 - 1) + 1) * 3;
    const double dec = std::pow(10.0, x);
    int64_t key = -1;
    for (int64_t k : {1000LL, 1000000LL, 1000000000LL, 1000000000000LL, 1000000000000000LL}) {
      if (dec == static_cast<double>(k)) key = k;
    }
    if (key < 0) return conv.ToCardinal(FromInt(value));  // KeyError → cardinal
    const double vd = static_cast<double>(value);
    const int64_t part = static_cast<int64_t>(std::trunc((vd / dec) * dec));
    const double ratio = static_cast<double>(part) / dec;
    std::string cardinal;
    if (ratio != 1) {
      auto c = CardinalOfDouble(conv, ratio);
      if (!c.ok()) return c.status();
      cardinal = *c;
    }
    auto r = SpanishOrdinal(conv, value - part);
    if (!r.ok()) return r.status();
    text = cardinal + ords.at(key) + "o " + *r;
  }
  return strip(text);
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
  const Converter* conv = ConverterFor(lang);
  if (conv == nullptr) return BadLang(lang);
  auto n = ParseDigits(digits);
  if (!n.ok()) return n.status();
  return conv->ToCardinal(*n);
}

absl::StatusOr<std::string> Ordinal(std::string_view digits, std::string_view lang) {
  const Converter* conv = ConverterFor(lang);
  if (conv == nullptr) return BadLang(lang);
  auto n = ParseDigits(digits);
  if (!n.ok()) return n.status();
  if (lang == "en") {
    auto c = conv->ToCardinal(*n);
    if (!c.ok()) return c.status();
    return EnglishOrdinalFromCardinal(*c);
  }
  if (lang == "de") {  // Num2Word_DE.to_ordinal
    auto c = conv->ToCardinal(*n);
    if (!c.ok()) return c.status();
    std::string word = *c;
    for (char& ch : word) {  // .lower(): the only capitals are ASCII scale words
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    }
    static const std::vector<std::pair<std::string, std::string>> ords = {
        {"eins", "ers"}, {"drei", "drit"}, {"acht", "ach"}, {"sieben", "sieb"}, {"ig", "igs"},
        {"ert", "erts"}, {"end", "ends"}, {"ion", "ions"}, {"nen", "ns"}, {"rde", "rds"},
        {"rden", "rds"}};
    for (const auto& [key, repl] : ords) {
      if (word.size() >= key.size() &&
          word.compare(word.size() - key.size(), key.size(), key) == 0) {
        word = word.substr(0, word.size() - key.size()) + repl;
        break;
      }
    }
    std::string res = word + "te";
    if (res == "eintausendste" || res == "einhundertste") res = res.substr(3);
    // re.sub(r'eine ([a-z]+(illion|illiard)ste)$', r'\1') then r' ([a-z]+(illion|illiard)ste)$'.
    auto last_word_is_scale_ordinal = [](const std::string& r, size_t* space) {
      const size_t sp = r.rfind(' ');
      if (sp == std::string::npos) return false;
      const std::string w = r.substr(sp + 1);
      for (char ch : w) {
        if (ch < 'a' || ch > 'z') return false;
      }
      for (const std::string suffix : {"illionste", "illiardste"}) {
        if (w.size() > suffix.size() &&
            w.compare(w.size() - suffix.size(), suffix.size(), suffix) == 0) {
          *space = sp;
          return true;
        }
      }
      return false;
    };
    size_t sp;
    if (last_word_is_scale_ordinal(res, &sp) && sp >= 4 && res.compare(sp - 4, 4, "eine") == 0) {
      res = res.substr(0, sp - 4) + res.substr(sp + 1);
    }
    if (last_word_is_scale_ordinal(res, &sp)) res = res.substr(0, sp) + res.substr(sp + 1);
    return res;
  }
  if (lang == "fr") {  // Num2Word_FR.to_ordinal
    if (*n == "1") return std::string("premier");
    auto c = conv->ToCardinal(*n);
    if (!c.ok()) return c.status();
    std::string word = *c;
    auto ends_with = [&word](const std::string& suffix) {
      return word.size() >= suffix.size() &&
             word.compare(word.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with("cinq")) return word.substr(0, word.size() - 4) + "cinquième";
    if (ends_with("neuf")) return word.substr(0, word.size() - 4) + "neuvième";
    if (word.back() == 'e') word.pop_back();
    return word + "ième";
  }
  // es: `value < 1e18` else the cardinal.
  if (n->size() > 18) return conv->ToCardinal(*n);
  return SpanishOrdinal(*conv, static_cast<int64_t>(Small(*n)));
}

absl::StatusOr<std::string> Float(double value, std::string_view lang) {
  const Converter* conv = ConverterFor(lang);
  if (conv == nullptr) return BadLang(lang);
  if (value < 0) return absl::InvalidArgumentError("negative numbers are not expanded");
  return CardinalOfDouble(*conv, value);
}

absl::StatusOr<std::string> Currency(double value, std::string_view currency,
                                     std::string_view lang) {
  const Converter* conv = ConverterFor(lang);
  if (conv == nullptr) return BadLang(lang);
  if (value < 0) return absl::InvalidArgumentError("negative amounts are not expanded");
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
       {{"USD", "dolar", "dólares", "centavo", "centavos"},
        {"EUR", "euro", "euros", "céntimo", "céntimos"}}}};
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
  auto lt = conv->ToCardinal(left);
  if (!lt.ok()) return lt.status();
  auto ct = conv->ToCardinal(FromInt(right));
  if (!ct.ok()) return ct.status();
  std::string out = absl::StrCat(*lt, " ", Eq(left, 1) ? f->one : f->many, separator, " ", *ct,
                                 " ", right == 1 ? f->cent_one : f->cent_many);
  if (lang == "es") out = absl::StrReplaceAll(out, {{"uno", "un"}});
  if (lang == "de") out = absl::StrReplaceAll(out, {{"eins ", "ein "}});
  return out;
}

}  // namespace vox::num2words
