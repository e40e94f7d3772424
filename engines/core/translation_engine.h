#ifndef VOX_ENGINES_CORE_TRANSLATION_ENGINE_H_
#define VOX_ENGINES_CORE_TRANSLATION_ENGINE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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
};

}  // namespace vox

#endif  // VOX_ENGINES_CORE_TRANSLATION_ENGINE_H_
