#ifndef VOX_ENGINES_TEXT_SENTENCE_SPLITTER_H_
#define VOX_ENGINES_TEXT_SENTENCE_SPLITTER_H_

// Sentence boundaries for translation (docs/text.md, "Sentences"). The result is byte ranges
// into the caller's text, so the caller can translate each sentence and rejoin them with the
// original bytes between them (whitespace, line breaks, paragraphs) kept exactly.
//
// Rules (the language is an NLLB code such as eng_Latn; its language and script choose the
// abbreviation list and the Thai/CJK rules):
//   - a sentence ends after a run of . ! ? … (and ‼ ⁇ ⁈ ⁉ ؟ ۔ । ॥ ։ ። ။ ๚ ๛, Greek ;), plus any
//     closing quotes and brackets, when whitespace or the end of the text follows;
//   - CJK 。！？｡ end a sentence even without whitespace after them;
//   - not after a '.' that belongs to a number (3.5), an abbreviation of the language ("Dr.",
//     "z.B.", "Sra."), a single-letter initial ("J."), or when the next word starts with a
//     lowercase letter ("approx. five", "Wait... what");
//   - every line break ends a sentence (so lines and paragraphs come back as they were);
//   - Thai (tha_Thai) and Lao: whitespace between two letters of that script ends a sentence,
//     except after ฯ or ๆ;
//   - never inside a protected span: a boundary strictly inside one is dropped.
// Invalid UTF-8 bytes are treated as non-letters, one byte each; the splitter never fails.
//
// Every caller that cuts text into sentences uses it: Translate, XTTS's pieces (SplitForXtts in
// xtts_tokenizer.h packs these sentences into its token budget) and SynthesizeStream's live text
// (live_text_segmenter.h).
//
// Pure functions; thread-safe.

#include <cstddef>
#include <string_view>
#include <vector>

#include "absl/types/span.h"

namespace vox {

// Bytes [begin, end) of a text.
struct ByteSpan {
  size_t begin = 0;
  size_t end = 0;
  bool operator==(const ByteSpan& o) const { return begin == o.begin && end == o.end; }
};

// The sentences of `text`, in order, each without its surrounding whitespace; what lies between
// two spans (and before the first, after the last) is whitespace only. Blank text has none.
// `protected_spans` (any order; may overlap) are never cut.
std::vector<ByteSpan> SplitSentences(std::string_view text, std::string_view nllb_language,
                                     absl::Span<const ByteSpan> protected_spans = {});

}  // namespace vox

#endif  // VOX_ENGINES_TEXT_SENTENCE_SPLITTER_H_
