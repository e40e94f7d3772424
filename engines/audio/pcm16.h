#ifndef VOX_ENGINES_AUDIO_PCM16_H_
#define VOX_ENGINES_AUDIO_PCM16_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vox {

// float [-1, 1] -> int16: round(x * 32767), values beyond +-1 clip to 32767 / -32768, NaN -> 0.
int16_t FloatToPcm16(float sample);

// Appends samples as little-endian signed 16-bit PCM (2 bytes each) to *out. Cost: O(n), no
// allocation beyond growing *out. Thread-safe (pure function).
void AppendPcm16(absl::Span<const float> samples, std::string* out);

// The 44-byte canonical WAV header (PCM, 16-bit) for `data_bytes` bytes of sample data.
std::string WavHeader(int sample_rate_hz, int channels, uint32_t data_bytes);

// Writes a mono 16-bit PCM .wav file incrementally (voxctl --out x.wav): the header's sizes are
// patched on Close(). Thread-compatible; owns the FILE*; the destructor closes without error
// reporting, so call Close() to learn whether the file is complete.
class WavWriter {
 public:
  // InvalidArgument for a bad rate; NotFound/PermissionDenied-style errors (as Internal with the
  // path and errno text) when the file cannot be created.
  static absl::StatusOr<std::unique_ptr<WavWriter>> Open(const std::string& path,
                                                         int sample_rate_hz);
  ~WavWriter();
  WavWriter(const WavWriter&) = delete;
  WavWriter& operator=(const WavWriter&) = delete;

  absl::Status Write(absl::Span<const float> samples);
  // Already-encoded little-endian PCM16 bytes (e.g. AUDIO_ENCODING_PCM16 chunks); even length.
  absl::Status WritePcm16(absl::string_view bytes);
  // Patches the RIFF and data sizes and closes the file. Idempotent.
  absl::Status Close();

  int64_t samples_written() const { return data_bytes_ / 2; }

 private:
  WavWriter(std::FILE* file, std::string path, int sample_rate_hz);
  std::FILE* file_;
  std::string path_;
  int sample_rate_;
  int64_t data_bytes_ = 0;
};

}  // namespace vox

#endif  // VOX_ENGINES_AUDIO_PCM16_H_
