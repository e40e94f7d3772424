#include "engines/text/num2words_languages.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "engines/text/unicode.h"

namespace vox::num2words::internal {
namespace {

// Num2Word_EN.to_ordinal, given the cardinal.
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

// Num2Word_EN (lang_EN.py): short scale.
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
  absl::StatusOr<std::string> ToOrdinal(const Nat& value) const override {
    auto c = ToCardinal(value);
    if (!c.ok()) return c.status();
    return EnglishOrdinalFromCardinal(*c);
  }
};

// Num2Word_ES.to_ordinal (num2words 0.5.14) for value < 10^18 (int64). Above 1000 it splits at
// dec = 1000 ** int(math.log(value, 1000)) (a float logarithm, so 10^6 splits at 1000); a `dec`
// missing from the ords table (KeyError) or above the value (endless recursion) is an error in
// num2words and here.
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
    // math.log(x, base) is log(x) / log(base) in doubles.
    const double exponent = std::log(static_cast<double>(value)) / std::log(1000.0);
    const int e = static_cast<int>(exponent);
    int64_t dec = 1;
    for (int i = 0; i < e && dec <= 1000000000000000LL; ++i) dec *= 1000;
    auto key = ords.find(dec);
    if (e > 5 || key == ords.end()) {
      return absl::OutOfRangeError(absl::StrCat(
          "num2words cannot read ", value, " as a Spanish ordinal (no ordinal word for 1000^", e,
          ")"));
    }
    const int64_t high = value / dec, low = value % dec;
    if (high == 0) {
      // The logarithm rounded up to the next power (999999999999999 → 5.0): num2words recurses
      // on the same value until RecursionError.
      return absl::OutOfRangeError(absl::StrCat(
          "num2words cannot read ", value, " as a Spanish ordinal (it recurses without end)"));
    }
    std::string cardinal;
    if (high != 1) {
      auto c = conv.ToCardinal(FromInt(static_cast<uint64_t>(high)));
      if (!c.ok()) return c.status();
      cardinal = *c;
    }
    auto r = SpanishOrdinal(conv, low);
    if (!r.ok()) return r.status();
    text = cardinal + key->second + "o " + *r;
  }
  return strip(text);
}

