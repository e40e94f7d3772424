#ifndef VOX_ENGINES_SPEECH_XTTS_CONDITION_CACHE_H_
#define VOX_ENGINES_SPEECH_XTTS_CONDITION_CACHE_H_

// Internal to vox_speech (includes LibTorch). Every GPT prefix of a voice starts with the same
// conditioning rows, whose keys and values no later row changes: model.ts `condition` computes
// them once per voice and `prefix_conditioned` starts from them (docs/speech.md, "A request,
// step by step").
// XttsConditionCache keeps them for the voices used last, compared by content (a cloned
// voice's latent arrives as a fresh tensor with every request). Owned by one engine (Impl);
// NOT thread-safe: the engine's owner thread makes every call.

#include <cstdint>
#include <list>

#include <torch/csrc/jit/api/module.h>
#include <torch/torch.h>

namespace vox {

class XttsConditionCache {
 public:
  // At most `voices` voices are kept (about 8 MB each at XTTS v2's dimensions in float32);
  // the least recently used goes first. 0 keeps none: every call computes.
  explicit XttsConditionCache(size_t voices) : capacity_(voices) {}

  // The `condition` k/v of `cond_latent` ([1, cond_len, D]) from `module`, computed there when
  // not kept. May throw what the module throws (callers catch LibTorch errors).
  c10::List<torch::Tensor> Get(torch::jit::Module& module, const torch::Tensor& cond_latent);

  int64_t computed() const { return computed_; }  // calls that ran `condition`

 private:
  struct Entry {
    torch::Tensor cond_latent;  // what it was computed from (a view of voices.ts's, or a copy)
    c10::List<torch::Tensor> kv;
  };
  size_t capacity_;
  std::list<Entry> entries_;  // most recently used first
  int64_t computed_ = 0;
};

}  // namespace vox

#endif  // VOX_ENGINES_SPEECH_XTTS_CONDITION_CACHE_H_
