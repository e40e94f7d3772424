#ifndef VOX_SERVER_VOICE_FILE_H_
#define VOX_SERVER_VOICE_FILE_H_

// The on-disk form of one created voice (one file per voice in the voice store, voice_store.h).
// Pure functions: thread-safe.
//
// Layout, little-endian: "VOXVOICE", u32 format version (kVoiceFileVersion), u64 payload size,
// u32 CRC-32C of the payload, then the payload: name, model, model_id (u32 length + bytes each),
// u32 language count + languages, i64 creation time (Unix microseconds), f64 reference audio
// seconds, i32 cond_rows, i32 cond_dim, u32 count + float32 latents, u32 count + float32
// speaker embedding. docs/operations.md ("Voice store") documents it.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engines/core/speech_engine.h"

namespace vox {

inline constexpr uint32_t kVoiceFileVersion = 1;

// A created voice: what the store keeps and lists. Immutable once stored (shared by pointer).
struct StoredVoice {
  std::string name;
  std::vector<std::string> languages;  // NLLB codes it is listed for and may speak
  std::string model;                   // the speech model (ModelInfo::name) that cloned it
  absl::Time create_time;
  double reference_seconds = 0;        // seconds of reference audio used
  std::shared_ptr<const ClonedVoice> voice;  // never null in a stored voice
};

// CRC-32C (Castagnoli), as in iSCSI and ext4: Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(absl::string_view data);

std::string EncodeVoiceFile(const StoredVoice& voice);

// DATA_LOSS naming the fault (not a voice file, unknown format version, truncated, checksum
// mismatch, inconsistent sizes) for anything but a complete file of a known version.
absl::StatusOr<StoredVoice> DecodeVoiceFile(absl::string_view bytes);

}  // namespace vox

#endif  // VOX_SERVER_VOICE_FILE_H_
