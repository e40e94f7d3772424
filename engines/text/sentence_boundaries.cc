// The sentence boundaries Synthesize and SynthesizeStream use (see sentence_boundaries.h).
#include "engines/text/sentence_boundaries.h"

#include <algorithm>
#include <string>
#include <vector>

#include "engines/text/unicode.h"

namespace vox {
namespace {

bool IsSentenceEnd(char32_t c) {
  switch (c) {
    case '.':
    case '!':
    case '?':
    case ';':
    case 0x2026:  // …
    case 0x3002:
    case 0xFF01:
    case 0xFF1F:
    case 0xFF1B:  // 。！？；
    case 0x061F:
    case 0x0964:  // Arabic ?, Devanagari danda
      return true;
    default:
      return false;
  }
}
bool IsCloser(char32_t c) {
  switch (c) {
    case '"':
    case '\'':
    case ')':
    case ']':
    case '}':
    case 0xBB:
    case 0x201D:
    case 0x2019:
      return true;
    default:
      return false;
  }
}

// True when the single '.' at t[i] ends an abbreviation ("Mr.", "Sra.", "etc.") or an initial
// ("J."), which does not end a sentence.
bool IsAbbreviationDot(std::u32string_view t, size_t i) {
  static const auto* words = new std::vector<std::u32string>{
      U"mr",  U"mrs", U"ms",     U"dr",   U"drs", U"st",  U"jr",   U"sr",   U"co",
      U"ltd", U"maj", U"gen",    U"rev",  U"lt",  U"hon", U"sgt",  U"capt", U"esq",
      U"col", U"ft",  U"prof",   U"vs",   U"etc", U"sra", U"srta", U"dra",  U"mme",
      U"fr",  U"sig", U"dhr",    U"mevr", U"jhr", U"ing", U"nr",   U"no",   U"p",
      U"e.g", U"i.e", U"approx", U"dept", U"inc", U"av",  U"avda", U"ud",   U"uds"};
  size_t b = i;
  while (b > 0 && (unicode::IsPyWord(t[b - 1]) ||
                   (t[b - 1] == '.' && b - 1 > 0 && unicode::IsPyWord(t[b - 2])))) {
    --b;
  }
  if (b == i) return false;
  const std::u32string word = unicode::PyLower(t.substr(b, i - b));
  if (word.size() == 1 && !unicode::IsPyDigit(word[0])) return true;  // an initial
  return std::find(words->begin(), words->end(), word) != words->end();
}

}  // namespace

std::vector<size_t> SentenceEnds(std::u32string_view t) {
  std::vector<size_t> ends;
  size_t i = 0;
  while (i < t.size()) {
    if (!IsSentenceEnd(t[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < t.size() && IsSentenceEnd(t[j])) ++j;
    if (j == i + 1 && t[i] == '.' && IsAbbreviationDot(t, i)) {
      i = j;
      continue;
    }
    while (j < t.size() && IsCloser(t[j])) ++j;
    if (j == t.size() || unicode::IsPySpace(t[j])) ends.push_back(j);
    i = j;
  }
  if (ends.empty() || ends.back() != t.size()) ends.push_back(t.size());
  return ends;
}


}  // namespace vox
