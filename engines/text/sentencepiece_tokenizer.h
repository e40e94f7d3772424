#ifndef VOX_ENGINES_TEXT_SENTENCEPIECE_TOKENIZER_H_
#define VOX_ENGINES_TEXT_SENTENCEPIECE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vox {

// A SentencePiece model, reached through the vox_spm_shim shared library (DESIGN.md, build
// traps: libsentencepiece must never be linked into a binary that also uses gRPC's protobuf).
//
// The shim is located, in order: $VOX_SPM_SHIM (a file path), the shim's file name next to the
// running executable, then its build-tree location. It is loaded once per process (dlopen with
// RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND on Linux, RTLD_NOW | RTLD_LOCAL elsewhere) and never
// unloaded.
//
// Ids here are SentencePiece's own ids; model-specific offsets (NLLB's fairseq +1) belong to
// the engine. Thread-safe: all const methods may be called concurrently.
class SentencePieceTokenizer {
 public:
  // Loads the model file. FAILED_PRECONDITION when the shim cannot be found or loaded, or the
  // model file is missing or invalid; the message names the path.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> Load(const std::string& path);

  ~SentencePieceTokenizer();
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  // Vocabulary size (number of pieces).
  int piece_count() const { return piece_count_; }

  // UTF-8 text → piece ids. Cost: linear in the text; one allocation.
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text) const;

  // Piece ids → text as SentencePiece decodes it. INVALID_ARGUMENT for an id out of range.
  absl::StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const;

  // The piece string of one id ("▁hello"). INVALID_ARGUMENT for an id out of range.
  absl::StatusOr<std::string> IdToPiece(int32_t id) const;

  const std::string& path() const { return path_; }

 private:
  SentencePieceTokenizer(void* handle, std::string path, int piece_count);
  void* handle_;  // vox_spm*, owned
  std::string path_;
  int piece_count_;
};

// Loads the shim from exactly `shim_path` (no search) and reports whether it is usable; used by
// tests and by voxd's start-up checks. Does not affect the process-wide shim that Load uses.
absl::Status CheckSpmShim(const std::string& shim_path);

// Where Load will look for the shim, in order (for error messages and diagnostics).
std::vector<std::string> SpmShimSearchPath();

}  // namespace vox

#endif  // VOX_ENGINES_TEXT_SENTENCEPIECE_TOKENIZER_H_
