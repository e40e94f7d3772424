#ifndef VOX_ENGINES_CORE_MANIFEST_H_
#define VOX_ENGINES_CORE_MANIFEST_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace vox {

// One file an exported model lists in manifest.json "files".
struct ManifestFile {
  uint64_t size = 0;
  std::string sha256;  // lowercase hex; empty when the manifest gives none
};

// The common part of an exported model's manifest.json (docs/model-format.md), parsed once per
// model. Each architecture reads its own fields from `json` (the whole parsed document) with
// ManifestFields (engines/core/manifest_fields.h) into its typed manifest.
// Plain data; copyable.
struct Manifest {
  std::string model_dir;      // as passed to LoadManifest
  std::string manifest_path;  // model_dir + "/manifest.json"
  int schema_version = 0;
  std::string kind;           // "translation" | "speech"
  std::string architecture;   // "nllb-m2m100" | "xtts-v2"
  std::string name;           // informative
  std::string dtype;          // "float32" | "float16" | "bfloat16"
  // "int8" | "bfloat16" when the decoder's weights are compressed (run by vox::linear on CPU;
  // dtype is then float32), else as dtype. Absent in the file = as dtype.
  std::string weights;
  std::map<std::string, ManifestFile> files;  // relative path -> expected size / digest
  nlohmann::json json;

  // model_dir + "/" + relative (no check that it is listed).
  std::string Path(const std::string& relative) const;
};

// The schema version this build reads.
inline constexpr int kManifestSchemaVersion = 1;

// Reads and validates the common header of `model_dir`/manifest.json: JSON syntax,
// schema_version, kind and architecture (strings: voxd's loader picks an engine by them, and
// each architecture's reader, e.g. ReadNllbManifest, checks its own and its fields), dtype, and
// every file listed in "files": it must exist with the listed size, and when
// `verify_checksums` is true its SHA-256 must match. Errors name the file and the field:
//   FAILED_PRECONDITION "models/x/manifest.json: field 'languages' missing"
//   FAILED_PRECONDITION "models/x/model.ts: size 1234 != manifest 5678 (truncated or mismatched file)"
// Cost: reads every listed file once when verifying checksums (~0.5-1 GB/s); otherwise only
// stats them. Thread-safe (no shared state).
absl::StatusOr<Manifest> LoadManifest(const std::string& model_dir, bool verify_checksums);

// Checks one file against its manifest entry (size, and the SHA-256 when `verify_checksum`).
absl::Status VerifyManifestFile(const std::string& path, const ManifestFile& expected,
                                bool verify_checksum);

// Lowercase hex SHA-256 of a file, streamed in 1 MiB blocks. NOT_FOUND if it cannot be opened.
absl::StatusOr<std::string> Sha256File(const std::string& path);

// Lowercase hex SHA-256 of bytes in memory.
std::string Sha256Hex(const void* data, size_t size);

}  // namespace vox

#endif  // VOX_ENGINES_CORE_MANIFEST_H_
