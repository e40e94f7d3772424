#include "engines/speech/xtts_condition_cache.h"

#include <utility>

namespace vox {
namespace {

// Built-in voices come as the same view of voices.ts's tensor every time; cloned ones as copies.
bool SameLatent(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type() || a.device() != b.device()) return false;
  if (a.data_ptr() == b.data_ptr() && a.strides() == b.strides()) return true;
  return torch::equal(a, b);
}

}  // namespace

c10::List<torch::Tensor> XttsConditionCache::Get(torch::jit::Module& module, const torch::Tensor& cond_latent) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (SameLatent(it->cond_latent, cond_latent)) {
      entries_.splice(entries_.begin(), entries_, it);
      return entries_.front().kv;
    }
  }
  ++computed_;
  c10::List<torch::Tensor> kv = module.get_method("condition")({cond_latent}).toTensorList();
  if (capacity_ == 0) return kv;
  if (entries_.size() >= capacity_) entries_.pop_back();
  entries_.push_front(Entry{cond_latent, kv});
  return kv;
}

}  // namespace vox
