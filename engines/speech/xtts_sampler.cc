#include "engines/speech/xtts_sampler.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <string>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace vox {

uint64_t SplitMix64::NextU64() {
  state_ += 0x9E3779B97F4A7C15ULL;
  uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double SplitMix64::Uniform() { return static_cast<double>(NextU64() >> 11) * (1.0 / 9007199254740992.0); }

double DecimalDouble(float value) {
  // Shortest round-trip decimal of the float (max_digits10 = 9), then parsed as a double.
  for (int digits = 1; digits <= 9; ++digits) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*g", digits, static_cast<double>(value));
    if (std::strtof(buf, nullptr) == value) return std::strtod(buf, nullptr);
  }
  return static_cast<double>(value);
}

CodeSampler::CodeSampler(const SamplingSettings& settings, uint64_t seed, int64_t start_audio)
    : settings_(settings), rng_(seed) {
  seen_ = {1, start_audio};
  std::sort(seen_.begin(), seen_.end());
  seen_.erase(std::unique(seen_.begin(), seen_.end()), seen_.end());
}

namespace {

torch::Tensor Penalize(torch::Tensor logits, const std::vector<int64_t>& seen, double penalty) {
  if (penalty == 1.0 || seen.empty()) return logits;
  torch::Tensor idx = torch::tensor(seen, torch::kLong);
  torch::Tensor score = logits.gather(0, idx);
  score = torch::where(score < 0, score * penalty, score / penalty);
  return logits.scatter(0, idx, score);
}

torch::Tensor WarpTensor(torch::Tensor logits, const SamplingSettings& s) {
  const float inf = std::numeric_limits<float>::infinity();
  if (s.temperature != 1.0) logits = logits / s.temperature;
  if (s.top_k > 0) {
    const int64_t k = std::min<int64_t>(s.top_k, logits.size(0));
    torch::Tensor kth = std::get<0>(torch::topk(logits, k)).index({k - 1});
    logits = logits.masked_fill(logits < kth, -inf);
  }
  if (s.top_p < 1.0) {
    auto sorted = torch::sort(logits, /*stable=*/true, /*dim=*/0, /*descending=*/false);
    torch::Tensor cum = std::get<0>(sorted).softmax(-1).cumsum(-1);
    torch::Tensor remove = cum <= (1 - s.top_p);
    remove.index_put_({-1}, false);
    logits = logits.masked_fill(remove.scatter(0, std::get<1>(sorted), remove), -inf);
  }
  return logits;
}

}  // namespace

int64_t PickInverseCdf(absl::Span<const float> probs, double u) {
  double total = 0;
  for (float p : probs) total += static_cast<double>(p);
  const double target = u * total;
  double acc = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    acc += static_cast<double>(probs[i]);
    if (acc > target) return static_cast<int64_t>(i);
  }
  for (size_t i = probs.size(); i-- > 0;) {
    if (probs[i] > 0) return static_cast<int64_t>(i);
  }
  return 0;
}

std::vector<float> CodeSampler::Warp(absl::Span<const float> logits) const {
  torch::Tensor l = torch::from_blob(const_cast<float*>(logits.data()),
                                     {static_cast<int64_t>(logits.size())}, torch::kFloat)
                        .clone();
  l = Penalize(l, seen_, settings_.repetition_penalty);
  if (!settings_.greedy) l = WarpTensor(l, settings_);
  l = l.contiguous();
  return std::vector<float>(l.data_ptr<float>(), l.data_ptr<float>() + l.numel());
}

int64_t CodeSampler::Next(absl::Span<const float> logits, int64_t banned) {
  torch::Tensor l = torch::from_blob(const_cast<float*>(logits.data()),
                                     {static_cast<int64_t>(logits.size())}, torch::kFloat)
                        .clone();
  l = Penalize(l, seen_, settings_.repetition_penalty);
  if (banned >= 0 && banned < l.size(0)) {
    l.index_put_({banned}, -std::numeric_limits<float>::infinity());
  }
  int64_t code;
  if (settings_.greedy) {
    code = l.argmax().item<int64_t>();
  } else {
    torch::Tensor probs = WarpTensor(l, settings_).softmax(-1).contiguous();
    code = PickInverseCdf(absl::MakeConstSpan(probs.data_ptr<float>(), probs.numel()), rng_.Uniform());
  }
  Record(code);
  return code;
}

