#ifndef VOX_ENGINES_TEXT_LIVE_TEXT_SEGMENTER_H_
#define VOX_ENGINES_TEXT_LIVE_TEXT_SEGMENTER_H_

// Cuts text that arrives in pieces (a language model's tokens) into utterances to speak as soon
// as each is complete (SynthesizeStream). The rule, in order, over the text not yet cut:
//   1. each sentence that Translate's splitter (sentence_splitter.h, in the text's language)
//      ends before the last one; a sentence whose end punctuation is followed by whitespace
//      counts as ended, so "Dr." or "3." followed by more text are not cut, and CJK "。"
//      needs no space after it;
//   2. a clause, once the text is long: with at least `clause_min_chars` characters buffered,
//      everything up to the last clause mark (, ; : — – 、 ，) followed by whitespace;
//   3. a hard cut: with more than `max_chars` characters and no boundary, everything up to the
//      last whitespace (or all of it, when it has none).
// Flush() returns the rest, complete or not. Utterances are substrings of the input, trimmed;
// blank ones are never returned. Thread-compatible (one owner); each Append costs O(buffered).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace vox {

class LiveTextSegmenter {
 public:
  struct Options {
    size_t clause_min_chars = 80;
    size_t max_chars = 300;
    std::string language;  // NLLB code: the sentence splitter's language rules
  };
  explicit LiveTextSegmenter(Options options) : options_(std::move(options)) {}

  // Appends `piece` (valid UTF-8: INVALID_ARGUMENT otherwise, and nothing is appended) and
  // returns the utterances it completed, in order.
  absl::StatusOr<std::vector<std::string>> Append(std::string_view piece);

  // Everything buffered as one utterance (nullopt when blank); the buffer is then empty.
  std::optional<std::string> Flush();

  // Bytes buffered and not yet returned.
  size_t buffered_bytes() const { return buffer_.size(); }

 private:
  Options options_;
  std::string buffer_;
};

}  // namespace vox

#endif  // VOX_ENGINES_TEXT_LIVE_TEXT_SEGMENTER_H_
