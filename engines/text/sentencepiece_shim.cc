// vox_spm_shim: the only code that includes SentencePiece headers and links libsentencepiece.
//
// Debian's libsentencepiece carries its own protobuf 3.14, which clashes with the protobuf that
// gRPC uses; its header also clashes with Abseil's string_view (DESIGN.md, build traps). So this
// file is built into a small shared library with a plain C interface, and vox loads it with
// dlopen (RTLD_DEEPBIND on Linux) from engines/text/sentencepiece_tokenizer.cc. Nothing else may
// include sentencepiece_processor.h.
//
// Thread safety: a handle may be used for encode/decode/lookups from many threads at once
// (SentencePieceProcessor's const methods are thread-safe); create/destroy are not concurrent
// with other uses of the same handle. The last error is thread-local.

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#define VOX_SPM_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
thread_local std::string g_last_error;

int SetError(const std::string& message) {
  g_last_error = message;
  return -1;
}
}  // namespace

struct vox_spm {
  sentencepiece::SentencePieceProcessor processor;
};

// Version of this C interface; the loader refuses a shim with another version.
VOX_SPM_EXPORT int vox_spm_abi_version() { return 1; }

// Loads a SentencePiece model file. Returns nullptr on failure (see vox_spm_last_error).
VOX_SPM_EXPORT vox_spm* vox_spm_create(const char* model_path) {
  auto* spm = new (std::nothrow) vox_spm;
  if (spm == nullptr) {
    SetError("out of memory");
    return nullptr;
  }
  const auto status = spm->processor.Load(model_path);
  if (!status.ok()) {
    SetError(std::string(model_path) + ": cannot load SentencePiece model: " +
             status.ToString());
    delete spm;
    return nullptr;
  }
  return spm;
}

VOX_SPM_EXPORT void vox_spm_destroy(vox_spm* spm) { delete spm; }

// Number of pieces in the model's vocabulary.
VOX_SPM_EXPORT int vox_spm_piece_count(const vox_spm* spm) {
  return spm->processor.GetPieceSize();
}

// Encodes `len` bytes of UTF-8 into SentencePiece ids. Writes at most `capacity` ids to `out`
// and returns the total count (call again with a bigger buffer when it exceeds `capacity`),
// or -1 on error.
VOX_SPM_EXPORT int vox_spm_encode(const vox_spm* spm, const char* text, size_t len, int32_t* out,
                                  size_t capacity) {
  std::vector<int> ids;
  const auto status = spm->processor.Encode(std::string(text, len), &ids);
  if (!status.ok()) return SetError("SentencePiece encode failed: " + status.ToString());
  for (size_t i = 0; i < ids.size() && i < capacity; ++i) out[i] = ids[i];
  return static_cast<int>(ids.size());
}

// Decodes SentencePiece ids into UTF-8 the way SentencePiece does (spaces restored, leading
// space removed). Writes at most `capacity` bytes (no terminator) and returns the total length,
// or -1 on error (an id out of range, for example).
VOX_SPM_EXPORT int vox_spm_decode(const vox_spm* spm, const int32_t* ids, size_t n, char* out,
                                  size_t capacity) {
  const int size = spm->processor.GetPieceSize();
  std::vector<int> v(ids, ids + n);
  for (int id : v) {
    if (id < 0 || id >= size) {
      return SetError("SentencePiece decode: id " + std::to_string(id) + " outside [0, " +
                      std::to_string(size) + ")");
    }
  }
  std::string text;
  const auto status = spm->processor.Decode(v, &text);
  if (!status.ok()) return SetError("SentencePiece decode failed: " + status.ToString());
  std::memcpy(out, text.data(), std::min(capacity, text.size()));
  return static_cast<int>(text.size());
}

// The piece string of `id` (for example "▁hello"). Same buffer protocol as vox_spm_decode.
VOX_SPM_EXPORT int vox_spm_id_to_piece(const vox_spm* spm, int32_t id, char* out,
                                       size_t capacity) {
  const int size = spm->processor.GetPieceSize();
  if (id < 0 || id >= size) {
    return SetError("SentencePiece id " + std::to_string(id) + " outside [0, " +
                    std::to_string(size) + ")");
  }
  const std::string& piece = spm->processor.IdToPiece(id);
  std::memcpy(out, piece.data(), std::min(capacity, piece.size()));
  return static_cast<int>(piece.size());
}

// The last error of this thread, or "" (valid until the next call on this thread).
VOX_SPM_EXPORT const char* vox_spm_last_error() { return g_last_error.c_str(); }