void CodeSampler::Record(int64_t code) {
  auto it = std::lower_bound(seen_.begin(), seen_.end(), code);
  if (it == seen_.end() || *it != code) seen_.insert(it, code);
}

namespace {

bool SameSettings(const SamplingSettings& a, const SamplingSettings& b) {
  return a.greedy == b.greedy && a.temperature == b.temperature && a.top_k == b.top_k &&
         a.top_p == b.top_p && a.repetition_penalty == b.repetition_penalty;
}

}  // namespace

std::vector<int64_t> CodeSampler::NextBatch(absl::Span<CodeSampler* const> samplers,
                                            absl::Span<const float> logits, int64_t width,
                                            absl::Span<const int64_t> banned) {
  const int64_t n = static_cast<int64_t>(samplers.size());
  std::vector<int64_t> codes(n, 0);
  if (n == 1) {
    codes[0] = samplers[0]->Next(logits.subspan(0, width), banned[0]);
    return codes;
  }
  const float inf = std::numeric_limits<float>::infinity();
  torch::Tensor all = torch::from_blob(const_cast<float*>(logits.data()), {n, width}, torch::kFloat);
  std::vector<bool> done(n, false);
  for (int64_t first = 0; first < n; ++first) {
    if (done[first]) continue;
    const SamplingSettings& s = samplers[first]->settings_;
    std::vector<int64_t> rows;
    for (int64_t i = first; i < n; ++i) {
      if (!done[i] && SameSettings(samplers[i]->settings_, s)) {
        rows.push_back(i);
        done[i] = true;
      }
    }
    const int64_t m = static_cast<int64_t>(rows.size());
    torch::Tensor l = all.index_select(0, torch::tensor(rows, torch::kLong));  // a copy
    if (s.repetition_penalty != 1.0) {
      // Each row's seen codes, padded by repeating its first one (scatter writes it twice, same value).
      size_t widest = 0;
      for (int64_t r : rows) widest = std::max(widest, samplers[r]->seen_.size());
      torch::Tensor idx = torch::empty({m, static_cast<int64_t>(widest)}, torch::kLong);
      auto acc = idx.accessor<int64_t, 2>();
      for (int64_t j = 0; j < m; ++j) {
        const auto& seen = samplers[rows[j]]->seen_;
        for (size_t c = 0; c < widest; ++c) acc[j][c] = seen[c < seen.size() ? c : 0];
      }
      torch::Tensor score = l.gather(1, idx);
      score = torch::where(score < 0, score * s.repetition_penalty, score / s.repetition_penalty);
      l = l.scatter(1, idx, score);
    }
    l = l.contiguous();
    for (int64_t j = 0; j < m; ++j) {
      const int64_t b = banned[rows[j]];
      if (b >= 0 && b < width) l.data_ptr<float>()[j * width + b] = -inf;
    }
    if (s.greedy) {
      torch::Tensor best = l.argmax(1).contiguous();
      for (int64_t j = 0; j < m; ++j) codes[rows[j]] = best.data_ptr<int64_t>()[j];
    } else {
      if (s.temperature != 1.0) l = l / s.temperature;
      if (s.top_k > 0) {
        const int64_t k = std::min<int64_t>(s.top_k, width);
        torch::Tensor kth = std::get<0>(torch::topk(l, k, /*dim=*/1)).select(1, k - 1).unsqueeze(1);
        l = l.masked_fill(l < kth, -inf);
      }
      if (s.top_p < 1.0) {
        auto sorted = torch::sort(l, /*stable=*/true, /*dim=*/1, /*descending=*/false);
        torch::Tensor cum = std::get<0>(sorted).softmax(-1).cumsum(-1);
        torch::Tensor remove = cum <= (1 - s.top_p);
        remove.select(1, width - 1).fill_(false);
        l = l.masked_fill(remove.scatter(1, std::get<1>(sorted), remove), -inf);
      }
      torch::Tensor probs = l.softmax(-1).contiguous();
      for (int64_t j = 0; j < m; ++j) {
        CodeSampler* c = samplers[rows[j]];
        codes[rows[j]] = PickInverseCdf(absl::MakeConstSpan(probs.data_ptr<float>() + j * width, width),
                                        c->rng_.Uniform());
      }
    }
    for (int64_t j = 0; j < m; ++j) samplers[rows[j]]->Record(codes[rows[j]]);
  }
  return codes;
}

}  // namespace vox
