#ifndef VOX_ENGINES_TRANSLATE_BEAM_SEARCH_H_
#define VOX_ENGINES_TRANSLATE_BEAM_SEARCH_H_

// NLLB's token choice on plain arrays of float32 scores (docs/model-format.md, "Decoding",
// rules 4 and 5): greedy argmax, and beam search with length penalty and early stopping, exactly
// as the Python reference decides, so golden ids compare exactly. No LibTorch: the stepper hands
// in its logits / log-probabilities as row-major float arrays. Plain functions and value types:
// the functions keep no state (thread-safe); a TextBeams belongs to one sequence.

#include <cstdint>
#include <vector>

namespace vox::beam {

// The greedy choice over one row of logits: the highest, the lowest id on ties.
int64_t Argmax(const float* row, int64_t vocab);

// One live hypothesis: its generated tokens, its float32 score (sum of log-probabilities) and
// the decoder row that holds its cache.
struct Live {
  std::vector<int64_t> tokens;
  float score = 0;
  int64_t row = 0;  // decoder row holding this beam's cache
};
// A finished hypothesis; `order` says when it was added (ties keep the earlier one).
struct Finished {
  std::vector<int64_t> tokens;
  float final_score = 0;
  int order = 0;  // when it was added
};
// The beams of one text.
struct TextBeams {
  std::vector<Live> live;
  std::vector<Finished> finished;
  int added = 0;
  bool done = false;
};

// Rule 4: offers a finished hypothesis; keeps at most k, dropping the lowest (ties: the later).
void AddFinished(TextBeams& t, std::vector<int64_t> tokens, float final_score, int k);

// n ** lp in double, rounded to float32 as the Python reference does.
float PenaltyDivisor(int n, double lp);

// One beam-search step of one text: from the log-probabilities of its live beams (`lp_data` rows
// `live[b].row`, `vocab` wide) keeps the k best continuations, offers those ending in `eos` to
// `finished`, and sets `done` (rule 5: max_length reached, or no live beam can beat the worst
// finished one). `step` counts the text's earlier updates. Each new live beam's `row` is its
// parent's row in `lp_data`.
void BeamUpdate(TextBeams& tb, const float* lp_data, int64_t vocab, int step, int k, double lp,
                int max_length, int64_t eos);

// The best finished hypothesis (highest final score, earliest on ties); empty when none finished.
std::vector<int64_t> BestFinished(const TextBeams& t);

}  // namespace vox::beam

#endif  // VOX_ENGINES_TRANSLATE_BEAM_SEARCH_H_
