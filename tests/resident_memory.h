#ifndef VOX_TESTS_RESIDENT_MEMORY_H_
#define VOX_TESTS_RESIDENT_MEMORY_H_

// The process's resident set size, for tests that check what a step costs in memory (Linux:
// /proc/self/statm; -1 elsewhere).

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>

namespace vox::testing {

inline int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = -1;
  if (!(statm >> size >> resident)) return -1;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

// Resident bytes per call of `load` (a whole model load) and per call of `replica` (an engine
// over an already loaded model), each averaged over `n` calls whose results the callbacks keep
// alive; prints both. Self-calibrating: the check does not depend on the model's size.
struct PerCallBytes {
  int64_t load = 0, replica = 0;
};
inline PerCallBytes MeasureLoadAndReplica(const std::function<void()>& load,
                                          const std::function<void()>& replica, int n = 4) {
  PerCallBytes out;
  int64_t before = ResidentBytes();
  for (int i = 0; i < n; ++i) load();
  out.load = (ResidentBytes() - before) / n;
  before = ResidentBytes();
  for (int i = 0; i < n; ++i) replica();
  out.replica = (ResidentBytes() - before) / n;
  std::printf("resident memory: %lld bytes per load, %lld per replica\n",
              static_cast<long long>(out.load), static_cast<long long>(out.replica));
  return out;
}

}  // namespace vox::testing

#endif  // VOX_TESTS_RESIDENT_MEMORY_H_
