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
  auto it = std::lower_bound(seen_.begin(), seen_.end(), code);
  if (it == seen_.end() || *it != code) seen_.insert(it, code);
  return code;
}

}  // namespace vox
