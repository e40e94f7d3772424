#ifndef VOX_TESTS_SCHEDULER_TOY_STEP_MODEL_H_
#define VOX_TESTS_SCHEDULER_TOY_STEP_MODEL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/scheduler/continuous_batcher.h"

namespace vox {
namespace testing_toy {

// A toy autoregressive "model": each sequence's next output depends only on its own state
// (x <- splitmix64(x)), so batched and unbatched runs must agree exactly.
struct ToySeq {
  uint64_t seed = 0;
  int length = 1;  // steps until it finishes
  int key = 0;     // the test's name for it
  // >= 0: the step with this index (0 = its first) returns `fail_status` instead of an output.
  int fail_at = -1;
  absl::Status fail_status = absl::InternalError("toy failure");
};

inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The independent reference: what a sequence must produce, step by step.
inline std::vector<uint64_t> Reference(const ToySeq& s) {
  std::vector<uint64_t> out;
  uint64_t x = s.seed;
  for (int i = 0; i < s.length; ++i) out.push_back(x = Mix(x));
  return out;
}

// Shared log of what the model saw, readable from the test thread.
struct ToyLog {
  absl::Mutex mu;
  std::vector<std::vector<int>> steps;  // keys of the sequences in each step, in order
  std::vector<int> joined, left;        // keys
  int max_active = 0;
  std::vector<std::vector<int>> Steps() {
    absl::MutexLock lock(&mu);
    return steps;
  }
};

class ToyModel : public StepModel<ToySeq, uint64_t> {
 public:
  // `on_step(step_index, keys)` runs at the start of every step on the worker thread.
  explicit ToyModel(ToyLog* log, std::function<void(int, const std::vector<int>&)> on_step = {})
      : log_(log), on_step_(std::move(on_step)) {}

  absl::Status Join(TicketId id, ToySeq& seq) override {
    if (seq.length <= 0) return absl::InvalidArgumentError("length must be > 0");
    state_[id] = State{seq.seed, seq.length, seq.key, seq.fail_at, seq.fail_status};
    absl::MutexLock lock(&log_->mu);
    log_->joined.push_back(seq.key);
    return absl::OkStatus();
  }

  std::vector<StepResult<uint64_t>> Step(absl::Span<const TicketId> active) override {
    std::vector<int> keys;
    for (TicketId id : active) keys.push_back(state_.at(id).key);
    {
      absl::MutexLock lock(&log_->mu);
      log_->steps.push_back(keys);
      log_->max_active = std::max<int>(log_->max_active, static_cast<int>(active.size()));
    }
    if (on_step_) on_step_(step_++, keys);
    std::vector<StepResult<uint64_t>> out;
    for (TicketId id : active) {
      State& s = state_.at(id);
      StepResult<uint64_t> r;
      if (s.fail_at == 0) {
        r.status = s.fail_status;
        out.push_back(std::move(r));
        continue;
      }
      if (s.fail_at > 0) --s.fail_at;
      s.x = Mix(s.x);
      r.output = s.x;
      r.finished = --s.remaining == 0;
      out.push_back(std::move(r));
    }
    return out;
  }

  void Leave(TicketId id) override {
    const int key = state_.at(id).key;
    state_.erase(id);
    absl::MutexLock lock(&log_->mu);
    log_->left.push_back(key);
  }

  size_t live_states() const { return state_.size(); }

  // The ticket of a joined sequence (worker thread only, e.g. inside on_step).
  TicketId IdOf(int key) const {
    for (const auto& [id, s] : state_) {
      if (s.key == key) return id;
    }
    return 0;
  }

 private:
  struct State {
    uint64_t x;
    int remaining;
    int key;
    int fail_at;
    absl::Status fail_status;
  };
  ToyLog* log_;
  std::function<void(int, const std::vector<int>&)> on_step_;
  std::map<TicketId, State> state_;
  int step_ = 0;
};

}  // namespace testing_toy
}  // namespace vox

#endif  // VOX_TESTS_SCHEDULER_TOY_STEP_MODEL_H_
