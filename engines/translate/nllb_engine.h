#ifndef VOX_ENGINES_TRANSLATE_NLLB_ENGINE_H_
#define VOX_ENGINES_TRANSLATE_NLLB_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engines/core/engine_options.h"
#include "engines/core/translation_engine.h"

namespace vox {

// NLLB-200 (M2M100 architecture) exported by tools/export_nllb.py (docs/model-format.md):
// SentencePiece tokenization with the fairseq offset, a batched encoder, and a decoder loop in
// C++ over the TorchScript `decode_step` with a KV cache (greedy, beam search, fixed length).
//
// Ownership and threads: the engine owns its TorchScript module, tokenizer and every decoding
// state. NOT thread-safe apart from info(), SupportsPair() and Validate(), which only read
// immutable data: one worker thread owns the engine and makes every other call
// (TranslationEngine's contract). Weights are read-only after load.
//
// Cost: load reads model.ts once (and hashes every manifest file unless
// options.verify_checksums is false); memory is the weights plus per-call activations and KV
// caches (2 * layers * rows * heads * length * head_dim elements for self-attention, the same
// per source token for cross-attention).
class NllbEngine : public TranslationEngine {
 public:
  // Loads `model_dir` (manifest.json, model.ts, the SentencePiece model) under the instance name
  // `name`. FAILED_PRECONDITION naming the file and the field for a bad model directory;
  // INVALID_ARGUMENT / FAILED_PRECONDITION for a device or dtype this build cannot run.
  // Does not change process-wide thread settings (see ConfigureThreads in engines/torch).
  static absl::StatusOr<std::unique_ptr<NllbEngine>> Load(const std::string& name,
                                                          const std::string& model_dir,
                                                          const EngineOptions& options);
  ~NllbEngine() override;

  const ModelInfo& info() const override;
  bool SupportsPair(const std::string& source, const std::string& target) const override;
  absl::Status Validate(const std::vector<std::string>& texts, const std::string& source,
                        const std::string& target, const TranslationParams& params) const override;
  absl::StatusOr<std::vector<TranslationOutput>> Translate(const std::vector<std::string>& texts,
                                                           const std::string& source,
                                                           const std::string& target,
                                                           const TranslationParams& params,
                                                           const StopCheck& stop) override;

  // --- Lower-level access (tests, benchmarks, diagnostics). ---

  // Model ids of one source text: [src_lang] + pieces (+1 offset, unk -> 3) + [</s>].
  // INVALID_ARGUMENT for an unknown language. Thread-safe.
  absl::StatusOr<std::vector<int64_t>> EncodeSource(const std::string& text,
                                                    const std::string& source) const;
  // Model id of a language code; INVALID_ARGUMENT with close matches when unknown.
  absl::StatusOr<int64_t> LanguageId(const std::string& code) const;
  // Target ids -> text: special and language ids dropped, pieces joined, U+2581 -> ' ', stripped.
  absl::StatusOr<std::string> Detokenize(const std::vector<int64_t>& ids) const;
  // The float32 logits [texts][vocab] that choose the first generated token (after the forced
  // language token), running the texts as one batch. For the batched-vs-single tests.
  absl::StatusOr<std::vector<std::vector<float>>> FirstStepLogits(
      const std::vector<std::string>& texts, const std::string& source, const std::string& target);

  // Times the tied output projection ([1, d] hidden state -> [1, vocab] logits) with the
  // model's own embedding matrix through three kernels: "mv" (gemv), "linear" (gemm with one
  // row) and "matmul"; then four rows at once: "linear_4rows" (one gemm) and "mv_4x" (four
  // gemv). Best of `repeats` in seconds, as (kernel name, seconds) in that order. For
  // benchmarks: on CPU the choice changes the per-token time by 2-3x.
  absl::StatusOr<std::vector<std::pair<std::string, double>>> TimeOutputProjection(int repeats);

  // The effective generated-token limit for `requested` (0 = default), or INVALID_ARGUMENT.
  absl::StatusOr<int> EffectiveMaxLength(int requested) const;

  // Largest beam size Validate accepts.
  static constexpr int kMaxBeamSize = 16;

  struct Impl;

 private:
  explicit NllbEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Factory used by voxd's model registry: NllbEngine::Load as the TranslationEngine interface.
absl::StatusOr<std::unique_ptr<TranslationEngine>> LoadNllbEngine(const std::string& name,
                                                                  const std::string& model_dir,
                                                                  const EngineOptions& options);

}  // namespace vox

#endif  // VOX_ENGINES_TRANSLATE_NLLB_ENGINE_H_
