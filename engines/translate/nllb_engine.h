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
#include "engines/core/manifest.h"
#include "engines/core/translation_engine.h"

namespace vox {

struct NllbModel;  // engines/translate/nllb_model.h

// NLLB-200 (M2M100 architecture) exported by tools/export_nllb.py (docs/model-format.md):
// SentencePiece tokenization with the fairseq offset, a batched encoder, and a decoder loop in
// C++ over the TorchScript `decode_slots` with a preallocated KV cache written in place (greedy,
// beam search, fixed length).
//
// Ownership and threads: the loaded model (TorchScript module, tokenizer, manifest) is immutable
// after Load and shared, through a shared_ptr, by the engine and its replicas (NewReplica); each
// engine owns its steppers and calls' decoding state. NOT thread-safe apart from info(),
// SupportsPair() and Validate(), which only read the shared model: one worker thread owns each
// engine and makes every other call (TranslationEngine's contract).
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
  // The same from a manifest already read (voxd's loader reads it once for every model).
  static absl::StatusOr<std::unique_ptr<NllbEngine>> Load(const std::string& name,
                                                          Manifest manifest,
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

  // Continuous batching over this engine's decoder (docs/engines.md, "NLLB"): texts join at a
  // Step() boundary, every Step() runs one decode_slots over the running rows, and a sequence
  // leaves the step it finishes. Results equal Translate() of each text alone (ids identical,
  // logits within float rounding), greedy and beam search alike.
  //  - Join() tokenizes and checks the text (INVALID_ARGUMENT as Validate; ALREADY_EXISTS for a
  //    joined id) and records it as pending; nothing runs on the model.
  //  - Step(active): the running sequences in `active` take one decoder step together (one
  //    decode_slots call). Running sequences not in `active` (paused, held) keep their state:
  //    either their rows ride along, writing only past their length, with their logits
  //    ignored, or only the listed rows run (see HeldRows below); their lengths and tokens
  //    never move, so their results are as if they had not been stepped.
  //    The pending sequences in `active` are encoded as one encoder batch into cache rows past
  //    the running ones, run their forced prefix (decoder start, target language) and choose
  //    their first token in that same Step(); nothing else moves.
  //  - Beam search (beam_size k) keeps k rows per sequence and updates its beams per sequence,
  //    as Translate does; fixed_length and max_length end a sequence exactly as in Translate.
  //  - A torch error fails the sequences of that Step() (their result status; they must still
  //    be Leave()d); the others keep their state. Unknown ids get NOT_FOUND; a finished or
  //    failed id listed again gets its final result again.
  // Cost per Step(): one decode_slots over the running rows (held ones too when riding along)
  // writing one cache column per row in place, plus, in a step where sequences join, one
  // encoder + cross_kv call, a fill_slots (the decoder start: no logits) and a decode_slots over
  // the joining rows; a sequence that leaves has the last sequence's rows (or the rows after its
  // own) copied into its rows, so the running rows stay dense. The caches grow by half when
  // full and are freed when none runs.
  // Borrows the engine (must not outlive it); not thread-safe, like the engine.
  std::unique_ptr<TranslationStepper> NewStepper() override;
  // Another engine over the same loaded model (shares it; nothing is copied or re-read).
  absl::StatusOr<std::unique_ptr<TranslationEngine>> NewReplica() const override;

  // How a stepper's Step() treats running sequences it does not list (held, paused):
  // kMask runs their rows along, each writing past its length (no copies; their share of the
  // step's compute is wasted), kSelect runs only the listed rows (gathers their caches each
  // step; new columns are written in place), kAuto (NewStepper()'s choice) rides along while
  // held rows are fewer than the listed ones and selects otherwise. Results are the same either way; only the cost differs
  // (docs/engines.md).
  enum class HeldRows { kAuto, kMask, kSelect };
  std::unique_ptr<TranslationStepper> NewStepper(HeldRows held);

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

  // The effective generated-token limit for `requested` (0 = default), or INVALID_ARGUMENT.
  absl::StatusOr<int> EffectiveMaxLength(int requested) const;

  // Largest beam size Validate accepts.
  static constexpr int kMaxBeamSize = 16;

 private:
  explicit NllbEngine(std::shared_ptr<const NllbModel> model);
  std::shared_ptr<const NllbModel> model_;
};

// Factory used by voxd's model registry: NllbEngine::Load as the TranslationEngine interface.
absl::StatusOr<std::unique_ptr<TranslationEngine>> LoadNllbEngine(const std::string& name,
                                                                  const std::string& model_dir,
                                                                  const EngineOptions& options);

}  // namespace vox

#endif  // VOX_ENGINES_TRANSLATE_NLLB_ENGINE_H_
