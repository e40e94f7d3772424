#ifndef VOX_ENGINES_AUDIO_REFERENCE_AUDIO_H_
#define VOX_ENGINES_AUDIO_REFERENCE_AUDIO_H_

// Decoding of uploaded reference recordings (voice cloning) into mono float samples: WAV PCM16,
// raw PCM16 at a given rate, and Ogg Opus. Pure functions: thread-safe, no state.

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vox {

enum class ReferenceAudioFormat {
  kDetect,    // "RIFF" -> WAV, "OggS" -> Ogg Opus; anything else is refused
  kWav,       // RIFF/WAVE, PCM 16-bit, 1 or 2 channels
  kOggOpus,   // RFC 7845, channel mapping family 0 (1 or 2 channels), decoded at 48 kHz;
              // pre-skip and end trimming (the last granule position) applied
  kRawPcm16,  // little-endian signed 16-bit mono at the given rate
};

struct DecodedAudio {
  std::vector<float> samples;  // mono in [-1, 1]; stereo is averaged
  int sample_rate = 0;
};

// True for the rates accepted from WAV and raw PCM16: 8000, 11025, 12000, 16000, 22050, 24000,
// 32000, 44100, 48000.
bool IsSupportedReferenceRate(int sample_rate_hz);

// Decodes one whole recording. `raw_sample_rate` is used only for kRawPcm16. INVALID_ARGUMENT,
// saying what is wrong (not a WAV file, 24-bit samples, 6 channels, a rate not in the list
// above, a truncated file, an Opus packet that does not decode), for anything else. Costs one
// pass over the bytes; Opus decoding about 1 ms per second of audio.
absl::StatusOr<DecodedAudio> DecodeReferenceAudio(absl::string_view bytes,
                                                  ReferenceAudioFormat format,
                                                  int raw_sample_rate);

}  // namespace vox

#endif  // VOX_ENGINES_AUDIO_REFERENCE_AUDIO_H_
