// SplitForXtts, declared in xtts_tokenizer.h: Translate's sentences (sentence_splitter.h), packed
// into pieces under the id limit, over-long sentences cut.
#include "engines/text/xtts_tokenizer.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "engines/text/sentence_splitter.h"
#include "engines/text/unicode.h"

namespace vox {

absl::StatusOr<std::vector<std::string>> SplitForXtts(const XttsTokenizer& tokenizer,
                                                      std::string_view text,
                                                      std::string_view xtts_lang,
                                                      std::string_view nllb_language,
                                                      size_t max_ids) {
  auto decoded = unicode::DecodeUtf8(text);
  if (!decoded.ok()) return decoded.status();
  const std::u32string t = std::move(*decoded);
  // Number of ids of t[b, e), or an error.
  auto count = [&](size_t b, size_t e) -> absl::StatusOr<size_t> {
    auto ids =
        tokenizer.Encode(unicode::EncodeUtf8(std::u32string_view(t).substr(b, e - b)), xtts_lang);
    if (!ids.ok()) return ids.status();
    return ids->size();
  };
  // Validate the language (and the vocab's language token) once, even for empty input.
  auto base = count(0, 0);
  if (!base.ok()) return base.status();
  if (max_ids <= *base + 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "max_ids %d is too small: the language token alone takes %d id(s)", max_ids, *base));
  }

  std::vector<std::string> pieces;
  auto emit = [&](size_t b, size_t e) -> absl::Status {
    std::u32string_view v = unicode::PyStrip(std::u32string_view(t).substr(b, e - b));
    if (v.empty()) return absl::OkStatus();
    auto ids = tokenizer.Encode(unicode::EncodeUtf8(v), xtts_lang);
    if (!ids.ok()) return ids.status();
    if (ids->size() > *base) pieces.push_back(unicode::EncodeUtf8(v));
    return absl::OkStatus();
  };
  auto fits = [&](size_t b, size_t e) -> absl::StatusOr<bool> {
    auto n = count(b, e);
    if (!n.ok()) return n.status();
    return *n < max_ids;
  };

  // Cuts an over-long span [b, e) into pieces that fit: at the last comma or semicolon, else the
  // last space,
  // else the last character boundary outside a number, else any character boundary, that keeps
  // the prefix under the limit.
  auto cut_long = [&](size_t b, size_t e) -> absl::Status {
    while (b < e) {
      size_t cut = 0;
      for (int level = 0; level < 4 && cut == 0; ++level) {
        std::vector<size_t> candidates;  // ascending cut positions of this kind, then e itself
        size_t first_text = b;           // a prefix [b, k) is blank unless k > first_text
        while (first_text < e && unicode::IsPySpace(t[first_text])) ++first_text;
        for (size_t k = first_text + 1; k < e; ++k) {
          bool boundary;
          if (level == 0) {
            const char32_t c = t[k - 1];
            boundary = (c == ',' || c == ';' || c == 0x3001 || c == 0xFF0C || c == 0xFF1B) &&
                       unicode::IsPySpace(t[k]);
          } else if (level == 1) {
            boundary = unicode::IsPySpace(t[k]) && !unicode::IsPySpace(t[k - 1]);
          } else if (level == 2) {  // between characters, but not inside a number
            boundary = !(unicode::IsPyDigit(t[k - 1]) && unicode::IsPyDigit(t[k])) &&
                       !(t[k - 1] == '.' || t[k - 1] == ',' || t[k - 1] == '$');
          } else {
            boundary = true;
          }
          if (boundary) candidates.push_back(k);
        }
        // The whole rest is tried last, at the first level that has any cut position.
        if (!candidates.empty() || level == 3) candidates.push_back(e);
        if (candidates.empty()) continue;
        // The id count grows (almost) monotonically with the prefix: gallop from the short end,
        // then binary-search the last candidate that fits. Costs O(log n) encodes of about one
        // piece each, however long the remaining span is.
        size_t good = candidates.size();  // index of the last candidate known to fit
        size_t bad = candidates.size();   // index of the first candidate known not to fit
        size_t probe = 0, step = 1;
        while (probe < candidates.size()) {
          auto ok = fits(b, candidates[probe]);
          if (!ok.ok()) return ok.status();
          if (!*ok) {
            bad = probe;
            break;
          }
          good = probe;
          probe += step;
          step *= 2;
        }
        if (good == candidates.size()) continue;  // not even the shortest prefix fits
        if (bad == candidates.size() && good + 1 < candidates.size()) bad = candidates.size();
        size_t lo = good + 1, hi = bad;  // search (good, bad)
        while (lo < hi) {
          const size_t mid = lo + (hi - lo) / 2;
          auto ok = fits(b, candidates[mid]);
          if (!ok.ok()) return ok.status();
          if (*ok) {
            good = mid;
            lo = mid + 1;
          } else {
            hi = mid;
          }
        }
        cut = candidates[good];
      }
      if (cut == 0) {
        std::string ch;
        unicode::AppendUtf8(t[b], &ch);
        return absl::InvalidArgumentError(absl::StrFormat(
            "max_ids %d is too small: '%s' alone encodes to %d or more ids", max_ids, ch, max_ids));
      }
      absl::Status s = emit(b, cut);
      if (!s.ok()) return s;
      b = cut;
      while (b < e && unicode::IsPySpace(t[b])) ++b;
    }
    return absl::OkStatus();
  };

  // Each sentence is encoded once. BPE never merges across a space ([SPACE] is an added token)
  // and the cleaners act within sentences, so a run of sentences i..j takes about
  // base + sum(count) + (j - i) ids (one [SPACE] per join): that estimate picks the run, and
  // exact encodes of the run confirm it (shrinking or growing it by whole sentences), so each
  // piece costs a couple of encodes however many sentences it packs.
  // Sentence i is [begins[i], ends[i]) in code points: from the end of the one before (so the
  // whitespace between them goes with it; emit trims it) to the end of its span.
  std::vector<size_t> ends;
  {
    size_t byte = 0, code_points = 0;  // code points in text[0, byte)
    for (const ByteSpan& span : SplitSentences(text, nllb_language)) {
      for (; byte < span.end; ++byte) {
        if ((static_cast<unsigned char>(text[byte]) & 0xC0) != 0x80) ++code_points;
      }
      ends.push_back(code_points);
    }
  }
  std::vector<size_t> begins(ends.size());
  std::vector<size_t> counts(ends.size());  // ids beyond the language token
  for (size_t i = 0; i < ends.size(); ++i) {
    begins[i] = i == 0 ? 0 : ends[i - 1];
    auto n = count(begins[i], ends[i]);
    if (!n.ok()) return n.status();
    counts[i] = *n > *base ? *n - *base : 0;
  }
  size_t i = 0;
  while (i < ends.size()) {
    if (*base + counts[i] >= max_ids) {  // exact for a single sentence
      absl::Status s = cut_long(begins[i], ends[i]);
      if (!s.ok()) return s;
      ++i;
      continue;
    }
    size_t j = i;
    size_t estimate = *base + counts[i];
    while (j + 1 < ends.size() && estimate + 1 + counts[j + 1] < max_ids) {
      ++j;
      estimate += 1 + counts[j];
    }
    while (j > i) {  // shrink while the exact count disagrees
      auto ok = fits(begins[i], ends[j]);
      if (!ok.ok()) return ok.status();
      if (*ok) break;
      --j;
    }
    while (j + 1 < ends.size()) {  // grow while the exact count still fits
      auto ok = fits(begins[i], ends[j + 1]);
      if (!ok.ok()) return ok.status();
      if (!*ok) break;
      ++j;
    }
    absl::Status s = emit(begins[i], ends[j]);
    if (!s.ok()) return s;
    i = j + 1;
  }
  return pieces;
}

}  // namespace vox
