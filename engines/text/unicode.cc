#include "engines/text/unicode.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_format.h"

namespace vox::unicode {
namespace {

struct CodeRange {
  char32_t first;
  char32_t last;
};
struct LowerRange {
  char32_t first;
  char32_t last;
  int32_t stride;
  int32_t delta;
};
struct IgnoreCasePair {
  char32_t pattern;
  char32_t other;
};

#include "engines/text/unicode_tables.inc"

template <size_t N>
bool InRanges(const CodeRange (&table)[N], char32_t c) {
  const CodeRange* end = table + N;
  const CodeRange* it =
      std::upper_bound(table, end, c, [](char32_t v, const CodeRange& r) { return v < r.first; });
  if (it == table) return false;
  --it;
  return c <= it->last;
}

char32_t SimpleLower(char32_t c) {
  const LowerRange* end = kPyLower + sizeof(kPyLower) / sizeof(kPyLower[0]);
  const LowerRange* it = std::upper_bound(
      kPyLower, end, c, [](char32_t v, const LowerRange& r) { return v < r.first; });
  if (it == kPyLower) return c;
  --it;
  if (c > it->last || (c - it->first) % it->stride != 0) return c;
  return static_cast<char32_t>(static_cast<int64_t>(c) + it->delta);
}

bool IsCased(char32_t c) { return InRanges(kCased, c); }
bool IsCaseIgnorable(char32_t c) { return InRanges(kCaseIgnorable, c); }

// CPython's handle_capital_sigma (Objects/unicodeobject.c).
char32_t LowerSigma(std::u32string_view s, size_t i) {
  size_t j = i;
  char32_t c = 0;
  bool found = false;
  while (j > 0) {
    --j;
    c = s[j];
    if (!IsCaseIgnorable(c)) {
      found = true;
      break;
    }
  }
  bool final_sigma = found && IsCased(c);
  if (final_sigma && i + 1 < s.size()) {
    size_t k = i + 1;
    for (; k < s.size(); ++k) {
      c = s[k];
      if (!IsCaseIgnorable(c)) break;
    }
    final_sigma = k == s.size() || !IsCased(c);
  }
  return final_sigma ? 0x3C2 : 0x3C3;
}

}  // namespace

size_t DecodeUtf8At(std::string_view s, size_t i, char32_t* out, size_t* bad_byte) {
  const size_t n = s.size();
  auto bad = [&](size_t at) -> size_t {
    *out = 0xFFFD;
    if (bad_byte != nullptr) *bad_byte = at;
    return 0;
  };
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *out = b0;
    return 1;
  }
  size_t len;
  char32_t c;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, c = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, c = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, c = b0 & 0x07, min = 0x10000;
  } else {
    return bad(i);
  }
  if (i + len > n) return bad(i);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return bad(i + k);
    c = (c << 6) | (b & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return bad(i);
  *out = c;
  return len;
}

absl::StatusOr<std::u32string> DecodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char32_t c;
    size_t bad_byte = 0;
    const size_t len = DecodeUtf8At(s, i, &c, &bad_byte);
    if (len == 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("invalid UTF-8 at byte %d of %d (0x%02X); text must be UTF-8",
                          bad_byte, s.size(), static_cast<unsigned char>(s[bad_byte])));
    }
    out.push_back(c);
    i += len;
  }
  return out;
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string EncodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) AppendUtf8(c, &out);
  return out;
}

namespace {
// ASCII answers precomputed from the tables (bit per class), the common case in the hot loops.
enum : uint8_t {
  kBitRustWord = 1,
  kBitRustSpace = 2,
  kBitPyWord = 4,
  kBitPySpace = 8,
  kBitPyDigit = 16
};
struct AsciiClasses {
  uint8_t bits[128];
  AsciiClasses() {
    for (char32_t c = 0; c < 128; ++c) {
      bits[c] =
          (InRanges(kRustWord, c) ? kBitRustWord : 0) |
          (InRanges(kRustSpace, c) ? kBitRustSpace : 0) | (InRanges(kPyWord, c) ? kBitPyWord : 0) |
          (InRanges(kPySpace, c) ? kBitPySpace : 0) | (InRanges(kPyDigit, c) ? kBitPyDigit : 0);
    }
  }
};
const AsciiClasses& Ascii() {
  static const AsciiClasses* a = new AsciiClasses();
  return *a;
}
}  // namespace

bool IsRustWord(char32_t c) {
  return c < 128 ? (Ascii().bits[c] & kBitRustWord) != 0 : InRanges(kRustWord, c);
}
bool IsRustSpace(char32_t c) {
  return c < 128 ? (Ascii().bits[c] & kBitRustSpace) != 0 : InRanges(kRustSpace, c);
}
bool IsPyWord(char32_t c) {
  return c < 128 ? (Ascii().bits[c] & kBitPyWord) != 0 : InRanges(kPyWord, c);
}
bool IsPySpace(char32_t c) {
  return c < 128 ? (Ascii().bits[c] & kBitPySpace) != 0 : InRanges(kPySpace, c);
}
bool IsPyDigit(char32_t c) {
  return c < 128 ? (Ascii().bits[c] & kBitPyDigit) != 0 : InRanges(kPyDigit, c);
}

bool PyIgnoreCaseMatches(char32_t pattern, char32_t c) {
  if (c == pattern) return true;
  for (const IgnoreCasePair& p : kPyIgnoreCaseExtra) {
    if (p.pattern == pattern && p.other == c) return true;
  }
  return false;
}

std::u32string PyLower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c < 0x80) {
      out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    } else if (c == 0x130) {
      out.push_back(0x69);
      out.push_back(0x307);
    } else if (c == 0x3A3) {
      out.push_back(LowerSigma(text, i));
    } else {
      out.push_back(SimpleLower(c));
    }
  }
  return out;
}

std::u32string_view PyStrip(std::u32string_view text) {
  size_t b = 0, e = text.size();
  while (b < e && IsPySpace(text[b])) ++b;
  while (e > b && IsPySpace(text[e - 1])) --e;
  return text.substr(b, e - b);
}

size_t CodePoints(std::string_view utf8) {
  size_t n = 0;
  for (const char c : utf8) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string PyDropLast(const std::string& s, size_t k) {
  size_t end = s.size();
  while (k > 0 && end > 0) {
    --end;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    --k;
  }
  return s.substr(0, end);
}

}  // namespace vox::unicode
