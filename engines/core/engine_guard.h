#ifndef VOX_ENGINES_CORE_ENGINE_GUARD_H_
#define VOX_ENGINES_CORE_ENGINE_GUARD_H_

// Runs an engine call (returning absl::Status or StatusOr) and turns an exception escaping it
// into INTERNAL, so a misbehaving engine fails its sequences instead of voxd. Stateless;
// thread-safe as the call it wraps.

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vox {

template <typename R, typename F>
R Guarded(F f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("engine threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("engine threw an unknown exception");
  }
}

}  // namespace vox

#endif  // VOX_ENGINES_CORE_ENGINE_GUARD_H_
