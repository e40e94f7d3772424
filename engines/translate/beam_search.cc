#include "engines/translate/beam_search.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

namespace vox::beam {
namespace {

float WorstFinal(const TextBeams& t) {
  float w = t.finished[0].final_score;
  for (const auto& f : t.finished) w = std::min(w, f.final_score);
  return w;
}

struct Candidate {
  float score;
  int64_t flat;  // b * V + v
};

bool Better(const Candidate& a, const Candidate& b) {
  return a.score > b.score || (a.score == b.score && a.flat < b.flat);
}

}  // namespace

int64_t Argmax(const float* row, int64_t vocab) {
  // A scan that keeps one best per lane of 16 independent lanes, which the compiler turns into
  // vector compares and blends (one running best is one long dependency chain, and 32 rows of
  // NLLB's 256,206 logits are scanned on one thread every step). Within a lane the first of equal
  // values stays; across lanes the highest value wins, then the lowest id: the first maximum,
  // as the plain scan gives. NaN is never greater, so it is skipped, except at id 0, where the
  // plain scan keeps it (best_value NaN below: nothing replaces it).
  constexpr int64_t kLanes = 16;
  if (vocab <= 0 || vocab > std::numeric_limits<int32_t>::max()) {
    int64_t best = 0;
    for (int64_t v = 1; v < vocab; ++v) {
      if (row[v] > row[best]) best = v;
    }
    return best;
  }
  float value[kLanes];
  int32_t id[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) {
    value[l] = -std::numeric_limits<float>::infinity();
    id[l] = -1;
  }
  int64_t v = 0;
  for (; v + kLanes <= vocab; v += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const bool greater = row[v + l] > value[l];
      value[l] = greater ? row[v + l] : value[l];
      id[l] = greater ? static_cast<int32_t>(v + l) : id[l];
    }
  }
  for (int64_t l = 0; v + l < vocab; ++l) {
    if (row[v + l] > value[l]) {
      value[l] = row[v + l];
      id[l] = static_cast<int32_t>(v + l);
    }
  }
  int64_t best = 0;  // also the answer when every value is -inf or NaN
  float best_value = row[0];
  for (int64_t l = 0; l < kLanes; ++l) {
    if (id[l] >= 0 && (value[l] > best_value || (value[l] == best_value && id[l] < best))) {
      best = id[l];
      best_value = value[l];
    }
  }
  return best;
}

void AddFinished(TextBeams& t, std::vector<int64_t> tokens, float final_score, int k) {
  t.finished.push_back({std::move(tokens), final_score, t.added++});
  if (static_cast<int>(t.finished.size()) <= k) return;
  size_t worst = 0;
  for (size_t i = 1; i < t.finished.size(); ++i) {
    const auto& a = t.finished[i];
    const auto& w = t.finished[worst];
    if (a.final_score < w.final_score ||
        (a.final_score == w.final_score && a.order > w.order)) {
      worst = i;
    }
  }
  t.finished.erase(t.finished.begin() + worst);
}

float PenaltyDivisor(int n, double lp) {
  return static_cast<float>(std::pow(static_cast<double>(n), lp));
}

void BeamUpdate(TextBeams& tb, const float* lp_data, int64_t vocab, int step, int k, double lp,
                int max_length, int64_t eos) {
  const size_t want = 2 * static_cast<size_t>(k);
  // Top 2k candidates over (beam, token): score desc, ties by lower b * V + v.
  std::vector<Candidate> top;
  top.reserve(want + 1);
  for (size_t b = 0; b < tb.live.size(); ++b) {
    const float base = tb.live[b].score;
    const float* row = lp_data + tb.live[b].row * vocab;
    for (int64_t v = 0; v < vocab; ++v) {
      Candidate c{base + row[v], static_cast<int64_t>(b) * vocab + v};
      if (top.size() == want && !Better(c, top.back())) continue;
      auto pos = std::upper_bound(top.begin(), top.end(), c, Better);
      top.insert(pos, c);
      if (top.size() > want) top.pop_back();
    }
  }
  std::vector<Live> next;
  for (size_t rank = 0; rank < top.size() && static_cast<int>(next.size()) < k; ++rank) {
    const Candidate& c = top[rank];
    const int64_t b = c.flat / vocab;
    const int64_t v = c.flat % vocab;
    const Live& parent = tb.live[b];
    if (v == eos) {
      if (static_cast<int>(rank) < k) {
        // n = tokens after the start token: language token + generated + this </s>.
        const int len = static_cast<int>(parent.tokens.size()) + 2;
        AddFinished(tb, parent.tokens, c.score / PenaltyDivisor(len, lp), k);
      }
      continue;
    }
    Live l{parent.tokens, c.score, parent.row};
    l.tokens.push_back(v);
    next.push_back(std::move(l));
  }
  tb.live = std::move(next);
  const int steps_taken = step + 1;
  if (steps_taken >= max_length) {
    // Rule 5: at max_length every live beam is offered as finished.
    for (const Live& l : tb.live) {
      AddFinished(tb, l.tokens, l.score / PenaltyDivisor(1 + max_length, lp), k);
    }
    tb.done = true;
  } else if (static_cast<int>(tb.finished.size()) >= k && !tb.live.empty()) {
    // Rule 5: no live beam can beat the worst finished one any more.
    if (tb.live[0].score / PenaltyDivisor(1 + steps_taken, lp) <= WorstFinal(tb)) {
      tb.done = true;
    }
  }
  if (tb.live.empty()) tb.done = true;
}

std::vector<int64_t> BestFinished(const TextBeams& t) {
  const auto& f = t.finished;
  if (f.empty()) return {};
  size_t best = 0;
  for (size_t i = 1; i < f.size(); ++i) {
    if (f[i].final_score > f[best].final_score ||
        (f[i].final_score == f[best].final_score && f[i].order < f[best].order)) {
      best = i;
    }
  }
  return f[best].tokens;
}

}  // namespace vox::beam
