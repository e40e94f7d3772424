#ifndef VOX_ENGINES_TEXT_XTTS_TOKENIZER_H_
#define VOX_ENGINES_TEXT_XTTS_TOKENIZER_H_

// XTTS v2's text front end: cleaning (text_cleaner.h), the "[lang]" prefix, "[SPACE]" for spaces,
// and the byte-exact equivalent of HF tokenizers' BPE over the checkpoint's vocab.json
// (shared/XTTS_FACTS.md §5). docs/text.md says which language gets which cleaning.
// The BPE itself is xtts_bpe.h, the vocab.json reader xtts_vocab_json.h; SplitForXtts is
// defined in xtts_sentence_split.cc.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vox {

class XttsTokenizer {
 public:
  // Reads an HF tokenizers JSON file (vocab.json of an XTTS checkpoint / exported model dir).
  // Fails with a message naming the file and field when it is not a BPE model of that shape.
  // Cost: parses the whole file once (the real vocab: ~6.7k tokens, a few ms).
  static absl::StatusOr<XttsTokenizer> FromFile(const std::string& vocab_json_path);
  // Same from the JSON text itself (tests build small vocabularies in memory).
  static absl::StatusOr<XttsTokenizer> FromJson(std::string_view json_text);

  // Immutable after construction; every const method is thread-safe. Cheap to copy (shared state).
  XttsTokenizer(const XttsTokenizer&) = default;
  XttsTokenizer& operator=(const XttsTokenizer&) = default;
  XttsTokenizer(XttsTokenizer&&) = default;
  XttsTokenizer& operator=(XttsTokenizer&&) = default;
  ~XttsTokenizer();

  // What Xtts.inference + VoiceBpeTokenizer.encode do: strip, lowercase, clean for `xtts_lang`
  // (CleanText), prefix "[lang]" ("zh"/"zh-cn" → "[zh-cn]"), replace every " " by "[SPACE]",
  // then BPE. `xtts_lang` is an XTTS code ("en", "es", ...; XttsCleanerLanguages() in
  // text_cleaner.h). Text that cleans to nothing gives just the language token.
  // Errors (InvalidArgument): invalid UTF-8 (names the byte offset), a language this front end
  // does not support (lists the supported ones), a language whose "[lang]" token the vocab lacks,
  // a number too large for num2words (as Coqui raises).
  // Does not enforce any length limit: use SplitForXtts or check ids.size() yourself.
  // Cost: linear in the text length, about 1-2 µs per character on one core here.
  absl::StatusOr<std::vector<int64_t>> Encode(std::string_view text,
                                              std::string_view xtts_lang) const;

  // The string Encode feeds to BPE: "[en]hello[SPACE]world" (for logs and the comparison tool).
  absl::StatusOr<std::string> Prepare(std::string_view text, std::string_view xtts_lang) const;

  // HF tokenizers' encode(prepared).ids without any cleaning: added tokens cut out first
  // (leftmost-longest), Whitespace pre-tokenizer, BPE; chars not in the vocab → [UNK] (not fused).
  // InvalidArgument on invalid UTF-8.
  absl::StatusOr<std::vector<int64_t>> EncodeRaw(std::string_view prepared) const;

  // Id of `token` in the vocab (added tokens included), or -1 if absent.
  int64_t TokenId(std::string_view token) const;
  // Number of entries of model.vocab (added tokens that are also in it counted once).
  size_t VocabSize() const;
  int64_t unk_id() const;    // "[UNK]"
  int64_t space_id() const;  // "[SPACE]", -1 if absent

 private:
  struct Impl;
  explicit XttsTokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// "[en]", "[es]", "[zh-cn]" for "zh" and "zh-cn": the language token XTTS prefixes.
std::string XttsLanguageToken(std::string_view xtts_lang);

// Splits `text` (raw, before cleaning) into sentences with Translate's splitter in
// `nllb_language` (sentence_splitter.h: abbreviations, decimals, line breaks, CJK) and packs
// consecutive sentences into one piece while it still encodes to fewer than `max_ids` ids (XTTS
// v2: gpt_max_text_tokens = 402, and xtts.py asserts len(ids) < 402). A sentence that alone is
// too long is cut at the last comma or semicolon, else the last space, else between characters
// outside numbers, else anywhere, that keeps it under the limit. Pieces are substrings of `text`
// (whitespace-trimmed); each one, encoded with `tokenizer.Encode(piece, xtts_lang)`, has fewer
// than `max_ids` ids. Pieces that clean to nothing (only the language token) are dropped, so an
// empty result means nothing to speak.
// Errors: those of Encode (bad UTF-8, language), or max_ids too small for the language token plus
// one character (InvalidArgument naming max_ids). Thread-safe. Cost: a few Encode calls per
// sentence; quadratic in the length of a single over-long sentence (last-resort cutting).
absl::StatusOr<std::vector<std::string>> SplitForXtts(const XttsTokenizer& tokenizer,
                                                      std::string_view text,
                                                      std::string_view xtts_lang,
                                                      std::string_view nllb_language,
                                                      size_t max_ids);

}  // namespace vox

#endif  // VOX_ENGINES_TEXT_XTTS_TOKENIZER_H_
