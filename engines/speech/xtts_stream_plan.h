#ifndef VOX_ENGINES_SPEECH_XTTS_STREAM_PLAN_H_
#define VOX_ENGINES_SPEECH_XTTS_STREAM_PLAN_H_

// Frame arithmetic for vocoding XTTS latents while they are generated (docs/speech.md).
//
// The vocoder input is the latent sequence stretched twice by linear interpolation (×4, then
// ×24000/22050; XTTS_FACTS §8). Those stretches are applied to the growing sequence as a whole;
// an interpolated frame is *final* once no later latent can change it (its source rows are not
// clamped at the current end). Only the HiFi-GAN convolutions are windowed: a chunk vocodes the
// final frames it emits plus `context` frames on each side, so each chunk costs the same however
// long the utterance is. Pure arithmetic; thread-safe.

#include <cstdint>

namespace vox {

struct InterpolationGeometry {
  double scale0 = 1.0;                  // 1 / speed (Xtts.inference's length_scale); stage skipped at 1
  double scale1 = 4.0;                  // code_stride / hop_length
  double scale2 = 24000.0 / 22050.0;    // sample_rate / input_sample_rate
  bool resample = true;                 // sample_rate != input_sample_rate
  // The float32-rounded inverse scales torch's linear kernel uses as source-index ratios.
  double ratio0() const;
  double ratio1() const;
  double ratio2() const;
};

// Frames interpolate() returns for n latents: floor(floor(floor(n*scale0)*scale1)*scale2)
// (torch's output-size rule, in double; stages at scale 1 / without resampling skipped).
int64_t InterpolatedFrames(const InterpolationGeometry& g, int64_t n_latents);

// How many leading frames of interpolate(latents[0:n]) equal those of any longer sequence.
// Monotonic in n; 0 while a stretch still copies (its output length equals its input length,
// e.g. n <= 2 for ×24000/22050).
int64_t FinalFrames(const InterpolationGeometry& g, int64_t n_latents);

// One chunk of streamed audio, in vocoder frames (one frame = hop_length samples).
struct ChunkWindow {
  int64_t emit_begin = 0;    // first frame whose samples this chunk emits
  int64_t emit_end = 0;      // one past the last emitted frame
  int64_t window_begin = 0;  // first frame fed to the convolutions (emit_begin - context, >= 0)
  int64_t window_end = 0;    // one past the last frame fed to the convolutions
  bool empty() const { return emit_end <= emit_begin; }
};

// The window for the next chunk once `n_latents` latents exist and frames [0, emitted) were
// emitted. Not final: emits up to FinalFrames - context and reads frames up to FinalFrames.
// Final (the utterance ended): emits everything left.
ChunkWindow NextChunkWindow(const InterpolationGeometry& g, int64_t n_latents, int64_t emitted,
                            int64_t context, bool final);

}  // namespace vox

#endif  // VOX_ENGINES_SPEECH_XTTS_STREAM_PLAN_H_
