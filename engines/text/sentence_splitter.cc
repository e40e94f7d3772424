#include "engines/text/sentence_splitter.h"

#include <algorithm>
#include <string>

#include "engines/text/unicode.h"

namespace vox {
namespace {

// One code point and where it starts; invalid bytes decode as U+FFFD, one byte each.
struct CodePoint {
  char32_t c;
  size_t offset;
};

std::vector<CodePoint> Decode(std::string_view s) {
  std::vector<CodePoint> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char32_t c;
    const size_t len = unicode::DecodeUtf8At(s, i, &c);
    out.push_back({c, i});
    i += len == 0 ? 1 : len;
  }
  return out;
}

bool IsSpace(char32_t c) { return unicode::IsPySpace(c); }
bool IsLineBreak(char32_t c) {
  return c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0x85 || c == 0x2028 ||
         c == 0x2029;
}

// Ends a sentence only when whitespace (or the end) follows.
bool IsTerminator(char32_t c, bool greek) {
  switch (c) {
    case '.': case '!': case '?': case 0x2026:                 // … 
    case 0x203C: case 0x2047: case 0x2048: case 0x2049:        // ‼ ⁇ ⁈ ⁉
    case 0x061F: case 0x06D4:                                  // Arabic ?, Urdu full stop
    case 0x0964: case 0x0965:                                  // Devanagari danda, double danda
    case 0x0589: case 0x1362: case 0x104B:                     // Armenian, Ethiopic, Myanmar
    case 0x0E5A: case 0x0E5B:                                  // Thai angkhankhu, khomut
    case 0x037E:                                               // Greek question mark
      return true;
    case ';':
      return greek;  // Greek writes its question mark as ';'
    default:
      return false;
  }
}
// Ends a sentence wherever it stands (CJK text has no spaces between sentences).
bool IsCjkTerminator(char32_t c) {
  return c == 0x3002 || c == 0xFF01 || c == 0xFF1F || c == 0xFF61;  // 。！？｡
}
bool IsCloser(char32_t c) {
  switch (c) {
    case '"': case '\'': case ')': case ']': case '}':
    case 0xBB: case 0x2019: case 0x201D: case 0x203A:          // » ’ ” ›
    case 0x300D: case 0x300F: case 0x3011: case 0x3009: case 0x300B:  // 」 』 】 〉 》
    case 0xFF09: case 0xFF3D: case 0xFF63:                     // ） ］ ｣
      return true;
    default:
      return false;
  }
}

// A letter of a script with case (Latin, Greek, Cyrillic, Armenian and their extensions).
bool IsCased(char32_t c) {
  return (c < 0x0590 || (c >= 0x1E00 && c < 0x2000)) && unicode::IsPyWord(c) &&
         !unicode::IsPyDigit(c) && c != '_';
}
bool IsLower(char32_t c) {
  if (!IsCased(c)) return false;
  return unicode::PyLower(std::u32string(1, c)) == std::u32string(1, c);
}
bool IsUpper(char32_t c) {
  return IsCased(c) && unicode::PyLower(std::u32string(1, c)) != std::u32string(1, c);
}

bool IsThaiLetter(char32_t c) {  // Thai or Lao letters and marks, not digits or punctuation
  return (c >= 0x0E01 && c <= 0x0E4E) || (c >= 0x0E81 && c <= 0x0EDF);
}

// Words (lowercase, inner dots kept, final dot dropped) after which '.' does not end a sentence
// in that language. Only words that rarely end a sentence: titles, "e.g."-like forms.
const std::vector<std::u32string>& Abbreviations(std::string_view lang) {
  static const auto* eng = new std::vector<std::u32string>{
      U"mr", U"mrs", U"ms", U"dr", U"prof", U"st", U"jr", U"sr", U"mt", U"vs", U"e.g", U"i.e",
      U"fig", U"approx", U"dept", U"gen", U"col", U"capt", U"lt", U"sgt", U"rev", U"hon",
      U"esq", U"cf", U"al", U"no"};
  static const auto* deu = new std::vector<std::u32string>{
      U"hr", U"hrn", U"fr", U"dr", U"prof", U"nr", U"bzw", U"z.b", U"u.a", U"d.h", U"vgl",
      U"ca", U"evtl", U"ggf", U"inkl", U"str", U"bspw", U"sog", U"zzgl", U"o.ä", U"u.ä", U"s"};
  static const auto* fra = new std::vector<std::u32string>{
      U"m", U"mm", U"mme", U"mlle", U"dr", U"pr", U"me", U"st", U"ste", U"p.ex", U"cf", U"av",
      U"bd", U"vol", U"env"};
  static const auto* spa = new std::vector<std::u32string>{
      U"sr", U"sra", U"srta", U"sres", U"dr", U"dra", U"lic", U"ud", U"uds", U"vd", U"vds",
      U"p.ej", U"av", U"avda", U"pág", U"núm", U"dpto", U"prof", U"ing"};
  static const auto* ita = new std::vector<std::u32string>{
      U"sig", U"sig.ra", U"sigg", U"dott", U"dott.ssa", U"prof", U"ing", U"avv", U"arch",
      U"pag", U"es", U"dr"};
  static const auto* por = new std::vector<std::u32string>{
      U"sr", U"sra", U"srs", U"dr", U"dra", U"prof", U"exmo", U"exma", U"av", U"p.ex", U"pág"};
  static const auto* nld = new std::vector<std::u32string>{
      U"dhr", U"mevr", U"mw", U"dr", U"prof", U"bijv", U"o.a", U"m.b.t", U"blz", U"nr", U"ir",
      U"ing"};
  static const auto* rus = new std::vector<std::u32string>{
      U"г", U"гг", U"ул", U"т.е", U"т.к", U"им", U"проф", U"стр", U"см", U"напр", U"д", U"вул"};
  static const auto* pol = new std::vector<std::u32string>{
      U"np", U"dr", U"prof", U"mgr", U"inż", U"ul", U"godz", U"tzn", U"tj", U"ok"};
  static const auto* ces = new std::vector<std::u32string>{
      U"např", U"tzv", U"mj", U"dr", U"prof", U"ing", U"mgr", U"č", U"ul"};
  static const auto* none = new std::vector<std::u32string>{};
  const std::string_view l = lang.substr(0, 3);
  if (l == "eng") return *eng;
  if (l == "deu") return *deu;
  if (l == "fra") return *fra;
  if (l == "spa" || l == "cat" || l == "glg") return *spa;
  if (l == "ita") return *ita;
  if (l == "por") return *por;
  if (l == "nld") return *nld;
  if (l == "rus" || l == "ukr" || l == "bel") return *rus;
  if (l == "pol") return *pol;
  if (l == "ces" || l == "slk") return *ces;
  return *none;
}

// Languages that write ordinals as "3." ("am 3. Mai"): a one- or two-digit number before '.'
// does not end a sentence.
bool DotOrdinals(std::string_view lang) {
  static const char* kLangs[] = {"deu", "ces", "slk", "pol", "hun", "dan", "nob", "nno", "fin",
                                 "tur", "hrv", "srp", "slv", "est", "lav", "lit", "isl"};
  const std::string_view l = lang.substr(0, 3);
  return std::any_of(std::begin(kLangs), std::end(kLangs),
                     [&](const char* x) { return l == x; });
}

class Splitter {
 public:
  Splitter(std::string_view text, std::string_view lang)
      : text_(text), cps_(Decode(text)),
        greek_(lang.size() >= 8 && lang.substr(4) == "Grek"),
        thai_(lang.substr(0, 3) == "tha" || lang.substr(0, 3) == "lao"),
        abbreviations_(Abbreviations(lang)),
        dot_ordinals_(DotOrdinals(lang)) {}

