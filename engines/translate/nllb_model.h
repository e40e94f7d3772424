#ifndef VOX_ENGINES_TRANSLATE_NLLB_MODEL_H_
#define VOX_ENGINES_TRANSLATE_NLLB_MODEL_H_

// Internal to engines/translate (it includes LibTorch; only this folder's .cc files include it).
// NllbModel is one loaded NLLB export: its typed manifest, the TorchScript module, the
// SentencePiece tokenizer, and the cache-row operations every decode uses (encode, reserve, one
// decoder step, row copies). Immutable after Load: an engine and its replicas share it through
// a shared_ptr<const NllbModel>, and its const methods may run on several threads at once; the
// caches (Slots) belong to the caller, one per thread.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/jit/api/module.h>
#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engines/core/engine_options.h"
#include "engines/core/languages.h"
#include "engines/translate/nllb_source_tokenizer.h"
#include "engines/core/model_info.h"
#include "engines/core/translation_engine.h"
#include "engines/text/sentencepiece_tokenizer.h"
#include "engines/torch/device.h"
#include "engines/translate/nllb_manifest.h"

namespace vox {

struct NllbModel : NllbManifest {
  ModelInfo info;
  DevicePlacement device;
  DType dtype = DType::kFloat32;
  std::shared_ptr<torch::jit::Module> module;
  bool has_fill_slots = false;  // exporter version >= 6
  std::unique_ptr<SentencePieceTokenizer> spm;
  std::unique_ptr<NllbSourceTokenizer> source_tokenizer;  // over spm: transformers' framing

  // Loads model.ts and the tokenizer of `manifest` on options.device in options.dtype (or the
  // exported dtype). FAILED_PRECONDITION naming the file and the field for a bad export.
  static absl::StatusOr<std::unique_ptr<NllbModel>> Load(const std::string& name,
                                                         NllbManifest manifest,
                                                         const EngineOptions& options);

  // ---- decoding over preallocated cache rows ----

  // Cross-attention keys/values and masks of freshly encoded sources, one row per text.
  struct Encoded {
    std::vector<torch::Tensor> cross;  // 2 * layers, each [n, H, s, hd]
    torch::Tensor mask;                // [n, s] int64, 1 = real token
  };

  // Decoder caches for up to rows() decoder rows (sequences or beams), allocated ahead and
  // written in place (DESIGN.md, "KV caches"): decode_slots writes row r's step at column
  // cache_len of row r and reads columns 0..cache_len, so rows of any age share a step and rows
  // never move unless their owner moves them. A step also reads (masked) the columns up to the
  // longest row, which must be finite (0 * NaN is NaN): the self caches are allocated
  // uninitialised and Step zeroes a row's columns past clean[r] just before they are first read.
  struct Slots {
    std::vector<torch::Tensor> self_kv;  // 2 * layers, each [N, H, C, hd]
    std::vector<torch::Tensor> cross;    // 2 * layers, each [N, H, S, hd] (zeroed or encoded)
    torch::Tensor encoder_mask;          // [N, S] int64
    std::vector<int64_t> clean;          // per row: self-cache columns [0, clean) are finite
    int64_t rows() const { return encoder_mask.defined() ? encoder_mask.size(0) : 0; }
    int64_t columns() const { return self_kv.empty() ? 0 : self_kv[0].size(2); }
    int64_t sources() const { return encoder_mask.defined() ? encoder_mask.size(1) : 0; }
  };

  absl::StatusOr<std::vector<int64_t>> Tokenize(const std::string& text, int64_t lang) const {
    return source_tokenizer->Encode(text, lang);
  }

  absl::StatusOr<int64_t> Language(const std::string& code, const char* what) const {
    auto it = language_ids.find(code);
    if (it == language_ids.end()) {
      return absl::InvalidArgumentError(UnknownValueMessage(what, code, language_codes));
    }
    return it->second;
  }

  // Tokenizes and checks every text; INVALID_ARGUMENT names the text's index.
  absl::StatusOr<std::vector<std::vector<int64_t>>> PrepareSources(
      const std::vector<std::string>& texts, int64_t src) const {
    if (texts.empty()) return absl::InvalidArgumentError("no texts to translate");
    std::vector<std::vector<int64_t>> out;
    out.reserve(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      if (absl::StripAsciiWhitespace(texts[i]).empty()) {
        return absl::InvalidArgumentError(absl::StrCat("text ", i, " is empty"));
      }
      auto ids = Tokenize(texts[i], src);
      if (!ids.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("text ", i, ": cannot tokenize: ", ids.status().message()));
      }
      if (static_cast<int>(ids->size()) > max_source_tokens) {
        return absl::InvalidArgumentError(absl::StrCat(
            "text ", i, " is too long: ", ids->size(), " tokens; ", info.name,
            " takes at most ", max_source_tokens,
            " (including the language token and </s>); split it into sentences"));
      }
      out.push_back(*std::move(ids));
    }
    return out;
  }

