#ifndef VOX_ENGINES_TEXT_XTTS_BPE_H_
#define VOX_ENGINES_TEXT_XTTS_BPE_H_

// The byte-exact equivalent of HF tokenizers' BPE for XTTS vocabularies: added tokens cut out
// first (added_vocabulary.rs), the Whitespace pre-tokenizer, then merges (models/bpe/word.rs).
// Internal to XttsTokenizer (xtts_tokenizer.h), which holds one behind a shared_ptr;
// xtts_vocab_json.h builds it. Immutable once built: its const methods are thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vox::xtts_internal {

struct AddedToken {
  std::u32string content;
  int64_t id;
};

struct XttsBpeModel {
  std::unordered_map<std::string, int64_t> vocab;  // model.vocab plus added tokens
  size_t model_vocab_size = 0;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // pair → (rank, new id)
  std::vector<AddedToken> added_raw;         // "normalized": false (matched on the raw text)
  std::vector<AddedToken> added_normalized;  // "normalized": true (second pass)
  int64_t unk_id = -1;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  bool whitespace_pretokenizer = true;
  std::u32string first_chars;  // first code points of all added tokens (a fast pre-check)

  // The key of the pair (a, b) in `merges`.
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  int64_t Lookup(const std::string& s) const {
    auto it = vocab.find(s);
    return it == vocab.end() ? -1 : it->second;
  }

  // HF tokenizers' encode(prepared).ids for decoded text: raw added tokens cut out, then
  // normalized ones, then EncodeSegment on what is left.
  std::vector<int64_t> Encode(std::u32string_view prepared) const;

  // BPE of one pre-tokenized word; chars not in the vocab → byte fallback or [UNK].
  void MergeWord(std::u32string_view word, std::vector<int64_t>* ids) const;
  // The Whitespace pre-tokenizer (when set), then MergeWord on each piece.
  void EncodeSegment(std::u32string_view text, std::vector<int64_t>* ids) const;
  // Cuts `tokens` out of `text`, leftmost-longest and non-overlapping (AhoCorasick LeftmostLongest
  // in tokenizers' added_vocabulary.rs). Output: (piece, id) with id = -1 for text between tokens.
  void SplitAdded(std::u32string_view text, const std::vector<AddedToken>& tokens,
                  std::vector<std::pair<std::u32string_view, int64_t>>* out) const;
};

}  // namespace vox::xtts_internal

#endif  // VOX_ENGINES_TEXT_XTTS_BPE_H_