  // Byte offsets where a sentence ends (before the whitespace that follows it), ascending.
  std::vector<size_t> Boundaries() const {
    std::vector<size_t> out;
    const size_t n = cps_.size();
    size_t i = 0;
    while (i < n) {
      const char32_t c = cps_[i].c;
      if (IsSpace(c)) {
        size_t j = i;
        bool line_break = false;
        while (j < n && IsSpace(cps_[j].c)) line_break |= IsLineBreak(cps_[j++].c);
        if (line_break && i > 0) out.push_back(cps_[i].offset);
        if (thai_ && !line_break && i > 0 && j < n && IsThaiLetter(cps_[i - 1].c) &&
            IsThaiLetter(cps_[j].c) && cps_[i - 1].c != 0x0E2F && cps_[i - 1].c != 0x0E46) {
          out.push_back(cps_[i].offset);
        }
        i = j;
        continue;
      }
      const bool cjk = IsCjkTerminator(c);
      if (!cjk && !IsTerminator(c, greek_)) {
        ++i;
        continue;
      }
      size_t j = i;
      bool any_cjk = false;
      while (j < n && (IsTerminator(cps_[j].c, greek_) || IsCjkTerminator(cps_[j].c))) {
        any_cjk |= IsCjkTerminator(cps_[j].c);
        ++j;
      }
      while (j < n && IsCloser(cps_[j].c)) ++j;
      // French spacing: "« Oui ! » Il part." — closers after spaces still close the sentence.
      for (size_t k = j; k < n && IsSpace(cps_[k].c) && !IsLineBreak(cps_[k].c);) {
        ++k;
        if (k < n && IsCloser(cps_[k].c)) {
          size_t m = k;
          while (m < n && IsCloser(cps_[m].c)) ++m;
          if (m == n || IsSpace(cps_[m].c)) j = k = m;
        }
      }
      const size_t end = j < n ? cps_[j].offset : text_.size();
      if (any_cjk) {
        out.push_back(end);
      } else if ((j == n || IsSpace(cps_[j].c)) && EndsSentence(i, j)) {
        out.push_back(end);
      }
      i = j;
    }
    return out;
  }