// Num2Word_ES (lang_ES.py).
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
            "dieciocho", "diecisiete", "dieciséis", "quince", "catorce", "trece", "doce", "once",
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
      ntext = unicode::PyDropLast(ntext, 3) + "lones";
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
  // Num2Word_ES.to_ordinal: SpanishOrdinal when `value < 1e18`, else the cardinal.
  absl::StatusOr<std::string> ToOrdinal(const Nat& value) const override {
    if (value.size() > 18) return ToCardinal(value);
    return SpanishOrdinal(*this, static_cast<int64_t>(Small(value)));
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
  // Num2Word_FR.to_ordinal
  absl::StatusOr<std::string> ToOrdinal(const Nat& value) const override {
    if (value == "1") return std::string("premier");
    auto c = ToCardinal(value);
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
};

// The scale-word prefixes lang_DE.py and lang_NL.py spell alike ("okto", "dez"); each has its
// own hundred and capitalisation of the low ones.
std::vector<std::string> GermanSpelledScalePrefixes(const std::string& hundred,
                                                    const std::vector<std::string>& lows) {
  return ScalePrefixes(hundred,
                       {"", "un", "duo", "tre", "quattuor", "quin", "sex", "sept", "okto", "novem"},
                       {"dez", "vigint", "trigint", "quadragint", "quinquagint", "sexagint",
                        "septuagint", "oktogint", "nonagint"},
                       lows);
}

// Num2Word_DE (lang_DE.py): capitalised scale words ("Million", "Milliarde"), "und" inversion.
class German : public Converter {
 public:
  German() {
    pointword = "Komma";
    Finish(ScaleCards(GermanSpelledScalePrefixes(
                          "zent", {"Non", "Okt", "Sept", "Sext", "Quint", "Quadr", "Tr", "B", "M"}),
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
  // Num2Word_DE.to_ordinal
  absl::StatusOr<std::string> ToOrdinal(const Nat& value) const override {
    auto c = ToCardinal(value);
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
};

// Num2Word_NL (lang_NL.py): EU high numwords with "iljard"/"iljoen", "zend" for 10^600.
class Dutch : public Converter {
 public:
  Dutch() {
    pointword = "komma";
    Finish(ScaleCards(GermanSpelledScalePrefixes(
                          "zend", {"non", "okt", "sept", "sext", "quint", "quadr", "tr", "b", "m"}),
                      "iljard", "iljoen"),
           {{1000, "duizend"}, {100, "honderd"}, {90, "negentig"}, {80, "tachtig"},
            {70, "zeventig"}, {60, "zestig"}, {50, "vijftig"}, {40, "veertig"}, {30, "dertig"}},
           {"twintig", "negentien", "achttien", "zeventien", "zestien", "vijftien", "veertien",
            "dertien", "twaalf", "elf", "tien", "negen", "acht", "zeven", "zes", "vijf", "vier",
            "drie", "twee", "één", "nul"});
  }
  std::pair<std::string, PyNum> Merge(const std::string& lt, const PyNum& ln,
                                      const std::string& rt, const PyNum& rn) const override {
    std::string ctext = lt, ntext = rt;
    if (Eq(ln, 1)) {
      if (Lt(rn, 1000000)) return {rt, rn};
      ctext = "een";
    }
    PyNum val;
    if (Cmp(rn, ln) > 0) {
      if (!Lt(rn, 1000000)) ctext += " ";
      val = Mul(ln, rn);
    } else {
      if (Lt(rn, 10) && !Lt(ln, 11) && Lt(ln, 100)) {  // nnum < 10 < cnum < 100
        if (Eq(rn, 1)) ntext = "een";
        ntext += (!ntext.empty() && ntext.back() == 'e') ? "ën" : "en";
        std::swap(ctext, ntext);
      } else if (!Lt(ln, 1000000)) {
        ctext += " ";
      }
      val = Add(ln, rn);
    }
    return {ctext + ntext, val};
  }
  // Num2Word_NL.to_ordinal: the first matching ending (in the table's order) replaced, then "e".
  absl::StatusOr<std::string> ToOrdinal(const Nat& value) const override {
    auto c = ToCardinal(value);
    if (!c.ok()) return c.status();
    std::string word = *c;
    static const std::vector<std::pair<std::string, std::string>> ords = {
        {"nul", "nuld"},   {"één", "eerst"},  {"twee", "tweed"},    {"drie", "derd"},
        {"vier", "vierd"}, {"vijf", "vijfd"}, {"zes", "zesd"},      {"zeven", "zevend"},
        {"acht", "achtst"}, {"negen", "negend"}, {"tien", "tiend"}, {"elf", "elfd"},
        {"twaalf", "twaalfd"}, {"ig", "igst"}, {"erd", "erdst"},   {"end", "endst"},
        {"joen", "joenst"}, {"rd", "rdst"}};
    for (const auto& [key, repl] : ords) {
      if (word.size() >= key.size() &&
          word.compare(word.size() - key.size(), key.size(), key) == 0) {
        word = word.substr(0, word.size() - key.size()) + repl;
        break;
      }
    }
    return word + "e";
  }
};

// Num2Word_PT (lang_PT.py): EU long scale with "ilião" (milhão, bilião ...), "e" joins.
class Portuguese : public Converter {
 public:
  Portuguese() {
    pointword = "vírgula";
    Finish({{24, "quatrilião"}, {18, "trilião"}, {12, "bilião"}, {6, "milião"}},
           {{1000, "mil"}, {100, "cem"}, {90, "noventa"}, {80, "oitenta"}, {70, "setenta"},
            {60, "sessenta"}, {50, "cinquenta"}, {40, "quarenta"}, {30, "trinta"}},
           {"vinte", "dezanove", "dezoito", "dezassete", "dezasseis", "quinze", "catorze",
            "treze", "doze", "onze", "dez", "nove", "oito", "sete", "seis", "cinco", "quatro",
            "três", "dois", "um", "zero"});
  }
  std::pair<std::string, PyNum> Merge(const std::string& lt, const PyNum& ln,
                                      const std::string& rt, const PyNum& rn) const override {
    static const char* const hundreds[] = {"",           "cento",     "duzentos",
                                           "trezentos",  "quatrocentos", "quinhentos",
                                           "seiscentos", "setecentos", "oitocentos",
                                           "novecentos"};
    std::string ctext = lt, ntext = rt;
    if (Eq(ln, 1)) {
      if (Lt(rn, 1000000)) return {rt, rn};
      ctext = "um";
    } else if (Eq(ln, 100) && !DivisibleByPow10(rn, 3)) {
      ctext = "cento";
    }
    if (Cmp(rn, ln) < 0) return {ctext + " e " + ntext, Add(ln, rn)};
    if (DivisibleByPow10(rn, 9) && !Lt(ln, 2)) {
      ntext = unicode::PyDropLast(ntext, 4) + "liões";
    } else if (DivisibleByPow10(rn, 6) && !Lt(ln, 2)) {
      ntext = unicode::PyDropLast(ntext, 4) + "lhões";
    }
    if (ntext == "milião") ntext = "milhão";
    if (Eq(rn, 100)) {
      ctext = hundreds[Small(ln.i)];  // ln is 2..9 here (1 returned above)
      ntext = "";
    } else {
      ntext = " " + ntext;
    }
    return {ctext + ntext, Mul(ln, rn)};
  }
  // Num2Word_PT.to_cardinal: "mil e duzentos e dez" → "mil duzentos e dez", i.e. for each
  // scale word, when re.match('.*{ext} e \w*entos? (?=.*e)') holds, every "{ext} e" loses its "e".
  std::string PostCardinal(std::string text) const override {
    auto word_byte = [](char c) {
      const unsigned char u = static_cast<unsigned char>(c);
      return u >= 0x80 || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
             (c >= 'A' && c <= 'Z');
    };
    auto ends_with = [](std::string_view s, std::string_view suffix) {
      return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
    };
    for (const std::string ext : {"mil", "milhão", "milhões", "mil milhões", "bilião", "biliões",
                                  "mil biliões"}) {
      const std::string key = ext + " e ";
      bool match = false;
      for (size_t p = text.find(key); p != std::string::npos && !match;
           p = text.find(key, p + 1)) {
        const size_t q = p + key.size();
        size_t r = q;
        while (r < text.size() && word_byte(text[r])) ++r;
        const std::string_view w = std::string_view(text).substr(q, r - q);
        match = r < text.size() && text[r] == ' ' &&
                (ends_with(w, "ento") || ends_with(w, "entos")) &&
                text.find('e', r + 1) != std::string::npos;
      }
      if (match) text = absl::StrReplaceAll(text, {{ext + " e", ext}});
    }
    return text;
  }
  // Num2Word_PT.to_ordinal: digit by digit from the right, a thousands word before each
  // non-zero group; no word beyond 10^15 (KeyError in num2words, an error here).
  absl::StatusOr<std::string> ToOrdinal(const Nat& value) const override {
    static const char* const ords[3][10] = {
        {"", "primeiro", "segundo", "terceiro", "quarto", "quinto", "sexto", "sétimo", "oitavo",
         "nono"},
        {"", "décimo", "vigésimo", "trigésimo", "quadragésimo", "quinquagésimo", "sexagésimo",
         "septuagésimo", "octogésimo", "nonagésimo"},
        {"", "centésimo", "ducentésimo", "tricentésimo", "quadrigentésimo", "quingentésimo",
         "seiscentésimo", "septigentésimo", "octigentésimo", "nongentésimo"}};
    static const std::map<size_t, std::string> separators = {
        {3, "milésimo"}, {6, "milionésimo"}, {9, "milésimo milionésimo"}, {12, "bilionésimo"},
        {15, "milésimo bilionésimo"}};
    std::vector<std::string> result;
    std::string separator;
    for (size_t idx = 0; idx < value.size(); ++idx) {
      const char c = value[value.size() - 1 - idx];
      if (idx != 0 && idx % 3 == 0) {
        auto it = separators.find(idx);
        if (it == separators.end()) {
          return absl::OutOfRangeError(absl::StrCat(
              "num2words has no Portuguese ordinal for a number of ", value.size(), " digits"));
        }
        separator = it->second;
      }
      if (c != '0' && !separator.empty()) {
        result.push_back(separator);
        separator.clear();
      }
      result.push_back(ords[idx % 3][c - '0']);
    }
    std::string joined;
    for (size_t i = result.size(); i-- > 0;) {  // ' '.join(reversed), strip, collapse spaces
      if (result[i].empty()) continue;
      if (!joined.empty()) joined += ' ';
      joined += result[i];
    }
    if (joined.rfind("primeiro", 0) == 0 && value != "1") {
      joined = joined.size() > 9 ? joined.substr(9) : "";  // result[9:]
    }
    return joined;
  }
};

// Num2Word_KO (lang_KO.py): scale words every 10^4 (만, 억, 조, ...), Sino-Korean digits; native
// Korean ordinals for the last tens and units.
class Korean : public Converter {
 public:
  Korean() {
    pointword = "점";
    const std::vector<std::string> high = {"무량대수", "불가사의", "나유타", "아승기", "항하사",
                                           "극",       "재",       "정",     "간",     "구",
                                           "양",       "자",       "해",     "경",     "조",
                                           "억",       "만"};
    std::vector<std::pair<size_t, std::string>> high_pow10;
    for (size_t k = 0; k < high.size(); ++k) high_pow10.push_back({4 * (high.size() - k), high[k]});
    Finish(high_pow10, {{1000, "천"}, {100, "백"}},
           {"십", "구", "팔", "칠", "육", "오", "사", "삼", "이", "일", "영"});
  }
  std::pair<std::string, PyNum> Merge(const std::string& lt, const PyNum& ln,
                                      const std::string& rt, const PyNum& rn) const override {
    if (Eq(ln, 1) && (Lt(rn, 10000) || Eq(rn, 10000))) return {rt, rn};
    if (Lt(ln, 10000) && Cmp(ln, rn) > 0) return {lt + rt, Add(ln, rn)};
    if (!Lt(ln, 10000) && Cmp(ln, rn) > 0) return {lt + " " + rt, Add(ln, rn)};
    return {lt + rt, Mul(ln, rn)};
  }
  // Num2Word_KO.to_ordinal; the ords lookups that fail are KeyError in num2words, errors here.
  absl::StatusOr<std::string> ToOrdinal(const Nat& value) const override {
    static const std::map<std::string, std::string> ords = {
        {"일", "한"},     {"이", "두"},     {"삼", "세"},     {"사", "네"},     {"오", "다섯"},
        {"육", "여섯"},   {"칠", "일곱"},   {"팔", "여덟"},   {"구", "아홉"},   {"십", "열"},
        {"이십", "스물"}, {"삼십", "서른"}, {"사십", "마흔"}, {"오십", "쉰"},   {"육십", "예순"},
        {"칠십", "일흔"}, {"팔십", "여든"}, {"구십", "아흔"}};
    if (value == "1") return std::string("첫 번째");
    auto c = ToCardinal(value);
    if (!c.ok()) return c.status();
    std::vector<std::string> outwords = absl::StrSplit(*c, ' ');
    std::vector<std::string> lastwords = absl::StrSplit(outwords.back(), "백");
    auto key_error = [](const std::string& k) {
      return absl::OutOfRangeError(absl::StrCat("num2words has no Korean ordinal for '", k, "'"));
    };
    std::string& last = lastwords.back();
    if (last.find("십") != std::string::npos) {
      std::vector<std::string> ten_one = absl::StrSplit(last, "십");
      auto t = ords.find(ten_one[0] + "십");
      if (t == ords.end()) return key_error(ten_one[0] + "십");
      ten_one[0] = t->second;
      auto o = ords.find(ten_one[1]);
      if (o != ords.end()) {
        ten_one[1] = o->second;
        ten_one[0] = absl::StrReplaceAll(ten_one[0], {{"스무", "스물"}});
      }
      last = absl::StrJoin(ten_one, "");
    } else {
      auto o = ords.find(last);
      if (o == ords.end()) return key_error(last);
      last = o->second;
    }
    outwords.back() = absl::StrJoin(lastwords, "백 ");
    return absl::StrJoin(outwords, " ") + " 번째";
  }
};

}  // namespace

const Converter* ConverterFor(std::string_view lang) {
  static const auto* en = new English();
  static const auto* es = new Spanish();
  static const auto* fr = new French();
  static const auto* de = new German();
  static const auto* nl = new Dutch();
  static const auto* pt = new Portuguese();
  static const auto* ko = new Korean();
  if (lang == "de") return de;
  if (lang == "ko") return ko;
  if (lang == "pt") return pt;
  if (lang == "nl") return nl;
  if (lang == "en") return en;
  if (lang == "es") return es;
  if (lang == "fr") return fr;
  return nullptr;
}

}  // namespace vox::num2words::internal
