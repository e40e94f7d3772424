#ifndef VOX_ENGINES_CORE_STATUS_MACROS_H_
#define VOX_ENGINES_CORE_STATUS_MACROS_H_

// The tree's two status macros (absl::Status / absl::StatusOr, no exceptions on the request path).
//   VOX_RETURN_IF_ERROR(expr);              returns expr's status when it is not OK
//   VOX_ASSIGN_OR_RETURN(lhs, expr);        lhs = *expr, or returns expr's status
// `lhs` may declare a variable (`auto x`, `const Foo& y` is not allowed: it binds a temporary).
// Macros only: no state, nothing to own.

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define VOX_STATUS_CONCAT_INNER_(a, b) a##b
#define VOX_STATUS_CONCAT_(a, b) VOX_STATUS_CONCAT_INNER_(a, b)

#define VOX_RETURN_IF_ERROR(expr)                                         \
  do {                                                                    \
    const ::absl::Status vox_status_ = (expr);                            \
    if (!vox_status_.ok()) return vox_status_;                            \
  } while (0)

#define VOX_ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto VOX_STATUS_CONCAT_(vox_status_or_, __LINE__) = (expr);             \
  if (!VOX_STATUS_CONCAT_(vox_status_or_, __LINE__).ok())                 \
    return VOX_STATUS_CONCAT_(vox_status_or_, __LINE__).status();         \
  lhs = *std::move(VOX_STATUS_CONCAT_(vox_status_or_, __LINE__))

#endif  // VOX_ENGINES_CORE_STATUS_MACROS_H_