 private:
  // The terminator run starts at cps_[i]; cps_[j] is the first character after it and its
  // closers (whitespace or the end).
  bool EndsSentence(size_t i, size_t j) const {
    size_t k = j;
    while (k < cps_.size() && IsSpace(cps_[k].c)) ++k;
    if (k < cps_.size() && IsLower(cps_[k].c)) return false;  // "approx. five", "Wait... what"
    const bool single_dot = cps_[i].c == '.' && (i + 1 >= cps_.size() || cps_[i + 1].c != '.');
    if (!single_dot) return true;
    // The word before the dot, with inner dots ("z.B", "e.g").
    size_t b = i;
    while (b > 0 && (unicode::IsPyWord(cps_[b - 1].c) ||
                     (cps_[b - 1].c == '.' && b >= 2 && unicode::IsPyWord(cps_[b - 2].c)))) {
      --b;
    }
    if (b == i) return true;
    std::u32string word;
    for (size_t m = b; m < i; ++m) word.push_back(cps_[m].c);
    if (word.size() == 1 && IsUpper(word[0])) return false;  // an initial: "J. Smith"
    const bool digits = std::all_of(word.begin(), word.end(), unicode::IsPyDigit);
    if (digits) return !(dot_ordinals_ && word.size() <= 2);
    const std::u32string lower = unicode::PyLower(word);
    return std::find(abbreviations_.begin(), abbreviations_.end(), lower) == abbreviations_.end();
  }

  std::string_view text_;
  std::vector<CodePoint> cps_;
  bool greek_;
  bool thai_;
  const std::vector<std::u32string>& abbreviations_;
  bool dot_ordinals_;
};

}  // namespace

std::vector<ByteSpan> SplitSentences(std::string_view text, std::string_view nllb_language,
                                     absl::Span<const ByteSpan> protected_spans) {
  std::vector<size_t> cuts = Splitter(text, nllb_language).Boundaries();
  cuts.erase(std::remove_if(cuts.begin(), cuts.end(),
                            [&](size_t p) {
                              return std::any_of(protected_spans.begin(), protected_spans.end(),
                                                 [p](const ByteSpan& s) {
                                                   return s.begin < p && p < s.end;
                                                 });
                            }),
             cuts.end());
  cuts.push_back(text.size());
  std::vector<ByteSpan> spans;
  size_t start = 0;
  for (size_t cut : cuts) {
    if (cut < start) continue;
    // Trim: leading whitespace from start, trailing whitespace before cut.
    std::vector<CodePoint> cps = Decode(text.substr(start, cut - start));
    size_t first = 0;
    while (first < cps.size() && IsSpace(cps[first].c)) ++first;
    size_t last = cps.size();
    while (last > first && IsSpace(cps[last - 1].c)) --last;
    if (first < last) {
      const size_t b = start + cps[first].offset;
      const size_t e = start + (last < cps.size() ? cps[last].offset : cut - start);
      spans.push_back({b, e});
    }
    start = cut;
  }
  return spans;
}

}  // namespace vox
