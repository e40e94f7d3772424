#ifndef VOX_ENGINES_TRANSLATE_NLLB_SOURCE_TOKENIZER_H_
#define VOX_ENGINES_TRANSLATE_NLLB_SOURCE_TOKENIZER_H_

// NLLB source text -> model ids as transformers' NllbTokenizerFast gives them (the upstream
// reference for NLLB's outputs; tests/upstream_nllb compares the two on 1,000+ strings):
//  - [src_lang] + pieces + [</s>]; pieces are SentencePiece's ids + the fairseq offset, its unk -> 3.
//  - Text spelling an added token (<s>, <pad>, </s>, <unk>, a language code, <mask>) is that
//    token's id, as in transformers; the text between is tokenized piece by piece on its own.
//    Whitespace just before <mask> is dropped (its lstrip).
//  - A text (or a part between added tokens) ending in whitespace gets a final "▁" piece:
//    transformers keeps one trailing space where SentencePiece's normaliser strips it.
//  - Hangul conjoining jamo that compose into a syllable (L+V, LV+T) are refused
//    (INVALID_ARGUMENT): SentencePiece's normaliser composes them and transformers' does not, so
//    no choice matches both; precomposed syllables (NFC text) are fine.
// Thread-safe (const after construction); borrows the SentencePiece model, which must outlive it.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engines/text/sentencepiece_tokenizer.h"

namespace vox {

class NllbSourceTokenizer {
 public:
  struct Ids {
    int64_t bos = 0, pad = 1, eos = 2, unk = 3;
    int64_t fairseq_offset = 1;
  };
  // `languages`: code -> model id. <mask> is the id after the last language code, as in
  // transformers' NLLB vocabulary (only when it is inside `vocab_size`).
  NllbSourceTokenizer(const SentencePieceTokenizer* spm, const Ids& ids,
                      const std::vector<std::pair<std::string, int64_t>>& languages, int64_t vocab_size);

  // Model ids of `text` with source language id `lang`. INVALID_ARGUMENT for composable jamo;
  // a SentencePiece failure passes through.
  absl::StatusOr<std::vector<int64_t>> Encode(absl::string_view text, int64_t lang) const;

 private:
  absl::Status AppendPieces(absl::string_view part, std::vector<int64_t>* out) const;
  absl::StatusOr<std::string> Normalized(absl::string_view text) const;  // pieces joined
  absl::StatusOr<bool> EndsWithSpace(absl::string_view part) const;

  const SentencePieceTokenizer* spm_;
  Ids ids_;
  std::vector<std::pair<std::string, int64_t>> added_;  // longest first
  std::string mask_;
  int64_t space_id_;  // the "▁" piece, or unk when the model has none
  std::string probe_;  // a character that is a piece of its own ("" = none found)
};

}  // namespace vox

#endif  // VOX_ENGINES_TRANSLATE_NLLB_SOURCE_TOKENIZER_H_
