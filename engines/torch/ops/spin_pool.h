#ifndef VOX_ENGINES_TORCH_OPS_SPIN_POOL_H_
#define VOX_ENGINES_TORCH_OPS_SPIN_POOL_H_

// Splits a short loop between the calling thread and helper threads that keep polling for work
// for a while after each job (then sleep), so the back-to-back small products of a decoder step
// do not each pay for waking a sleeping thread (which costs about as much as reading 1 MiB of
// weights). No LibTorch here.
//
// Thread-safe. Several callers share the helpers: a caller that finds a helper busy runs that
// helper's share itself, so no caller ever waits for another caller's work.

#include <cstdint>
#include <functional>

namespace vox {

struct SpinPoolOptions {
  int64_t poll_us = 200;  // how long an idle helper keeps polling before it sleeps
};

// fn(begin, end) over [0, n) in at most `threads` contiguous parts of at least `min_part` each
// (fewer when n is small); the caller runs the first. Returns when every part has run. Parts
// must not throw. threads <= 1, or n < 2 * min_part: runs fn(0, n) on the caller.
void SpinParallelFor(int64_t n, int64_t min_part, int threads,
                     const std::function<void(int64_t, int64_t)>& fn);

// The process-wide helpers' settings (tests and benchmarks); takes effect for later jobs.
void SetSpinPoolOptions(const SpinPoolOptions& options);

}  // namespace vox

#endif  // VOX_ENGINES_TORCH_OPS_SPIN_POOL_H_
