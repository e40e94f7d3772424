#ifndef VOX_ENGINES_SPEECH_XTTS_CLONER_H_
#define VOX_ENGINES_SPEECH_XTTS_CLONER_H_

// Internal to vox_speech (includes LibTorch through xtts_model.h). XttsEngine::CloneVoice: checks
// the reference clips against what the export's clone.ts can take, then runs it (Coqui's
// Xtts.get_conditioning_latents, tools/xtts_clone.py: resampling, mel front ends, conditioning
// encoder and perceiver, speaker encoder, averaging over chunks and clips).
//
// Reads only the shared, immutable model: any thread may call it, concurrently with the
// engines that own the model's other methods. Cost: about the reference audio's length times a
// constant (docs/benchmarks.md, "Voice cloning").

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engines/core/speech_engine.h"
#include "engines/speech/xtts_model.h"

namespace vox {

// Lowest and highest reference sample rates taken (Hz).
inline constexpr int kMinCloneSampleRate = 8000;
inline constexpr int kMaxCloneSampleRate = 192000;
// Shortest clip taken, in seconds (the speaker encoder's spectrogram needs a few frames).
inline constexpr double kMinCloneClipSeconds = 0.1;

// UNIMPLEMENTED when the export has no clone.ts (saying why and what to do); INVALID_ARGUMENT for
// no clips, a rate out of range (or one whose resampling filter would be huge, as 44101 Hz),
// a clip too short, non-finite or silent (all zero), or too little audio in all for one
// conditioning chunk; INTERNAL for LibTorch failures.
absl::StatusOr<ClonedVoice> CloneXttsVoice(const XttsModel& model, absl::Span<const ReferenceClip> clips);

}  // namespace vox

#endif  // VOX_ENGINES_SPEECH_XTTS_CLONER_H_
