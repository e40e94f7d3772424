#include "engines/text/protected_terms.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engines/text/unicode.h"

namespace vox {
namespace {

char32_t CodePointAt(std::string_view s, size_t i) {
  char32_t c;
  unicode::DecodeUtf8At(s, i, &c);
  return c;
}
// The code point that ends just before byte i (> 0).
char32_t CodePointBefore(std::string_view s, size_t i) {
  size_t b = i - 1;
  while (b > 0 && i - b < 4 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  char32_t c;
  return unicode::DecodeUtf8At(s, b, &c) == i - b ? c : 0xFFFD;
}

bool IsUnspacedScript(char32_t c) {
  return (c >= 0x0E00 && c <= 0x0EFF) ||   // Thai, Lao
         (c >= 0x1000 && c <= 0x109F) ||   // Myanmar
         (c >= 0x1780 && c <= 0x17FF) ||   // Khmer
         (c >= 0x3040 && c <= 0x30FF) ||   // Hiragana, Katakana
         (c >= 0x3400 && c <= 0x9FFF) ||   // CJK ideographs
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x3FFFF);
}
bool IsWordChar(char32_t c) { return unicode::IsPyWord(c) && !IsUnspacedScript(c); }

bool AtWordEdges(std::string_view text, size_t b, size_t e) {
  if (b > 0 && IsWordChar(CodePointAt(text, b)) && IsWordChar(CodePointBefore(text, b))) {
    return false;
  }
  if (e < text.size() && IsWordChar(CodePointBefore(text, e)) &&
      IsWordChar(CodePointAt(text, e))) {
    return false;
  }
  return true;
}

}  // namespace

std::string Placeholder(size_t number) { return absl::StrCat("[T", number, "]"); }

std::vector<TermMatch> FindTerms(std::string_view text, absl::Span<const ProtectedTerm> terms) {
  std::vector<size_t> order(terms.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return terms[a].source.size() > terms[b].source.size();
  });
  std::vector<TermMatch> matches;
  size_t i = 0;
  while (i < text.size()) {
    bool found = false;
    for (size_t t : order) {
      const std::string& s = terms[t].source;
      if (s.empty() || text.compare(i, s.size(), s) != 0) continue;
      if (!AtWordEdges(text, i, i + s.size())) continue;
      matches.push_back({{i, i + s.size()}, t});
      i += s.size();
      found = true;
      break;
    }
    if (!found) ++i;
  }
  return matches;
}

MaskedText MaskTerms(std::string_view text, ByteSpan sentence,
                     absl::Span<const TermMatch> matches) {
  MaskedText out;
  size_t pos = sentence.begin;
  for (const TermMatch& m : matches) {
    if (m.span.begin < sentence.begin || m.span.end > sentence.end) continue;
    out.text.append(text.substr(pos, m.span.begin - pos));
    out.placeholders.push_back(m.term);
    out.text.append(Placeholder(out.placeholders.size()));
    pos = m.span.end;
  }
  out.text.append(text.substr(pos, sentence.end - pos));
  return out;
}

RestoredText RestoreTerms(std::string_view output, absl::Span<const size_t> placeholders,
                          absl::Span<const ProtectedTerm> terms) {
  RestoredText out;
  std::vector<bool> placed(placeholders.size(), false);
  size_t i = 0;
  while (i < output.size()) {
    // "[T<digits>]", as issued.
    if (output[i] == '[' && i + 1 < output.size() && output[i + 1] == 'T') {
      size_t j = i + 2;
      size_t number = 0;
      while (j < output.size() && j < i + 8 && output[j] >= '0' && output[j] <= '9') {
        number = number * 10 + static_cast<size_t>(output[j] - '0');
        ++j;
      }
      if (j > i + 2 && j < output.size() && output[j] == ']' && number >= 1 &&
          number <= placeholders.size()) {
        out.text.append(terms[placeholders[number - 1]].target);
        placed[number - 1] = true;
        i = j + 1;
        continue;
      }
    }
    out.text.push_back(output[i]);
    ++i;
  }
  for (size_t k = 0; k < placed.size(); ++k) {
    if (!placed[k]) out.unplaced.push_back(placeholders[k]);
  }
  return out;
}

}  // namespace vox
