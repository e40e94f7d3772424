#ifndef VOX_ENGINES_CORE_TRANSLATION_ENGINE_H_
#define VOX_ENGINES_CORE_TRANSLATION_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engines/core/model_info.h"

namespace vox {

// Decoding settings for one translation call. Zero values mean "engine default".
struct TranslationParams {
  int beam_size = 1;            // 1 = greedy
  float length_penalty = 1.0f;  // beam scores are divided by length^length_penalty
  int max_length = 0;           // generated tokens; 0 = engine default (200, capped by the model)
  bool fixed_length = false;    // benchmarks: ignore </s> and generate exactly max_length tokens
};

struct TranslationOutput {
  std::string text;
  std::vector<int64_t> token_ids;  // generated ids, without decoder start, language id and </s>
};

// Polled by engines between decode steps: OK means go on; any other status (CANCELLED,
// DEADLINE_EXCEEDED, UNAVAILABLE) means stop now and return that status.
using StopCheck = std::function<absl::Status()>;

class TranslationStepper;

// A translation model. Implementations are NOT thread-safe: one worker thread owns an engine
// and makes every call on it (DESIGN.md, Threads). Construction loads the model; info() and
// languages never change afterwards and may be read from any thread.
class TranslationEngine {
 public:
  virtual ~TranslationEngine() = default;

  virtual const ModelInfo& info() const = 0;

  // True when this engine translates `source` into `target` (NLLB codes).
  virtual bool SupportsPair(const std::string& source, const std::string& target) const = 0;

  // Checks a request without running the model: languages, empty texts, texts too long for the
  // model's positions, options. Returns INVALID_ARGUMENT with a message naming the offending
  // text index or value and the allowed values. Thread-safe.
  virtual absl::Status Validate(const std::vector<std::string>& texts, const std::string& source,
                                const std::string& target, const TranslationParams& params) const = 0;

  // Translates all texts as one batch. Results are in input order. `stop` may be empty.
  virtual absl::StatusOr<std::vector<TranslationOutput>> Translate(
      const std::vector<std::string>& texts, const std::string& source, const std::string& target,
      const TranslationParams& params, const StopCheck& stop) = 0;

  // Continuous batching (optional): a stepper over this engine's model, or nullptr when the
  // engine cannot decode step by step (the server then runs whole Translate calls as one step).
  // The stepper borrows the engine: it must not outlive it, and the engine's owner thread is the
  // only one that calls either of them.
  virtual std::unique_ptr<TranslationStepper> NewStepper() { return nullptr; }

  // Another engine over this engine's loaded model, for another worker thread (voxd's
  // `replicas`): weights, tokenizer and manifest are shared and read-only, so N replicas hold one
  // model's memory; the new engine owns its own per-call state. Call it before either engine's
  // worker starts (it reads per-engine settings). UNIMPLEMENTED for engines that cannot share.
  virtual absl::StatusOr<std::unique_ptr<TranslationEngine>> NewReplica() const {
    return absl::UnimplementedError(info().name + " cannot share its model between replicas");
  }
};

// One sequence's outcome of a TranslationStepper::Step.
struct TranslationStepResult {
  absl::Status status;        // non-OK: the sequence failed (it must still be Leave()d)
  bool finished = false;      // true once the sequence is complete (output is set)
  TranslationOutput output;   // the translation, when finished
};

// Continuous batching over one engine's decoder: sequences (one text each) join the running
// batch at a step boundary, every Step() advances the listed sequences by one decoder step
// together, and a sequence leaves the step it finishes. A joined sequence that is not listed in
// a Step() (paused) keeps its state unchanged. The results equal TranslationEngine::Translate of
// each text alone: token ids identical, logits within float rounding.
//
// Ids are chosen by the caller and unique among joined sequences. NOT thread-safe: the engine's
// owner thread makes every call.
class TranslationStepper {
 public:
  virtual ~TranslationStepper() = default;
  // Takes a slot for one text (already validated by the engine's Validate). May defer the
  // encoder to the next Step() so that texts joining at one boundary are encoded as one batch.
  // Non-OK: the sequence did not join (no Leave needed).
  virtual absl::Status Join(uint64_t id, const std::string& text, const std::string& source,
                            const std::string& target, const TranslationParams& params) = 0;
  // One decoder step over `active` (joined, not finished, in any order); one result per id, in
  // that order.
  virtual std::vector<TranslationStepResult> Step(absl::Span<const uint64_t> active) = 0;
  // Frees the sequence's slot (finished, failed, cancelled, expired). Unknown ids are ignored.
  virtual void Leave(uint64_t id) = 0;
  // Sequences joined and not yet left.
  virtual int size() const = 0;
};

}  // namespace vox

#endif  // VOX_ENGINES_CORE_TRANSLATION_ENGINE_H_
