#ifndef VOX_TESTS_RESIDENT_MEMORY_H_
#define VOX_TESTS_RESIDENT_MEMORY_H_

// The process's resident set size, for tests that check what a step costs in memory (Linux:
// /proc/self/statm; -1 elsewhere).

#include <unistd.h>

#include <cstdint>
#include <fstream>

namespace vox::testing {

inline int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = -1;
  if (!(statm >> size >> resident)) return -1;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace vox::testing

#endif  // VOX_TESTS_RESIDENT_MEMORY_H_
