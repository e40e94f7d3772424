#ifndef VOX_ENGINES_CORE_MANIFEST_FIELDS_H_
#define VOX_ENGINES_CORE_MANIFEST_FIELDS_H_

// Reads an architecture's fields out of a parsed manifest.json (engines/core/manifest.h), with
// errors that name the file and the dotted field, e.g.
//   FAILED_PRECONDITION "models/x/manifest.json: field 'config.d_model' missing"
//   FAILED_PRECONDITION "models/x/manifest.json: field 'config.d_model' must be a positive integer, got -3"
// Each architecture's typed manifest (NllbManifest, XttsManifest) is read through this one
// reader. Borrows the Manifest (must outlive the reader); const methods, thread-safe.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engines/core/manifest.h"
#include "nlohmann/json.hpp"

namespace vox {

class ManifestFields {
 public:
  explicit ManifestFields(const Manifest& manifest) : m_(manifest) {}

  // The value at a dotted path ("config.d_model"); FAILED_PRECONDITION when a part is missing.
  absl::StatusOr<const nlohmann::json*> Get(const std::string& dotted) const;
  absl::StatusOr<int64_t> Int(const std::string& dotted) const;
  absl::StatusOr<int64_t> PositiveInt(const std::string& dotted) const;
  absl::StatusOr<double> Number(const std::string& dotted) const;
  absl::StatusOr<std::string> String(const std::string& dotted) const;
  absl::StatusOr<const nlohmann::json*> Array(const std::string& dotted) const;
  absl::StatusOr<const nlohmann::json*> Object(const std::string& dotted) const;

  // FAILED_PRECONDITION "<manifest>: field '<field>' <problem>".
  absl::Status Error(const std::string& field, const std::string& problem) const;

 private:
  absl::Status Bad(const std::string& field, const char* what, const nlohmann::json& got) const;
  const Manifest& m_;
};

}  // namespace vox

#endif  // VOX_ENGINES_CORE_MANIFEST_FIELDS_H_
