#ifndef VOX_ENGINES_TEXT_PROTECTED_TERMS_H_
#define VOX_ENGINES_TEXT_PROTECTED_TERMS_H_

// Protected terms for translation (docs/api.md, "Protected terms"): a term's occurrences in the
// source are replaced by placeholders ("[T1]", "[T2]", ... per sentence) that a translation
// model copies, and the placeholders in the model's output are replaced by the term's required
// target text. A placeholder missing from the output is reported, never silently dropped.
//
// Matching is exact (case-sensitive) and at word edges: a term that starts or ends with a
// letter or digit does not match inside a longer word ("cat" is not found in "concatenate"),
// except in scripts written without spaces (Han, Kana, Hangul-less CJK text, Thai, Lao, Khmer,
// Myanmar), where it matches anywhere. Longer terms win over shorter ones at the same place;
// matches do not overlap.
//
// Pure functions; thread-safe.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "engines/text/sentence_splitter.h"

namespace vox {

struct ProtectedTerm {
  std::string source;  // as it appears in the source text (non-empty)
  std::string target;  // what the translation must contain instead (= source: do not translate)
};

struct TermMatch {
  ByteSpan span;    // bytes of the source text
  size_t term = 0;  // index into the terms
};

// Every occurrence of the terms in `text`, ascending, non-overlapping.
std::vector<TermMatch> FindTerms(std::string_view text, absl::Span<const ProtectedTerm> terms);

// A sentence with its terms masked.
struct MaskedText {
  std::string text;                // the sentence with placeholders
  std::vector<size_t> placeholders;  // placeholder k+1 stands for terms[placeholders[k]]
};

// Masks the matches that lie inside `sentence` (bytes of `text`); other matches are ignored.
MaskedText MaskTerms(std::string_view text, ByteSpan sentence,
                     absl::Span<const TermMatch> matches);

// The output with every placeholder replaced by its term's target (`placeholders` from the
// sentence's MaskedText). `unplaced` lists (in
// placeholder order) the terms whose placeholder the output lacks. A placeholder the model
// wrote twice is replaced both times; a placeholder number that was never issued is left as is.
struct RestoredText {
  std::string text;
  std::vector<size_t> unplaced;  // term indices
};
RestoredText RestoreTerms(std::string_view output, absl::Span<const size_t> placeholders,
                          absl::Span<const ProtectedTerm> terms);

// "[T<number>]", number from 1.
std::string Placeholder(size_t number);

}  // namespace vox

#endif  // VOX_ENGINES_TEXT_PROTECTED_TERMS_H_
