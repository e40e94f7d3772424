#ifndef VOX_ENGINES_SPEECH_XTTS_SAMPLER_H_
#define VOX_ENGINES_SPEECH_XTTS_SAMPLER_H_

// Choosing XTTS audio codes from logits, exactly as tools/xtts_reference.py does
// (docs/model-format.md, XTTS "Sampling"): repetition penalty with Coqui's prefix quirk,
// then greedy argmax, or temperature → top-k → top-p → multinomial by inverse CDF with a
// splitmix64 generator. The same LibTorch ops as the Python reference run underneath, so seeded
// codes compare exactly with the goldens.
//
// Plain value types; a CodeSampler belongs to one request (it holds the request's generator and
// the codes seen so far). Not thread-safe; cheap to create.

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace vox {

// splitmix64 (Vigna). One draw per sampled code.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t NextU64();
  // Uniform in [0, 1) with 53 random bits: (NextU64() >> 11) * 2^-53.
  double Uniform();

 private:
  uint64_t state_;
};

// Sampling settings, already resolved against the model's defaults. Doubles on purpose: the
// reference's Python floats are doubles, and thresholds such as 1 - top_p must round the same way.
struct SamplingSettings {
  bool greedy = false;
  double temperature = 0.75;
  int top_k = 50;
  double top_p = 0.85;
  double repetition_penalty = 5.0;
};

// The float a request carries (e.g. 0.85f) as the double its shortest decimal spelling denotes
// (0.85), so request values behave like the reference's decimal literals.
double DecimalDouble(float value);

class CodeSampler {
 public:
  // `start_audio` is the start code (counted as seen, with token 1 for the prefix positions).
  CodeSampler(const SamplingSettings& settings, uint64_t seed, int64_t start_audio);

  // Chooses the next code from `logits` (one per audio token) and records it as seen.
  // `banned` (>= 0) gets -inf after the repetition penalty (forced-length mode bans the stop code).
  // Cost: O(A log A) for top-p's sort; allocates a few small tensors.
  int64_t Next(absl::Span<const float> logits, int64_t banned = -1);

  // Next() for several samplers at once: row i of `logits` ([samplers.size(), width], row-major)
  // goes to samplers[i], with banned[i] (-1: none). Rows whose samplers have equal settings run
  // through the same LibTorch ops as Next() on one [rows, width] tensor (row-wise ops: the same
  // numbers as one row at a time), so the codes equal calling Next() per sampler; a batch of 16
  // costs about one call instead of 16. Each sampler draws from its own generator.
  static std::vector<int64_t> NextBatch(absl::Span<CodeSampler* const> samplers,
                                        absl::Span<const float> logits, int64_t width,
                                        absl::Span<const int64_t> banned);

  // The logits after the repetition penalty and, unless greedy, the warpers (for tests).
  std::vector<float> Warp(absl::Span<const float> logits) const;

  // Records a code chosen elsewhere (teacher forcing) as seen, without drawing.
  void Record(int64_t code);

 private:

  SamplingSettings settings_;
  SplitMix64 rng_;
  std::vector<int64_t> seen_;  // sorted, unique
};

// Inverse-CDF pick: walks probs in order adding them in double; the first index whose running
// sum exceeds u * total; if rounding leaves none, the last index with a positive probability.
int64_t PickInverseCdf(absl::Span<const float> probs, double u);

}  // namespace vox

#endif  // VOX_ENGINES_SPEECH_XTTS_SAMPLER_H_