  absl::StatusOr<int> MaxLength(int requested) const {
    const int cap = std::max(1, max_positions - 2);
    if (requested < 0 || requested > cap) {
      return absl::InvalidArgumentError(absl::StrCat("max_length ", requested,
                                                     " out of range; allowed: 1..", cap,
                                                     " (0 = default ", std::min(default_max_length, cap), ")"));
    }
    return requested == 0 ? std::min(default_max_length, cap) : requested;
  }

  torch::TensorOptions IntOptions() const {
    return torch::TensorOptions().dtype(torch::kInt64).device(ToTorchDevice(device));
  }

  // Runs the encoder and cross_kv over right-padded sources.
  Encoded Encode(const std::vector<std::vector<int64_t>>& sources) const;

  // Grows `slots` (by at least half, rounded up) to hold `rows` rows of `columns` self-cache
  // columns and `sources` source positions; what it held is kept. Never shrinks.
  void Reserve(Slots& slots, int64_t rows, int64_t columns, int64_t sources) const;

  // Makes `encoded` the cross-attention part of empty `slots` (row r = source r) without a copy;
  // Reserve then adds the self caches.
  static void AdoptSources(Slots& slots, Encoded encoded);

  // Reserve(slots, rows, columns, encoded's width), then source which[r] of `encoded` into cache
  // row first + r for each r (the source positions past its width masked), one layer at a time:
  // each layer's encoded keys and values are released once written, so a join never holds all
  // of them and the grown caches at once. On failure `slots` keeps what it held.
  void Join(Slots& slots, int64_t rows, int64_t columns, int64_t first, Encoded encoded,
            const std::vector<int64_t>& which) const;

  // Copies cache rows `from` to rows `to` (same count; they may overlap): the self cache's first
  // `columns` columns (at least each source row's length) and, when `sources` > 0, the first
  // `sources` source positions and the mask.
  static void CopyRows(Slots& slots, const std::vector<int64_t>& from,
                       const std::vector<int64_t>& to, int64_t columns, int64_t sources);

  // One decoder step (decode_slots): row b feeds tokens[b] at column cache_lens[b] of its cache
  // row and reads the first `sources` source positions. Cache row of b: index[b], or first + b
  // when index is empty (views: nothing copied). Returns the float32 logits [B, V] on the CPU.
  torch::Tensor Step(Slots& slots, const std::vector<int64_t>& tokens,
                     const std::vector<int64_t>& cache_lens, int64_t sources, int64_t first,
                     const std::vector<int64_t>& index) const;

  // Step for tokens whose next-token logits nobody reads (the forced decoder start): the same
  // cache columns written, without the output projection (fill_slots; decode_slots on exports
  // that lack it).
  void Fill(Slots& slots, const std::vector<int64_t>& tokens, const std::vector<int64_t>& cache_lens,
            int64_t sources, int64_t first, const std::vector<int64_t>& index) const;

  absl::StatusOr<std::string> Detokenize(const std::vector<int64_t>& ids) const {
    // SentencePiece's <unk>, <s>, </s> (pieces 0..2) come first; model ids below
    // 3 + offset are specials, ids past the pieces are language codes and <mask>.
    const int64_t first_piece = 3 + fairseq_offset;
    std::vector<int32_t> pieces;
    pieces.reserve(ids.size());
    for (int64_t id : ids) {
      if (id < first_piece || id >= spm_size + fairseq_offset) continue;
      if (id == bos || id == pad || id == eos || id == unk) continue;
      pieces.push_back(static_cast<int32_t>(id - fairseq_offset));
    }
    // SentencePiece's own decoding: U+2581 -> ' ', leading space removed.
    auto text = spm->Decode(pieces);
    if (!text.ok()) return text.status();
    return std::string(absl::StripAsciiWhitespace(*text));
  }

 private:
  // Reserve, and with `joining` Join's writes, layer by layer.
  void Grow(Slots& slots, int64_t rows, int64_t columns, int64_t sources, Encoded* joining,
            int64_t first, const std::vector<int64_t>& which) const;
};

}  // namespace vox

#endif  // VOX_ENGINES_TRANSLATE_NLLB_MODEL_H_
