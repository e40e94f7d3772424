#ifndef VOX_ENGINES_TEXT_XTTS_VOCAB_JSON_H_
#define VOX_ENGINES_TEXT_XTTS_VOCAB_JSON_H_

// Reads an HF tokenizers JSON file's text (an XTTS checkpoint's vocab.json) into an XttsBpeModel,
// refusing anything the BPE port does not reproduce exactly. Internal to XttsTokenizer
// (xtts_tokenizer.h). A pure function: thread-safe.

#include <string_view>

#include "absl/status/statusor.h"
#include "engines/text/xtts_bpe.h"

namespace vox::xtts_internal {

// InvalidArgument naming the field when the text is not JSON, not a BPE model, or uses a feature
// the port lacks (a normalizer, a post-processor, a pre-tokenizer other than Whitespace,
// subword prefixes or suffixes, dropout, single_word/lstrip/rstrip added tokens), or when a merge
// or the unk token names a token missing from model.vocab. Cost: one pass over the text.
absl::StatusOr<XttsBpeModel> ParseXttsVocabJson(std::string_view json_text);

}  // namespace vox::xtts_internal

#endif  // VOX_ENGINES_TEXT_XTTS_VOCAB_JSON_H_
