#include "engines/text/hangul_romanize.h"

#include <array>
#include <set>
#include <string_view>

namespace vox {
namespace {

constexpr std::array<std::u32string_view, 19> kInitials = {
    U"g", U"kk", U"n", U"d", U"tt", U"l", U"m", U"b", U"pp", U"s",
    U"ss", U"", U"j", U"jj", U"ch", U"k", U"t", U"p", U"h"};
constexpr std::array<std::u32string_view, 21> kVowels = {
    U"a", U"ae", U"ya", U"yae", U"eo", U"e", U"yeo", U"ye", U"o", U"wa", U"wae",
    U"oe", U"yo", U"u", U"wo", U"we", U"wi", U"yu", U"eu", U"ui", U"i"};
constexpr std::array<std::u32string_view, 28> kFinals = {
    U"", U"g", U"kk", U"gs", U"n", U"nj", U"nh", U"d", U"l", U"lg", U"lm", U"lb", U"ls", U"lt",
    U"lp", U"lh", U"m", U"b", U"bs", U"s", U"ss", U"ng", U"j", U"ch", U"k", U"t", U"p", U"h"};

template <size_t N>
bool In(const std::array<std::u32string_view, N>& table, std::u32string_view s) {
  for (std::u32string_view t : table) {
    if (t == s) return true;
  }
  return false;
}

// _academic_ambiguous_patterns: final + initial strings with two or more splits head|tail
// (head a final, tail a non-empty initial).
const std::set<std::u32string>& AmbiguousPatterns() {
  static const auto* patterns = [] {
    auto* out = new std::set<std::u32string>();
    for (std::u32string_view f : kFinals) {
      for (std::u32string_view i : kInitials) {
        const std::u32string combined = std::u32string(f) + std::u32string(i);
        int splits = 0;
        for (size_t k = 0; k < combined.size(); ++k) {
          const std::u32string_view c(combined);
          if (In(kFinals, c.substr(0, k)) && In(kInitials, c.substr(k))) ++splits;
        }
        if (splits > 1) out->insert(combined);
      }
    }
    return out;
  }();
  return *patterns;
}

}  // namespace

std::u32string HangulRomanize(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size() * 3);
  int prev_final = -1;  // -1: no previous syllable
  for (char32_t c : text) {
    if (c < 0xAC00 || c > 0xD7A3) {
      out.push_back(c);
      prev_final = -1;
      continue;
    }
    const int index = static_cast<int>(c - 0xAC00);
    const int initial = index / 588, vowel = (index / 28) % 21, final = index % 28;
    if (prev_final >= 0 &&
        (kInitials[initial].empty() ||
         AmbiguousPatterns().count(std::u32string(kFinals[prev_final]) +
                                   std::u32string(kInitials[initial])) > 0)) {
      out.push_back(U'-');
    }
    out += kInitials[initial];
    out += kVowels[vowel];
    out += kFinals[final];
    prev_final = final;
  }
  return out;
}

}  // namespace vox
