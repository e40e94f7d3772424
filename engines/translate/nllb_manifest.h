#ifndef VOX_ENGINES_TRANSLATE_NLLB_MANIFEST_H_
#define VOX_ENGINES_TRANSLATE_NLLB_MANIFEST_H_

// The NLLB (M2M100) fields of manifest.json (docs/model-format.md, "NLLB"), typed and checked:
// every required field present with its type, sizes positive, special and language ids inside
// the vocabulary, the tokenizer and model.ts listed in "files". Errors name the file and the
// field. Plain data, copyable, immutable once read: safe to read from any thread. No LibTorch.

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/core/manifest.h"

namespace vox {

struct NllbManifest {
  Manifest common;  // the header every exported model has
  int64_t vocab_size = 0;
  int max_positions = 0, d_model = 0, decoder_layers = 0, decoder_heads = 0, head_dim = 0;
  int64_t bos = 0, pad = 1, eos = 2, unk = 3, decoder_start = 2;
  std::string tokenizer_file;  // relative to the model directory
  int64_t spm_size = 0, fairseq_offset = 1;
  int max_source_tokens = 0, default_max_length = 200;
  std::vector<std::string> language_codes;               // manifest order
  std::unordered_map<std::string, int64_t> language_ids;  // code -> model id
};

// Reads the NLLB fields of an already loaded manifest (FAILED_PRECONDITION naming the field).
absl::StatusOr<NllbManifest> ReadNllbManifest(Manifest manifest);

// LoadManifest (engines/core) and ReadNllbManifest.
absl::StatusOr<NllbManifest> LoadNllbManifest(const std::string& model_dir, bool verify_checksums);

}  // namespace vox

#endif  // VOX_ENGINES_TRANSLATE_NLLB_MANIFEST_H_
