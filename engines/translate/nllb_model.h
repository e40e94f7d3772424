#ifndef VOX_ENGINES_TRANSLATE_NLLB_MODEL_H_
#define VOX_ENGINES_TRANSLATE_NLLB_MODEL_H_

// Internal to engines/translate (it includes LibTorch; only this folder's .cc files include it).
// NllbModel is one loaded NLLB export: its typed manifest, the TorchScript module, the
// SentencePiece tokenizer, and the row-batch operations every decode uses (encode, one decoder
// step, row selection). Immutable after Load: an engine and its replicas share it through a
// shared_ptr<const NllbModel>, and its const methods may run on several threads at once.

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
  std::unique_ptr<SentencePieceTokenizer> spm;
  std::unique_ptr<NllbSourceTokenizer> source_tokenizer;  // over spm: transformers' framing

  // Loads model.ts and the tokenizer of `manifest` on options.device in options.dtype (or the
  // exported dtype). FAILED_PRECONDITION naming the file and the field for a bad export.
  static absl::StatusOr<std::unique_ptr<NllbModel>> Load(const std::string& name,
                                                         NllbManifest manifest,
                                                         const EngineOptions& options);

  // ---- decoding over a batch of rows ----

  // The state of a batch of decoder rows (sequences or beams). Every row carries its own
  // position and its own rows of the self-attention cache and of the cross-attention keys and
  // values, so rows can leave (finished), be reordered (beams) or, later, join (continuous
  // batching) by selecting rows; self_mask hides cache entries a row does not own.
  struct DecodeRows {
    std::vector<torch::Tensor> cross;    // 2 * layers, each [R, H, S, hd]
    torch::Tensor encoder_mask;          // [R, S] int64, 1 = real token
    std::vector<torch::Tensor> self_kv;  // 2 * layers, each [R, H, T, hd]
    torch::Tensor self_mask;             // [R, T] int64
    std::vector<int64_t> positions;      // position of each row's next input token
    std::vector<int> row_text;           // which input text each row belongs to
    int64_t rows() const { return static_cast<int64_t>(positions.size()); }
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

  // Runs the encoder over right-padded sources and prepares one decoder row per text.
  DecodeRows Encode(const std::vector<std::vector<int64_t>>& sources) const {
    const int64_t n = static_cast<int64_t>(sources.size());
    int64_t s = 0;
    for (const auto& ids : sources) s = std::max<int64_t>(s, static_cast<int64_t>(ids.size()));
    torch::Tensor ids = torch::full({n, s}, pad, torch::kInt64);
    torch::Tensor mask = torch::zeros({n, s}, torch::kInt64);
    auto ids_a = ids.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    for (int64_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < sources[i].size(); ++j) {
        ids_a[i][j] = sources[i][j];
        mask_a[i][j] = 1;
      }
    }
    const auto dev = ToTorchDevice(device);
    ids = ids.to(dev);
    mask = mask.to(dev);
    torch::Tensor enc = module->get_method("encode")({ids, mask}).toTensor();
    DecodeRows rows;
    for (const auto& t : module->get_method("cross_kv")({enc}).toTensorList()) {
      rows.cross.push_back(t);
    }
    rows.encoder_mask = mask;
    const auto kv_options = torch::TensorOptions().dtype(enc.scalar_type()).device(dev);
    for (int i = 0; i < 2 * decoder_layers; ++i) {
      rows.self_kv.push_back(torch::empty({n, decoder_heads, 0, head_dim}, kv_options));
    }
    rows.self_mask = torch::empty({n, 0}, IntOptions());
    rows.positions.assign(n, 2);  // the decoder start token sits at position 2
    rows.row_text.resize(n);
    for (int64_t i = 0; i < n; ++i) rows.row_text[i] = static_cast<int>(i);
    return rows;
  }

  // One decoder step: feeds `tokens` (one per row), appends to every row's cache, returns the
  // float32 logits [R, V] on the CPU. With `live` (one 0/1 per row), a row with 0 is held: its
  // new cache column is masked out (for this and every later step), its position does not
  // advance, and its logits are meaningless; its state is as if it had not been stepped.
  torch::Tensor Step(DecodeRows& rows, const std::vector<int64_t>& tokens,
                     const std::vector<int64_t>* live = nullptr) const {
    const int64_t r = rows.rows();
    torch::Tensor input = torch::from_blob(const_cast<int64_t*>(tokens.data()), {r, 1},
                                           torch::kInt64).clone().to(ToTorchDevice(device));
    torch::Tensor positions =
        torch::from_blob(rows.positions.data(), {r, 1}, torch::kInt64).clone().to(
            ToTorchDevice(device));
    torch::Tensor column =
        live == nullptr
            ? torch::ones({r, 1}, IntOptions())
            : torch::from_blob(const_cast<int64_t*>(live->data()), {r, 1}, torch::kInt64)
                  .clone()
                  .to(ToTorchDevice(device));
    torch::Tensor self_mask = torch::cat({rows.self_mask, column}, 1);
    c10::List<torch::Tensor> self_kv(rows.self_kv);
    c10::List<torch::Tensor> cross(rows.cross);
    auto out = module->get_method("decode_step")(
        {input, positions, self_kv, self_mask, cross, rows.encoder_mask});
    auto tuple = out.toTuple();
    torch::Tensor logits = tuple->elements()[0].toTensor();
    auto new_kv = tuple->elements()[1].toTensorList();
    for (size_t i = 0; i < new_kv.size(); ++i) rows.self_kv[i] = new_kv.get(i);
    rows.self_mask = self_mask;
    for (int64_t i = 0; i < r; ++i) {
      if (live == nullptr || (*live)[i] != 0) ++rows.positions[i];
    }
    return logits.to(torch::kCPU, torch::kFloat32).contiguous();
  }

  // Keeps rows `keep` (in that order; a row may repeat, as beams do).
  static void SelectRows(DecodeRows& rows, const std::vector<int64_t>& keep) {
    std::vector<int> new_text;
    std::vector<int64_t> new_pos;
    new_text.reserve(keep.size());
    new_pos.reserve(keep.size());
    for (int64_t k : keep) {
      new_text.push_back(rows.row_text[k]);
      new_pos.push_back(rows.positions[k]);
    }
    torch::Tensor index =
        torch::tensor(keep, torch::kInt64).to(rows.encoder_mask.device());
    for (auto& t : rows.self_kv) t = t.index_select(0, index);
    rows.self_mask = rows.self_mask.index_select(0, index);
    // Cross-attention rows depend only on the text: re-select them only when the row-to-text
    // layout changes (texts finishing, beams appearing after the first step).
    if (new_text != rows.row_text) {
      for (auto& t : rows.cross) t = t.index_select(0, index);
      rows.encoder_mask = rows.encoder_mask.index_select(0, index);
    }
    rows.row_text = std::move(new_text);
    rows.positions = std::move(new_pos);
  }

  // Feeds the forced prefix [decoder_start, tgt] to every row; returns the logits that choose
  // the first generated token.
  absl::StatusOr<torch::Tensor> Prefix(DecodeRows& rows, int64_t tgt, const StopCheck& stop) const {
    if (stop) {
      if (absl::Status s = stop(); !s.ok()) return s;
    }
    Step(rows, std::vector<int64_t>(rows.rows(), decoder_start));
    if (stop) {
      if (absl::Status s = stop(); !s.ok()) return s;
    }
    return Step(rows, std::vector<int64_t>(rows.rows(), tgt));
  }

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
};

}  // namespace vox

#endif  // VOX_ENGINES_TRANSLATE_NLLB_MODEL_H_
